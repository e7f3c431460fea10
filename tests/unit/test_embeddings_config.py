"""Embedding models and routes in the config: declared, strictly validated, every error with its dotted path."""

from __future__ import annotations

import copy

import pytest

from gateway.config.loader import parse_config
from gateway.errors import ConfigError
from gateway.runtime import build_runtime

GOOD = {
    "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"},
                  "g": {"kind": "gemini", "base_url": "http://127.0.0.1:1", "api_key": "k"},
                  "a": {"kind": "anthropic", "base_url": "http://127.0.0.1:1", "api_key": "k"},
                  "b": {"kind": "bedrock", "base_url": "http://127.0.0.1:1", "api_key": "k"}},
    "models": {"chat": {"provider": "p", "model": "x"},
               "e1": {"provider": "p", "model": "te3", "kind": "embeddings", "dimensions": 1536},
               "e2": {"provider": "g", "model": "gemini-embedding-001", "kind": "embeddings", "dimensions": 1536,
                      "send_dimensions": True},
               "e3": {"provider": "b", "model": "amazon.titan-embed-text-v2:0", "kind": "embeddings",
                      "dimensions": 1024}},
    "routes": {"r": {"models": ["chat"]}, "emb": {"kind": "embeddings", "models": ["e1", "e2", "e3"]}},
    "default_route": "r",
}


def _errors(data) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        parse_config(data, "g.yaml", {})
    return ei.value.errors


def _with(change) -> dict:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def test_good_config_builds_embedders():
    rt = build_runtime(parse_config(GOOD, "g.yaml", {}))
    assert set(rt.embedders) == {"e1", "e2", "e3"} and rt.routes["emb"].kind == "embeddings"
    assert rt.targets["e2"].dimensions == 1536 and rt.targets["chat"].dimensions is None
    assert rt.embedders["e2"].send_dimensions is True and rt.embedders["e1"].send_dimensions is False


CASES = [
    (lambda d: d["routes"]["r"]["models"].append("e1"),
     "g.yaml: routes.r.models[1]: 'e1' is an embedding model but this route has kind: chat"),
    (lambda d: d["routes"]["emb"]["models"].append("chat"),
     "g.yaml: routes.emb.models[3]: 'chat' is a chat model but this route has kind: embeddings"),
    (lambda d: d["models"]["e1"].pop("dimensions"),
     "g.yaml: models.e1: dimensions: required for an embedding model (the length of its vectors)"),
    (lambda d: d["models"]["chat"].update(dimensions=8),
     "g.yaml: models.chat: dimensions: only for embedding models (set kind: embeddings)"),
    (lambda d: d["models"]["e1"].update(dimensions=0), "g.yaml: models.e1.dimensions: Input should be greater than 0"),
    (lambda d: d["models"]["e1"].update(kind="vectors"), "g.yaml: models.e1.kind: Input should be 'chat' or"),
    (lambda d: d["models"]["e1"].update(provider="a"),
     "g.yaml: models.e1.kind: provider kind anthropic has no embeddings API"),
    (lambda d: d["models"]["e3"].update(model="meta.llama3-8b-instruct-v1:0"),
     "g.yaml: models.e3.model: 'meta.llama3-8b-instruct-v1:0' is not a supported Bedrock embedding model"),
    (lambda d: d["routes"]["emb"].update(match=["x"]),
     "g.yaml: routes.emb.match: only for chat routes"),
    (lambda d: d.update(default_route="emb"),
     "g.yaml: default_route: 'emb' is an embeddings route; the default route must be a chat route"),
    (lambda d: d["routes"]["r"].update(on_refusal="failover", refusal_fallbacks=["e1"]),
     "g.yaml: routes.r.refusal_fallbacks[0]: 'e1' is an embedding model but this route has kind: chat"),
]


@pytest.mark.parametrize("change,expected", CASES)
def test_each_error_names_its_path(change, expected):
    errors = _errors(_with(change))
    assert any(e.startswith(expected) for e in errors), errors
