"""Fidelity tests for the provider emulator's OpenAI wire, using the official SDK."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import openai
import pytest

from gateway.emulator.behaviours import BEHAVIOURS, Behaviour, parse_behaviour
from gateway.emulator.content import estimate_prompt_tokens, make_reply, split_pieces
from gateway.emulator.runner import EmulatorThread
from gateway.emulator.state import EmulatorState

MSGS = [{"role": "user", "content": "hi there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "days": {"type": "integer"},
                "metric": {"type": "boolean"},
                "extra": {"type": "object"},
                "opt": {"type": "string"},
            },
            "required": ["location", "days", "metric", "extra"],
        },
    },
}
OTHER_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.fixture
def client(emu):
    return openai.OpenAI(base_url=emu.url + "/v1", api_key="sk-test-key-123456", max_retries=0, timeout=3)


def post(emu, body, headers=None, path="/v1/chat/completions"):
    h = {"Authorization": "Bearer sk-x"} if headers is None else headers
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(emu.url + path, content=data, headers=h, timeout=3)


# ----------------------------------------------------------------------------- healthy
def test_healthy_non_stream(client, emu):
    r = client.chat.completions.create(model="gpt-x", messages=MSGS)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "gpt-x"
    assert r.choices[0].message.content == "Hello from gpt-x. You said: hi there"
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.refusal is None
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (2, 7, 9)
    assert r.system_fingerprint


def test_healthy_stream_with_usage(client):
    chunks = list(
        client.chat.completions.create(
            model="gpt-x", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from gpt-x. You said: hi there"
    assert [c.choices[0].delta.content for c in chunks[1:4]] == ["Hello", " from", " gpt-x."]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7
    assert chunks[-1].usage.total_tokens == 9
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


def test_stream_raw_framing(emu):
    r = post(emu, {"model": "m", "messages": MSGS, "stream": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = r.text.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    assert '"usage"' not in r.text  # no include_usage -> no usage key at all


def test_tool_call_non_stream_and_stream(client):
    r = client.chat.completions.create(model="m", messages=MSGS, tools=[WEATHER_TOOL, OTHER_TOOL])
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.content is None
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(call.function.arguments, str)
    assert json.loads(call.function.arguments) == {"location": "example", "days": 1, "metric": True, "extra": None}

    named = client.chat.completions.create(
        model="m", messages=MSGS, tools=[WEATHER_TOOL, OTHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    assert named.choices[0].message.tool_calls[0].function.name == "lookup"
    none = client.chat.completions.create(model="m", messages=MSGS, tools=[WEATHER_TOOL], tool_choice="none")
    assert none.choices[0].message.tool_calls is None

    chunks = list(client.chat.completions.create(model="m", messages=MSGS, tools=[WEATHER_TOOL], stream=True))
    first = chunks[0].choices[0].delta.tool_calls[0]
    assert first.index == 0 and first.id.startswith("call_") and first.function.name == "get_weather"
    assert first.function.arguments == ""
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments for c in chunks[1:3])
    assert len(chunks) == 4 and json.loads(args)["location"] == "example"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_result_and_json_mode(client):
    msgs = MSGS + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny " * 30},
    ]
    r = client.chat.completions.create(model="m", messages=msgs, tools=[WEATHER_TOOL])
    assert r.choices[0].message.content == "Tool result received: " + " ".join(("sunny " * 30)[:80].split())
    j = client.chat.completions.create(model="m", messages=MSGS, response_format={"type": "json_object"})
    assert json.loads(j.choices[0].message.content) == {"model": "m", "answer": "ok"}


def test_text_words_token_delay_params(client, emu):
    emu.set("fixed", "healthy:text=Hi there")
    assert client.chat.completions.create(model="fixed", messages=MSGS).choices[0].message.content == "Hi there"
    emu.set("w", "healthy:words=5,token_delay=0.05")
    t0 = time.monotonic()
    chunks = list(client.chat.completions.create(model="w", messages=MSGS, stream=True))
    assert time.monotonic() - t0 >= 0.2
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "w1 w2 w3 w4 w5"


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "spec, exc, status, code",
    [
        ("withdrawn", openai.NotFoundError, 404, "model_not_found"),
        ("access_revoked", openai.AuthenticationError, 401, "invalid_api_key"),
        ("no_model_access", openai.PermissionDeniedError, 403, "model_not_found"),
        ("region_blocked", openai.PermissionDeniedError, 403, "unsupported_country_region_territory"),
        ("rate_limited:retry_after=2", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("quota", openai.RateLimitError, 429, "insufficient_quota"),
        ("overloaded", openai.InternalServerError, 503, "server_is_overloaded"),
        ("server_error", openai.InternalServerError, 500, None),
        ("context_exceeded", openai.BadRequestError, 400, "context_length_exceeded"),
        ("invalid_prompt", openai.BadRequestError, 400, "invalid_prompt"),
    ],
)
def test_scripted_errors_map_to_sdk_exceptions(client, emu, spec, exc, status, code):
    emu.set("gpt-5", spec)
    with pytest.raises(exc) as ei:
        client.chat.completions.create(model="gpt-5", messages=MSGS)
    e = ei.value
    assert e.status_code == status and e.code == code
    body = e.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    if spec.startswith("withdrawn"):
        assert body["error"]["message"] == "The model `gpt-5` does not exist or you do not have access to it."
    if spec.startswith("rate_limited"):
        assert e.response.headers["retry-after"] == "2" and e.response.headers["retry-after-ms"] == "2000"
        assert e.response.headers["x-ratelimit-remaining-requests"] == "0"
        assert body["error"]["type"] == "requests"
    if spec == "region_blocked":
        assert body["error"]["type"] == "request_forbidden"
    if spec == "context_exceeded":
        assert e.param == "messages" and "maximum context length is" in str(e.message)
    # errors are also streamed as plain HTTP errors before any byte of the stream
    with pytest.raises(exc):
        client.chat.completions.create(model="gpt-5", messages=MSGS, stream=True)


def test_context_window_param_applies_to_healthy(client, emu):
    emu.set("small", "healthy:context_window=5")
    assert client.chat.completions.create(model="small", messages=MSGS).choices[0].message.content
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="small", messages=[{"role": "user", "content": "one two three four five six"}])
    assert ei.value.code == "context_length_exceeded"
    assert "maximum context length is 5 tokens. However, your messages resulted in 6 tokens" in ei.value.message


def test_auth(emu):
    r = post(emu, {"model": "m", "messages": MSGS}, headers={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    for bad in ("Bearer", "Basic dXNlcjpwdw=="):
        assert post(emu, {"model": "m", "messages": MSGS}, headers={"Authorization": bad}).status_code == 401
    r = post(emu, b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert post(emu, {"model": "m", "messages": MSGS}, path="/chat/completions").status_code == 200
    assert emu.attempts()[0]["auth"] is False and emu.attempts()[3]["request"] is None


def test_api_key_must_match():
    with EmulatorThread(api_key="sk-right") as e:
        ok = openai.OpenAI(base_url=e.url + "/v1", api_key="sk-right", max_retries=0, timeout=3)
        assert ok.chat.completions.create(model="m", messages=MSGS).choices
        bad = openai.OpenAI(base_url=e.url + "/v1", api_key="sk-wrong-key-99999", max_retries=0, timeout=3)
        with pytest.raises(openai.AuthenticationError) as ei:
            bad.chat.completions.create(model="m", messages=MSGS)
        assert "sk-wrong***9999" in ei.value.message
        assert all("sk-wrong" not in json.dumps(a) for a in e.attempts())


def test_failing_once_and_failing_n(client, emu):
    emu.set("f1", "failing_once")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="f1", messages=MSGS)
    assert client.chat.completions.create(model="f1", messages=MSGS).choices[0].finish_reason == "stop"
    emu.set("f1", "failing_once")  # re-setting resets the counter
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="f1", messages=MSGS)
    emu.set("f2", "failing_n:n=2")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="f2", messages=MSGS)
    assert client.chat.completions.create(model="f2", messages=MSGS).choices
    assert [a["status"] for a in emu.attempts("f2")] == [500, 500, 200]


def test_content_filter(client, emu):
    emu.set("cf", "content_filter")
    r = client.chat.completions.create(model="cf", messages=MSGS)
    assert r.choices[0].finish_reason == "content_filter" and not r.choices[0].message.content
    chunks = list(client.chat.completions.create(model="cf", messages=MSGS, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert not "".join(c.choices[0].delta.content or "" for c in chunks)


# ----------------------------------------------------------------------------- stream faults
def _collect(stream):
    got = []
    for c in stream:
        if c.choices and c.choices[0].delta.content:
            got.append(c.choices[0].delta.content)
    return got


def test_stream_error_in_band(client, emu):
    emu.set("se", "stream_error:after=2")
    got = []
    with pytest.raises(openai.APIError) as ei:
        for c in client.chat.completions.create(model="se", messages=MSGS, stream=True):
            got.append(c.choices[0].delta.content)
    assert got == ["", "Hello", " from"]
    assert "The server experienced an error" in ei.value.message
    r = post(emu, {"model": "se", "messages": MSGS, "stream": True})
    assert r.text.endswith(
        'data: {"error":{"message":"The server experienced an error while processing your request. '
        'We apologize for the inconvenience!","type":"server_error","param":null,"code":null}}\n\n'
        "data: [DONE]\n\n"
    )


def test_stream_cut(client, emu):
    emu.set("cut", "stream_cut:after=2")
    got = []
    # the SDK wraps httpx.RemoteProtocolError (incomplete chunked read) in APIConnectionError
    with pytest.raises(openai.APIConnectionError) as ei:
        for c in client.chat.completions.create(model="cut", messages=MSGS, stream=True):
            got.append(c.choices[0].delta.content)
    cause = ei.value.__cause__  # httpx/httpcore RemoteProtocolError, depending on the layer
    assert type(cause).__name__ == "RemoteProtocolError" and "incomplete chunked read" in str(cause)
    assert got == ["", "Hello", " from"]
    a = emu.attempts("cut")[-1]
    assert a["status"] == 200 and a["tokens_sent"] == 2 and a["done"]


def test_reset_and_no_response(client, emu):
    emu.set("rst", "reset")
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="rst", messages=MSGS)
    emu.set("hang", "no_response:delay=5")
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(model="hang", messages=MSGS)
    deadline = time.monotonic() + 2
    while not emu.attempts("hang")[-1]["done"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.attempts("rst")[-1]["status"] == 0
    hang = emu.attempts("hang")[-1]
    assert hang["status"] == 0 and hang["disconnected"] is True
    emu.set("hang2", "no_response:delay=0.1")
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="hang2", messages=MSGS)
    assert emu.attempts("hang2")[-1]["disconnected"] is False


def test_slow_first_token_and_stall(client, emu):
    emu.set("slow", "slow_first_token:delay=0.3")
    t0 = time.monotonic()
    client.chat.completions.create(model="slow", messages=MSGS)
    assert time.monotonic() - t0 >= 0.3
    t0 = time.monotonic()
    stream = client.chat.completions.create(model="slow", messages=MSGS, stream=True)
    first = next(iter(stream))
    t_role = time.monotonic() - t0
    assert first.choices[0].delta.role == "assistant" and t_role < 0.25
    assert _collect(stream)[0] == "Hello" and time.monotonic() - t0 >= 0.3

    emu.set("stall", "stream_stall:after=1,delay=0.3")
    t0 = time.monotonic()
    text = "".join(_collect(client.chat.completions.create(model="stall", messages=MSGS, stream=True)))
    assert text == "Hello from stall. You said: hi there" and time.monotonic() - t0 >= 0.3


def test_malformed_garbage_missing_done(client, emu):
    emu.set("mal", "malformed_chunk:after=1")
    with pytest.raises(json.JSONDecodeError):  # the SDK json-decodes every data line
        _collect(client.chat.completions.create(model="mal", messages=MSGS, stream=True))
    raw = post(emu, {"model": "mal", "messages": MSGS, "stream": True}).text
    assert "data: {not json\n\n" in raw and raw.endswith("data: [DONE]\n\n")
    emu.set("g", "garbage:after=1")
    raw = post(emu, {"model": "g", "messages": MSGS, "stream": True}).text
    assert raw.count("data: {not json\n\n") == 20 and "[DONE]" not in raw
    emu.set("md", "missing_done")
    raw = post(emu, {"model": "md", "messages": MSGS, "stream": True,
                     "stream_options": {"include_usage": True}}).text
    assert '"finish_reason":"stop"' in raw and '"choices":[]' in raw and "[DONE]" not in raw
    chunks = list(client.chat.completions.create(model="md", messages=MSGS, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"  # the SDK silently accepts EOF


def test_client_disconnect_mid_stream_is_logged(emu):
    emu.set("long", "healthy:words=100,token_delay=0.02")
    body = json.dumps({"model": "long", "messages": MSGS, "stream": True}).encode()
    port = int(emu.url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    assert b"200 OK" in s.recv(4096)
    time.sleep(0.1)
    s.close()
    deadline = time.monotonic() + 2
    while not emu.attempts("long")[-1]["done"] and time.monotonic() < deadline:
        time.sleep(0.02)
    a = emu.attempts("long")[-1]
    assert a["done"] and a["disconnected"] is True and a["status"] == 200 and 0 < a["tokens_sent"] < 100


# ----------------------------------------------------------------------------- log + control
def test_attempt_log_fields(client, emu):
    client.chat.completions.create(model="a", messages=MSGS)
    list(client.chat.completions.create(model="b", messages=MSGS, stream=True))
    log = emu.attempts()
    assert [a["model"] for a in log] == ["a", "b"] and log[1]["seq"] == log[0]["seq"] + 1
    a = log[0]
    assert a["wire"] == "openai" and a["path"] == "/v1/chat/completions" and a["stream"] is False
    assert a["behaviour"] == "healthy" and a["status"] == 200 and a["auth"] is True
    assert a["tokens_sent"] == 7 and a["disconnected"] is False and abs(a["time"] - time.time()) < 5
    assert a["request"]["messages"] == MSGS
    assert "sk-test-key" not in json.dumps(log)
    assert log[1]["stream"] is True and log[1]["tokens_sent"] == 7
    assert emu.attempts("b") == [log[1]]
    emu.clear()
    assert emu.attempts() == []


def test_attempt_log_is_a_ring():
    st = EmulatorState(max_attempts=3)
    for i in range(5):
        st.finish_attempt(st.begin_attempt(wire="openai", path="/", model=str(i), stream=False,
                                           behaviour="healthy", request=None, auth=True), status=200)
    assert [a["model"] for a in st.attempts()] == ["2", "3", "4"]


def test_control_endpoints(emu, client):
    base = emu.url + "/_emulator"
    assert httpx.get(base + "/health").json() == {"status": "ok"}
    r = httpx.put(base + "/models/gpt-5", json={"spec": "rate_limited:retry_after=2"})
    assert r.status_code == 200 and r.json()["params"] == {"retry_after": 2}
    r = httpx.put(base + "/models/gpt-4", json={"behaviour": "withdrawn", "params": {"flavor": "vllm"}})
    assert r.status_code == 200
    models = httpx.get(base + "/models").json()
    assert models["gpt-5"]["behaviour"] == "rate_limited" and models["gpt-4"]["spec"] == "withdrawn:flavor=vllm"
    assert httpx.put(base + "/models/x", json={"spec": "nope"}).status_code == 400
    assert httpx.put(base + "/models/x", json={"behaviour": "healthy", "params": {"bogus": 1}}).status_code == 400
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-5", messages=MSGS)
    client.chat.completions.create(model="other", messages=MSGS)
    att = httpx.get(base + "/attempts", params={"model": "gpt-5"}).json()
    assert len(att) == 1 and att[0]["status"] == 429 and att[0]["behaviour"] == "rate_limited"
    assert len(httpx.get(base + "/attempts").json()) == 2
    assert httpx.delete(base + "/attempts").status_code == 200
    assert httpx.get(base + "/attempts").json() == []
    httpx.put(base + "/models/*", json={"spec": "server_error"})
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="anything", messages=MSGS)
    assert httpx.post(base + "/reset").status_code == 200
    assert httpx.get(base + "/models").json() == {}
    assert client.chat.completions.create(model="gpt-5", messages=MSGS).choices


def test_parse_behaviour():
    b = parse_behaviour("healthy:token_delay=0.01,context_window=50,text=Hi there")
    assert b == Behaviour("healthy", {"token_delay": 0.01, "context_window": 50, "text": "Hi there"})
    assert parse_behaviour("rate_limited:retry_after=2").params == {"retry_after": 2}
    assert parse_behaviour(" stream_cut:after=5 ").params["after"] == 5
    assert parse_behaviour("healthy") == Behaviour("healthy", {})
    with pytest.raises(ValueError) as ei:
        parse_behaviour("explode")
    assert "healthy" in str(ei.value) and "stream_cut" in str(ei.value)
    for bad in ("", "healthy:oops", "stream_cut:bogus=1", "withdrawn:flavor=azure"):
        with pytest.raises(ValueError):
            parse_behaviour(bad)
    assert "reset" in BEHAVIOURS and "failing_n" in BEHAVIOURS


def test_content_helpers():
    assert split_pieces("Hello from x.") == ["Hello", " from", " x."]
    req = {"messages": [{"role": "system", "content": "be nice"},
                        {"role": "user", "content": [{"type": "text", "text": "a b c"},
                                                     {"type": "image_url", "image_url": {"url": "u"}}]}]}
    assert estimate_prompt_tokens(req) == 5
    assert make_reply(req, "m", {"words": 3}).text == "w1 w2 w3"
    assert make_reply(req, "m").text == "Hello from m. You said: a b c"


# ----------------------------------------------------------------------------- flavors
def test_vllm_flavors(emu):
    emu.set("v", "withdrawn:flavor=vllm")
    r = post(emu, {"model": "v", "messages": MSGS})
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "The model `v` does not exist.", "type": "NotFoundError",
                                  "param": None, "code": 404}}
    emu.set("vl", "withdrawn:flavor=vllm_legacy")
    assert post(emu, {"model": "vl", "messages": MSGS}).json() == {
        "object": "error", "message": "The model `vl` does not exist.", "type": "NotFoundError",
        "param": None, "code": 404}
    r = post(emu, {"model": "v", "messages": MSGS}, headers={})
    assert r.status_code == 401 and r.json() == {"error": "Unauthorized"}
    emu.set("vc", "context_exceeded:flavor=vllm,context_window=4096")
    r = post(emu, {"model": "vc", "messages": MSGS})
    assert r.status_code == 400
    body = r.json()["error"]
    assert body["type"] == "BadRequestError" and body["code"] == 400 and body["param"] is None
    assert body["message"].startswith("This model's maximum context length is 4096 tokens. However, you requested")
    c = openai.OpenAI(base_url=emu.url + "/v1", api_key="k", max_retries=0, timeout=3)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="v", messages=MSGS)


def test_ollama_and_groq_flavors(emu):
    emu.set("llama3.1", "withdrawn:flavor=ollama")
    r = post(emu, {"model": "llama3.1", "messages": MSGS}, headers={})  # Ollama needs no auth
    assert r.status_code == 404
    assert r.json() == {"error": {"message": 'model "llama3.1" not found, try pulling it first',
                                  "type": "not_found_error", "param": None, "code": None}}
    emu.set("ok", "healthy:flavor=ollama")
    r = post(emu, {"model": "ok", "messages": MSGS}, headers={})
    assert r.status_code == 200 and r.json()["system_fingerprint"] == "fp_ollama"
    emu.set("mixtral-8x7b-32768", "withdrawn:flavor=groq")
    r = post(emu, {"model": "mixtral-8x7b-32768", "messages": MSGS})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["code"] == "model_decommissioned"
    assert err["message"].startswith(
        "The model `mixtral-8x7b-32768` has been decommissioned and is no longer supported.")
    assert set(err) == {"message", "type", "code"}


# ----------------------------------------------------------------------------- runner
def test_runner_restarts_and_stops_quickly():
    for _ in range(3):
        with EmulatorThread({"hang": "no_response:delay=30"}) as e:
            url = e.url
            assert httpx.get(url + "/_emulator/health").status_code == 200
            c = httpx.Client(timeout=5)
            th = threading.Thread(target=_swallow, args=(c, url), daemon=True)
            th.start()
            deadline = time.monotonic() + 2
            while not e.attempts("hang") and time.monotonic() < deadline:
                time.sleep(0.01)
            t0 = time.monotonic()
        assert time.monotonic() - t0 < 2.0
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/_emulator/health", timeout=1)
        th.join(3)


def _swallow(c, url):
    try:
        c.post(url + "/v1/chat/completions", headers={"Authorization": "Bearer k"},
               json={"model": "hang", "messages": MSGS})
    except httpx.HTTPError:
        pass
