"""End to end for ``kind: azure-openai``: openai SDK -> real gateway -> emulator's Azure wire (both api styles)."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import base_config

MSG = [{"role": "user", "content": "Summarise the release notes."}]
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "weather for a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
AZ_KEY = "azure-provider-secret-0123456789"


def azure_config(emu_url: str) -> dict:
    """base_config plus two Azure providers on the emulator: one per api_style, each with one deployment."""
    cfg = base_config(emu_url)
    cfg["providers"] = {
        **cfg["providers"],
        "azure-dep": {"kind": "azure-openai", "base_url": emu_url, "api_key": AZ_KEY, "api_style": "deployments",
                      "api_version": "2024-10-21", "vendor": "Microsoft", "jurisdiction": "EU"},
        "azure-v1": {"kind": "azure-openai", "base_url": emu_url, "api_key": AZ_KEY, "api_style": "v1",
                     "vendor": "Microsoft", "jurisdiction": "EU"},
    }
    cfg["models"] = {
        **cfg["models"],
        "az-4o": {"provider": "azure-dep", "model": "az-4o-deploy", "context_window": 400},
        "az-v1": {"provider": "azure-v1", "model": "az-v1-deploy", "context_window": 400},
    }
    cfg["routes"] = {
        **cfg["routes"],
        "azure-first": {"models": ["az-4o", "gpt-5"]},
        "azure-v1-first": {"models": ["az-v1", "gpt-5"]},
        "openai-first": {"models": ["gpt-5", "az-4o"]},
    }
    return cfg


# route -> (gateway model name, deployment = the emulator's model name, path it must hit)
STYLES = {
    "azure-first": ("az-4o", "az-4o-deploy", "/openai/deployments/az-4o-deploy/chat/completions"),
    "azure-v1-first": ("az-v1", "az-v1-deploy", "/openai/v1/chat/completions"),
}


@pytest.fixture
def gw(emu, make_gateway):
    return make_gateway(azure_config(emu.url))


@pytest.mark.parametrize("route", list(STYLES))
def test_non_streaming_answer(emu, gw, client_for, route):
    name, deployment, path = STYLES[route]
    raw = client_for(gw).chat.completions.with_raw_response.create(model=route, messages=MSG)
    resp = raw.parse()
    assert resp.model == name and raw.headers["x-gateway-attempts"] == f"{name}=ok"
    assert resp.choices[0].message.content.startswith(f"Hello from {deployment}")
    assert resp.choices[0].finish_reason == "stop"
    usage = resp.usage
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    att = emu.attempts(deployment)[-1]
    assert att["wire"] == "azure" and att["path"] == path and att["auth"] is True
    assert att["request"]["model"] == deployment


@pytest.mark.parametrize("route", list(STYLES))
def test_streaming_answer(emu, gw, client_for, route):
    name, deployment, _ = STYLES[route]
    chunks = list(client_for(gw).chat.completions.create(model=route, messages=MSG, stream=True,
                                                         stream_options={"include_usage": True}))
    # Azure's prompt-filter preamble (empty choices, no usage) never reaches the client.
    assert all(c.choices or c.usage for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.model == name for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"Hello from {deployment}")
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


@pytest.mark.parametrize("route", list(STYLES))
def test_tool_calls(gw, client_for, route):
    client = client_for(gw)
    msgs = [{"role": "user", "content": "Weather in Oslo?"}]
    resp = client.chat.completions.create(model=route, messages=msgs, tools=[TOOL], tool_choice="required")
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.id and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "example"}
    chunks = list(client.chat.completions.create(model=route, messages=msgs, tools=[TOOL], stream=True))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "example"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("behaviour,kind", [("withdrawn", "withdrawn"), ("access_revoked", "access_denied"),
                                            ("region_blocked", "access_denied"),
                                            ("rate_limited:retry_after=5", "rate_limited")])
@pytest.mark.parametrize("route", list(STYLES))
def test_azure_primary_fails_over_to_openai(emu, gw, client_for, route, behaviour, kind):
    name, deployment, _ = STYLES[route]
    emu.set(deployment, behaviour)
    raw = client_for(gw).chat.completions.with_raw_response.create(model=route, messages=MSG)
    assert raw.parse().model == "gpt-5"
    assert raw.headers["x-gateway-attempts"] == f"{name}={kind},gpt-5=ok"
    assert len(emu.attempts(deployment)) == 1


def test_azure_stream_fails_over_before_first_token(emu, gw, client_for):
    emu.set("az-4o-deploy", "withdrawn")
    chunks = list(client_for(gw).chat.completions.create(model="azure-first", messages=MSG, stream=True))
    assert {c.model for c in chunks} == {"gpt-5"}


def test_openai_primary_fails_over_to_azure(emu, gw, client_for):
    emu.set("gpt-5", "withdrawn")
    raw = client_for(gw).chat.completions.with_raw_response.create(model="openai-first", messages=MSG)
    resp = raw.parse()
    assert resp.model == "az-4o" and resp.choices[0].message.content.startswith("Hello from az-4o-deploy")
    assert raw.headers["x-gateway-attempts"] == "gpt-5=withdrawn,az-4o=ok"


def test_prompt_content_filter_is_returned_not_failed_over(emu, gw, client_for):
    emu.set("az-4o-deploy", "invalid_prompt")
    with pytest.raises(openai.BadRequestError) as ei:
        client_for(gw).chat.completions.create(model="azure-first", messages=MSG)
    assert ei.value.code == "content_filter"
    assert emu.attempts("gpt-5") == []


def test_output_content_filter_is_an_answer(emu, gw, client_for):
    emu.set("az-4o-deploy", "content_filter")
    resp = client_for(gw).chat.completions.create(model="azure-first", messages=MSG)
    assert resp.model == "az-4o" and resp.choices[0].finish_reason == "content_filter"
    assert emu.attempts("gpt-5") == []


@pytest.mark.parametrize("first,second,second_deployment", [
    ("openai-first", "azure-first", "az-4o-deploy"),  # OpenAI made the call, Azure (deployments) gets the result
    ("azure-v1-first", "openai-first", "gpt-5"),  # Azure (v1) made the call, OpenAI gets the result
])
def test_multi_turn_tool_use_across_vendors(emu, gw, client_for, first, second, second_deployment):
    client = client_for(gw)
    msgs: list[dict] = [{"role": "user", "content": "Weather in Oslo?"}]
    resp = client.chat.completions.create(model=first, messages=msgs, tools=[TOOL])
    call = resp.choices[0].message.tool_calls[0]
    msgs.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": call.id, "type": "function", "function": {"name": call.function.name,
                                                         "arguments": call.function.arguments}}]})
    msgs.append({"role": "tool", "tool_call_id": call.id, "content": "{\"temp_c\": 3}"})
    # The model that made the call is now gone; the next vendor must get the conversation in its own format.
    emu.set("gpt-5" if first == "openai-first" else "az-v1-deploy", "withdrawn")
    raw = client.chat.completions.with_raw_response.create(model=second, messages=msgs, tools=[TOOL])
    resp2 = raw.parse()
    assert resp2.choices[0].message.content.startswith("Tool result received")
    req = emu.attempts(second_deployment)[-1]["request"]
    assistant, tool = req["messages"][1], req["messages"][2]
    assert assistant["tool_calls"][0]["id"] == call.id
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": call.function.arguments}
    assert tool == {"role": "tool", "tool_call_id": call.id, "content": "{\"temp_c\": 3}"}
