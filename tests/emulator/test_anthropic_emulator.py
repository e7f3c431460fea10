"""Fidelity of the emulator's Anthropic wire, checked with the official ``anthropic`` SDK (retries off)."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from gateway.errors import ErrorKind
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.base import Target

MODEL = "claude-emu"
MSGS = [{"role": "user", "content": "hi there"}]
WEATHER = {"name": "get_weather", "description": "Weather by city",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                            "required": ["location"]}}


@pytest.fixture
def client(emu):
    return anthropic.Anthropic(base_url=emu.url, api_key="sk-ant-test-123456", max_retries=0, timeout=5)


def test_create_text(client, emu):
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=MSGS,
                                                   system="Be terse.")
    assert raw.headers["request-id"].startswith("req_")
    msg = raw.parse()
    assert isinstance(msg, anthropic.types.Message)
    assert msg.id.startswith("msg_") and msg.model == MODEL and msg.role == "assistant"
    assert msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and "Hello from claude-emu. You said: hi there" in msg.content[0].text
    assert msg.usage.input_tokens == 4 and msg.usage.output_tokens > 0  # "Be terse." + "hi there"
    att = emu.attempts(MODEL)[-1]
    assert att["wire"] == "anthropic" and att["auth"] is True and att["request"]["system"] == "Be terse."


def test_create_tool_use(client):
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=MSGS, tools=[WEATHER],
                                 tool_choice={"type": "tool", "name": "get_weather"})
    assert msg.stop_reason == "tool_use"
    block = msg.content[0]
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert block.name == "get_weather" and block.input == {"location": "example"} and block.id.startswith("toolu_")


def test_tool_result_turn(client):
    msg = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=[
        *MSGS,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"location": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"}]},
    ])
    assert msg.stop_reason == "end_turn" and msg.content[0].text == "Tool result received: 18C and sunny"


def test_stream_text(client):
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and "content_block_delta" in events and events[-1] == "message_stop"
    assert final.stop_reason == "end_turn"
    assert final.content[0].text.startswith("Hello from claude-emu")
    assert final.usage.output_tokens == len(final.content[0].text.split())
    assert final.usage.input_tokens == 2
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS) as stream:
        assert "".join(stream.text_stream) == final.content[0].text


def test_stream_raw_framing_has_ping_and_named_events(emu):
    r = httpx.post(emu.url + "/v1/messages", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
                   json={"model": MODEL, "max_tokens": 10, "messages": MSGS, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["request-id"]
    names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert names.count("ping") == 1
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_stream_tool_use(client):
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS, tools=[WEATHER]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"location": "example"}


def test_content_filter_is_a_200_refusal(client, emu):
    emu.set(MODEL, "content_filter")
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=MSGS)
    assert msg.stop_reason == "refusal" and msg.stop_details is not None and msg.stop_details.type == "refusal"
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal"


def test_stream_error_is_an_in_band_overloaded_error(client, emu):
    emu.set(MODEL, "stream_error:after=1")
    with pytest.raises(anthropic.APIStatusError) as ei:
        with client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS) as stream:
            for _ in stream:
                pass
    assert ei.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize(
    "behaviour,exc,status,etype",
    [
        ("withdrawn", anthropic.NotFoundError, 404, "not_found_error"),
        ("access_revoked", anthropic.AuthenticationError, 401, "authentication_error"),
        ("no_model_access", anthropic.PermissionDeniedError, 403, "permission_error"),
        ("region_blocked", anthropic.PermissionDeniedError, 403, "permission_error"),
        ("rate_limited:retry_after=7", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("quota", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
        ("server_error", anthropic.InternalServerError, 500, "api_error"),
        ("failing_once", anthropic.InternalServerError, 500, "api_error"),
        ("context_exceeded", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("invalid_prompt", anthropic.BadRequestError, 400, "invalid_request_error"),
    ],
)
def test_scripted_errors_raise_sdk_classes(client, emu, behaviour, exc, status, etype):
    emu.set(MODEL, behaviour)
    with pytest.raises(exc) as ei:
        client.messages.create(model=MODEL, max_tokens=100, messages=MSGS)
    err = ei.value
    assert err.status_code == status
    assert err.body["type"] == "error" and err.body["error"]["type"] == etype
    assert err.body["request_id"].startswith("req_") and err.request_id == err.response.headers["request-id"]
    if status == 429:
        assert err.response.headers["retry-after"] == "7"
    if status == 529:
        assert isinstance(err, anthropic.InternalServerError)
        assert err.response.headers["x-should-retry"] == "true"
    # ...and the gateway's adapter classifies the emulator's literal the way reference 7.2 says
    kind = ADAPTER.classify_error(status, err.response.headers, err.response.content).kind
    assert kind is EXPECTED_KIND[behaviour.partition(":")[0]]


ADAPTER = AnthropicAdapter(Target("m", "p", "anthropic", MODEL, "http://x", "Anthropic", "US", 1000))
EXPECTED_KIND = {
    "withdrawn": ErrorKind.WITHDRAWN, "access_revoked": ErrorKind.ACCESS_DENIED,
    "no_model_access": ErrorKind.ACCESS_DENIED, "region_blocked": ErrorKind.ACCESS_DENIED,
    "rate_limited": ErrorKind.RATE_LIMITED, "quota": ErrorKind.ACCESS_DENIED, "overloaded": ErrorKind.TRANSIENT,
    "server_error": ErrorKind.TRANSIENT, "failing_once": ErrorKind.TRANSIENT,
    "context_exceeded": ErrorKind.CONTEXT_TOO_LONG, "invalid_prompt": ErrorKind.POLICY_BLOCKED,
}


def test_context_window_param(client, emu):
    emu.set(MODEL, "healthy:context_window=3")
    with pytest.raises(anthropic.BadRequestError) as ei:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "one two three four"}])
    assert ei.value.body["error"]["message"] == "prompt is too long: 4 tokens > 3 maximum"


def test_missing_or_bearer_key(emu):
    r = httpx.post(emu.url + "/v1/messages", headers={"anthropic-version": "2023-06-01"},
                   json={"model": MODEL, "max_tokens": 10, "messages": MSGS})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    ok = httpx.post(emu.url + "/v1/messages", headers={"anthropic-version": "2023-06-01", "authorization": "Bearer t"},
                    json={"model": MODEL, "max_tokens": 10, "messages": MSGS})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "headers,body,message",
    [
        ({"x-api-key": "k"}, {"model": MODEL, "max_tokens": 10, "messages": MSGS}, "anthropic-version"),
        ({"x-api-key": "k", "anthropic-version": "2023-06-01"}, {"model": MODEL, "messages": MSGS}, "max_tokens"),
        ({"x-api-key": "k", "anthropic-version": "2023-06-01"}, {"max_tokens": 10, "messages": MSGS}, "model"),
    ],
)
def test_required_header_and_fields(emu, headers, body, message):
    r = httpx.post(emu.url + "/v1/messages", headers=headers, content=json.dumps(body))
    assert r.status_code == 400
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert message in err["error"]["message"] and err["request_id"] == r.headers["request-id"]
