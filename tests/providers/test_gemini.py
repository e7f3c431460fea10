"""Gemini adapter: request translation, response parsing, stream decoding and error classification as tables of
literal bodies (reference section 3 and the Gemini rows of 7.2). No network."""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import Target
from gateway.providers.gemini import GeminiAdapter, sanitize_schema

KEY = "AIzaSy-test-key-0123456789"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["c", "f"]}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}


def adapter(**options) -> GeminiAdapter:
    return GeminiAdapter(Target(name="gem", provider="google", kind="gemini", upstream_model="gemini-2.5-flash",
                                base_url="https://generativelanguage.googleapis.com", vendor="Google",
                                jurisdiction="US", context_window=1_000_000, api_key=KEY,
                                options={"api_version": "v1beta", **options}))


def wire(body: dict, stream: bool = False) -> dict:
    return orjson.loads(adapter().build_request(body, stream).body)


# ---------------------------------------------------------------------------------------------- request
def test_url_headers_and_key_not_in_url():
    req = adapter().build_request({"messages": [{"role": "user", "content": "hi"}]}, False)
    assert req.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    assert req.headers["x-goog-api-key"] == KEY
    assert KEY not in req.url
    s = adapter(api_version="v1").build_request({"messages": [{"role": "user", "content": "hi"}]}, True)
    assert s.url == "https://generativelanguage.googleapis.com/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert s.stream and KEY not in s.url


def test_request_is_not_mutated():
    body = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "tools": [WEATHER],
            "tool_choice": "required", "response_format": {"type": "json_object"}, "stop": "x"}
    before = copy.deepcopy(body)
    adapter().build_request(body, False)
    assert body == before


REQUEST_CASES = [
    (
        "system_and_developer",
        {"messages": [{"role": "system", "content": "You are terse."},
                      {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
                      {"role": "user", "content": "Weather?"}]},
        {"systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Use metric."}]},
         "contents": [{"role": "user", "parts": [{"text": "Weather?"}]}]},
    ),
    (
        "multi_turn",
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": "again"}]},
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "hello"}]},
                      {"role": "user", "parts": [{"text": "again"}]}]},
    ),
    (
        "tool_calls_and_results_ids_preserved",
        {"messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_a1", "type": "function", "function": {"name": "get_weather",
                                                                   "arguments": "{\"location\": \"Paris\"}"}},
                {"id": "toolu_b2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_a1", "content": "{\"temp_c\": 18}"},
            {"role": "tool", "tool_call_id": "toolu_b2", "content": "noon"},
        ]},
        {"contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}, "id": "call_a1"}},
                {"functionCall": {"name": "get_time", "args": {}, "id": "toolu_b2"}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}, "id": "call_a1"}},
                {"functionResponse": {"name": "get_time", "response": {"content": "noon"}, "id": "toolu_b2"}}]},
        ]},
    ),
    (
        "thought_signature_round_trip",
        {"messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"},
                 "extra_content": {"google": {"thought_signature": "sig=="}}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "[1, 2]"}]},
        ]},
        {"contents": [
            {"role": "user", "parts": [{"text": "q"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}, "id": "c1"},
                                         "thoughtSignature": "sig=="}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"content": "[1, 2]"},
                                                             "id": "c1"}}]},
        ]},
    ),
    (
        "image_data_url",
        {"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "What is this?"},
                                                  {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}]},
    ),
    (
        "generation_config",
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": 100, "temperature": 0.2, "top_p": 0.9,
         "stop": ["\n\n", "END"], "seed": 7},
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}],
         "generationConfig": {"maxOutputTokens": 100, "temperature": 0.2, "topP": 0.9, "seed": 7,
                              "stopSequences": ["\n\n", "END"]}},
    ),
    (
        "max_completion_tokens_wins_and_stop_string",
        {"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 50, "max_tokens": 100,
         "stop": "END"},
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}],
         "generationConfig": {"maxOutputTokens": 50, "stopSequences": ["END"]}},
    ),
    (
        "json_object",
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}},
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}],
         "generationConfig": {"responseMimeType": "application/json"}},
    ),
    (
        "json_schema",
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {
            "name": "r", "strict": True, "schema": {"type": "object", "properties": {"n": {"type": "integer"}},
                                                   "required": ["n"], "additionalProperties": False}}}},
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}],
         "generationConfig": {"responseMimeType": "application/json", "responseSchema": {
             "type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}, "required": ["n"]}}},
    ),
]


@pytest.mark.parametrize("name,body,expected", REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_request_translation(name, body, expected):
    assert wire(body) == expected


WEATHER_DECL = {"name": "get_weather", "description": "Weather for a city", "parameters": {
    "type": "OBJECT",
    "properties": {"location": {"type": "STRING"}, "unit": {"type": "STRING", "enum": ["c", "f"], "nullable": True}},
    "required": ["location"]}}


@pytest.mark.parametrize(
    "choice,config",
    [
        (None, None),
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "get_weather"}},
         {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tools_and_tool_choice(choice, config):
    body = {"messages": [{"role": "user", "content": "Weather?"}], "tools": [WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    out = wire(body)
    assert out["tools"] == [{"functionDeclarations": [WEATHER_DECL]}]
    if config is None:
        assert "toolConfig" not in out
    else:
        assert out["toolConfig"] == {"functionCallingConfig": config}


def test_schema_sanitizer_refs_and_unions():
    schema = {"$schema": "x", "$defs": {"P": {"type": "object", "properties": {"n": {"const": "a"}},
                                              "additionalProperties": False}},
              "type": "object", "properties": {"p": {"$ref": "#/$defs/P"},
                                               "q": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                                               "r": {"oneOf": [{"type": "string"}, {"type": "number"}]}}}
    assert sanitize_schema(schema) == {
        "type": "OBJECT", "properties": {
            "p": {"type": "OBJECT", "properties": {"n": {"enum": ["a"], "type": "STRING"}}},
            "q": {"type": "INTEGER", "nullable": True},
            "r": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}}}


def test_schema_sanitizer_formats_and_empty_objects():
    schema = {"type": "object", "properties": {
        "url": {"type": "string", "format": "uri"}, "when": {"type": "string", "format": "date-time"},
        "n": {"type": "integer", "format": "int64", "exclusiveMinimum": 0},
        "meta": {"type": "object", "properties": {}}}}
    assert sanitize_schema(schema) == {"type": "OBJECT", "properties": {
        "url": {"type": "STRING"}, "when": {"type": "STRING", "format": "date-time"},
        "n": {"type": "INTEGER", "format": "int64", "minimum": 0}, "meta": {"type": "OBJECT"}}}


@pytest.mark.parametrize("schema,out", [
    ({"type": {"x": 1}}, {}),
    ({"type": [["string"], "null"]}, {"nullable": True}),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": [{"a": 1}, ["a"], "a"]},
     {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]}),
    ({"$defs": {"P": [1]}, "$ref": "#/$defs/P", "type": "string"}, {"type": "STRING"}),
])
def test_schema_sanitizer_takes_any_json_without_raising(schema, out):
    """A client's schema is any JSON (a dict where a type name belongs, a list in ``required``): never a 500."""
    assert sanitize_schema(schema) == out


# --------------------------------------------------------------------------------------------- response
def parse(body: dict) -> dict:
    return adapter().parse_response(json.dumps(body).encode())


USAGE = {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 25, "thoughtsTokenCount": 4,
         "cachedContentTokenCount": 3}


def test_parse_text_and_usage():
    out = parse({"candidates": [{"content": {"role": "model", "parts": [{"text": "It is "}, {"text": "18°C."}]},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": USAGE, "modelVersion": "gemini-2.5-flash", "responseId": "abc"})
    assert out["object"] == "chat.completion"
    assert out["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "It is 18°C."},
                               "finish_reason": "stop", "logprobs": None}]
    assert out["usage"] == {"prompt_tokens": 12, "completion_tokens": 13, "total_tokens": 25,
                            "prompt_tokens_details": {"cached_tokens": 3},
                            "completion_tokens_details": {"reasoning_tokens": 4}}


def test_parse_function_call_gets_id_and_tool_calls_finish():
    out = parse({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": "sig"},
        {"functionCall": {"name": "get_time", "args": {}}}]}, "finishReason": "STOP", "index": 0}]})
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"location": "Paris"}
    assert calls[1]["function"]["arguments"] == "{}"
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    assert calls[0]["id"] != calls[1]["id"]
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "sig"}}


@pytest.mark.parametrize(
    "reason,finish",
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
     ("LANGUAGE", "content_filter"), ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"),
     ("SPII", "content_filter"), ("IMAGE_SAFETY", "content_filter"), ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
     ("OTHER", "stop"), ("FINISH_REASON_UNSPECIFIED", "stop")],
)
def test_finish_reasons(reason, finish):
    cand = {"finishReason": reason, "index": 0}
    if finish != "content_filter":
        cand["content"] = {"role": "model", "parts": [{"text": "x"}]}
    out = parse({"candidates": [cand]})
    assert out["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("reason", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"])
def test_glitch_finish_reasons_are_transient(reason):
    with pytest.raises(UpstreamError) as ei:
        parse({"candidates": [{"finishReason": reason, "index": 0}]})
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_prompt_blocked_is_content_filter_answer():
    out = parse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                 "usageMetadata": {"promptTokenCount": 12559, "totalTokenCount": 12559},
                 "modelVersion": "gemini-1.5-flash-002"})
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] is None
    assert out["usage"]["prompt_tokens"] == 12559


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"candidates": "x"}', b"[]"])
def test_malformed_2xx_is_transient(body):
    with pytest.raises(UpstreamError) as ei:
        adapter().parse_response(body)
    assert ei.value.kind is ErrorKind.TRANSIENT


# ----------------------------------------------------------------------------------------------- stream
def sse(*events: dict | str, sep: bytes = b"\r\n\r\n") -> bytes:
    return b"".join(b"data: " + (e.encode() if isinstance(e, str) else orjson.dumps(e)) + sep for e in events)


def decode(data: bytes, body: dict | None = None, pieces: int = 1) -> list[dict]:
    dec = adapter().stream_decoder(body or {})
    out = []
    step = max(1, len(data) // pieces) if pieces > 1 else len(data) or 1
    for i in range(0, len(data), step):
        out.extend(dec.feed(data[i:i + step]))
    out.extend(dec.close())
    return out


TEXT_STREAM = sse(
    {"candidates": [{"content": {"parts": [{"text": "It is"}], "role": "model"}, "index": 0}],
     "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}, "modelVersion": "gemini-2.5-flash",
     "responseId": "abc"},
    {"candidates": [{"content": {"parts": [{"text": " 18°C in Paris."}], "role": "model"}, "finishReason": "STOP",
                     "index": 0}],
     "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21},
     "modelVersion": "gemini-2.5-flash", "responseId": "abc"},
)


def text_of(chunks):
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("pieces", [1, 7, 50, 10_000])  # 7/50/10k: chunk boundaries inside events and CRLFs
def test_stream_text(pieces):
    chunks = decode(TEXT_STREAM, {"stream_options": {"include_usage": True}}, pieces)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text_of(chunks) == "It is 18°C in Paris."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 21
    assert chunks[-1]["usage"]["completion_tokens"] == 9


def test_stream_lf_framing_and_no_usage_unless_asked():
    chunks = decode(TEXT_STREAM.replace(b"\r\n", b"\n"))
    assert text_of(chunks) == "It is 18°C in Paris."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in c for c in chunks)


def test_stream_tool_call():
    data = sse({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
        {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}}]}, "finishReason": "STOP", "index": 0}]})
    chunks = decode(data)
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert deltas[0]["index"] == 0 and deltas[0]["type"] == "function" and deltas[0]["id"].startswith("call_")
    assert deltas[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert json.loads(deltas[1]["function"]["arguments"]) == {"location": "Paris"}
    assert deltas[2]["index"] == 1 and deltas[2]["function"]["name"] == "get_time"
    assert "id" not in deltas[3]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_safety_finish_is_content_filter():
    data = sse({"candidates": [{"content": {"parts": [{"text": "Sure"}], "role": "model"}, "index": 0}]},
               {"candidates": [{"finishReason": "SAFETY", "index": 0,
                                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                                   "probability": "HIGH", "blocked": True}]}]})
    chunks = decode(data)
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


def test_stream_prompt_blocked():
    chunks = decode(sse({"promptFeedback": {"blockReason": "SAFETY"},
                         "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}),
                    {"stream_options": {"include_usage": True}})
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[-1]["usage"]["prompt_tokens"] == 5


def test_stream_in_band_error_is_classified():
    data = sse({"candidates": [{"content": {"parts": [{"text": "It"}], "role": "model"}, "index": 0}]},
               {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                          "status": "UNAVAILABLE"}})
    dec = adapter().stream_decoder({})
    with pytest.raises(UpstreamError) as ei:
        dec.feed(data)
    assert ei.value.kind is ErrorKind.TRANSIENT and ei.value.status == 503
    dec = adapter().stream_decoder({})
    with pytest.raises(UpstreamError) as ei:
        dec.feed(sse({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                                "status": "RESOURCE_EXHAUSTED"}}))
    assert ei.value.kind is ErrorKind.RATE_LIMITED


def test_stream_glitch_finish_is_transient():
    with pytest.raises(UpstreamError) as ei:
        adapter().stream_decoder({}).feed(sse({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}))
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_stream_keepalive_comments_produce_nothing():
    dec = adapter().stream_decoder({})
    assert dec.feed(b": keep-alive\r\n\r\n") == []
    assert dec.malformed == 0


def test_stream_missing_final_finish_reason_raises_on_close():
    dec = adapter().stream_decoder({})
    dec.feed(TEXT_STREAM.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    with pytest.raises(UpstreamError) as ei:
        dec.close()
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_stream_last_event_without_blank_line_still_counts():
    assert decode(TEXT_STREAM.rstrip(b"\r\n"))[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_malformed_events_skipped_then_raise():
    dec = adapter().stream_decoder({})
    out = dec.feed(b"data: {not json\r\n\r\n" + TEXT_STREAM)
    assert dec.malformed == 1 and text_of(out) == "It is 18°C in Paris."
    dec = adapter().stream_decoder({})
    with pytest.raises(UpstreamError) as ei:
        dec.feed(b"data: {x\r\n\r\n" * 3)
    assert ei.value.kind is ErrorKind.TRANSIENT


# -------------------------------------------------------------------------------------- classification
def err(code: int, message: str, status: str, details: list | None = None) -> bytes:
    e = {"code": code, "message": message, "status": status}
    if details is not None:
        e["details"] = details
    return orjson.dumps({"error": e})


QUOTA_DETAILS = [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
        {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
         "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
         "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}}]},
    {"@type": "type.googleapis.com/google.rpc.Help", "links": [
        {"description": "Learn more about Gemini API quotas",
         "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"},
]

# Every Gemini row of reference section 7.2 (the 200-answer rows are covered by the response/stream tests above).
CLASSIFICATION = [
    ("api_key_invalid", 400, err(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
         "message": "API key not valid. Please pass a valid API key."}]), ErrorKind.ACCESS_DENIED, None),
    ("unregistered_caller", 403, err(403, "Method doesn't allow unregistered callers (callers without established "
                                          "identity). Please use API Key or other form of API consumer identity to "
                                          "call this API.", "PERMISSION_DENIED"), ErrorKind.ACCESS_DENIED, None),
    ("consumer_suspended", 403, err(403, "Permission denied: Consumer 'api_key:AIza...' has been suspended.",
                                    "PERMISSION_DENIED", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONSUMER_SUSPENDED",
         "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com",
                                                  "consumer": "projects/578829824020"}}]),
     ErrorKind.ACCESS_DENIED, None),
    ("key_leaked", 403, err(403, "Your API key was reported as leaked. Please use another API key.",
                            "PERMISSION_DENIED"), ErrorKind.ACCESS_DENIED, None),
    ("caller_no_permission", 403, err(403, "The caller does not have permission", "PERMISSION_DENIED"),
     ErrorKind.ACCESS_DENIED, None),
    ("region_400", 400, err(400, "User location is not supported for the API use.", "FAILED_PRECONDITION"),
     ErrorKind.ACCESS_DENIED, None),
    ("region_403", 403, err(403, "Region not supported.", "PERMISSION_DENIED"), ErrorKind.ACCESS_DENIED, None),
    ("model_not_found", 404, err(404, "models/gemini-1.0-pro is not found for API version v1beta, or is not "
                                      "supported for generateContent. Call ListModels to see the list of available "
                                      "models and their supported methods.", "NOT_FOUND"),
     ErrorKind.WITHDRAWN, None),
    ("quota_with_retry_info", 429, err(429, "You exceeded your current quota, please check your plan and billing "
                                            "details.", "RESOURCE_EXHAUSTED", QUOTA_DETAILS),
     ErrorKind.RATE_LIMITED, 17.0),
    ("resource_exhausted_generic", 429, err(429, "Resource has been exhausted (e.g. check quota).",
                                            "RESOURCE_EXHAUSTED"), ErrorKind.RATE_LIMITED, None),
    ("context_too_long", 400, err(400, "The input token count (1200293) exceeds the maximum number of tokens "
                                       "allowed (1048576).", "INVALID_ARGUMENT"), ErrorKind.CONTEXT_TOO_LONG, None),
    ("invalid_argument_other", 400, err(400, "Please ensure that function response turn comes immediately after a "
                                             "function call turn.", "INVALID_ARGUMENT"), ErrorKind.BAD_REQUEST, None),
    ("internal", 500, err(500, "An internal error has occurred. Please retry or report in "
                               "https://developers.generativeai.google/guide/troubleshooting", "INTERNAL"),
     ErrorKind.TRANSIENT, None),
    ("overloaded", 503, err(503, "The model is overloaded. Please try again later.", "UNAVAILABLE"),
     ErrorKind.TRANSIENT, None),
    ("deadline", 504, err(504, "Deadline expired before operation could complete.", "DEADLINE_EXCEEDED"),
     ErrorKind.TRANSIENT, None),
    ("non_json_502", 502, b"<html>Bad Gateway</html>", ErrorKind.TRANSIENT, None),
]


@pytest.mark.parametrize("name,status,body,kind,retry_after", CLASSIFICATION, ids=[c[0] for c in CLASSIFICATION])
def test_classification(name, status, body, kind, retry_after):
    e = adapter().classify_error(status, {}, body)
    assert isinstance(e, UpstreamError)
    assert e.kind is kind
    assert e.status == status
    assert e.retry_after == retry_after
    assert KEY not in str(e)


def test_classification_details():
    e = adapter().classify_error(400, {}, CLASSIFICATION[0][2])
    assert e.code == "API_KEY_INVALID" and e.message.startswith("API key not valid")
    e = adapter().classify_error(429, {"retry-after": "4"}, err(429, "x", "RESOURCE_EXHAUSTED"))
    assert e.retry_after == 4.0  # header only as a fallback when the body has no RetryInfo
    e = adapter().classify_error(429, {}, err(429, "x", "RESOURCE_EXHAUSTED", [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3.700s"}]))
    assert e.retry_after == 3.7
    # The non-alt=sse array shape the SDK also unwraps.
    e = adapter().classify_error(404, {}, b"[" + err(404, "gone", "NOT_FOUND") + b"]")
    assert e.kind is ErrorKind.WITHDRAWN


@pytest.mark.parametrize("delay", [{"seconds": "inf"}, {"seconds": "1e400"}, {"seconds": 1, "nanos": "nan"}])
def test_a_non_finite_retry_delay_is_ignored(delay):
    """A RetryInfo of infinity would cool the model forever (and put an infinity into admin state)."""
    e = adapter().classify_error(429, {}, err(429, "x", "RESOURCE_EXHAUSTED", [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]))
    assert e.kind is ErrorKind.RATE_LIMITED and e.retry_after is None
