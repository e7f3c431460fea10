"""Caller policy on every hop, key restrictions and rate limits, and the per-route refusal policy, end to end."""

from __future__ import annotations

import hashlib

import httpx
import openai
import pytest

from tests.conftest import base_config

US_KEY, DE_KEY, NONE_KEY, LIMITED_KEY = "gw-us-0123456789", "gw-de-0123456789", "gw-none-012345", "gw-lim-0123456"
MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]
EXPORT = {"name": "export-control-2026-06", "deny": {"models": ["fable-5"]}, "unless": {"jurisdiction": ["US"]},
          "reason": "Commerce Department directive of 2026-06-12"}


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def policy_config(emu_url: str, **overrides):
    cfg = base_config(emu_url, **overrides)
    cfg["keys"] = [
        {"name": "us-team", "sha256": _sha(US_KEY), "attributes": {"jurisdiction": "US", "team": "appsec"}},
        {"name": "berlin", "sha256": _sha(DE_KEY), "attributes": {"jurisdiction": "DE", "site": "berlin"}},
        {"name": "embargoed", "sha256": _sha(NONE_KEY), "attributes": {"site": "embargoed"}},
        {"name": "limited", "sha256": _sha(LIMITED_KEY), "attributes": {"jurisdiction": "US"},
         "routes": ["general"], "models": ["qwen-coder"], "rate_limit": 3},
    ]
    cfg["policies"] = [
        EXPORT,
        {"name": "site-embargo", "deny": {"vendors": ["VendorA", "VendorB", "self-hosted"]},
         "when": {"site": ["embargoed"]}, "reason": "site under embargo"},
    ]
    return cfg


def _raw(client: openai.OpenAI, **kw):
    return client.chat.completions.with_raw_response.create(messages=kw.pop("messages", MSG), **kw)


def test_non_us_caller_never_reaches_denied_model_on_any_hop(emu, make_gateway, client_for):
    gw = make_gateway(policy_config(emu.url))
    de = client_for(gw, api_key=DE_KEY)
    raw = _raw(de, model="security")
    assert raw.parse().model == "gpt-5"
    assert raw.headers["x-gateway-attempts"] == "fable-5=denied:export-control-2026-06,gpt-5=ok"
    # Asking for the denied model by name, and streaming, are denied the same way.
    raw = _raw(de, model="fable-5")
    assert raw.headers["x-gateway-attempts"] == "fable-5=denied:export-control-2026-06,gpt-5=ok"
    chunks = list(de.chat.completions.create(model="security", messages=MSG, stream=True))
    assert chunks[-1].model == "gpt-5"
    # A fallback hop is checked too: the primary fails, the denied model is a fallback.
    emu.set("gpt-5", "withdrawn")
    cfg_route = _raw(de, model="general")
    assert cfg_route.parse().model == "qwen-coder"
    assert emu.attempts("fable-5") == []  # zero calls to the denied model
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_policy_denials_total{policy="export-control-2026-06",route="security-review"} 3.0' in metrics


def test_us_caller_gets_the_primary(emu, make_gateway, client_for):
    gw = make_gateway(policy_config(emu.url))
    raw = _raw(client_for(gw, api_key=US_KEY), model="security")
    assert raw.parse().model == "fable-5"
    assert raw.headers["x-gateway-attempts"] == "fable-5=ok"


def test_caller_with_nothing_allowed_gets_403_naming_the_policy(emu, make_gateway, client_for):
    gw = make_gateway(policy_config(emu.url))
    with pytest.raises(openai.PermissionDeniedError) as ei:
        _raw(client_for(gw, api_key=NONE_KEY), model="security")
    body = ei.value.body
    assert body["code"] == "policy_denied" and body["type"] == "permission_error"
    assert "export-control-2026-06" in body["message"] and "Commerce Department directive" in body["message"]
    assert "site-embargo" in body["message"]
    assert ei.value.response.headers["x-gateway-attempts"].startswith("fable-5=denied:export-control-2026-06")
    assert emu.attempts("fable-5") == emu.attempts("gpt-5") == emu.attempts("qwen-coder") == []


def test_key_route_and_model_restrictions_and_rate_limit(emu, make_gateway, client_for):
    gw = make_gateway(policy_config(emu.url))
    lim = client_for(gw, api_key=LIMITED_KEY)
    with pytest.raises(openai.PermissionDeniedError) as ei:
        _raw(lim, model="security")
    assert ei.value.body["code"] == "route_not_allowed"
    raw = _raw(lim, model="general")
    assert raw.headers["x-gateway-attempts"] == "gpt-5=denied:key-models,qwen-coder=ok"
    _raw(lim, model="general")
    # 3 per minute: the 4th request within the minute is refused with Retry-After.
    with pytest.raises(openai.RateLimitError) as ei:
        _raw(lim, model="general")
    assert ei.value.body["code"] == "rate_limit_exceeded"
    assert int(ei.value.response.headers["retry-after"]) >= 1
    gw.clock.advance(20)  # one request's worth of budget refills
    _raw(lim, model="general")
    # Other keys are not affected.
    _raw(client_for(gw, api_key=US_KEY), model="general")


def test_refusal_default_is_returned_as_is_and_counted(emu, make_gateway, client_for):
    emu.set("fable-5", "content_filter")
    gw = make_gateway(policy_config(emu.url))
    raw = _raw(client_for(gw, api_key=US_KEY), model="security")
    resp = raw.parse()
    assert resp.model == "fable-5" and resp.choices[0].finish_reason == "content_filter"
    assert raw.headers["x-gateway-attempts"] == "fable-5=policy_blocked"
    assert emu.attempts("gpt-5") == []
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_refusals_total{action="return",model="fable-5",route="security-review"} 1.0' in metrics


def test_refusal_failover_route_tries_the_next_model(emu, make_gateway, client_for):
    cfg = policy_config(emu.url)
    cfg["routes"]["security-review"]["on_refusal"] = "failover"
    emu.set("fable-5", "content_filter")
    gw = make_gateway(cfg)
    client = client_for(gw, api_key=US_KEY)
    raw = _raw(client, model="security")
    assert raw.parse().model == "gpt-5"
    assert raw.headers["x-gateway-attempts"] == "fable-5=policy_blocked,gpt-5=ok"
    chunks = list(client.chat.completions.create(model="security", messages=MSG, stream=True))
    assert chunks[-1].model == "gpt-5" and "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_refusals_total{action="failover",model="fable-5",route="security-review"} 2.0' in metrics


def test_refusal_fallbacks_replace_the_rest_of_the_chain(emu, make_gateway, client_for):
    cfg = policy_config(emu.url)
    cfg["routes"]["security-review"].update(on_refusal="failover", refusal_fallbacks=["qwen-coder"])
    emu.set("fable-5", "invalid_prompt")  # a 400 refusal (policy_blocked) this time
    gw = make_gateway(cfg)
    raw = _raw(client_for(gw, api_key=US_KEY), model="security")
    assert raw.headers["x-gateway-attempts"] == "fable-5=policy_blocked,qwen-coder=ok"
    assert emu.attempts("gpt-5") == []


def test_models_list_shows_only_what_the_caller_may_use(emu, make_gateway, client_for):
    gw = make_gateway(policy_config(emu.url))
    us = {m.id for m in client_for(gw, api_key=US_KEY).models.list()}
    assert {"security-review", "security", "general", "fable-5", "gpt-5", "qwen-coder"} <= us
    de = client_for(gw, api_key=DE_KEY).models.list().data
    ids = {m.id for m in de}
    assert "fable-5" not in ids and {"security-review", "gpt-5"} <= ids
    route = next(m for m in de if m.id == "security-review")
    assert route.model_extra["models"] == ["gpt-5", "qwen-coder"]
    lim = {m.id for m in client_for(gw, api_key=LIMITED_KEY).models.list()}
    assert lim == {"general", "qwen-coder"}
    assert {m.id for m in client_for(gw, api_key=NONE_KEY).models.list()} == set()
