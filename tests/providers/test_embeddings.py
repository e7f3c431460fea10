"""Embedding wire formats: request bodies, response parsing and checks, error classification, as tables of literal
bodies. No network."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from gateway.errors import ConfigError, ErrorKind, UpstreamError
from gateway.providers import adapter_class
from gateway.providers.base import Target
from gateway.providers.embeddings import EmbeddingRequest, batches, check_vectors, embedder_for

NOW = 1700000000.0


def target(kind: str, model: str, dims: int = 3, **kw: Any) -> Target:
    base = {"openai": "https://api.openai.com/v1", "azure-openai": "https://res.openai.azure.com",
            "gemini": "https://generativelanguage.googleapis.com",
            "bedrock": "https://bedrock-runtime.us-east-1.amazonaws.com", "anthropic": "https://api.anthropic.com"}
    options = {"azure-openai": {"api_version": "2024-10-21", "api_style": "deployments"},
               "gemini": {"api_version": "v1beta"}, "bedrock": {"region": "us-east-1", "aws_profile": None},
               "anthropic": {"anthropic_version": "2023-06-01"}}
    args = dict(name="emb", provider="p", kind=kind, upstream_model=model, base_url=base[kind], vendor="V",
                jurisdiction="US", context_window=8192, api_key="secret-key-123", options=options.get(kind, {}),
                dimensions=dims)
    args.update(kw)
    return Target(**args)


def embedder(kind: str, model: str, dims: int = 3, send_dimensions: bool = False, **kw: Any) -> Any:
    t = target(kind, model, dims, **kw)
    chat = adapter_class(kind)(t, clock=lambda: NOW) if kind == "bedrock" else adapter_class(kind)(t)
    return embedder_for(chat, send_dimensions)


REQ = EmbeddingRequest(("hello", "world"), user="u-1")
V = [0.1, -0.2, 0.3]
W = [0.4, 0.5, -0.6]

REQUESTS = [
    ("openai", "text-embedding-3-small", False, "https://api.openai.com/v1/embeddings",
     {"model": "text-embedding-3-small", "input": ["hello", "world"], "encoding_format": "float", "user": "u-1"}),
    ("openai", "text-embedding-3-small", True, "https://api.openai.com/v1/embeddings",
     {"model": "text-embedding-3-small", "input": ["hello", "world"], "encoding_format": "float", "dimensions": 3,
      "user": "u-1"}),
    ("azure-openai", "my-dep", False,
     "https://res.openai.azure.com/openai/deployments/my-dep/embeddings?api-version=2024-10-21",
     {"model": "my-dep", "input": ["hello", "world"], "encoding_format": "float", "user": "u-1"}),
    ("gemini", "gemini-embedding-001", True,
     "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents",
     {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]},
                    "outputDimensionality": 3},
                   {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "world"}]},
                    "outputDimensionality": 3}]}),
    ("bedrock", "cohere.embed-english-v3", False,
     "https://bedrock-runtime.us-east-1.amazonaws.com/model/cohere.embed-english-v3/invoke",
     {"texts": ["hello", "world"], "input_type": "search_document"}),
    ("bedrock", "cohere.embed-v4:0", True,
     "https://bedrock-runtime.us-east-1.amazonaws.com/model/cohere.embed-v4:0/invoke",
     {"texts": ["hello", "world"], "input_type": "search_document", "output_dimension": 3}),
]


@pytest.mark.parametrize("kind,model,send,url,body", REQUESTS)
def test_request_bodies(kind, model, send, url, body):
    req = embedder(kind, model, send_dimensions=send).build_request(REQ)
    assert (req.method, req.url, req.stream) == ("POST", url, False)
    assert orjson.loads(req.body) == body


def test_azure_v1_style_address():
    e = embedder("azure-openai", "my-dep", options={"api_version": "2024-10-21", "api_style": "v1"})
    assert e.build_request(REQ).url == "https://res.openai.azure.com/openai/v1/embeddings"


def test_auth_headers_per_kind():
    assert embedder("openai", "m").build_request(REQ).headers["authorization"] == "Bearer secret-key-123"
    assert embedder("azure-openai", "m").build_request(REQ).headers["api-key"] == "secret-key-123"
    assert embedder("gemini", "m").build_request(REQ).headers["x-goog-api-key"] == "secret-key-123"
    assert embedder("bedrock", "cohere.embed-english-v3").build_request(REQ).headers["authorization"] == \
        "Bearer secret-key-123"


def test_unknown_fields_reach_openai_kind_only():
    req = EmbeddingRequest(("x",), extra={"input_type": "query"})
    assert orjson.loads(embedder("openai", "m").build_request(req).body)["input_type"] == "query"
    assert "input_type" not in orjson.loads(embedder("gemini", "m").build_request(req).body)["requests"][0]


def test_titan_one_text_per_call_and_dimensions():
    e = embedder("bedrock", "amazon.titan-embed-text-v2:0", send_dimensions=True)
    assert e.max_batch == 1
    assert orjson.loads(e.build_request(EmbeddingRequest(("hi",))).body) == {"inputText": "hi", "dimensions": 3}
    e = embedder("bedrock", "amazon.titan-embed-text-v1")
    assert orjson.loads(e.build_request(EmbeddingRequest(("hi",))).body) == {"inputText": "hi"}
    assert embedder("bedrock", "us.cohere.embed-v4:0").max_batch == 96
    assert embedder("gemini", "m").max_batch == 100 and embedder("openai", "m").max_batch == 2048
    assert batches(("a", "b", "c"), 2) == [("a", "b"), ("c",)]


def test_bedrock_sigv4_signs_the_invoke_url(monkeypatch):
    import botocore.auth
    import botocore.credentials
    from botocore.awsrequest import AWSRequest

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    e = embedder("bedrock", "amazon.titan-embed-text-v2:0", api_key=None)
    req = e.build_request(EmbeddingRequest(("hi",)))
    assert req.url == "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.titan-embed-text-v2:0/invoke"
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: datetime(2023, 11, 14, 22, 13, 20))
    ref = AWSRequest(method="POST", url=req.url, data=req.body,
                     headers={"content-type": "application/json", "accept": "application/json"})
    creds = botocore.credentials.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    botocore.auth.SigV4Auth(creds, "bedrock", "us-east-1").add_auth(ref)
    assert req.headers["Authorization"] == ref.headers["Authorization"]


RESPONSES = [
    ("openai", "m", {"object": "list", "data": [{"object": "embedding", "index": 1, "embedding": W},
                                                {"object": "embedding", "index": 0, "embedding": V}],
                     "model": "m", "usage": {"prompt_tokens": 4, "total_tokens": 4}}, 4),
    ("azure-openai", "m", {"data": [{"index": 0, "embedding": V}, {"index": 1, "embedding": W}],
                           "usage": {"prompt_tokens": 2}}, 2),
    ("gemini", "m", {"embeddings": [{"values": V}, {"values": W}]}, 0),
    ("bedrock", "cohere.embed-english-v3", {"id": "x", "embeddings": [V, W], "response_type": "embeddings_floats",
                                            "texts": ["hello", "world"]}, 0),
    ("bedrock", "cohere.embed-v4:0", {"id": "x", "embeddings": {"float": [V, W]},
                                      "response_type": "embeddings_by_type"}, 0),
]


@pytest.mark.parametrize("kind,model,body,tokens", RESPONSES)
def test_responses_parse_in_input_order(kind, model, body, tokens):
    out = embedder(kind, model).parse_response(orjson.dumps(body), 2)
    assert out.vectors == [V, W] and out.prompt_tokens == tokens


def test_titan_response():
    e = embedder("bedrock", "amazon.titan-embed-text-v2:0")
    out = e.parse_response(orjson.dumps({"embedding": V, "inputTextTokenCount": 3, "embeddingsByType": {"float": V}}),
                           1)
    assert out.vectors == [V] and out.prompt_tokens == 3


BAD_RESPONSES = [
    ("openai", {"data": [{"index": 0, "embedding": V}]}, "1 vectors for 2 inputs"),
    ("openai", {"data": [{"index": 0, "embedding": V}, {"index": 1, "embedding": [0.1, 0.2]}]}, "2-dimension"),
    ("openai", {"data": [{"index": 0, "embedding": V}, {"index": 1, "embedding": "AAAA"}]}, "not an array"),
    ("openai", {"data": [{"index": 0, "embedding": V}, {"index": 1, "embedding": [0.1, None, 0.2]}]}, "finite"),
    ("openai", {"data": [{"index": 0, "embedding": V}, {"index": 1, "embedding": [0.1, True, 0.2]}]}, "finite"),
    ("openai", {"object": "list"}, "no data array"),
    ("openai", [1, 2], "no data array"),
    ("gemini", {"embeddings": [{"values": V}, {}]}, "not an array"),
    ("gemini", {"embedding": {"values": V}}, "no embeddings array"),
    ("bedrock", {"embeddings": [V]}, "1 vectors for 2 inputs"),
    ("bedrock", {"message": "ok"}, "NoneType vectors"),
]


@pytest.mark.parametrize("kind,body,why", BAD_RESPONSES)
def test_malformed_answers_are_transient(kind, body, why):
    model = "cohere.embed-english-v3" if kind == "bedrock" else "m"
    with pytest.raises(UpstreamError) as e:
        embedder(kind, model).parse_response(orjson.dumps(body), 2)
    assert e.value.kind is ErrorKind.TRANSIENT and why in e.value.message


def test_non_json_and_non_finite_answers():
    for raw in (b"<html>oops</html>", b'{"data": [{"index": 0, "embedding": [1e999, 0, 0]}]}'):  # orjson: no inf
        with pytest.raises(UpstreamError) as e:
            embedder("openai", "m").parse_response(raw, 1)
        assert e.value.kind is ErrorKind.TRANSIENT
    e_ = embedder("openai", "m")
    for bad in (float("inf"), float("nan")):
        with pytest.raises(UpstreamError, match="finite"):
            check_vectors(e_.target, [[0.1, bad, 0.2]], 1)


def test_wrong_length_names_the_declared_dimensions():
    with pytest.raises(UpstreamError) as e:
        embedder("openai", "m", dims=1536).parse_response(orjson.dumps({"data": [{"index": 0, "embedding": V}]}), 1)
    assert e.value.code == "dimensions_mismatch" and "declared with dimensions: 1536" in e.value.message


ERRORS = [
    ("openai", 429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
     ErrorKind.RATE_LIMITED),
    ("openai", 404, {"error": {"message": "The model `m` does not exist", "type": "invalid_request_error",
                               "code": "model_not_found"}}, ErrorKind.WITHDRAWN),
    ("gemini", 404, {"error": {"code": 404, "message": "models/m is not found", "status": "NOT_FOUND"}},
     ErrorKind.WITHDRAWN),
    ("gemini", 429, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
     ErrorKind.RATE_LIMITED),
]


@pytest.mark.parametrize("kind,status,body,expected", ERRORS)
def test_errors_classified_as_on_chat(kind, status, body, expected):
    assert embedder(kind, "m").classify_error(status, {}, orjson.dumps(body)).kind is expected


def test_bedrock_throttling_is_rate_limited():
    e = embedder("bedrock", "cohere.embed-english-v3")
    err = e.classify_error(429, {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/"},
                           b'{"message": "Too many requests"}')
    assert err.kind is ErrorKind.RATE_LIMITED


def test_kinds_without_embeddings_are_config_errors():
    with pytest.raises(ConfigError, match="no embeddings API"):
        embedder("anthropic", "claude")
    with pytest.raises(ConfigError, match="not of a supported family"):
        embedder("bedrock", "meta.llama3-8b-instruct-v1:0")
