"""End to end through a real gateway: the openai SDK -> gateway -> a ``kind: gemini`` provider on the emulator's
Gemini wire, with an openai-kind fallback (and the other way round)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import base_config

GEM = "gemini-2.5-pro"
GEM_KEY = "AIza-provider-gemini-secret-1234"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"],
                   "additionalProperties": False}}}


def config(emu_url: str) -> dict:
    cfg = base_config(emu_url)
    cfg["providers"]["google"] = {"kind": "gemini", "base_url": emu_url, "api_key": GEM_KEY, "vendor": "Google",
                                  "jurisdiction": "US"}
    cfg["models"][GEM] = {"provider": "google", "model": GEM, "context_window": 1000}
    cfg["routes"]["gemini-first"] = {"models": [GEM, "gpt-5"]}
    cfg["routes"]["openai-first"] = {"models": ["gpt-5", GEM]}
    return cfg


def test_non_streaming_answer(emu, make_gateway, client_for):
    gw = make_gateway(config(emu.url))
    raw = client_for(gw).chat.completions.with_raw_response.create(
        model="gemini-first", messages=[{"role": "system", "content": "Be terse."},
                                        {"role": "user", "content": "Hello there"}],
        max_tokens=50, temperature=0.3, stop=["END"])
    resp = raw.parse()
    assert raw.headers["x-gateway-attempts"] == f"{GEM}=ok"
    assert resp.model == GEM
    assert resp.choices[0].message.content == f"Hello from {GEM}. You said: Hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == 4 and resp.usage.completion_tokens == 7 and resp.usage.total_tokens == 11
    att = emu.attempts(GEM)[-1]
    assert att["wire"] == "gemini" and att["auth"] is True and att["path"] == f"/v1beta/models/{GEM}:streamGenerateContent"  # read as a stream
    sent = att["request"]
    assert sent["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Hello there"}]}]
    assert sent["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.3, "stopSequences": ["END"]}


def test_streaming_answer_with_usage(emu, make_gateway, client_for):
    gw = make_gateway(config(emu.url))
    chunks = list(client_for(gw).chat.completions.create(
        model="gemini-first", messages=[{"role": "user", "content": "Hi you"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Hello from {GEM}. You said: Hi you"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 2 + 7
    assert all(c.model == GEM for c in chunks)
    assert emu.attempts(GEM)[-1]["path"].endswith(":streamGenerateContent")


def test_tool_calls_non_streaming_and_streaming(emu, make_gateway, client_for):
    gw = make_gateway(config(emu.url))
    client = client_for(gw)
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    resp = client.chat.completions.create(model="gemini-first", messages=msgs, tools=[WEATHER],
                                          tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "example"}
    sent = emu.attempts(GEM)[-1]["request"]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert "additionalProperties" not in json.dumps(sent["tools"])

    chunks = list(client.chat.completions.create(model="gemini-first", messages=msgs, tools=[WEATHER], stream=True))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id.startswith("call_") and deltas[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"location": "example"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize(
    "behaviour,kind",
    [("withdrawn", "withdrawn"), ("region_blocked", "access_denied"), ("access_revoked", "access_denied"),
     ("no_model_access", "access_denied"), ("rate_limited:retry_after=17", "rate_limited")],
)
def test_gemini_primary_fails_over_to_openai(emu, make_gateway, client_for, behaviour, kind):
    emu.set(GEM, behaviour)
    gw = make_gateway(config(emu.url))
    raw = client_for(gw).chat.completions.with_raw_response.create(
        model="gemini-first", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().model == "gpt-5"
    assert raw.headers["x-gateway-attempts"] == f"{GEM}={kind},gpt-5=ok"
    assert len(emu.attempts(GEM)) == 1


def test_gemini_stream_fails_over_and_content_filter_is_not_an_error(emu, make_gateway, client_for):
    emu.set(GEM, "withdrawn")
    gw = make_gateway(config(emu.url))
    chunks = list(client_for(gw).chat.completions.create(
        model="gemini-first", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert chunks[-1].model == "gpt-5"
    emu.set(GEM, "content_filter")
    gw2 = make_gateway(config(emu.url))
    resp = client_for(gw2).chat.completions.create(model="gemini-first", messages=[{"role": "user", "content": "x"}])
    assert resp.model == GEM and resp.choices[0].finish_reason == "content_filter"


def test_openai_primary_fails_over_to_gemini(emu, make_gateway, client_for):
    emu.set("gpt-5", "withdrawn")
    gw = make_gateway(config(emu.url))
    raw = client_for(gw).chat.completions.with_raw_response.create(
        model="openai-first", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().model == GEM
    assert raw.headers["x-gateway-attempts"] == f"gpt-5=withdrawn,{GEM}=ok"


def test_tool_conversation_from_openai_to_gemini(emu, make_gateway, client_for):
    gw = make_gateway(config(emu.url))
    client = client_for(gw)
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="openai-first", messages=msgs, tools=[WEATHER])
    assert first.model == "gpt-5"
    call = first.choices[0].message.tool_calls[0]
    emu.set("gpt-5", "overloaded")
    msgs += [first.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "{\"temp_c\": 18}"}]
    second = client.chat.completions.create(model="openai-first", messages=msgs, tools=[WEATHER])
    assert second.model == GEM
    assert second.choices[0].message.content.startswith("Tool result received")
    contents = emu.attempts(GEM)[-1]["request"]["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"location": "example"}, "id": call.id}}]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}, "id": call.id}}]}


def test_tool_conversation_from_gemini_to_openai(emu, make_gateway, client_for):
    gw = make_gateway(config(emu.url))
    client = client_for(gw)
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="gemini-first", messages=msgs, tools=[WEATHER])
    assert first.model == GEM
    call = first.choices[0].message.tool_calls[0]
    emu.set(GEM, "overloaded")
    msgs += [first.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "18C"}]
    second = client.chat.completions.create(model="gemini-first", messages=msgs, tools=[WEATHER])
    assert second.model == "gpt-5"
    sent = emu.attempts("gpt-5")[-1]["request"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "18C"}


def test_json_schema_is_enforced_by_the_response_schema(emu, make_gateway, client_for):
    schema = {"type": "object", "properties": {"severity": {"type": "string"}, "score": {"type": "integer"}},
              "required": ["severity", "score"], "additionalProperties": False}
    rf = {"type": "json_schema", "json_schema": {"name": "Finding", "strict": True, "schema": schema}}
    client = client_for(make_gateway(config(emu.url)))
    resp = client.chat.completions.create(model="gemini-first", messages=[{"role": "user", "content": "Rate it"}],
                                          response_format=rf)
    assert resp.model == GEM and json.loads(resp.choices[0].message.content) == {"severity": "example", "score": 1}
    sent = emu.attempts(GEM)[-1]["request"]["generationConfig"]
    assert sent["responseMimeType"] == "application/json" and sent["responseSchema"]["required"] == ["severity", "score"]


def test_n_candidates_are_n_choices(emu, make_gateway, client_for):
    client = client_for(make_gateway(config(emu.url)))
    resp = client.chat.completions.create(model="gemini-first", messages=[{"role": "user", "content": "Hi"}], n=2)
    assert resp.model == GEM and [c.index for c in resp.choices] == [0, 1]
    assert resp.choices[0].message.content == resp.choices[1].message.content != ""
    assert emu.attempts(GEM)[-1]["request"]["generationConfig"]["candidateCount"] == 2
