"""End to end: the openai SDK -> a real gateway on loopback -> the provider emulator."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import GATEWAY_KEY, base_config

MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]


def _raw(client: openai.OpenAI, **kw):
    return client.chat.completions.with_raw_response.create(messages=kw.pop("messages", MSG), **kw)


def test_healthy_primary_serves_with_headers(emu, make_gateway, client_for):
    gw = make_gateway(base_config(emu.url))
    raw = _raw(client_for(gw), model="security")
    resp = raw.parse()
    assert resp.model == "fable-5"
    assert "Hello from fable-5" in resp.choices[0].message.content
    assert raw.headers["x-gateway-route"] == "security-review"
    assert raw.headers["x-gateway-model"] == "fable-5"
    assert raw.headers["x-gateway-attempts"] == "fable-5=ok"
    assert raw.headers["x-request-id"]
    assert resp.usage.total_tokens > 0
    # The upstream received the vendor's model id and our provider key, not the gateway key.
    att = emu.attempts("fable-5")
    assert len(att) == 1 and att[0]["auth"] is True


def test_match_rule_and_default_route(emu, make_gateway, client_for):
    gw = make_gateway(base_config(emu.url))
    client = client_for(gw)
    r1 = _raw(client, model="auto", messages=[{"role": "user", "content": "Triage CVE-2024-12345 for us"}])
    assert r1.headers["x-gateway-route"] == "security-review"
    r2 = _raw(client, model="auto", messages=[{"role": "user", "content": "Write a haiku"}])
    assert r2.headers["x-gateway-route"] == "general"
    assert r2.parse().model == "gpt-5"
    r3 = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-gateway-route": "security"})
    assert r3.headers["x-gateway-route"] == "security-review"


def test_configured_model_name_gets_its_routes_fallbacks(emu, make_gateway, client_for):
    emu.set("fable-5", "withdrawn")
    gw = make_gateway(base_config(emu.url))
    raw = _raw(client_for(gw), model="fable-5")
    assert raw.headers["x-gateway-attempts"] == "fable-5=withdrawn,gpt-5=ok"


@pytest.mark.parametrize(
    "behaviour,kind",
    [
        ("withdrawn", "withdrawn"),
        ("access_revoked", "access_denied"),
        ("no_model_access", "access_denied"),
        ("region_blocked", "access_denied"),
        ("quota", "access_denied"),
        ("rate_limited:retry_after=5", "rate_limited"),
    ],
)
def test_primary_failure_fails_over(emu, make_gateway, client_for, behaviour, kind):
    emu.set("fable-5", behaviour)
    gw = make_gateway(base_config(emu.url))
    raw = _raw(client_for(gw), model="security-review")
    assert raw.parse().model == "gpt-5"
    assert raw.headers["x-gateway-attempts"] == f"fable-5={kind},gpt-5=ok"
    assert len(emu.attempts("fable-5")) == 1  # no retry on the same model for these kinds
    metrics = httpx.get(gw.url + "/metrics").text
    assert (f'gateway_failovers_total{{from_model="fable-5",reason="{kind}",route="security-review",'
            f'to_model="gpt-5"}} 1.0') in metrics


def test_transient_is_retried_then_fails_over(emu, make_gateway, client_for):
    emu.set("fable-5", "overloaded")
    gw = make_gateway(base_config(emu.url))
    raw = _raw(client_for(gw), model="security")
    assert raw.headers["x-gateway-attempts"] == "fable-5=transient,fable-5=transient,gpt-5=ok"
    assert len(emu.attempts("fable-5")) == 2


def test_failing_once_is_absorbed_by_a_retry(emu, make_gateway, client_for):
    emu.set("fable-5", "failing_once")
    gw = make_gateway(base_config(emu.url))
    raw = _raw(client_for(gw), model="security")
    assert raw.parse().model == "fable-5"
    assert raw.headers["x-gateway-attempts"] == "fable-5=transient,fable-5=ok"


def test_connection_reset_fails_over(emu, make_gateway, client_for):
    emu.set("fable-5", "reset")
    gw = make_gateway(base_config(emu.url))
    raw = _raw(client_for(gw), model="security")
    assert raw.parse().model == "gpt-5"
    assert raw.headers["x-gateway-attempts"].endswith("gpt-5=ok")


def test_withdrawn_model_is_not_called_again_until_recheck(emu, make_gateway, client_for):
    emu.set("fable-5", "withdrawn")
    gw = make_gateway(base_config(emu.url))
    client = client_for(gw)
    _raw(client, model="security")
    for _ in range(3):
        raw = _raw(client, model="security")
        assert raw.headers["x-gateway-attempts"] == "fable-5=skipped:withdrawn,gpt-5=ok"
    assert len(emu.attempts("fable-5")) == 1
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_model_available{model="fable-5",provider="vendor-a"} 0.0' in metrics
    gw.clock.advance(15 * 60 + 1)  # the withdrawn_recheck time passes
    emu.set("fable-5", "healthy")
    raw = _raw(client, model="security")
    assert raw.headers["x-gateway-attempts"] == "fable-5=ok"
    assert len(emu.attempts("fable-5")) == 2


def test_rate_limit_cools_model_for_retry_after(emu, make_gateway, client_for):
    emu.set("fable-5", "rate_limited:retry_after=30")
    gw = make_gateway(base_config(emu.url))
    client = client_for(gw)
    _raw(client, model="security")
    raw = _raw(client, model="security")
    assert raw.headers["x-gateway-attempts"] == "fable-5=skipped:cooling,gpt-5=ok"
    gw.clock.advance(31)
    raw = _raw(client, model="security")
    assert raw.headers["x-gateway-attempts"].startswith("fable-5=rate_limited")


def test_all_rate_limited_is_429_with_retry_after(emu, make_gateway, client_for):
    for m in ("fable-5", "gpt-5", "qwen-coder"):
        emu.set(m, "rate_limited:retry_after=7")
    gw = make_gateway(base_config(emu.url))
    with pytest.raises(openai.RateLimitError) as ei:
        _raw(client_for(gw), model="security")
    assert ei.value.response.headers["retry-after"] == "7"
    assert "fable-5: rate_limited" in ei.value.message


def test_all_withdrawn_is_503_listing_attempts(emu, make_gateway, client_for):
    for m in ("fable-5", "gpt-5", "qwen-coder"):
        emu.set(m, "withdrawn")
    gw = make_gateway(base_config(emu.url))
    with pytest.raises(openai.InternalServerError) as ei:
        _raw(client_for(gw), model="security")
    assert ei.value.status_code == 503
    body = ei.value.body
    assert body["code"] == "no_model_available"
    assert "fable-5: withdrawn" in body["message"] and "qwen-coder: withdrawn" in body["message"]


def test_context_too_long_skips_to_a_larger_window(emu, make_gateway, client_for):
    # fable-5 (window 200) rejects; qwen-coder (window 100) must be skipped without a call; gpt-5 (400) serves.
    cfg = base_config(emu.url)
    cfg["routes"]["security-review"]["models"] = ["fable-5", "qwen-coder", "gpt-5"]
    emu.set("fable-5", "context_exceeded")
    gw = make_gateway(cfg)
    raw = _raw(client_for(gw), model="security")
    assert raw.headers["x-gateway-attempts"] == "fable-5=context_too_long,qwen-coder=skipped:context_window,gpt-5=ok"
    assert emu.attempts("qwen-coder") == []


def test_prompt_too_long_for_every_model_is_a_400_not_a_502(emu, make_gateway, client_for):
    """Every model said the prompt is too long (or is smaller than one that did): the caller's fault, as OpenAI
    reports it (400 context_length_exceeded), not a 502 that the openai SDK retries."""
    import openai
    import pytest

    for m in ("fable-5", "gpt-5", "qwen-coder"):
        emu.set(m, "context_exceeded")
    gw = make_gateway(base_config(emu.url))
    with pytest.raises(openai.BadRequestError) as ei:
        client_for(gw).chat.completions.create(model="security", messages=MSG)
    assert ei.value.code == "context_length_exceeded"
    assert [len(emu.attempts(m)) for m in ("fable-5", "gpt-5", "qwen-coder")] == [1, 1, 0]


def test_bad_request_is_returned_without_failover(emu, make_gateway, client_for):
    emu.set("fable-5", "invalid_prompt")
    gw = make_gateway(base_config(emu.url))
    with pytest.raises(openai.BadRequestError) as ei:
        _raw(client_for(gw), model="security")
    assert ei.value.code == "invalid_prompt"
    assert emu.attempts("gpt-5") == []


def test_tool_calls_and_json_mode_pass_through(emu, make_gateway, client_for):
    gw = make_gateway(base_config(emu.url))
    client = client_for(gw)
    tools = [{"type": "function", "function": {"name": "lookup_cve", "parameters": {
        "type": "object", "properties": {"cve": {"type": "string"}}, "required": ["cve"]}}}]
    r = client.chat.completions.create(model="security", messages=MSG, tools=tools, tool_choice="auto")
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup_cve" and '"cve"' in call.function.arguments
    r = client.chat.completions.create(model="general", messages=MSG, response_format={"type": "json_object"})
    assert r.choices[0].message.content.startswith("{")
    sent = emu.attempts("gpt-5")[-1]["request"]
    assert sent["response_format"] == {"type": "json_object"} and sent["model"] == "gpt-5"


def test_streaming_fails_over_before_first_token(emu, make_gateway, client_for):
    emu.set("fable-5", "withdrawn")
    gw = make_gateway(base_config(emu.url))
    stream = client_for(gw).chat.completions.create(model="security", messages=MSG, stream=True,
                                                    stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from gpt-5")
    assert all(c.model == "gpt-5" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_stream_headers_show_the_failover(emu, make_gateway):
    emu.set("fable-5", "access_revoked")
    gw = make_gateway(base_config(emu.url))
    with httpx.stream("POST", gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                      json={"model": "security", "messages": MSG, "stream": True}) as r:
        body = r.read().decode()
    assert r.headers["x-gateway-attempts"] == "fable-5=access_denied,gpt-5=ok"
    assert body.rstrip().endswith("data: [DONE]")


def test_stream_cut_after_commit_ends_with_error_not_done(emu, make_gateway, client_for):
    # With continuation off (on_stream_cut: error) or nothing left to continue on, a cut is an error event.
    emu.set("fable-5", "stream_cut:after=3")
    cfg = base_config(emu.url)
    cfg["routes"]["security-review"]["on_stream_cut"] = "error"
    gw = make_gateway(cfg)
    stream = client_for(gw).chat.completions.create(model="security", messages=MSG, stream=True)
    got = []
    with pytest.raises(openai.APIError) as ei:
        for c in stream:
            got.append(c)
    assert got, "some content arrived before the cut"
    assert "failed after it started" in str(ei.value.message)
    with httpx.stream("POST", gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                      json={"model": "security", "messages": MSG, "stream": True}) as r:
        body = r.read().decode()
    assert "[DONE]" not in body and '"error"' in body


def test_slow_first_token_fails_over(emu, make_gateway, client_for):
    cfg = base_config(emu.url)
    cfg["failover"]["timeouts"]["first_token"] = "300ms"
    emu.set("fable-5", "slow_first_token:delay=3")
    gw = make_gateway(cfg)
    chunks = list(client_for(gw).chat.completions.create(model="security", messages=MSG, stream=True))
    assert chunks[-1].model == "gpt-5"
