"""End to end through a real gateway: the openai SDK -> gateway -> an ``anthropic``-kind provider on the emulator
(``POST /v1/messages``), with an openai-kind fallback on the same emulator."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import base_config

MSG = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                                            "parameters": {"type": "object",
                                                           "properties": {"location": {"type": "string"}},
                                                           "required": ["location"]}}}


def config(emu_url: str) -> dict:
    cfg = base_config(emu_url)
    cfg["providers"]["anthropic"] = {"kind": "anthropic", "base_url": emu_url, "api_key": "sk-ant-provider-secret-1",
                                     "vendor": "Anthropic", "jurisdiction": "US", "default_max_tokens": 512}
    cfg["models"]["claude"] = {"provider": "anthropic", "model": "claude-sonnet-emu", "context_window": 300}
    cfg["routes"]["claude-first"] = {"models": ["claude", "gpt-5"]}
    cfg["routes"]["openai-first"] = {"models": ["gpt-5", "claude"]}
    return cfg


@pytest.fixture
def client(emu, make_gateway, client_for) -> openai.OpenAI:
    return client_for(make_gateway(config(emu.url)))


def test_non_streaming_answer(emu, client):
    raw = client.chat.completions.with_raw_response.create(
        model="claude-first", messages=[{"role": "system", "content": "Be brief."}, *MSG], temperature=1.5)
    resp = raw.parse()
    assert raw.headers["x-gateway-attempts"] == "claude=ok"
    assert resp.model == "claude" and resp.object == "chat.completion"
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == "Hello from claude-sonnet-emu. You said: What is the weather in Paris?"
    # prompt = "Be brief." + the user text as the emulator counts words; completion = reply words
    assert resp.usage.prompt_tokens == 8 and resp.usage.completion_tokens == 11 and resp.usage.total_tokens == 19
    att = emu.attempts("claude-sonnet-emu")[-1]
    assert att["wire"] == "anthropic" and att["auth"] is True
    sent = att["request"]
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 512 and sent["temperature"] == 1.0
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": MSG[0]["content"]}]}]


def test_streaming_answer_with_usage(emu, client):
    stream = client.chat.completions.create(model="claude-first", messages=MSG, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from claude-sonnet-emu. You said: What is the weather in Paris?"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 11
    assert chunks[-1].usage.prompt_tokens == 6
    assert all(c.model == "claude" for c in chunks)
    assert emu.attempts("claude-sonnet-emu")[-1]["request"]["stream"] is True


def test_tool_call_non_streaming(client):
    resp = client.chat.completions.create(model="claude-first", messages=MSG, tools=[WEATHER],
                                          tool_choice={"type": "function", "function": {"name": "get_weather"}})
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("toolu_")
    assert json.loads(call.function.arguments) == {"location": "example"}


def test_tool_call_streaming(client):
    stream = client.chat.completions.create(model="claude-first", messages=MSG, tools=[WEATHER], stream=True)
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or ())]
    assert calls[0].id.startswith("toolu_") and calls[0].function.name == "get_weather"
    assert all(tc.index == 0 for tc in calls)
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"location": "example"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_content_filter_is_returned_as_finish_reason(emu, client):
    emu.set("claude-sonnet-emu", "content_filter")
    resp = client.chat.completions.create(model="claude-first", messages=MSG)
    assert resp.choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize(
    "behaviour,kind",
    [("withdrawn", "withdrawn"), ("access_revoked", "access_denied"), ("quota", "access_denied"),
     ("rate_limited:retry_after=5", "rate_limited")],
)
def test_failover_from_anthropic_to_openai(emu, client, behaviour, kind):
    emu.set("claude-sonnet-emu", behaviour)
    raw = client.chat.completions.with_raw_response.create(model="claude-first", messages=MSG)
    assert raw.headers["x-gateway-attempts"] == f"claude={kind},gpt-5=ok"
    assert raw.parse().model == "gpt-5"


def test_overloaded_is_retried_then_fails_over(emu, client):
    emu.set("claude-sonnet-emu", "overloaded")
    raw = client.chat.completions.with_raw_response.create(model="claude-first", messages=MSG)
    assert raw.headers["x-gateway-attempts"] == "claude=transient,claude=transient,gpt-5=ok"


def test_failover_from_openai_to_anthropic(emu, client):
    emu.set("gpt-5", "withdrawn")
    raw = client.chat.completions.with_raw_response.create(model="openai-first", messages=MSG)
    assert raw.headers["x-gateway-attempts"] == "gpt-5=withdrawn,claude=ok"
    assert raw.parse().choices[0].message.content.startswith("Hello from claude-sonnet-emu")


def test_streaming_in_band_error_before_content_fails_over(emu, client):
    emu.set("claude-sonnet-emu", "stream_error:after=0")
    raw = client.chat.completions.with_raw_response.create(model="claude-first", messages=MSG, stream=True)
    assert raw.headers["x-gateway-attempts"] == "claude=transient,claude=transient,gpt-5=ok"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text.startswith("Hello from gpt-5")


def test_streaming_cut_after_content_is_continued_by_the_other_vendor(emu, client):
    emu.set("claude-sonnet-emu", "stream_cut:after=2,words=9")
    emu.set("gpt-5", "healthy:words=9")
    chunks = list(client.chat.completions.create(model="claude-first", messages=MSG, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert " ".join(text.split()) == "w1 w2 w3 w4 w5 w6 w7 w8 w9"
    assert [c.model for c in chunks][0] == "claude" and chunks[-1].model == "gpt-5"


def test_streaming_cut_with_nothing_left_to_continue_on_is_an_error(emu, client):
    emu.set("claude-sonnet-emu", "stream_cut:after=2")
    emu.set("gpt-5", "withdrawn")
    stream = client.chat.completions.create(model="claude-first", messages=MSG, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_tool_turn_from_openai_served_by_anthropic(emu, client):
    first = client.chat.completions.create(model="openai-first", messages=MSG, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    assert first.model == "gpt-5" and call.id.startswith("call_")
    emu.set("gpt-5", "withdrawn")
    follow_up = [*MSG, first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}]
    raw = client.chat.completions.with_raw_response.create(model="openai-first", messages=follow_up, tools=[WEATHER])
    assert raw.headers["x-gateway-attempts"] == "gpt-5=withdrawn,claude=ok"
    assert raw.parse().choices[0].message.content == "Tool result received: 18C and sunny"
    sent = emu.attempts("claude-sonnet-emu")[-1]["request"]["messages"]
    assert sent[1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": call.id, "name": "get_weather", "input": json.loads(call.function.arguments)}]}
    assert sent[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call.id, "content": "18C and sunny"}]}


def test_tool_turn_from_anthropic_served_by_openai(emu, client):
    first = client.chat.completions.create(model="claude-first", messages=MSG, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    assert first.model == "claude" and call.id.startswith("toolu_")
    emu.set("claude-sonnet-emu", "withdrawn")
    follow_up = [*MSG, first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}]
    raw = client.chat.completions.with_raw_response.create(model="claude-first", messages=follow_up, tools=[WEATHER])
    assert raw.headers["x-gateway-attempts"] == "claude=withdrawn,gpt-5=ok"
    sent = emu.attempts("gpt-5")[-1]["request"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}


def test_bad_tool_arguments_are_a_400_without_failover(emu, client):
    bad = [*MSG, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{oops"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "x"}]
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="claude-first", messages=bad)
    assert "not valid JSON" in ei.value.message
    assert emu.attempts("claude-sonnet-emu") == [] and emu.attempts("gpt-5") == []
