"""The OpenAI-compatible adapter as tables of literal bodies (reference sections 1.4, 6 and 7.2). No network."""

from __future__ import annotations

import json

import orjson
import pytest

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import Target
from gateway.providers.openai import OpenAIAdapter
from gateway.providers.sse import SSEParser

T = Target(name="gpt-5", provider="openai", kind="openai", upstream_model="gpt-5-2026", base_url="http://u/v1",
           vendor="OpenAI", jurisdiction="US", context_window=400000, api_key="sk-secret-abc")
A = OpenAIAdapter(T)


def _body(obj) -> bytes:
    return obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()


CASES = [
    # (status, headers, body, kind, note)
    (401, {}, {"error": {"message": "Incorrect API key provided: sk-PMa***E873.", "type": "invalid_request_error",
                         "param": None, "code": "invalid_api_key"}}, ErrorKind.ACCESS_DENIED, "bad key"),
    (403, {}, {"error": {"code": "unsupported_country_region_territory", "message": "Country, region, or territory "
               "not supported", "param": None, "type": "request_forbidden"}}, ErrorKind.ACCESS_DENIED, "region"),
    (403, {}, {"error": {"message": "Project `proj_QRf1` does not have access to model `gpt-4o-mini`",
               "type": "invalid_request_error", "param": None, "code": "model_not_found"}},
     ErrorKind.ACCESS_DENIED, "project lacks access"),
    (404, {}, {"error": {"message": "The model `gpt-4o` does not exist or you do not have access to it.",
               "type": "invalid_request_error", "param": None, "code": "model_not_found"}},
     ErrorKind.WITHDRAWN, "unknown/retired model"),
    (404, {}, {"error": {"message": "The model `text-davinci-003` has been deprecated, learn more here: https://x",
               "type": "invalid_request_error", "param": None, "code": "model_not_found"}},
     ErrorKind.WITHDRAWN, "deprecated model"),
    (429, {"retry-after": "18"}, {"error": {"message": "Rate limit reached for gpt-4o ...", "type": "tokens",
                                            "param": None, "code": "rate_limit_exceeded"}},
     ErrorKind.RATE_LIMITED, "rate limit"),
    (429, {}, {"error": {"message": "Request too large for gpt-4o in organization org-x on tokens per min (TPM)",
               "type": "tokens", "param": None, "code": "rate_limit_exceeded"}},
     ErrorKind.RATE_LIMITED, "single request over TPM"),
    (429, {}, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": None,
               "code": "insufficient_quota"}}, ErrorKind.ACCESS_DENIED, "out of credit"),
    (429, {}, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": None,
               "code": None}}, ErrorKind.ACCESS_DENIED, "out of credit, older body"),
    (400, {}, {"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages "
               "resulted in 8227 tokens.", "type": "invalid_request_error", "param": "messages",
               "code": "context_length_exceeded"}}, ErrorKind.CONTEXT_TOO_LONG, "context"),
    (400, {}, {"error": {"message": "Invalid prompt: your prompt was flagged as potentially violating our usage "
               "policy.", "type": "invalid_request_error", "param": None, "code": "invalid_prompt"}},
     ErrorKind.POLICY_BLOCKED, "invalid prompt"),
    (400, {}, {"error": {"message": "Invalid type for 'temperature'", "type": "invalid_request_error",
               "param": "temperature", "code": "invalid_type"}}, ErrorKind.BAD_REQUEST, "caller's fault"),
    (408, {}, {"error": {"message": "timeout", "type": "server_error", "param": None, "code": None}},
     ErrorKind.TRANSIENT, "408"),
    (409, {}, "", ErrorKind.TRANSIENT, "409"),
    (500, {}, {"error": {"message": "The server had an error", "type": "server_error", "param": None,
               "code": None}}, ErrorKind.TRANSIENT, "500"),
    (502, {}, "<html>bad gateway</html>", ErrorKind.TRANSIENT, "502 html"),
    (503, {}, {"error": {"message": "overloaded", "type": "server_error", "param": None,
               "code": "server_is_overloaded"}}, ErrorKind.TRANSIENT, "503"),
    (504, {}, "", ErrorKind.TRANSIENT, "504"),
    # vLLM
    (401, {}, {"error": "Unauthorized"}, ErrorKind.ACCESS_DENIED, "vLLM unauthorized"),
    (404, {}, {"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "param": None,
               "code": 404}}, ErrorKind.WITHDRAWN, "vLLM not found"),
    (400, {}, {"error": {"message": "This model's maximum context length is 4096 tokens. However, you requested "
               "5000 tokens", "type": "BadRequestError", "param": None, "code": 400}},
     ErrorKind.CONTEXT_TOO_LONG, "vLLM context (text only)"),
    (400, {}, {"object": "error", "message": "This model's maximum context length is 4096 tokens.",
               "type": "BadRequestError", "param": None, "code": 400}, ErrorKind.CONTEXT_TOO_LONG, "vLLM legacy"),
    (400, {}, {"error": {"message": "bad schema", "type": "BadRequestError", "param": None, "code": 400}},
     ErrorKind.BAD_REQUEST, "vLLM other 400"),
    # Ollama
    (404, {}, {"error": {"message": 'model "llama3.1" not found, try pulling it first', "type": "not_found_error",
               "param": None, "code": None}}, ErrorKind.WITHDRAWN, "Ollama model missing"),
    (400, {}, {"error": {"message": "invalid", "type": "invalid_request_error", "param": None, "code": None}},
     ErrorKind.BAD_REQUEST, "Ollama 400"),
    # Groq
    (400, {}, {"error": {"message": "The model `mixtral-8x7b-32768` has been decommissioned and is no longer "
               "supported.", "type": "invalid_request_error", "code": "model_decommissioned"}},
     ErrorKind.WITHDRAWN, "Groq decommissioned"),
]


@pytest.mark.parametrize("status,headers,body,kind,note", CASES, ids=[c[4] for c in CASES])
def test_classification(status, headers, body, kind, note):
    err = A.classify_error(status, headers, _body(body))
    assert isinstance(err, UpstreamError)
    assert err.kind is kind, note
    assert err.status == status


def test_retry_after_headers():
    err = A.classify_error(429, {"retry-after-ms": "1500", "retry-after": "9"}, b"{}")
    assert err.retry_after == 1.5
    err = A.classify_error(429, {"retry-after": "9"}, b"{}")
    assert err.retry_after == 9


def test_build_request_passes_unknown_fields_and_replaces_model():
    body = {"model": "security", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"}
    req = A.build_request(body, stream=False)
    sent = orjson.loads(req.body)
    assert sent["model"] == "gpt-5-2026" and sent["reasoning_effort"] == "high"
    assert body["model"] == "security"  # not mutated
    assert req.url == "http://u/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-secret-abc"
    assert "sk-secret" not in repr(req) and "sk-secret" not in repr(T)


def test_parse_response_malformed_is_transient():
    with pytest.raises(UpstreamError) as ei:
        A.parse_response(b"<html>oops</html>")
    assert ei.value.kind is ErrorKind.TRANSIENT
    with pytest.raises(UpstreamError):
        A.parse_response(b'{"choices": []}')
    with pytest.raises(UpstreamError) as ei:
        A.parse_response(b'{"choices": [null]}')
    assert ei.value.kind is ErrorKind.TRANSIENT
    d = A.stream_decoder({})
    assert d.feed(b'data: {"choices": [null]}\n\n') == [] and d.malformed == 1


STREAM = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant",'
    b'"content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel'
    b'lo"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    b"\n\n"
    b'data: [DONE]\n\n'
)


@pytest.mark.parametrize("split", [1, 7, 50, len(STREAM)])
def test_stream_decoding_across_any_chunk_boundary(split):
    d = A.stream_decoder({})
    out = []
    for i in range(0, len(STREAM), split):
        out.extend(d.feed(STREAM[i : i + split]))
    out.extend(d.close())
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in out) == "Hello"
    assert d.done


def test_stream_in_band_error_raises():
    d = A.stream_decoder({})
    with pytest.raises(UpstreamError) as ei:
        d.feed(b'data: {"error":{"message":"The server experienced an error","type":"server_error","param":null,'
               b'"code":null}}\n\n')
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_stream_cut_without_finish_is_transient_but_finish_without_done_is_complete():
    d = A.stream_decoder({})
    d.feed(STREAM.split(b"\n\n")[1] + b"\n\n")
    with pytest.raises(UpstreamError):
        d.close()
    d = A.stream_decoder({})
    d.feed(b"\n\n".join(STREAM.split(b"\n\n")[:3]) + b"\n\n")
    d.close()  # finish_reason seen: complete even without [DONE]


def test_stream_malformed_event_skipped_and_counted_repeated_garbage_is_a_cut():
    d = A.stream_decoder({})
    out = d.feed(b"data: {not json\n\n" + STREAM)
    assert d.malformed == 1 and out
    d = A.stream_decoder({})
    with pytest.raises(UpstreamError):
        d.feed(b"data: {x\n\ndata: {y\n\ndata: {z\n\n")


def test_sse_parser_line_endings_and_comments():
    p = SSEParser()
    evs = p.feed(b": comment\r\nevent: ping\r\ndata: {}\r\n\r\ndata: a\rdata: b\r\r")
    # The final CR may be half of a CRLF, so that event is dispatched by the next byte or at close().
    evs += p.close()
    assert [(e.event, e.data) for e in evs] == [("ping", "{}"), ("message", "a\nb")]
    # CRLF split across chunks
    p = SSEParser()
    assert p.feed(b"data: x\r") == []
    assert [e.data for e in p.feed(b"\n\r\n")] == ["x"]


@pytest.mark.parametrize("headers", [{"retry-after": "inf"}, {"retry-after": "1e400"}, {"retry-after": "nan"},
                                     {"retry-after-ms": "inf"}, {"retry-after-ms": "-inf", "retry-after": "Infinity"}])
def test_a_non_finite_retry_after_is_ignored(headers):
    """A provider's ``retry-after: inf`` would cool the model forever and put an infinity into admin state
    (not JSON) and the client's Retry-After; it says nothing usable, so it counts as absent."""
    err = A.classify_error(429, headers, b"{}")
    assert err.kind is ErrorKind.RATE_LIMITED and err.retry_after is None
