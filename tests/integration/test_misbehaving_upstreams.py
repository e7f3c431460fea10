"""Failover that holds when upstreams misbehave (issue 9): hung and trickling non-streaming answers, continuations
that repeat or restart, prefill rejections, cuts inside tool calls, flapping primaries, short Retry-After, and
capabilities a model lacks. Each test asserts what the client received (openai SDK, or raw SSE read with httpx
as a minimal client would) and what each emulated upstream saw."""

from __future__ import annotations

import time

import httpx
import openai
import pydantic
import pytest

from tests.conftest import GATEWAY_KEY, base_config

MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]
WORDS = " ".join(f"w{i}" for i in range(1, 13))
TOOLS = [{"type": "function", "function": {"name": "lookup_cve", "parameters": {
    "type": "object", "properties": {"cve": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["cve", "year"]}}}]


def _cfg(emu, **timeouts):
    cfg = base_config(emu.url)
    cfg["failover"]["timeouts"].update(timeouts)
    return cfg


def _with_claude(cfg, emu, chain):
    cfg["providers"]["claude"] = {"kind": "anthropic", "base_url": emu.url, "api_key": "sk-ant-test-123456",
                                  "vendor": "Anthropic", "jurisdiction": "US"}
    cfg["models"]["claude-x"] = {"provider": "claude", "model": "claude-x", "context_window": 1000}
    cfg["routes"]["security-review"]["models"] = chain
    return cfg


def _stream(client, **kw):
    chunks = list(client.chat.completions.create(model="security", messages=MSG, stream=True, **kw))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def _raw_stream(gw, **body):
    payload = {"model": "security", "messages": MSG, "stream": True, **body}
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=payload, timeout=20,
                      headers={"authorization": f"Bearer {GATEWAY_KEY}"}) as r:
        return r, r.read().decode()


def _once_each(text):
    assert " ".join(text.split()) == WORDS, text


# -- non-streaming gets the streaming protection ---------------------------------------------------------------
@pytest.mark.parametrize("behaviour", ["hang", "trickle:delay=0.2"])
def test_hung_or_trickling_primary_is_failed_over_on_non_streaming(emu, make_gateway, client_for, behaviour):
    emu.set("fable-5", behaviour)
    gw = make_gateway(_cfg(emu, first_token="400ms", total="10s"))
    t0 = time.monotonic()
    raw = client_for(gw).chat.completions.with_raw_response.create(model="security", messages=MSG)
    elapsed = time.monotonic() - t0
    resp = raw.parse()
    assert resp.model == "gpt-5" and resp.choices[0].message.content.startswith("Hello from gpt-5")
    assert raw.headers["x-gateway-attempts"] == "fable-5=transient,gpt-5=ok"
    assert 0.4 <= elapsed < 3.0, elapsed  # about first_token, not timeouts.total (10 s)
    assert len(emu.attempts("fable-5")) == 1  # a slow model is not retried


@pytest.mark.parametrize("fault,fable_calls", [("stream_cut:after=5", 2), ("stream_stall:after=5,delay=10", 1)])
def test_non_streaming_cut_or_stall_mid_answer_restarts_cleanly_on_the_next_model(emu, make_gateway, client_for,
                                                                                  fault, fable_calls):
    emu.set("fable-5", fault + ",words=12")
    emu.set("gpt-5", "healthy:words=12")
    gw = make_gateway(_cfg(emu, idle="500ms"))
    t0 = time.monotonic()
    raw = client_for(gw).chat.completions.with_raw_response.create(model="security", messages=MSG)
    resp = raw.parse()
    assert resp.model == "gpt-5" and resp.choices[0].message.content == WORDS, raw.headers["x-gateway-attempts"]
    assert resp.usage.completion_tokens == 12 and time.monotonic() - t0 < 3  # about idle, not the 10 s stall
    # A cut is retried once (transient); a stall is a slow model and is not.
    assert len(emu.attempts("fable-5")) == fable_calls and len(emu.attempts("gpt-5")) == 1


def test_a_non_streaming_answer_that_keeps_flowing_past_the_deadline_is_cut_at_the_deadline(emu, make_gateway):
    # Each gap is well under idle, but the whole answer takes ~4.5 s: `total` (1 s) bounds a non-streaming request.
    emu.set("fable-5", "healthy:words=30,token_delay=0.15")
    gw = make_gateway(_cfg(emu, first_token="500ms", idle="500ms", total="1s"))
    t0 = time.monotonic()
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "security", "messages": MSG}, timeout=20,
                   headers={"authorization": f"Bearer {GATEWAY_KEY}"})
    elapsed = time.monotonic() - t0
    assert r.status_code == 502 and r.json()["error"]["code"] == "all_models_failed", r.text
    assert r.headers["x-gateway-attempts"].startswith("fable-5=transient,gpt-5=skipped:deadline")
    assert 0.9 <= elapsed < 2.5, elapsed


def test_a_model_never_contacted_is_not_recorded_as_failed(emu, make_gateway):
    emu.set("fable-5", "hang")
    gw = make_gateway(_cfg(emu, first_token="5s", total="400ms"))
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "security", "messages": MSG}, timeout=10,
                   headers={"authorization": f"Bearer {GATEWAY_KEY}"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "all_models_failed"
    assert r.headers["x-gateway-attempts"] == "fable-5=transient,gpt-5=skipped:deadline,qwen-coder=skipped:deadline"
    assert emu.attempts("gpt-5") == [] and emu.attempts("qwen-coder") == []


def test_direct_non_streaming_mode_is_one_request(emu, make_gateway, client_for):
    cfg = _cfg(emu)
    cfg["failover"]["non_streaming"] = "direct"
    gw = make_gateway(cfg)
    resp = client_for(gw).chat.completions.create(model="security", messages=MSG)
    assert resp.model == "fable-5"
    assert emu.attempts("fable-5")[-1]["stream"] is False


def test_a_stream_with_n_choices_ends_only_when_every_choice_finished(emu, make_gateway, client_for):
    # Choice 0 finishes first (its own finish chunk) while choice 1 still has a word to send.
    emu.set("fable-5", "healthy:words=6,token_delay=0.05")
    gw = make_gateway(_cfg(emu))
    chunks = list(client_for(gw).chat.completions.create(model="security", messages=MSG, stream=True, n=2))
    text = {0: "", 1: ""}
    finish = {}
    for c in chunks:
        for ch in c.choices:
            text[ch.index] += ch.delta.content or ""
            if ch.finish_reason:
                finish[ch.index] = ch.finish_reason
    assert text == {0: "w1 w2 w3 w4 w5 w6", 1: "w1 w2 w3 w4 w5 w6 more"} and finish == {0: "stop", 1: "stop"}


def test_a_cut_stream_with_n_choices_is_not_continued(emu, make_gateway):
    # The continuation prefill can carry one choice's text only: the others would be spliced.
    emu.set("fable-5", "stream_cut:after=3,words=12")
    gw = make_gateway(_cfg(emu))
    r, body = _raw_stream(gw, n=2)
    assert "[DONE]" not in body and '"stream_interrupted"' in body
    assert emu.attempts("gpt-5") == []


# -- continuations never splice ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", ["stream_cut:after=4,words=12", "stream_stall:after=4,delay=10,words=12"])
@pytest.mark.parametrize("fallback", ["restart_on_continue:words=12", "repeat_tail:words=12"])
def test_a_continuation_that_repeats_is_forwarded_once(emu, make_gateway, client_for, cut, fallback):
    emu.set("fable-5", cut)
    emu.set("gpt-5", fallback)
    gw = make_gateway(_cfg(emu, idle="300ms"))
    text, chunks = _stream(client_for(gw))
    _once_each(text)
    assert {c.model for c in chunks} == {"fable-5", "gpt-5"}
    # The continuation request asked to continue; the model repeated anyway, and the gateway dropped the repeat.
    assert emu.attempts("gpt-5")[-1]["request"]["messages"][-1]["content"].startswith("Continue exactly where")


def test_a_continuation_that_restarts_in_other_words_ends_the_stream_with_an_error(emu, make_gateway, client_for):
    emu.set("fable-5", "stream_cut:after=4,words=12")
    emu.set("gpt-5", "restart_different:words=12")
    gw = make_gateway(_cfg(emu))
    with pytest.raises(openai.APIError):
        _stream(client_for(gw))
    r, body = _raw_stream(gw)
    assert "[DONE]" not in body and '"stream_interrupted"' in body and "restarted the answer" in body
    assert r.headers["x-gateway-attempts"].startswith("fable-5=ok")
    assert "alt-" not in body and "start again" not in body  # nothing of the restarted answer was forwarded
    sent = "".join(line for line in body.split("\n") if '"content":"' in line)
    assert sent.count('"w1"') == 1


@pytest.mark.parametrize("after", [2, 3])
def test_a_restart_after_only_a_few_words_sent_is_not_spliced(emu, make_gateway, after):
    emu.set("fable-5", f"stream_cut:after={after},words=12")
    emu.set("gpt-5", "restart_different:words=12")
    gw = make_gateway(_cfg(emu))
    _, body = _raw_stream(gw)
    assert "[DONE]" not in body and '"stream_interrupted"' in body
    assert "alt-" not in body and "start again" not in body


def test_a_fallback_that_rejects_prefill_is_asked_with_the_instruction_and_remembered(emu, make_gateway,
                                                                                        client_for):
    cfg = _with_claude(_cfg(emu), emu, ["fable-5", "claude-x"])
    emu.set("fable-5", "stream_cut:after=4,words=12")
    emu.set("claude-x", "reject_prefill:words=12")
    gw = make_gateway(cfg)
    text, _ = _stream(client_for(gw))
    _once_each(text)
    first, second = emu.attempts("claude-x")
    assert first["status"] == 400 and first["request"]["messages"][-1]["role"] == "assistant"
    assert second["status"] == 200 and second["request"]["messages"][-1]["role"] == "user"
    # Remembered: the next continuation goes straight to the instruction form.
    emu.state.clear_attempts()
    text, _ = _stream(client_for(gw))
    _once_each(text)
    (only,) = emu.attempts("claude-x")
    assert only["status"] == 200 and only["request"]["messages"][-1]["role"] == "user"


# -- tool calls are committed whole -------------------------------------------------------------------------------
@pytest.mark.parametrize("after", [0, 3])
def test_a_cut_inside_tool_call_arguments_fails_over_transparently(emu, make_gateway, client_for, after):
    emu.set("fable-5", f"tool_cut:after={after}")
    gw = make_gateway(_cfg(emu))
    chunks = list(client_for(gw).chat.completions.create(model="security", messages=MSG, tools=TOOLS, stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert {c.model for c in chunks} == {"gpt-5"} and calls[0].function.name == "lookup_cve"
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"cve":"example","year":1}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # A minimal SSE client sees one clean stream too.
    r, body = _raw_stream(gw, tools=TOOLS)
    assert body.count("data: [DONE]") == 1 and '"error"' not in body
    # Non-streaming: the same cut is a clean failover as well.
    resp = client_for(gw).chat.completions.create(model="security", messages=MSG, tools=TOOLS)
    assert resp.choices[0].message.tool_calls[0].function.arguments == '{"cve":"example","year":1}'


# -- the breaker comes back quickly --------------------------------------------------------------------------------
def test_a_recovered_primary_serves_again_within_one_cooldown(emu, make_gateway, client_for):
    cfg = _cfg(emu)
    cfg["failover"].update(retries=0, breaker={"failures": 2, "cooldown": "300ms", "max_cooldown": "5s"})
    emu.set("fable-5", "flap:down=0.5s")
    gw = make_gateway(cfg)
    client = client_for(gw)
    t0 = time.monotonic()
    served = []
    while time.monotonic() - t0 < 4 and (not served or served[-1][1] != "fable-5"):
        served.append((time.monotonic() - t0, client.chat.completions.create(model="security", messages=MSG).model))
        time.sleep(0.05)
    back = next(t for t, m in served if m == "fable-5")
    # Down for 0.5 s; the breaker opened after 2 failures (300 ms), and one failed probe doubles it (600 ms).
    assert back < 0.5 + 0.6 + 1.0, served
    down = [a for a in emu.attempts("fable-5") if a["status"] == 503]
    assert 2 <= len(down) <= 4  # two to open it, then one probe per half-open, never a stampede


# -- short Retry-After is waited out -------------------------------------------------------------------------------
def test_a_short_retry_after_is_waited_out_on_the_primary(emu, make_gateway, client_for):
    emu.set("fable-5", "rate_limited:retry_after=0.3,n=1")
    gw = make_gateway(_cfg(emu))
    t0 = time.monotonic()
    raw = client_for(gw).chat.completions.with_raw_response.create(model="security", messages=MSG)
    assert raw.parse().model == "fable-5" and time.monotonic() - t0 >= 0.3
    assert raw.headers["x-gateway-attempts"] == "fable-5=rate_limited,fable-5=ok"
    a, b = emu.attempts("fable-5")
    assert b["time"] - a["time"] >= 0.3


def test_a_long_retry_after_moves_to_the_next_model_at_once(emu, make_gateway, client_for):
    emu.set("fable-5", "rate_limited:retry_after=5")
    gw = make_gateway(_cfg(emu))
    t0 = time.monotonic()
    resp = client_for(gw).chat.completions.create(model="security", messages=MSG)
    assert resp.model == "gpt-5" and time.monotonic() - t0 < 1.0
    assert len(emu.attempts("fable-5")) == 1


# -- capability-aware candidates ------------------------------------------------------------------------------------
class Finding(pydantic.BaseModel):
    title: str
    severity: int


def test_structured_output_on_an_anthropic_model_is_enforced_by_a_forced_tool(emu, make_gateway, client_for):
    gw = make_gateway(_with_claude(_cfg(emu), emu, ["claude-x", "gpt-5"]))
    client = client_for(gw)
    parsed = client.chat.completions.parse(model="security", messages=MSG, response_format=Finding)
    assert parsed.model == "claude-x"
    assert parsed.choices[0].message.parsed == Finding(title="example", severity=1)
    sent = emu.attempts("claude-x")[-1]["request"]
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert sent["tools"][0]["input_schema"]["required"] == ["title", "severity"]
    # Streaming: the JSON arrives as content.
    text, _ = _stream(client, response_format={"type": "json_object"})
    assert text.startswith("{") and text.endswith("}")


def test_structured_output_on_an_anthropic_model_with_structured_outputs_is_sent_natively(emu, make_gateway,
                                                                                          client_for):
    cfg = _with_claude(_cfg(emu), emu, ["claude-x", "gpt-5"])
    cfg["providers"]["claude"]["structured_outputs"] = True
    gw = make_gateway(cfg)
    parsed = client_for(gw).chat.completions.parse(model="security", messages=MSG, response_format=Finding)
    assert parsed.model == "claude-x" and parsed.choices[0].message.parsed == Finding(title="example", severity=1)
    sent = emu.attempts("claude-x")[-1]["request"]
    assert sent["output_config"]["format"]["schema"]["required"] == ["title", "severity"] and "tools" not in sent


def test_a_model_lacking_a_capability_is_skipped_without_contact(emu, make_gateway, client_for):
    gw = make_gateway(_with_claude(_cfg(emu), emu, ["claude-x", "gpt-5"]))
    raw = client_for(gw).chat.completions.with_raw_response.create(model="security", messages=MSG, n=2)
    assert emu.attempts("gpt-5")[-1]["request"]["n"] == 2
    resp = raw.parse()
    assert resp.model == "gpt-5"
    assert raw.headers["x-gateway-attempts"] == "claude-x=skipped:unsupported:n,gpt-5=ok"
    assert emu.attempts("claude-x") == []


def test_no_model_with_the_capability_is_a_400_naming_the_parameter(emu, make_gateway, client_for):
    gw = make_gateway(_with_claude(_cfg(emu), emu, ["claude-x"]))
    with pytest.raises(openai.BadRequestError) as ei:
        client_for(gw).chat.completions.create(model="security", messages=MSG, logprobs=True)
    assert ei.value.body["param"] == "logprobs" and ei.value.body["code"] == "unsupported_parameter"
    assert emu.attempts("claude-x") == []
