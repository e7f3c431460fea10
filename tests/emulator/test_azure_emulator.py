"""Fidelity of the emulator's Azure OpenAI wire, checked with the official openai SDK's Azure client."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway.emulator.runner import EmulatorThread

KEY = "azure-emulator-key-0123"
MSGS = [{"role": "user", "content": "hi there"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def az(emu):
    return openai.AzureOpenAI(azure_endpoint=emu.url, api_key=KEY, api_version="2024-10-21", max_retries=0, timeout=3)


@pytest.fixture
def v1(emu):
    return openai.OpenAI(base_url=emu.url + "/openai/v1", api_key=KEY, default_headers={"api-key": KEY},
                         max_retries=0, timeout=3)


def _clients(az, v1):
    return {"deployments": az, "v1": v1}


@pytest.mark.parametrize("style", ["deployments", "v1"])
def test_completion_parses_into_sdk_types(emu, az, v1, style):
    client = _clients(az, v1)[style]
    raw = client.chat.completions.with_raw_response.create(model="dep-4o", messages=MSGS)
    resp = raw.parse()
    assert isinstance(resp, ChatCompletion)
    assert resp.choices[0].message.content.startswith("Hello from dep-4o")
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    extra = resp.model_extra or {}
    assert extra["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    assert resp.choices[0].model_extra["content_filter_results"]["violence"]["severity"] == "safe"
    assert raw.headers["apim-request-id"]
    att = emu.attempts("dep-4o")[-1]
    assert att["wire"] == "azure" and att["auth"] is True
    if style == "deployments":
        assert att["path"] == "/openai/deployments/dep-4o/chat/completions"
    else:
        assert att["path"] == "/openai/v1/chat/completions" and att["request"]["model"] == "dep-4o"


@pytest.mark.parametrize("style", ["deployments", "v1"])
def test_stream_first_chunk_is_prompt_filter_preamble(az, v1, style):
    client = _clients(az, v1)[style]
    chunks = list(client.chat.completions.create(model="dep-4o", messages=MSGS, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    first = chunks[0]
    assert first.choices == [] and first.id == "" and first.model == "" and first.usage is None
    assert first.model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    assert chunks[1].choices[0].delta.role == "assistant" and chunks[1].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from dep-4o")
    assert chunks[2].choices[0].model_extra["content_filter_results"]["sexual"]["filtered"] is False
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_tool_call_non_stream_and_stream(az):
    resp = az.chat.completions.create(model="dep-4o", messages=[{"role": "user", "content": "weather?"}], tools=[TOOL])
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "example"}
    chunks = list(az.chat.completions.create(model="dep-4o", messages=[{"role": "user", "content": "weather?"}],
                                             tools=[TOOL], stream=True))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "example"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_output_content_filter_is_a_200(emu, az):
    emu.set("dep-4o", "content_filter")
    resp = az.chat.completions.create(model="dep-4o", messages=MSGS)
    assert resp.choices[0].finish_reason == "content_filter" and resp.choices[0].message.content is None
    assert resp.choices[0].model_extra["content_filter_results"]["violence"]["filtered"] is True
    chunks = list(az.chat.completions.create(model="dep-4o", messages=MSGS, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert chunks[-1].choices[0].model_extra["content_filter_results"]["violence"]["filtered"] is True


@pytest.mark.parametrize(
    "spec,exc,status,code",
    [
        ("withdrawn", openai.NotFoundError, 404, "DeploymentNotFound"),
        ("access_revoked", openai.AuthenticationError, 401, "401"),
        ("no_model_access", openai.AuthenticationError, 401, "PermissionDenied"),
        ("region_blocked", openai.PermissionDeniedError, 403, "403"),
        ("rate_limited:retry_after=7", openai.RateLimitError, 429, "429"),
        ("quota", openai.RateLimitError, 429, "429"),
        ("invalid_prompt", openai.BadRequestError, 400, "content_filter"),
        ("context_exceeded", openai.BadRequestError, 400, "context_length_exceeded"),
        ("server_error", openai.InternalServerError, 500, None),
        ("overloaded", openai.InternalServerError, 503, "ServiceUnavailable"),
    ],
)
@pytest.mark.parametrize("style", ["deployments", "v1"])
def test_scripted_errors_raise_sdk_classes(emu, az, v1, style, spec, exc, status, code):
    emu.set("dep-4o", spec)
    with pytest.raises(exc) as ei:
        _clients(az, v1)[style].chat.completions.create(model="dep-4o", messages=MSGS)
    e = ei.value
    assert e.status_code == status and e.code == code
    if spec.startswith("rate_limited"):
        assert e.response.headers["retry-after"] == "7"
        assert "Please retry after 7 seconds" in e.message
    if spec == "invalid_prompt":
        assert e.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
        assert e.body["innererror"]["content_filter_result"]["violence"]["filtered"] is True


def test_auth_and_api_version(emu):
    url = emu.url + "/openai/deployments/dep-4o/chat/completions"
    r = httpx.post(url + "?api-version=2024-10-21", json={"messages": MSGS})
    assert r.status_code == 401 and r.json()["error"]["code"] == "401"
    assert "invalid subscription key" in r.json()["error"]["message"]
    r = httpx.post(url, json={"messages": MSGS}, headers={"api-key": KEY})
    assert r.status_code == 404 and r.json() == {"error": {"code": "404", "message": "Resource not found"}}
    r = httpx.post(url + "?api-version=2024-10-21", json={"messages": MSGS}, headers={"authorization": "Bearer entra"})
    assert r.status_code == 200  # Entra ID bearer tokens are accepted too


def test_wrong_key_raises_authentication_error():
    with EmulatorThread(api_key=KEY) as locked:
        good = openai.AzureOpenAI(azure_endpoint=locked.url, api_key=KEY, api_version="2024-10-21", max_retries=0)
        assert good.chat.completions.create(model="dep-4o", messages=MSGS).choices[0].message.content
        bad = openai.AzureOpenAI(azure_endpoint=locked.url, api_key="wrong-key", api_version="2024-10-21",
                                 max_retries=0)
        with pytest.raises(openai.AuthenticationError) as ei:
            bad.chat.completions.create(model="dep-4o", messages=MSGS)
        assert ei.value.code == "401"


@pytest.mark.parametrize("spec", ["stream_error", "stream_cut", "missing_done", "malformed_chunk:after=1"])
def test_stream_faults(emu, az, spec):
    emu.set("dep-4o", spec)
    if spec == "stream_error":
        with pytest.raises(openai.APIError):
            list(az.chat.completions.create(model="dep-4o", messages=MSGS, stream=True))
    elif spec == "stream_cut":
        with pytest.raises((httpx.HTTPError, openai.APIError)):
            list(az.chat.completions.create(model="dep-4o", messages=MSGS, stream=True))
    elif spec == "missing_done":
        raw = httpx.post(emu.url + "/openai/deployments/dep-4o/chat/completions?api-version=2024-10-21",
                         json={"messages": MSGS, "stream": True}, headers={"api-key": KEY}).text
        assert "finish_reason\":\"stop" in raw and "[DONE]" not in raw
    else:
        raw = httpx.post(emu.url + "/openai/deployments/dep-4o/chat/completions?api-version=2024-10-21",
                         json={"messages": MSGS, "stream": True}, headers={"api-key": KEY}).text
        assert "data: {not json" in raw and raw.endswith("data: [DONE]\n\n")
