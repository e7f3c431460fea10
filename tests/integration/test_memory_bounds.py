"""Bounded memory per request: upstream bodies are capped (``limits.max_response_bytes``: larger is transient and
fails over), and the text kept for a mid-stream continuation is capped (``limits.continuation_max_bytes``: past it
a cut ends the stream with ``stream_interrupted``)."""

from __future__ import annotations

import httpx

from tests.conftest import GATEWAY_KEY, base_config

MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]
AUTH = {"authorization": f"Bearer {GATEWAY_KEY}"}


def _stream(gw) -> str:
    with httpx.stream("POST", gw.url + "/v1/chat/completions", headers=AUTH, timeout=20,
                      json={"model": "security", "messages": MSG, "stream": True}) as r:
        assert r.status_code == 200
        return r.read().decode()


def test_an_upstream_answer_over_max_response_bytes_fails_over(emu, make_gateway):
    gw = make_gateway(base_config(emu.url, limits={"max_response_bytes": 4000}))
    emu.set("fable-5", "healthy:words=2000")  # ~12 KB of JSON
    emu.set("gpt-5", "healthy:words=5")
    r = httpx.post(gw.url + "/v1/chat/completions", headers=AUTH, json={"model": "security", "messages": MSG},
                   timeout=20)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-model"] == "gpt-5"
    assert r.headers["x-gateway-attempts"].startswith("fable-5=transient")
    assert r.json()["choices"][0]["message"]["content"].split() == ["w1", "w2", "w3", "w4", "w5"]


def test_a_stream_over_max_response_bytes_is_cut_and_continued(emu, make_gateway):
    emu.set("fable-5", "healthy:words=2000")
    emu.set("gpt-5", "healthy:words=2000")
    gw = make_gateway(base_config(emu.url, limits={"max_response_bytes": 40000}))
    body = _stream(gw)
    assert body.count("data: [DONE]") == 1 and '"fable-5"' in body and '"gpt-5"' in body


def test_past_continuation_max_bytes_a_cut_stream_ends_with_stream_interrupted(emu, make_gateway):
    emu.set("fable-5", "stream_cut:after=6,words=12")  # "w1 w2 w3 w4 w5 w6": 17 bytes before the cut
    emu.set("gpt-5", "healthy:words=12")
    gw = make_gateway(base_config(emu.url, limits={"continuation_max_bytes": 10}))
    body = _stream(gw)
    assert '"stream_interrupted"' in body and "[DONE]" not in body
    assert emu.attempts("gpt-5") == []  # nothing to continue from: not asked


def test_under_continuation_max_bytes_the_same_cut_is_continued(emu, make_gateway):
    emu.set("fable-5", "stream_cut:after=6,words=12")
    emu.set("gpt-5", "healthy:words=12")
    gw = make_gateway(base_config(emu.url, limits={"continuation_max_bytes": 1000}))
    body = _stream(gw)
    assert body.count("data: [DONE]") == 1 and '"stream_interrupted"' not in body
    assert len(emu.attempts("gpt-5")) == 1
