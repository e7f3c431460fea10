"""Precomputed embeddings of the shipped corpus, so the embedding engine starts (and reloads) in well under a
second instead of embedding ~340 prompts (~10 s on one core).

``embeddings.npz`` (package data) holds the corpus texts, their vectors and the sha256s of the model and
tokenizer and the token limit they were computed with. It is used only when all three match the configured
engine, and it is keyed by the exact text, so a stale file can cost time but never change a result.
Regenerate after editing ``corpus.yaml`` or ``challenge.yaml``: ``python -m gateway.routing.classify.embcache``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

FILE = "embeddings.npz"


def load_cache(model_sha: str, tokenizer_sha: str, max_tokens: int) -> dict[str, Any]:
    import numpy as np

    try:
        ref = resources.files("gateway.routing.classify").joinpath(FILE)
        with ref.open("rb") as f:
            data = np.load(f, allow_pickle=False)
            meta = [str(x) for x in data["meta"]]
            if meta != [model_sha, tokenizer_sha, str(max_tokens)]:
                return {}
            return dict(zip((str(t) for t in data["texts"]), data["vectors"], strict=True))
    except (OSError, KeyError, ValueError):
        return {}


def write_cache(path: Any = None) -> int:
    """Embed every corpus and challenge-set prompt with the default model (semantic extra) and write the cache file."""
    from pathlib import Path

    import numpy as np

    from gateway.config.model import ClassifierConfig
    from gateway.routing.classify import make_engine
    from gateway.routing.classify.corpus import builtin_corpus, challenge_set
    from gateway.routing.classify.engines import DEFAULT_MODEL, DEFAULT_TOKENIZER
    from gateway.routing.classify.text import MAX_CHARS, truncate

    cfg = ClassifierConfig(engine="embedding")
    engine = make_engine(cfg, cache={})
    # The challenge set too: it is never trained on, but its eval (and test) need not embed it every run.
    texts = sorted({truncate(e.text, MAX_CHARS) for e in (*builtin_corpus(), *challenge_set())})
    vectors = np.stack([engine.embed(t) for t in texts]).astype(np.float32)
    meta = np.array([DEFAULT_MODEL[2], DEFAULT_TOKENIZER[2], str(cfg.embedding.max_tokens)])
    out = Path(path) if path else Path(__file__).with_name(FILE)
    with out.open("wb") as f:
        np.savez_compressed(f, texts=np.array(texts), vectors=vectors, meta=meta)
    return len(texts)


if __name__ == "__main__":
    print(f"{write_cache()} prompts embedded")
