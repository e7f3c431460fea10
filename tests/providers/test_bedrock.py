"""Bedrock Converse adapter: literal tables, no network."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import orjson
import pytest

from gateway.emulator.bedrock_wire import encode_frame, event_frame, exception_frame
from gateway.errors import ConfigError, ErrorKind, UpstreamError
from gateway.providers.base import Target
from gateway.providers.bedrock import BedrockAdapter, translate_request

NOW = 1700000000.0  # 2023-11-14T22:13:20Z


def _target(**kw: Any) -> Target:
    base = dict(name="claude", provider="aws", kind="bedrock", upstream_model="anthropic.claude-3-haiku-20240307-v1:0",
                base_url="https://bedrock-runtime.us-east-1.amazonaws.com", vendor="Anthropic", jurisdiction="US",
                context_window=200000, options={"region": "us-east-1", "aws_profile": None})
    base.update(kw)
    return Target(**base)


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def adapter(creds) -> BedrockAdapter:
    return BedrockAdapter(_target(), clock=lambda: NOW)


def _req(body: dict[str, Any]) -> dict[str, Any]:
    return translate_request(body)


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]
TOOL_SPEC = {"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                          "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}},
                                                   "required": ["city"]}}}}


# --------------------------------------------------------------------------- request translation
REQUEST_CASES = [
    ("system_and_developer",
     {"messages": [{"role": "system", "content": "Be terse."}, {"role": "developer", "content": "No emoji."},
                   {"role": "user", "content": "Hi"}]},
     {"messages": [{"role": "user", "content": [{"text": "Hi"}]}],
      "system": [{"text": "Be terse."}, {"text": "No emoji."}]}),
    ("multi_turn_and_parts",
     {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]},
                   {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]},
     {"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "assistant", "content": [{"text": "b"}]},
                   {"role": "user", "content": [{"text": "c"}]}]}),
    ("tools_auto",
     {"messages": [{"role": "user", "content": "Weather?"}], "tools": TOOLS, "tool_choice": "auto"},
     {"messages": [{"role": "user", "content": [{"text": "Weather?"}]}],
      "toolConfig": {"tools": [TOOL_SPEC], "toolChoice": {"auto": {}}}}),
    ("tools_default_choice",
     {"messages": [{"role": "user", "content": "Weather?"}], "tools": TOOLS},
     {"messages": [{"role": "user", "content": [{"text": "Weather?"}]}], "toolConfig": {"tools": [TOOL_SPEC]}}),
    ("tools_required",
     {"messages": [{"role": "user", "content": "Weather?"}], "tools": TOOLS, "tool_choice": "required"},
     {"messages": [{"role": "user", "content": [{"text": "Weather?"}]}],
      "toolConfig": {"tools": [TOOL_SPEC], "toolChoice": {"any": {}}}}),
    ("tools_named",
     {"messages": [{"role": "user", "content": "Weather?"}], "tools": TOOLS,
      "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
     {"messages": [{"role": "user", "content": [{"text": "Weather?"}]}],
      "toolConfig": {"tools": [TOOL_SPEC], "toolChoice": {"tool": {"name": "get_weather"}}}}),
    ("tools_none_no_history",  # Converse has no "none": tools are not sent
     {"messages": [{"role": "user", "content": "Weather?"}], "tools": TOOLS, "tool_choice": "none"},
     {"messages": [{"role": "user", "content": [{"text": "Weather?"}]}]}),
    ("tool_call_and_results_merged",
     {"messages": [{"role": "user", "content": "Weather in Paris and Rome?"},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                         "arguments": "{\"city\":\"Paris\"}"}},
                       {"id": "call_2", "type": "function", "function": {"name": "get_weather",
                                                                         "arguments": "{\"city\":\"Rome\"}"}}]},
                   {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 18}"},
                   {"role": "tool", "tool_call_id": "call_2", "content": "sunny"}],
      "tools": TOOLS, "tool_choice": "none"},
     {"messages": [
         {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]},
         {"role": "assistant", "content": [
             {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
             {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {"city": "Rome"}}}]},
         {"role": "user", "content": [
             {"toolResult": {"toolUseId": "call_1", "content": [{"json": {"temp_c": 18}}], "status": "success"}},
             {"toolResult": {"toolUseId": "call_2", "content": [{"text": "sunny"}], "status": "success"}}]}],
      "toolConfig": {"tools": [TOOL_SPEC]}}),
    ("history_without_tools_declares_them",  # Converse rejects tool blocks without a toolConfig
     {"messages": [{"role": "user", "content": "Weather?"},
                   {"role": "assistant", "content": "Checking.", "tool_calls": [
                       {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "t1", "content": "18C"}, {"role": "user", "content": "Thanks"}]},
     {"messages": [
         {"role": "user", "content": [{"text": "Weather?"}]},
         {"role": "assistant", "content": [{"text": "Checking."},
                                           {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}]},
         {"role": "user", "content": [
             {"toolResult": {"toolUseId": "t1", "content": [{"text": "18C"}], "status": "success"}},
             {"text": "Thanks"}]}],
      "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]}}),
    ("image_data_url",
     {"messages": [{"role": "user", "content": [
         {"type": "text", "text": "What is this?"},
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]},
     {"messages": [{"role": "user", "content": [
         {"text": "What is this?"}, {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]}]}),
    ("inference_config",
     {"messages": [{"role": "user", "content": "x"}], "max_tokens": 100, "temperature": 0.3, "top_p": 0.9,
      "stop": "END"},
     {"messages": [{"role": "user", "content": [{"text": "x"}]}],
      "inferenceConfig": {"maxTokens": 100, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]}}),
    ("max_completion_tokens_and_clamped_temperature",
     {"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 7, "temperature": 1.5,
      "stop": ["A", "B"]},
     {"messages": [{"role": "user", "content": [{"text": "x"}]}],
      "inferenceConfig": {"maxTokens": 7, "temperature": 1.0, "stopSequences": ["A", "B"]}}),
    ("json_object",
     {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}},
     {"messages": [{"role": "user", "content": [{"text": "x"}]}],
      "system": [{"text": "Respond only with a single valid JSON object, with no text before or after it."}]}),
    ("json_schema",
     {"messages": [{"role": "user", "content": "x"}],
      "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}},
     {"messages": [{"role": "user", "content": [{"text": "x"}]}],
      "outputConfig": {"textFormat": {"type": "json_schema", "structure": {
          "jsonSchema": {"schema": "{\"type\":\"object\"}", "name": "answer"}}}}}),
]


@pytest.mark.parametrize("body,expected", [c[1:] for c in REQUEST_CASES], ids=[c[0] for c in REQUEST_CASES])
def test_request_translation(body, expected):
    before = copy.deepcopy(body)
    assert _req(body) == expected
    assert body == before  # never mutated


def test_remote_image_url_is_bad_request():
    with pytest.raises(UpstreamError) as ei:
        _req({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
    assert ei.value.kind is ErrorKind.BAD_REQUEST


def test_build_request_sigv4_matches_botocore(adapter, monkeypatch):
    import botocore.auth
    import botocore.credentials
    from botocore.awsrequest import AWSRequest

    body = {"model": "x", "messages": [{"role": "user", "content": "Hi"}]}
    req = adapter.build_request(body, stream=False)
    assert req.method == "POST"
    assert req.url == ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                       "anthropic.claude-3-haiku-20240307-v1:0/converse")
    assert orjson.loads(req.body) == {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}
    assert req.headers["X-Amz-Date"] == "20231114T221320Z"
    assert req.headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, ")
    # Same signature as botocore's own SigV4Auth.add_auth at the same instant.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: datetime(2023, 11, 14, 22, 13, 20))
    ref = AWSRequest(method="POST", url=req.url, data=req.body,
                     headers={"content-type": "application/json", "accept": "application/json"})
    creds = botocore.credentials.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    botocore.auth.SigV4Auth(creds, "bedrock", "us-east-1").add_auth(ref)
    assert req.headers["Authorization"] == ref.headers["Authorization"]
    s = adapter.build_request(body, stream=True)
    assert s.url.endswith("/converse-stream") and s.headers["accept"] == "application/vnd.amazon.eventstream"


def test_arn_model_id_is_encoded(creds):
    a = BedrockAdapter(_target(upstream_model="arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x-v1:0"))
    assert a.build_request({"messages": []}, False).url == (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.x-v1:0/converse")


def test_bearer_api_key_replaces_sigv4(monkeypatch):
    for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(v, raising=False)
    a = BedrockAdapter(_target(api_key="bedrock-api-key-123"))
    req = a.build_request({"messages": [{"role": "user", "content": "x"}]}, False)
    assert req.headers["authorization"] == "Bearer bedrock-api-key-123"
    assert "X-Amz-Date" not in req.headers and "bedrock-api-key-123" not in req.url


def test_no_credentials_is_config_error(monkeypatch, tmp_path):
    for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError) as ei:
        BedrockAdapter(_target())
    assert "providers.aws" in str(ei.value) and "credentials" in str(ei.value)


# --------------------------------------------------------------------------- response parsing
def _resp(content: list[dict[str, Any]], stop: str, usage: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
                         "usage": usage or {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
                         "metrics": {"latencyMs": 812}})


@pytest.mark.parametrize("stop,finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("tool_use", "tool_calls"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("guardrail_intervened", "content_filter"),
    ("content_filtered", "content_filter"),
])
def test_finish_reasons(adapter, stop, finish):
    out = adapter.parse_response(_resp([{"text": "Hi"}], stop))
    assert out["choices"][0]["finish_reason"] == finish
    assert out["object"] == "chat.completion" and out["created"] == int(NOW)


def test_parse_text_and_usage(adapter):
    out = adapter.parse_response(_resp([{"text": "Hello"}, {"text": " world"}], "end_turn"))
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Hello world"}
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_parse_tool_calls(adapter):
    out = adapter.parse_response(_resp(
        [{"text": "Let me check."},
         {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"location": "Paris"}}}],
        "tool_use"))
    msg = out["choices"][0]["message"]
    assert msg["content"] == "Let me check."
    assert msg["tool_calls"] == [{"id": "tooluse_1", "type": "function",
                                  "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    only = adapter.parse_response(_resp([{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}], "tool_use"))
    assert only["choices"][0]["message"]["content"] is None


def test_parse_cache_usage(adapter):
    out = adapter.parse_response(_resp([{"text": "x"}], "end_turn", {
        "inputTokens": 10, "outputTokens": 5, "totalTokens": 115, "cacheReadInputTokens": 100,
        "cacheWriteInputTokens": 0}))
    assert out["usage"] == {"prompt_tokens": 110, "completion_tokens": 5, "total_tokens": 115,
                            "prompt_tokens_details": {"cached_tokens": 100}}


@pytest.mark.parametrize("body", [
    b"", b"not json", b"{}", b'{"output":{"message":{"content":"x"}},"stopReason":"end_turn"}',
    _resp([{"text": "x"}], "malformed_tool_use")])
def test_malformed_response_is_transient(adapter, body):
    with pytest.raises(UpstreamError) as ei:
        adapter.parse_response(body)
    assert ei.value.kind is ErrorKind.TRANSIENT


# --------------------------------------------------------------------------- stream decoding
def _ev(kind: str, payload: dict[str, Any]) -> bytes:
    return event_frame(kind, payload)


TEXT_STREAM = b"".join([
    _ev("messageStart", {"role": "assistant"}),
    _ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}, "p": "abcd"}),
    _ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " world"}}),
    _ev("contentBlockStop", {"contentBlockIndex": 0}),
    _ev("messageStop", {"stopReason": "end_turn"}),
    _ev("metadata", {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
                     "metrics": {"latencyMs": 400}}),
])


def _decode(adapter: BedrockAdapter, data: bytes, body: dict[str, Any] | None = None, step: int | None = None):
    dec = adapter.stream_decoder(body or {})
    out: list[dict[str, Any]] = []
    if step is None:
        out.extend(dec.feed(data))
    else:
        for i in range(0, len(data), step):
            out.extend(dec.feed(data[i:i + step]))
    out.extend(dec.close())
    return out, dec


def _deltas(chunks):
    return [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) if c["choices"] else ("usage", c["usage"])
            for c in chunks]


@pytest.mark.parametrize("step", [None, 1, 7, 50])
def test_stream_text_any_chunking(adapter, step):
    chunks, dec = _decode(adapter, TEXT_STREAM, {"stream_options": {"include_usage": True}}, step)
    assert _deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None), ({"content": "Hello"}, None), ({"content": " world"}, None),
        ({}, "stop"), ("usage", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks) and dec.malformed == 0


def test_stream_no_usage_unless_asked(adapter):
    chunks, _ = _decode(adapter, TEXT_STREAM)
    assert all(c["choices"] for c in chunks)


def test_stream_tool_use(adapter):
    data = b"".join([
        _ev("messageStart", {"role": "assistant"}),
        _ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Checking."}}),
        _ev("contentBlockStop", {"contentBlockIndex": 0}),
        _ev("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1",
                                                                                "name": "get_weather"}}}),
        _ev("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"location\":"}}}),
        _ev("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        _ev("contentBlockStop", {"contentBlockIndex": 1}),
        _ev("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_2",
                                                                                "name": "get_time"}}}),
        _ev("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}}),
        _ev("messageStop", {"stopReason": "tool_use"}),
    ])
    chunks, _ = _decode(adapter, data, step=13)
    assert _deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Checking."}, None),
        ({"tool_calls": [{"index": 0, "id": "tooluse_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}, None),
        ({"tool_calls": [{"index": 1, "id": "tooluse_2", "type": "function",
                          "function": {"name": "get_time", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, None),
        ({}, "tool_calls"),
    ]


def test_stream_guardrail_is_content_filter_not_error(adapter):
    data = _ev("messageStart", {"role": "assistant"}) + _ev("messageStop", {"stopReason": "guardrail_intervened"})
    chunks, _ = _decode(adapter, data)
    assert _deltas(chunks)[-1] == ({}, "content_filter")


@pytest.mark.parametrize("etype,message,kind", [
    ("throttlingException", "Too many tokens, please wait before trying again.", ErrorKind.RATE_LIMITED),
    ("modelStreamErrorException", "The model encountered an error.", ErrorKind.TRANSIENT),
    ("internalServerException", "oops", ErrorKind.TRANSIENT),
    ("serviceUnavailableException", "unavailable", ErrorKind.TRANSIENT),
    ("validationException", "Input is too long for requested model.", ErrorKind.CONTEXT_TOO_LONG),
    ("validationException", "messages: bad role order", ErrorKind.BAD_REQUEST),
])
def test_stream_exception_frames(adapter, etype, message, kind):
    dec = adapter.stream_decoder({})
    first = dec.feed(_ev("messageStart", {"role": "assistant"}) + _ev("contentBlockDelta", {
        "contentBlockIndex": 0, "delta": {"text": "Hi"}}))
    assert len(first) == 2
    with pytest.raises(UpstreamError) as ei:
        dec.feed(exception_frame(etype, {"message": message, "originalStatusCode": 500}))
    assert ei.value.kind is kind and ei.value.code == etype and ei.value.message == message


def test_stream_missing_message_stop_is_transient(adapter):
    dec = adapter.stream_decoder({})
    dec.feed(TEXT_STREAM[: TEXT_STREAM.index(event_frame("contentBlockStop", {"contentBlockIndex": 0}))])
    with pytest.raises(UpstreamError) as ei:
        dec.close()
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_stream_partial_frame_at_eof_is_transient(adapter):
    dec = adapter.stream_decoder({})
    dec.feed(TEXT_STREAM[:30])
    with pytest.raises(UpstreamError):
        dec.close()


def test_stream_complete_without_metadata(adapter):
    data = _ev("messageStart", {"role": "assistant"}) + _ev("messageStop", {"stopReason": "max_tokens"})
    chunks, _ = _decode(adapter, data, {"stream_options": {"include_usage": True}})
    assert _deltas(chunks)[-1] == ({}, "length")


def test_stream_malformed_events_skipped_then_raise(adapter):
    bad = encode_frame({":event-type": "contentBlockDelta", ":content-type": "application/json",
                        ":message-type": "event"}, b"{not json")
    dec = adapter.stream_decoder({})
    out = dec.feed(_ev("messageStart", {"role": "assistant"}) + bad + bad
                   + _ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "ok"}}))
    assert [c["choices"][0]["delta"] for c in out] == [{"role": "assistant", "content": ""}, {"content": "ok"}]
    assert dec.malformed == 2
    with pytest.raises(UpstreamError) as ei:
        dec.feed(bad * 3)
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_stream_corrupt_framing_is_transient(adapter):
    frame = bytearray(_ev("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF  # message CRC
    with pytest.raises(UpstreamError) as ei:
        adapter.stream_decoder({}).feed(bytes(frame))
    assert ei.value.kind is ErrorKind.TRANSIENT and ei.value.__cause__ is not None


def test_stream_malformed_stop_reason_is_transient(adapter):
    with pytest.raises(UpstreamError) as ei:
        adapter.stream_decoder({}).feed(_ev("messageStop", {"stopReason": "malformed_model_output"}))
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_emulator_frames_parse_with_botocore():
    from botocore.eventstream import EventStreamBuffer

    buf = EventStreamBuffer()
    buf.add_data(TEXT_STREAM + exception_frame("throttlingException", {"message": "slow down"}))
    msgs = list(buf)
    assert [m.headers.get(":event-type") or m.headers.get(":exception-type") for m in msgs] == [
        "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata",
        "throttlingException"]
    assert orjson.loads(msgs[1].payload) == {"contentBlockIndex": 0, "delta": {"text": "Hello"}, "p": "abcd"}


# --------------------------------------------------------------------------- classification (reference 5.4, 7.2)
def _err(etype: str) -> dict[str, str]:
    return {"x-amzn-ErrorType": f"{etype}:http://internal.amazon.com/coral/com.amazon.bedrock/"}


CLASSIFY_CASES = [
    ("throttling", 429, "ThrottlingException", "Too many requests, please wait before trying again.",
     ErrorKind.RATE_LIMITED),
    ("throttling_tokens", 429, "ThrottlingException", "Too many tokens, please wait before trying again.",
     ErrorKind.RATE_LIMITED),
    ("model_not_ready", 429, "ModelNotReadyException", "Model is not ready.", ErrorKind.TRANSIENT),
    ("service_unavailable", 503, "ServiceUnavailableException", "Bedrock is unable to process your request.",
     ErrorKind.TRANSIENT),
    ("internal_server", 500, "InternalServerException", "internal error", ErrorKind.TRANSIENT),
    ("model_timeout", 408, "ModelTimeoutException", "Model has timed out.", ErrorKind.TRANSIENT),
    ("model_error", 424, "ModelErrorException", "The model returned an error.", ErrorKind.TRANSIENT),
    ("access_denied", 403, "AccessDeniedException", "You don't have access to the model with the specified model ID.",
     ErrorKind.ACCESS_DENIED),
    ("region_validation", 400, "ValidationException",
     "Access to Anthropic models is not allowed from unsupported countries, regions, or territories. Please refer",
     ErrorKind.ACCESS_DENIED),
    ("eol", 404, "ResourceNotFoundException",
     "This model version has reached the end of its life. Please refer to the AWS documentation for more details.",
     ErrorKind.WITHDRAWN),
    ("legacy", 404, "ResourceNotFoundException",
     "Access denied. This Model is marked by provider as Legacy and you have not been actively using the model in "
     "the last 30 days. Please upgrade to an active model on Amazon Bedrock", ErrorKind.WITHDRAWN),
    ("on_demand", 400, "ValidationException",
     "Invocation of model ID deepseek.r1-v1:0 with on-demand throughput isn't supported. Retry your request with "
     "the ID or ARN of an inference profile that contains this model.", ErrorKind.WITHDRAWN),
    ("input_too_long", 400, "ValidationException", "Input is too long for requested model.",
     ErrorKind.CONTEXT_TOO_LONG),
    ("prompt_too_long", 400, "ValidationException", "prompt is too long: 210000 tokens > 200000 maximum",
     ErrorKind.CONTEXT_TOO_LONG),
    ("quota", 400, "ServiceQuotaExceededException", "Your request exceeds the service quota.",
     ErrorKind.RATE_LIMITED),
    ("validation_other", 400, "ValidationException",
     "The maximum tokens you requested exceeds the model limit of 2048.", ErrorKind.BAD_REQUEST),
    ("unrecognized_client", 403, "UnrecognizedClientException",
     "The security token included in the request is invalid.", ErrorKind.ACCESS_DENIED),
    ("missing_token", 403, "MissingAuthenticationTokenException", "Missing Authentication Token",
     ErrorKind.ACCESS_DENIED),
    # The message only matters inside ValidationException: a throttle saying "too long" is still a throttle.
    ("text_only_in_validation", 429, "ThrottlingException", "Input is too long", ErrorKind.RATE_LIMITED),
]


@pytest.mark.parametrize("status,etype,message,kind", [c[1:] for c in CLASSIFY_CASES],
                         ids=[c[0] for c in CLASSIFY_CASES])
def test_classify_error_table(adapter, status, etype, message, kind):
    err = adapter.classify_error(status, _err(etype), orjson.dumps({"message": message}))
    assert err.kind is kind
    assert err.status == status and err.code == etype and err.message == message


@pytest.mark.parametrize("status,kind", [(403, ErrorKind.ACCESS_DENIED), (404, ErrorKind.WITHDRAWN),
                                         (429, ErrorKind.RATE_LIMITED), (502, ErrorKind.TRANSIENT),
                                         (400, ErrorKind.BAD_REQUEST)])
def test_classify_without_error_type_uses_status(adapter, status, kind):
    assert adapter.classify_error(status, {}, b"<html>gateway</html>").kind is kind


def test_classify_reads_capitalised_message_and_body_type(adapter):
    err = adapter.classify_error(400, {}, orjson.dumps({"__type": "com.amazon.bedrock#ValidationException",
                                                       "Message": "Input is too long for requested model."}))
    assert err.kind is ErrorKind.CONTEXT_TOO_LONG and err.code == "ValidationException"


def test_classify_header_case_insensitive(adapter):
    err = adapter.classify_error(429, {"X-Amzn-Errortype": "ThrottlingException:http://x/"}, b'{"message":"x"}')
    assert err.kind is ErrorKind.RATE_LIMITED
