"""Timeout precedence, through the real server: ``providers.<name>.timeouts`` (only the fields set there) win
over a route's ``timeouts``, which win over ``failover.timeouts``; the request deadline bounds every attempt."""

from __future__ import annotations

import time

import httpx

from tests.conftest import GATEWAY_KEY, base_config

MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]


def _cfg(emu, provider_timeouts=None, route_timeouts=None, **global_timeouts):
    cfg = base_config(emu.url)
    cfg["failover"]["timeouts"].update(global_timeouts)
    if provider_timeouts is not None:
        cfg["providers"]["vendor-a"]["timeouts"] = provider_timeouts
    if route_timeouts is not None:
        cfg["routes"]["security-review"]["timeouts"] = route_timeouts
    return cfg


def _chat(gw, stream: bool):
    t0 = time.monotonic()
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                   json={"model": "security", "messages": MSG, "stream": stream}, timeout=20)
    r.read()
    return r, time.monotonic() - t0


def test_provider_first_token_beats_the_route_and_global_values(emu, make_gateway):
    emu.set("fable-5", "slow_first_token:delay=5")
    gw = make_gateway(_cfg(emu, provider_timeouts={"first_token": "300ms"}, route_timeouts={"first_token": "8s"},
                           first_token="8s", idle="8s", total="15s"))
    r, elapsed = _chat(gw, stream=True)
    assert r.status_code == 200 and "\"model\":\"gpt-5\"" in r.text
    assert r.headers["x-gateway-attempts"] == "fable-5=transient,gpt-5=ok"
    assert elapsed < 3.0, elapsed


def test_provider_total_bounds_each_attempt_on_it(emu, make_gateway):
    """A non-streamed answer that takes too long on this provider: its own total cuts the attempt; the request
    (total 15 s) goes on to the next model."""
    emu.set("fable-5", "no_response:delay=10")
    gw = make_gateway(_cfg(emu, provider_timeouts={"total": "400ms"}, idle="8s", total="15s"), )
    r, elapsed = _chat(gw, stream=False)
    assert r.status_code == 200 and r.headers["x-gateway-model"] == "gpt-5"
    assert r.headers["x-gateway-attempts"].startswith("fable-5=transient")
    assert elapsed < 4.0, elapsed


def test_a_provider_override_leaves_the_other_fields_to_the_route(emu, make_gateway):
    """Setting only `connect` on a provider must not reset its first_token to the built-in 30 s default: the
    route's 300 ms still applies to it."""
    emu.set("fable-5", "slow_first_token:delay=5")
    gw = make_gateway(_cfg(emu, provider_timeouts={"connect": "1s"}, route_timeouts={"first_token": "300ms"},
                           first_token="8s", total="15s"))
    r, elapsed = _chat(gw, stream=True)
    assert r.headers["x-gateway-attempts"] == "fable-5=transient,gpt-5=ok" and elapsed < 3.0, elapsed


def test_without_overrides_the_route_limit_holds(emu, make_gateway):
    """Control: with no provider override, the route's (long) first_token keeps the slow primary."""
    emu.set("fable-5", "slow_first_token:delay=0.6")
    gw = make_gateway(_cfg(emu, route_timeouts={"first_token": "5s"}, first_token="200ms", total="15s"))
    r, _ = _chat(gw, stream=True)
    assert r.headers["x-gateway-attempts"] == "fable-5=ok"
