"""The wire-neutral core drives any Wire: a toy NDJSON wire gets every behaviour for free."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest

from gateway.emulator.app import WIRES
from gateway.emulator.core import ParsedRequest, StreamFramer, Wire, register_wire
from gateway.emulator.runner import EmulatorThread
from gateway.emulator.state import EmulatorState


class ToyFramer(StreamFramer):
    def headers(self):
        return {"Content-Type": "application/x-ndjson"}

    def start(self):
        tc = self.reply.tool_call
        return orjson.dumps({"start": tc.name if tc else None}) + b"\n"

    def piece(self, piece, index):
        return orjson.dumps({"i": index, "text": piece.text, "args": piece.arguments}) + b"\n"

    def finish(self, finish_reason, usage):
        return orjson.dumps({"finish": finish_reason, "total": usage.total_tokens}) + b"\n"

    def terminator(self):
        return b'{"end":true}\n'

    def error_event(self):
        return b'{"error":"boom"}\n'

    def malformed(self):
        return b"{nope\n"


class ToyWire(Wire):
    name = "toy"
    framer = ToyFramer

    def parse(self, request, raw, path_params):
        token = request.headers.get("x-key")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return ParsedRequest(token=token, auth=token is not None, error="bad_json")
        chat = {"messages": [{"role": "user", "content": body.get("prompt", "")}], "tools": body.get("tools")}
        return ParsedRequest(model=path_params["model"], stream=bool(body.get("stream")), chat=chat,
                             token=token, auth=token is not None, body=body)

    def error(self, kind, model, params, **extra):
        status = {"unauthorized": 401, "rate_limited": 429, "server_error": 500}.get(kind, 400)
        return status, orjson.dumps({"kind": kind, **extra}), {}, "application/json"

    def completion(self, reply, model, prompt_tokens, filtered, params):
        return orjson.dumps({"text": reply.text, "filtered": filtered}), {"x-toy": "1"}


def toy_register(app, state):
    register_wire(app, state, ToyWire(), [("POST", "/toy/{model}")])


@pytest.fixture(scope="module")
def toy():
    from gateway.emulator import app as app_mod

    orig = app_mod.WIRES
    app_mod.WIRES = (*orig, toy_register)
    try:
        with EmulatorThread() as e:
            yield e
    finally:
        app_mod.WIRES = orig


def call(e, model, body, key="k"):
    h = {"x-key": key} if key else {}
    r = httpx.post(f"{e.url}/toy/{model}", content=json.dumps(body) if not isinstance(body, bytes) else body,
                   headers=h, timeout=3)
    return r.status_code, r.text


def lines(text):
    return [json.loads(x) for x in text.splitlines()]


def test_toy_wire_gets_core_behaviours(toy):
    assert call(toy, "m", {"prompt": "hi"}) == (200, '{"text":"Hello from m. You said: hi","filtered":false}')
    assert call(toy, "m", {"prompt": "hi"}, key=None)[0] == 401
    assert call(toy, "m", b"{bad")[0] == 400
    toy.set("rl", "rate_limited")
    assert call(toy, "rl", {"prompt": "hi", "stream": True}) == (429, '{"kind":"rate_limited"}')
    toy.set("cw", "healthy:context_window=1")
    assert json.loads(call(toy, "cw", {"prompt": "a b"})[1]) == {"kind": "context_exceeded", "window": 1, "used": 2}
    toy.set("s", "healthy:words=3")
    evs = lines(call(toy, "s", {"stream": True})[1])
    assert evs[0] == {"start": None} and [e["text"] for e in evs[1:4]] == ["w1", " w2", " w3"]
    assert evs[4] == {"finish": "stop", "total": 3} and evs[5] == {"end": True}
    toy.set("se", "stream_error:after=1,words=3")
    assert call(toy, "se", {"stream": True})[1].endswith('{"i":0,"text":"w1","args":null}\n{"error":"boom"}\n')
    toy.set("g", "garbage:after=0")
    assert call(toy, "g", {"stream": True})[1].count("{nope") == 20
    toy.set("md", "missing_done")
    assert '"end"' not in call(toy, "md", {"stream": True})[1]
    toy.set("cf", "content_filter")
    assert lines(call(toy, "cf", {"stream": True})[1])[1]["finish"] == "content_filter"
    tool = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}
    evs = lines(call(toy, "t", {"stream": True, "prompt": "x", "tools": [tool]})[1])
    assert evs[0] == {"start": "f"} and json.loads(evs[1]["args"] + evs[2]["args"]) == {"a": "example"}
    assert evs[3]["finish"] == "tool_calls"
    log = toy.attempts()
    assert {a["wire"] for a in log} == {"toy"} and log[0]["path"] == "/toy/m" and log[0]["tokens_sent"] == 6


def test_default_wires_still_openai():
    assert any(getattr(h, "__module__", "").endswith("openai_wire") for h in WIRES)
    assert EmulatorState().behaviour_for("x").name == "healthy"


def test_toy_wire_gets_the_misbehaviours(toy):
    import time

    toy.set("fl", "flap:down=0.3s")
    assert call(toy, "fl", {"prompt": "hi"})[0] == 400  # the toy maps "overloaded" to 400
    time.sleep(0.35)
    assert call(toy, "fl", {"prompt": "hi"})[0] == 200
    toy.set("tr", "trickle:delay=0.01")
    t0 = time.monotonic()
    status, text = call(toy, "tr", {"prompt": "hi"})
    assert status == 200 and json.loads(text)["text"].startswith("Hello") and time.monotonic() - t0 >= 0.3
    tool = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}
    toy.set("tc", "tool_cut:after=2")
    with pytest.raises(httpx.HTTPError):  # the connection is aborted inside the arguments
        call(toy, "tc", {"stream": True, "prompt": "x", "tools": [tool]})
    (att,) = toy.attempts("tc")
    assert att["tokens_sent"] == 2
    toy.set("hg", "hang:delay=5")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{toy.url}/toy/hg", json={"prompt": "x"}, headers={"x-key": "k"}, timeout=0.3)
    toy.set("rl1", "rate_limited:n=1")
    assert [call(toy, "rl1", {"prompt": "hi"})[0] for _ in range(2)] == [429, 200]


def test_misbehaving_continuations():
    from gateway.emulator.content import CONTINUE_MARKER, misbehaving_continuation

    base = [{"role": "user", "content": "q"}]
    prefill = {"messages": [*base, {"role": "assistant", "content": "w1 w2 w3 w4"}]}
    instructed = {"messages": [*base, {"role": "assistant", "content": "w1 w2 w3 w4"},
                               {"role": "user", "content": CONTINUE_MARKER + "."}]}
    p = {"words": 8}
    for req in (prefill, instructed):
        assert misbehaving_continuation("restart_on_continue", req, "m", p).text == "w1 w2 w3 w4 w5 w6 w7 w8"
        assert misbehaving_continuation("repeat_tail", req, "m", p).text == " w2 w3 w4 w5 w6 w7 w8"
        assert misbehaving_continuation("restart_different", req, "m", p).text == (
            "Let me start again. w1 w2 alt-w3 w4 w5 alt-w6 w7 w8")
    sentences = {"messages": [*base, {"role": "assistant", "content": "One. Two three."}]}
    assert misbehaving_continuation("repeat_tail", sentences, "m", {"text": "One. Two three. Four."}).text == (
        " Two three. Four.")
    assert misbehaving_continuation("restart_on_continue", {"messages": base}, "m", p) is None
