"""The task classifier for ``auto`` requests: which route's examples is this request nearest to, and how sure.

Built once per runtime snapshot (``build``) from the routes' ``classify`` blocks: each route's label is its
builtin task's corpus examples (train split only) plus its own examples; builtin tasks no route claims become
the "no route" class, so a request like them falls through to the next rule. A logistic regression
(scikit-learn) over the engine's features gives each label a probability: the top label wins when it is a
route and its probability clears that route's threshold. Immutable after construction; ``classify`` is
thread-safe and does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from math import exp
from typing import Any

from gateway.routing.classify.corpus import Example
from gateway.routing.classify.text import MAX_CHARS, truncate

NO_ROUTE = ""  # the label of examples that belong to no classifying route
# How much a system prompt's evidence counts next to the user message's (see ``Classifier.scores``).
SYSTEM_WEIGHT = 0.5
SYSTEM_CACHE = 64  # system prompts whose decision is kept per classifier


@dataclass(frozen=True, slots=True)
class RouteExamples:
    route: str
    task: str | None  # builtin corpus task (security-review | general) or None
    examples: tuple[str, ...] = ()
    threshold: float = 0.5


@dataclass(frozen=True, slots=True)
class Verdict:
    route: str | None  # the chosen route, or None: the next rule decides
    candidate: str | None  # the nearest route (None when the nearest examples belong to no route)
    score: float  # the candidate's probability (0..1); for no candidate, the "no route" probability
    threshold: float  # the candidate route's threshold (0.0 when there is no candidate)
    engine: str

    @property
    def outcome(self) -> str:
        if self.route is not None:
            return "matched"
        return "below_threshold" if self.candidate is not None else "no_route"


@dataclass(frozen=True)
class Classifier:
    engine: Any
    labels: tuple[str, ...]
    thresholds: Mapping[str, float]
    max_chars: int
    _model: Any = field(repr=False)
    _train: tuple[tuple[str, str], ...] = field(repr=False)  # (text, label), for the nearest examples
    _matrix: Any = field(repr=False)
    _system_cache: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Per snapshot, bounded; functools' lru_cache is thread-safe (the embedding engine runs in workers).
        object.__setattr__(self, "_system_cache", lru_cache(maxsize=SYSTEM_CACHE)(self._decision))

    def _system_decision(self, system: str) -> list[float]:
        d: list[float] = self._system_cache(truncate(system, self.max_chars))  # keys bounded: max_chars each
        return d

    @property
    def engine_name(self) -> str:
        return self.engine.name

    @property
    def blocking(self) -> bool:
        """Whether one classification takes long enough (milliseconds) to belong off the event loop."""
        return self.engine.name == "embedding"

    def _decision(self, text: str) -> list[float]:
        text = truncate(text, self.max_chars)
        try:
            d: list[float] = self.engine.decision(text)
        except (UnicodeEncodeError, TypeError):  # a lone surrogate: RE2 and the tokenizer take UTF-8 only
            d = self.engine.decision(text.encode("utf-8", "replace").decode("utf-8"))
        return d

    def scores(self, text: str, system: str = "") -> dict[str, float]:
        """Each label's probability: the logistic regression's ``predict_proba``, computed by the engine's
        ``decision`` (no scikit-learn call on the request path).

        ``text`` is the request (the last user message), ``system`` its system prompt(s). Each is scored on its
        own and the system prompt's evidence is added at ``SYSTEM_WEIGHT``: the user message states the task,
        and a long system prompt (an agent's policy text mentions "security" on every request) must neither
        push it out of the classifier's window nor decide alone. A system prompt's decision is cached (an
        application sends the same one with every request)."""
        d = self._decision(text)
        if system:
            ds = self._system_decision(system)
            d = [u + SYSTEM_WEIGHT * v for u, v in zip(d, ds, strict=True)]
        classes = self._model.classes_
        intercept = self._model.intercept_
        if len(classes) == 2:
            z = d[0] + float(intercept[0])
            p = 1.0 / (1.0 + exp(-z)) if z >= 0 else exp(z) / (1.0 + exp(z))
            return {classes[0]: 1.0 - p, classes[1]: p}
        z = [d[i] + float(intercept[i]) for i in range(len(classes))]
        top = max(z)
        e = [exp(v - top) for v in z]
        total = sum(e)
        return {classes[i]: e[i] / total for i in range(len(classes))}

    def classify(self, text: str, system: str = "") -> Verdict:
        return self._verdict(self.scores(text, system))

    def _verdict(self, scores: Mapping[str, float]) -> Verdict:
        top = max(scores, key=scores.__getitem__)
        score = scores[top]
        if top == NO_ROUTE:
            return Verdict(None, None, round(score, 4), 0.0, self.engine.name)
        threshold = self.thresholds[top]
        return Verdict(top if score >= threshold else None, top, round(score, 4), threshold, self.engine.name)

    def explain(self, text: str, k: int = 3, system: str = "") -> dict[str, Any]:
        """The verdict, every label's score and the ``k`` nearest training examples (cosine similarity) to the
        request's ``text``."""
        import numpy as np

        scores = self.scores(text, system)
        v = self._verdict(scores)
        x = self.engine.transform([truncate(text, self.max_chars).encode("utf-8", "replace").decode("utf-8")])
        m = self._matrix
        sims = m @ x.T
        sims = np.asarray(sims.todense() if hasattr(sims, "todense") else sims).ravel()
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel() if hasattr(m, "multiply")
                        else (m * m).sum(axis=1))
        xn = float(np.sqrt(x.multiply(x).sum()) if hasattr(x, "multiply") else np.sqrt((x * x).sum()))
        sims = sims / np.maximum(norms * xn, 1e-12)
        order = np.argsort(-sims, kind="stable")[:k]
        nearest = [{"route": self._train[i][1] or None, "similarity": round(float(sims[i]), 4),
                    "example": _preview(self._train[i][0])} for i in order]
        return {"engine": v.engine, "route": v.route, "candidate": v.candidate, "score": v.score,
                "threshold": v.threshold, "thresholds": dict(self.thresholds), "outcome": v.outcome,
                "scores": {(lbl or "(no route)"): round(s, 4) for lbl, s in sorted(scores.items())},
                "nearest": nearest}


def _preview(text: str, n: int = 90) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 3] + "..."


def training_set(routes: Sequence[RouteExamples], corpus: Sequence[Example]) -> list[tuple[str, str]]:
    claimed = {r.task for r in routes if r.task}
    rows: list[tuple[str, str]] = []
    for r in routes:
        if r.task:
            rows += [(e.text, r.route) for e in corpus if e.split == "train" and e.label == r.task]
        rows += [(t, r.route) for t in r.examples]
    rows += [(e.text, NO_ROUTE) for e in corpus if e.split == "train" and e.label not in claimed]
    return rows


def build(engine: Any, routes: Sequence[RouteExamples], corpus: Sequence[Example],
          max_chars: int = MAX_CHARS) -> Classifier:
    """Fit the engine and the model. Raises ``ValueError`` when there is nothing to tell apart."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    rows = training_set(routes, corpus)
    labels = sorted({lbl for _, lbl in rows})
    if len(labels) < 2:
        raise ValueError("the classifier needs examples of at least two tasks (add a second classify route, or "
                         "use a builtin task so the other builtin task is the no-route class)")
    texts = [truncate(t, max_chars) for t, _ in rows]
    engine.fit(texts)
    matrix = engine.transform(texts)
    model = LogisticRegression(C=100.0, class_weight="balanced", max_iter=2000)  # C: 5-fold CV on train
    # One BLAS thread: on a busy machine OpenBLAS's thread pool makes this small fit ten times slower (1.6 s vs
    # 0.17 s measured), and a reload must not take the cores the event loop needs.
    with threadpool_limits(1):
        model.fit(matrix, [lbl for _, lbl in rows])
    engine.compile(model.coef_)
    return Classifier(engine, tuple(labels), {r.route: r.threshold for r in routes}, max_chars, model,
                      tuple(rows), matrix)
