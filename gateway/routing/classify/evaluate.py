"""``gateway classify eval``: train on the corpus's train split (plus the routes' own examples), score the
held-out split (or the challenge set), report accuracy, per-route precision/recall and the confusion matrix.

A held-out prompt's expected route is the route whose ``builtin`` task is the prompt's label, or "next rule"
when no route claims that task (the request would fall through to ``default_route``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gateway.routing.classify.classifier import Classifier
from gateway.routing.classify.corpus import Example

NEXT = "(next rule)"


def evaluate(clf: Classifier, task_routes: dict[str, str], corpus: Sequence[Example],
             split: str = "test") -> dict[str, Any]:
    """Score ``clf`` on the ``corpus`` prompts of ``split`` (``test``: the held-out split; ``challenge``: the
    challenge set, passed in the same sequence)."""
    test = [e for e in corpus if e.split == split]
    if not test:
        raise ValueError(f"the corpus has no {split} prompts")
    labels = sorted(set(clf.thresholds)) + [NEXT]
    confusion = {a: dict.fromkeys(labels, 0) for a in labels}
    costs = []
    for e in test:
        t0 = time.perf_counter()
        v = clf.classify(e.text)
        costs.append(time.perf_counter() - t0)
        expected = task_routes.get(e.label, NEXT)
        confusion[expected][v.route or NEXT] += 1
    per_route = {}
    for r in labels:
        tp = confusion[r][r]
        predicted = sum(confusion[a][r] for a in labels)
        actual = sum(confusion[r].values())
        per_route[r] = {"precision": tp / predicted if predicted else None,
                        "recall": tp / actual if actual else None, "support": actual}
    correct = sum(confusion[a][a] for a in labels)
    costs.sort()
    return {"engine": clf.engine_name, "train": sum(1 for e in corpus if e.split == "train"), "test": len(test),
            "split": split,
            "accuracy": correct / len(test), "routes": per_route, "labels": labels, "confusion": confusion,
            "cost_ms": {"p50": costs[len(costs) // 2] * 1e3, "p99": costs[min(len(costs) - 1, int(len(costs) * .99))] * 1e3}}


def render(res: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "  n/a" if x is None else f"{x * 100:5.1f}%"

    name = {"test": "held-out", "challenge": "challenge"}.get(res.get("split", "test"), res.get("split"))
    out = [f"engine: {res['engine']}   train prompts: {res['train']}   {name} prompts: {res['test']}",
           f"accuracy: {pct(res['accuracy'])}", "", f"{'route':<24} precision  recall  support"]
    for r, m in res["routes"].items():
        out.append(f"{r:<24} {pct(m['precision']):>9}  {pct(m['recall']):>6}  {m['support']:>7}")
    labels = res["labels"]
    w = max(12, *(len(x) for x in labels)) + 1
    out += ["", "confusion (rows: expected, columns: chosen)", " " * w + "".join(f"{x:>{w}}" for x in labels)]
    for a in labels:
        out.append(f"{a:<{w}}" + "".join(f"{res['confusion'][a][b]:>{w}}" for b in labels))
    c = res["cost_ms"]
    out += ["", f"classification cost in this run: p50 {c['p50']:.2f} ms, p99 {c['p99']:.2f} ms (not a benchmark: "
            "corpus prompts, whose embeddings ship precomputed; see make bench)"]
    return "\n".join(out) + "\n"
