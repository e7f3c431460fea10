"""End to end: the openai SDK -> a real gateway -> Bedrock Converse (SigV4) on the emulator, with failover
to and from an OpenAI-kind model."""

from __future__ import annotations

import json

import pytest

from tests.conftest import base_config

BEDROCK_ID = "anthropic.claude-3-haiku-20240307-v1:0"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]
MSG = [{"role": "user", "content": "Hello bedrock"}]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _config(emu_url: str) -> dict:
    cfg = base_config(emu_url)
    cfg["providers"]["aws"] = {"kind": "bedrock", "base_url": emu_url, "region": "us-east-1",
                               "vendor": "Anthropic", "jurisdiction": "US"}
    cfg["models"]["claude-bedrock"] = {"provider": "aws", "model": BEDROCK_ID, "context_window": 200000}
    cfg["routes"]["bedrock-first"] = {"models": ["claude-bedrock", "gpt-5"]}
    cfg["routes"]["openai-first"] = {"models": ["gpt-5", "claude-bedrock"]}
    return cfg


def test_non_streaming_answer(emu, make_gateway, client_for):
    gw = make_gateway(_config(emu.url))
    raw = client_for(gw).chat.completions.with_raw_response.create(model="bedrock-first", messages=MSG,
                                                                    max_tokens=64)
    resp = raw.parse()
    assert resp.model == "claude-bedrock"
    assert resp.choices[0].message.content.startswith("Hello from " + BEDROCK_ID)
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens > 0
    assert raw.headers["x-gateway-attempts"] == "claude-bedrock=ok"
    att = emu.attempts(BEDROCK_ID)[-1]
    assert att["wire"] == "bedrock" and att["auth"] is True and att["path"].endswith("/converse-stream")  # read as a stream
    assert att["request"]["inferenceConfig"] == {"maxTokens": 64}


def test_streaming_answer_with_usage(emu, make_gateway, client_for):
    gw = make_gateway(_config(emu.url))
    chunks = list(client_for(gw).chat.completions.create(
        model="bedrock-first", messages=MSG, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from " + BEDROCK_ID)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.model == "claude-bedrock" for c in chunks)
    assert emu.attempts(BEDROCK_ID)[-1]["path"].endswith("/converse-stream")


def test_tool_call_non_streaming_and_streaming(emu, make_gateway, client_for):
    gw = make_gateway(_config(emu.url))
    client = client_for(gw)
    resp = client.chat.completions.create(model="bedrock-first", messages=MSG, tools=TOOLS, tool_choice="required")
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "example"}
    assert call.id.startswith("tooluse_")
    assert emu.attempts(BEDROCK_ID)[-1]["request"]["toolConfig"]["toolChoice"] == {"any": {}}

    chunks = list(client.chat.completions.create(model="bedrock-first", messages=MSG, tools=TOOLS, stream=True))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id.startswith("tooluse_") and deltas[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "example"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_failover_from_bedrock_to_openai(emu, make_gateway, client_for):
    emu.set(BEDROCK_ID, "withdrawn")
    gw = make_gateway(_config(emu.url))
    raw = client_for(gw).chat.completions.with_raw_response.create(model="bedrock-first", messages=MSG)
    assert raw.parse().model == "gpt-5"
    assert raw.headers["x-gateway-attempts"] == "claude-bedrock=withdrawn,gpt-5=ok"
    assert len(emu.attempts(BEDROCK_ID)) == 1


@pytest.mark.parametrize("behaviour,kind", [("rate_limited", "rate_limited"), ("no_model_access", "access_denied"),
                                            ("region_blocked", "access_denied")])
def test_bedrock_error_kinds_fail_over(emu, make_gateway, client_for, behaviour, kind):
    emu.set(BEDROCK_ID, behaviour)
    gw = make_gateway(_config(emu.url))
    raw = client_for(gw).chat.completions.with_raw_response.create(model="bedrock-first", messages=MSG, stream=True)
    list(raw.parse())
    assert raw.headers["x-gateway-attempts"] == f"claude-bedrock={kind},gpt-5=ok"


def test_failover_from_openai_to_bedrock_streaming(emu, make_gateway, client_for):
    emu.set("gpt-5", "withdrawn")
    gw = make_gateway(_config(emu.url))
    raw = client_for(gw).chat.completions.with_raw_response.create(model="openai-first", messages=MSG, stream=True)
    chunks = list(raw.parse())
    assert raw.headers["x-gateway-attempts"] == "gpt-5=withdrawn,claude-bedrock=ok"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello from")


def test_bedrock_stream_error_before_content_fails_over(emu, make_gateway, client_for):
    emu.set(BEDROCK_ID, "stream_error:after=0")
    gw = make_gateway(_config(emu.url))
    raw = client_for(gw).chat.completions.with_raw_response.create(model="bedrock-first", messages=MSG, stream=True)
    list(raw.parse())
    assert raw.headers["x-gateway-attempts"].endswith("gpt-5=ok")
    assert raw.headers["x-gateway-attempts"].startswith("claude-bedrock=transient")


def test_tool_use_turn_from_openai_continues_on_bedrock(emu, make_gateway, client_for):
    gw = make_gateway(_config(emu.url))
    client = client_for(gw)
    first = client.chat.completions.create(model="openai-first", messages=MSG, tools=TOOLS, tool_choice="required")
    assert first.model == "gpt-5"
    call = first.choices[0].message.tool_calls[0]
    emu.set("gpt-5", "withdrawn")
    history = MSG + [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'}]
    second = client.chat.completions.create(model="openai-first", messages=history, tools=TOOLS)
    assert second.model == "claude-bedrock"
    assert second.choices[0].message.content.startswith("Tool result received")
    sent = emu.attempts(BEDROCK_ID)[-1]["request"]
    assert sent["messages"][1] == {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": call.id, "name": "get_weather", "input": json.loads(call.function.arguments)}}]}
    assert sent["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": call.id, "content": [{"json": {"temp_c": 18}}], "status": "success"}}]}


def test_tool_use_turn_from_bedrock_continues_on_openai(emu, make_gateway, client_for):
    gw = make_gateway(_config(emu.url))
    client = client_for(gw)
    first = client.chat.completions.create(model="bedrock-first", messages=MSG, tools=TOOLS, tool_choice="required")
    assert first.model == "claude-bedrock"
    call = first.choices[0].message.tool_calls[0]
    emu.set(BEDROCK_ID, "withdrawn")
    history = MSG + [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "18C"}]
    second = client.chat.completions.create(model="bedrock-first", messages=history, tools=TOOLS)
    assert second.model == "gpt-5"
    sent = emu.attempts("gpt-5")[-1]["request"]
    assert sent["messages"][1]["tool_calls"][0]["id"] == call.id
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": "18C"}
