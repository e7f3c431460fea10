"""The offline task classifier for ``auto`` routing (see ``classifier.py``; README "Task classifier").

``build_classifier(config)`` turns the routes' ``classify`` blocks into a fitted ``Classifier`` (or None when no
route classifies). Heavy libraries (scikit-learn, onnxruntime) are imported only here, only then.
"""

from __future__ import annotations

from typing import Any

from gateway.routing.classify.classifier import Classifier, RouteExamples, Verdict, build
from gateway.routing.classify.corpus import Example, builtin_corpus
from gateway.routing.classify.text import request_text

__all__ = ["Classifier", "Example", "RouteExamples", "Verdict", "build_classifier", "make_engine", "request_text"]


def route_examples(config: Any) -> list[RouteExamples]:
    return [RouteExamples(name, r.classify.builtin, (*r.classify.examples, *r.classify._file_examples),
                          r.classify.threshold)
            for name, r in config.routes.items() if r.classify is not None]


def make_engine(classifier_config: Any, cache: Any = None) -> Any:
    """A fresh engine for the config's ``classifier`` block (paths already resolved and checked by the loader)."""
    from gateway.routing.classify.engines import (
        DEFAULT_MODEL,
        DEFAULT_TOKENIZER,
        BuiltinEngine,
        EmbeddingEngine,
        resolve_file,
    )

    if classifier_config.engine == "builtin":
        return BuiltinEngine()
    e = classifier_config.embedding
    model, model_sha = resolve_file("model", e.model, e.model_sha256, DEFAULT_MODEL, None)
    tok, tok_sha = resolve_file("tokenizer", e.tokenizer, e.tokenizer_sha256, DEFAULT_TOKENIZER, None)
    if cache is None:
        from gateway.routing.classify.embcache import load_cache

        cache = load_cache(model_sha, tok_sha, e.max_tokens)
    return EmbeddingEngine(model, tok, e.max_tokens, cache)


def build_classifier(config: Any, corpus: Any = None) -> Classifier | None:
    """The fitted classifier for a validated config, or None when no route has ``classify``. Raises
    ``EngineError``/``ValueError`` (the runtime builder reports them as config errors)."""
    routes = route_examples(config)
    if not routes:
        return None
    c = config.classifier
    return build(make_engine(c), routes, builtin_corpus() if corpus is None else corpus, c.max_chars)
