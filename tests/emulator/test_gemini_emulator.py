"""Fidelity of the emulator's Gemini wire: the official ``google-genai`` SDK pointed at it parses answers and
streams into its own types and raises its own error classes for every scripted failure."""

from __future__ import annotations

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from gateway.emulator.runner import EmulatorThread

KEY = "AIza-emulator-test-key"
MODEL = "gemini-2.5-flash"


@pytest.fixture
def gem(emu):
    """The session's emulator (tests/conftest.py), reset for each test."""
    return emu


@pytest.fixture
def gc(gem):
    """A client for the test's emulator (held by the fixture: a collected genai.Client closes its transport)."""
    c = client(gem)
    yield c
    c.close()


def client(emu: EmulatorThread, key: str = KEY) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(
        base_url=emu.url, api_version="v1beta", timeout=5000, retry_options=types.HttpRetryOptions(attempts=1)))


WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters=types.Schema(type="OBJECT", properties={"location": types.Schema(type="STRING")},
                            required=["location"]))])


def test_generate_content(gem, gc):
    resp = gc.models.generate_content(model=MODEL, contents="Hello there")
    assert isinstance(resp, types.GenerateContentResponse)
    assert resp.text == f"Hello from {MODEL}. You said: Hello there"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.usage_metadata.prompt_token_count == 2
    assert resp.usage_metadata.total_token_count == resp.usage_metadata.prompt_token_count + \
        resp.usage_metadata.candidates_token_count
    att = gem.attempts(MODEL)[-1]
    assert att["wire"] == "gemini" and att["auth"] is True and att["path"].endswith(":generateContent")
    assert att["request"]["contents"] == [{"role": "user", "parts": [{"text": "Hello there"}]}]


def test_generate_content_stream(gem, gc):
    chunks = list(gc.models.generate_content_stream(model=MODEL, contents="Hi you"))
    assert all(isinstance(c, types.GenerateContentResponse) for c in chunks)
    assert "".join(c.text or "" for c in chunks) == f"Hello from {MODEL}. You said: Hi you"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count > 0
    assert gem.attempts(MODEL)[-1]["stream"] is True


def test_function_call_has_stop_and_no_id(gem, gc):
    cfg = types.GenerateContentConfig(tools=[WEATHER], system_instruction="Be terse.")
    resp = gc.models.generate_content(model=MODEL, contents="Weather in Paris?", config=cfg)
    call = resp.function_calls[0]
    assert call.name == "get_weather" and call.args == {"location": "example"} and call.id is None
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    sent = gem.attempts(MODEL)[-1]["request"]
    assert sent["systemInstruction"]["parts"][0]["text"] == "Be terse."
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    chunks = list(gc.models.generate_content_stream(model=MODEL, contents="Weather?", config=cfg))
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert [c.name for c in calls] == ["get_weather"]


def test_tool_mode_none_answers_text(gem, gc):
    cfg = types.GenerateContentConfig(tools=[WEATHER], tool_config=types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode="NONE")))
    resp = gc.models.generate_content(model=MODEL, contents="Weather?", config=cfg)
    assert resp.function_calls is None and resp.text.startswith("Hello from")


def test_content_filter(gem, gc):
    gem.set(MODEL, "content_filter")
    resp = gc.models.generate_content(model=MODEL, contents="bad")
    assert resp.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert not resp.candidates
    chunks = list(gc.models.generate_content_stream(model=MODEL, contents="bad"))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.SAFETY


def test_invalid_prompt_is_a_200_block(gem, gc):
    gem.set(MODEL, "invalid_prompt")
    resp = gc.models.generate_content(model=MODEL, contents="bad")
    assert resp.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    chunks = list(gc.models.generate_content_stream(model=MODEL, contents="bad"))
    assert chunks[0].prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


@pytest.mark.parametrize(
    "behaviour,cls,code,status",
    [
        ("withdrawn", errors.ClientError, 404, "NOT_FOUND"),
        ("access_revoked", errors.ClientError, 400, "INVALID_ARGUMENT"),
        ("no_model_access", errors.ClientError, 403, "PERMISSION_DENIED"),
        ("region_blocked", errors.ClientError, 400, "FAILED_PRECONDITION"),
        ("rate_limited:retry_after=17", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
        ("quota", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
        ("overloaded", errors.ServerError, 503, "UNAVAILABLE"),
        ("server_error", errors.ServerError, 500, "INTERNAL"),
        ("context_exceeded:context_window=1", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ],
)
def test_scripted_errors_raise_sdk_classes(gem, gc, behaviour, cls, code, status):
    gem.set(MODEL, behaviour)
    for call in (gc.models.generate_content, gc.models.generate_content_stream):
        with pytest.raises(cls) as ei:
            result = call(model=MODEL, contents="Hello there friend")
            list(result) if not isinstance(result, types.GenerateContentResponse) else None
        assert ei.value.code == code and ei.value.status == status


def test_error_bodies_are_google_literals(gem, gc):
    gem.set(MODEL, "rate_limited:retry_after=17")
    with pytest.raises(errors.ClientError) as ei:
        gc.models.generate_content(model=MODEL, contents="x")
    retry = [d for d in ei.value.details["error"]["details"] if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]
    gem.set(MODEL, "access_revoked")
    with pytest.raises(errors.ClientError) as ei:
        gc.models.generate_content(model=MODEL, contents="x")
    assert ei.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    gem.set(MODEL, "region_blocked")
    with pytest.raises(errors.ClientError) as ei:
        gc.models.generate_content(model=MODEL, contents="x")
    assert ei.value.message == "User location is not supported for the API use."


def test_auth_header_or_query_key(gem):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    url = gem.url + f"/v1beta/models/{MODEL}:generateContent"
    assert httpx.post(url, json=body, params={"key": KEY}).status_code == 200
    r = httpx.post(url, json=body)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    with EmulatorThread(api_key=KEY) as strict:
        wrong, right = client(strict, key="AIza-wrong"), client(strict)
        with pytest.raises(errors.ClientError) as ei:
            wrong.models.generate_content(model=MODEL, contents="x")
        assert ei.value.code == 400 and ei.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        assert right.models.generate_content(model=MODEL, contents="x").text


def test_stream_in_band_error_raises_server_error(gem, gc):
    gem.set(MODEL, "stream_error:after=2")
    got = []
    with pytest.raises(errors.ServerError) as ei:
        for chunk in gc.models.generate_content_stream(model=MODEL, contents="one two three"):
            got.append(chunk.text)
    assert ei.value.code == 503 and len(got) == 2


def test_stream_framing_crlf_and_no_terminator(gem):
    gem.set(MODEL, "missing_done")
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    url = gem.url + f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    raw = httpx.post(url, json=body, headers={"x-goog-api-key": KEY}).content
    events = [e for e in raw.split(b"\r\n\r\n") if e]
    assert events and all(e.startswith(b"data: ") for e in events)
    assert b"[DONE]" not in raw and b"finishReason" not in raw  # missing_done: cut before the final event
    gem.set(MODEL, "healthy")
    raw = httpx.post(url, json=body, headers={"x-goog-api-key": KEY}).content
    last = orjson.loads(raw.rstrip(b"\r\n").split(b"\r\n\r\n")[-1][6:])
    assert last["candidates"][0]["finishReason"] == "STOP"


def test_unknown_method_is_404(gem):
    r = httpx.post(gem.url + f"/v1beta/models/{MODEL}:countTokens", json={}, headers={"x-goog-api-key": KEY})
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
