"""Streaming that never lies (issue 4): first-token and stall limits, mid-stream continuation on the next model,
clean ends, honest usage, cancellation. Each test asserts what the client received and what each emulated model
saw."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.conftest import GATEWAY_KEY, base_config

MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]
WORDS = " ".join(f"w{i}" for i in range(1, 13))


def _cfg(emu, **timeouts):
    cfg = base_config(emu.url)
    cfg["failover"]["timeouts"].update(timeouts)
    return cfg


def _stream_text(client, **kw):
    chunks = list(client.chat.completions.create(model=kw.pop("model", "security"), messages=MSG, stream=True,
                                                 **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def _raw_stream(gw, **body):
    payload = {"model": "security", "messages": MSG, "stream": True, **body}
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=payload, timeout=20,
                      headers={"authorization": f"Bearer {GATEWAY_KEY}"}) as r:
        return r, r.read().decode()


def test_late_first_token_fails_over_within_the_limit(emu, make_gateway, client_for):
    emu.set("fable-5", "slow_first_token:delay=5")
    gw = make_gateway(_cfg(emu, first_token="300ms"))
    t0 = time.monotonic()
    text, chunks = _stream_text(client_for(gw))
    elapsed = time.monotonic() - t0
    assert chunks[-1].model == "gpt-5" and text.startswith("Hello from gpt-5")
    assert 0.3 <= elapsed < 2.0, elapsed  # about the limit, not the upstream's 5 s delay
    assert len(emu.attempts("fable-5")) == 1  # abandoned, not retried: a slow model stays slow


def test_stream_upstream_that_never_sends_headers_is_abandoned_at_first_token(emu, make_gateway, client_for):
    """The first-token limit (and the request deadline) must bound the wait for the upstream's response headers
    too, not only the wait for the first event after them: an upstream that accepts the connection and says
    nothing used to hold the request for `idle` (per retry), past `first_token` and even past `total`."""
    emu.set("fable-5", "no_response:delay=10")
    cfg = base_config(emu.url)
    cfg["failover"]["timeouts"].update(first_token="300ms", idle="5s", total="8s")
    gw = make_gateway(cfg)
    t0 = time.monotonic()
    raw = client_for(gw).chat.completions.with_raw_response.create(model="security", messages=MSG, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    elapsed = time.monotonic() - t0
    assert text.startswith("Hello from gpt-5")
    assert raw.headers["x-gateway-attempts"] == "fable-5=transient,gpt-5=ok"  # abandoned, not retried
    assert elapsed < 2.0, elapsed


def test_slow_but_alive_primary_within_the_limit_is_kept(emu, make_gateway, client_for):
    emu.set("fable-5", "slow_first_token:delay=0.2")
    gw = make_gateway(_cfg(emu, first_token="2s"))
    text, chunks = _stream_text(client_for(gw))
    assert chunks[-1].model == "fable-5"


def test_cut_stream_is_continued_by_the_next_model(emu, make_gateway, client_for):
    emu.set("fable-5", "stream_cut:after=4,words=12")
    emu.set("gpt-5", "healthy:words=12")
    gw = make_gateway(_cfg(emu))
    r, body = _raw_stream(gw)
    assert body.count("data: [DONE]") == 1 and '"error"' not in body
    text, chunks = _stream_text(client_for(gw))
    assert " ".join(text.split()) == WORDS
    assert {c.model for c in chunks} == {"fable-5", "gpt-5"}
    # The continuation request carried the text streamed so far (gpt-5 takes no prefill: an instruction).
    sent = emu.attempts("gpt-5")[-1]["request"]["messages"]
    assert sent[-2]["role"] == "assistant" and sent[-2]["content"].strip().startswith("w1 w2")
    assert sent[-1]["role"] == "user" and sent[-1]["content"].startswith("Continue exactly where")


def test_continuation_with_prefill_on_an_anthropic_model(emu, make_gateway, client_for):
    cfg = _cfg(emu)
    cfg["providers"]["claude"] = {"kind": "anthropic", "base_url": emu.url, "api_key": "sk-ant-test-123456",
                                  "vendor": "Anthropic", "jurisdiction": "US"}
    cfg["models"]["claude-x"] = {"provider": "claude", "model": "claude-x", "context_window": 1000}
    cfg["routes"]["security-review"]["models"] = ["fable-5", "claude-x"]
    emu.set("fable-5", "stream_cut:after=5,words=12")
    emu.set("claude-x", "healthy:words=12")
    gw = make_gateway(cfg)
    text, _ = _stream_text(client_for(gw))
    assert " ".join(text.split()) == WORDS
    sent = emu.attempts("claude-x")[-1]["request"]["messages"]
    assert sent[-1]["role"] == "assistant"  # prefill: the answer so far as the last assistant turn


def test_stall_mid_stream_is_a_cut_and_is_continued(emu, make_gateway, client_for):
    emu.set("fable-5", "stream_stall:after=3,delay=10,words=12")
    emu.set("gpt-5", "healthy:words=12")
    gw = make_gateway(_cfg(emu, idle="300ms"))
    t0 = time.monotonic()
    text, _ = _stream_text(client_for(gw))
    assert " ".join(text.split()) == WORDS
    assert time.monotonic() - t0 < 3
    # The gateway stays healthy afterwards.
    emu.set("fable-5", "healthy")
    assert httpx.get(gw.url + "/healthz").status_code == 200


def test_on_stream_cut_error_ends_with_an_error_event(emu, make_gateway, client_for):
    cfg = _cfg(emu)
    cfg["routes"]["security-review"]["on_stream_cut"] = "error"
    emu.set("fable-5", "stream_cut:after=3")
    gw = make_gateway(cfg)
    with pytest.raises(openai.APIError):
        _stream_text(client_for(gw))
    r, body = _raw_stream(gw)
    assert "[DONE]" not in body and '"stream_interrupted"' in body
    assert emu.attempts("gpt-5") == []


def test_malformed_chunk_is_skipped_and_counted(emu, make_gateway, client_for):
    emu.set("fable-5", "malformed_chunk:after=2,words=8")
    gw = make_gateway(_cfg(emu))
    text, chunks = _stream_text(client_for(gw))
    assert " ".join(text.split()) == "w1 w2 w3 w4 w5 w6 w7 w8"
    assert {c.model for c in chunks} == {"fable-5"}
    assert 'gateway_stream_malformed_events_total{model="fable-5"} 1.0' in httpx.get(gw.url + "/metrics").text


def test_missing_done_is_finalised_promptly_with_usage(emu, make_gateway, client_for):
    emu.set("fable-5", "missing_done")
    gw = make_gateway(_cfg(emu))
    t0 = time.monotonic()
    text, chunks = _stream_text(client_for(gw), stream_options={"include_usage": True})
    assert time.monotonic() - t0 < 2
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    r, body = _raw_stream(gw)
    assert body.rstrip().endswith("data: [DONE]")


def test_fallback_rejecting_the_continuation_does_not_mask_the_cut(emu, make_gateway):
    emu.set("fable-5", "stream_cut:after=3")
    emu.set("gpt-5", "invalid_prompt")  # rejects the continuation request with a 400
    emu.set("qwen-coder", "invalid_prompt")
    gw = make_gateway(_cfg(emu))
    r, body = _raw_stream(gw)
    assert "[DONE]" not in body
    assert "stream_interrupted" in body and "invalid_prompt" not in body.split("data: {\"error\"")[1].split("code")[-1]
    assert len(emu.attempts("gpt-5")) == 1 and len(emu.attempts("qwen-coder")) == 1


def test_cut_inside_a_tool_call_fails_over_transparently(emu, make_gateway, client_for):
    # Tool-call deltas are held until the call is complete, so a cut before that is a cut before the commit.
    emu.set("fable-5", "stream_cut:after=1")
    gw = make_gateway(_cfg(emu))
    tools = [{"type": "function", "function": {"name": "lookup_cve", "parameters": {
        "type": "object", "properties": {"cve": {"type": "string"}}, "required": ["cve"]}}}]
    chunks = list(client_for(gw).chat.completions.create(model="security", messages=MSG, tools=tools, stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert {c.model for c in chunks} == {"gpt-5"}
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"cve":"example"}'
    assert len(emu.attempts("fable-5")) == 2 and len(emu.attempts("gpt-5")) == 1  # one retry, then the fallback


def test_client_disconnect_cancels_the_upstream(emu, make_gateway):
    emu.set("fable-5", "healthy:words=200,token_delay=0.05")
    gw = make_gateway(_cfg(emu))
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=10,
                      json={"model": "security", "messages": MSG, "stream": True},
                      headers={"authorization": f"Bearer {GATEWAY_KEY}"}) as r:
        it = r.iter_raw()
        next(it)
        next(it)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        att = emu.attempts("fable-5")
        if att and att[-1].get("done"):
            break
        time.sleep(0.05)
    att = emu.attempts("fable-5")[-1]
    assert att["disconnected"] is True
    assert att["tokens_sent"] < 150  # stopped long before the end of the answer


def test_include_usage_sums_across_a_continuation(emu, make_gateway, client_for):
    emu.set("fable-5", "stream_cut:after=4,words=12")
    emu.set("gpt-5", "healthy:words=12")
    gw = make_gateway(_cfg(emu))
    text, chunks = _stream_text(client_for(gw), stream_options={"include_usage": True})
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    # 4 words from fable-5 (estimated: it was cut before reporting) + 8 from gpt-5 (reported).
    assert usage.completion_tokens >= 8 + 1
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    extra = chunks[-1].model_extra or {}
    assert extra.get("x_gateway", {}).get("served") == ["fable-5", "gpt-5"]


def test_usage_counts_a_continuing_model_that_reports_none(emu, make_gateway, client_for):
    # gpt-5 continues the cut answer but, like older self-hosted servers, ignores include_usage: its part of the
    # answer still counts (by estimate), not only the cut model's.
    emu.set("fable-5", "stream_cut:after=4,words=12")
    emu.set("gpt-5", "healthy:words=12,no_usage=true")
    gw = make_gateway(_cfg(emu))
    text, chunks = _stream_text(client_for(gw), stream_options={"include_usage": True})
    assert " ".join(text.split()) == WORDS
    # fable-5 streamed "w1 w2 w3 w4" (~3 tokens at 4 chars a token), gpt-5 " w5 ... w12" (~6).
    assert chunks[-1].usage.completion_tokens >= 8
