"""The kill switch and drills through the admin API (and its CLI), persistence across restarts, admin auth."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from gateway.cli import main as cli_main
from gateway.testing import GatewayThread
from tests.conftest import GATEWAY_KEY, base_config

ADMIN_KEY = "gwa-admin-secret-0123456789"
MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]


def admin_config(emu_url: str):
    cfg = base_config(emu_url)
    cfg["admin_keys"] = [{"name": "ops-oncall", "sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}]
    return cfg


def _admin(gw, method: str, path: str, key: str | None = ADMIN_KEY, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, gw.url + path, headers=headers, timeout=10, **kw)


def _chat(gw, model="security", stream=False) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                      json={"model": model, "messages": MSG, "stream": stream}, timeout=10)


def _withdraw(gw, **over):
    body = {"target": "model", "name": "fable-5", "reason": "Commerce Department directive of 2026-06-12",
            "reference": "BIS-2026-0612", "actor": "jane@corp", "contact": "never", **over}
    return _admin(gw, "POST", "/admin/withdrawals", json=body)


def test_kill_switch_persists_across_restart_until_reinstated(emu, make_gateway, tmp_path):
    gw = make_gateway(admin_config(emu.url))
    assert _chat(gw).headers["x-gateway-attempts"] == "fable-5=ok"
    r = _withdraw(gw)
    assert r.status_code == 201, r.text
    assert r.json()["models"] == ["fable-5"]
    before = len(emu.attempts("fable-5"))
    r = _chat(gw)
    assert r.status_code == 200
    assert r.headers["x-gateway-attempts"] == "fable-5=skipped:withdrawn_by_operator,gpt-5=ok"
    assert _chat(gw, stream=True).headers["x-gateway-attempts"].startswith("fable-5=skipped:withdrawn_by_operator")
    # contact: never -> no request at all, not even after the recheck time or the breaker cooldown.
    gw.clock.advance(24 * 3600)
    _chat(gw)
    assert len(emu.attempts("fable-5")) == before
    st = _admin(gw, "GET", "/admin/state").json()
    m = st["models"]["fable-5"]
    assert m["state"] == "withdrawn_by_operator"
    assert m["withdrawal"]["actor"] == "jane@corp" and m["withdrawal"]["reference"] == "BIS-2026-0612"
    assert m["withdrawal"]["admin_key"] == "ops-oncall" and m["withdrawal"]["created_at"]
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_model_withdrawn{model="fable-5",provider="vendor-a",reason="operator"} 1.0' in metrics
    assert ADMIN_KEY not in str(st) and GATEWAY_KEY not in str(st) and "sk-provider" not in str(st)

    # Restart on the same config and state dir: still withdrawn.
    gw.stop()
    gw2 = GatewayThread(gw.config_path).start()
    try:
        assert _chat(gw2).headers["x-gateway-attempts"] == "fable-5=skipped:withdrawn_by_operator,gpt-5=ok"
        r = _admin(gw2, "DELETE", "/admin/withdrawals/model/fable-5?actor=jane@corp")
        assert r.status_code == 200, r.text
        assert _chat(gw2).headers["x-gateway-attempts"] == "fable-5=ok"
        events = _admin(gw2, "GET", "/admin/withdrawals").json()["events"]
        assert [e["action"] for e in events[:2]] == ["reinstate", "withdraw"]
    finally:
        gw2.stop()
    # And the reinstatement persisted too.
    gw3 = GatewayThread(gw.config_path).start()
    try:
        assert _chat(gw3).headers["x-gateway-attempts"] == "fable-5=ok"
    finally:
        gw3.stop()


def test_withdraw_a_vendor_and_all_models(emu, make_gateway):
    gw = make_gateway(admin_config(emu.url))
    assert _withdraw(gw, target="vendor", name="VendorB").json()["models"] == ["gpt-5"]
    attempts = _chat(gw, model="general").headers["x-gateway-attempts"]
    assert attempts == "gpt-5=skipped:withdrawn_by_operator,qwen-coder=ok"
    _withdraw(gw, target="provider", name="onprem")
    r = _chat(gw, model="general")
    assert r.status_code == 503 and r.json()["error"]["code"] == "no_model_available"


def test_drill_ends_by_itself(emu, make_gateway):
    gw = make_gateway(admin_config(emu.url))
    r = _admin(gw, "POST", "/admin/drills", json={"target": "model", "name": "fable-5", "duration": "10m"})
    assert r.status_code == 201, r.text
    assert _chat(gw).headers["x-gateway-attempts"] == "fable-5=skipped:drill,gpt-5=ok"
    assert emu.attempts("fable-5") == []
    st = _admin(gw, "GET", "/admin/state").json()
    assert st["models"]["fable-5"]["state"] == "drill"
    assert 'reason="drill"' in httpx.get(gw.url + "/metrics").text
    gw.clock.advance(601)
    assert _chat(gw).headers["x-gateway-attempts"] == "fable-5=ok"
    assert _admin(gw, "GET", "/admin/state").json()["drills"] == []


@pytest.mark.parametrize("key,status,code", [
    (None, 401, "missing_admin_key"),
    (GATEWAY_KEY, 403, "not_an_admin_key"),
    ("gwa-wrong", 401, "invalid_admin_key"),
])
def test_admin_rejects_client_and_missing_keys(emu, make_gateway, key, status, code):
    gw = make_gateway(admin_config(emu.url))
    for method, path in [("GET", "/admin/state"), ("POST", "/admin/withdrawals"), ("POST", "/admin/reload"),
                         ("POST", "/admin/drills"), ("DELETE", "/admin/withdrawals/model/fable-5")]:
        r = _admin(gw, method, path, key=key, json={})
        assert r.status_code == status, (method, path, r.text)
        assert r.json()["error"]["code"] == code
    # And an admin key is not a client key.
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {ADMIN_KEY}"},
                   json={"model": "security", "messages": MSG})
    assert r.status_code == 401


@pytest.mark.parametrize("body,param", [
    ({"target": "planet", "name": "fable-5", "reason": "x"}, "target"),
    ({"target": "model", "name": "fable-6", "reason": "x"}, "name"),
    ({"target": "model", "name": "fable-5"}, "reason"),
    ({"target": "model", "name": "fable-5", "reason": "x", "contact": "sometimes"}, "contact"),
    ({"target": "model", "name": "fable-5", "reason": "x", "extra": 1}, "extra"),
])
def test_bad_admin_input_is_a_4xx_naming_the_field(emu, make_gateway, body, param):
    gw = make_gateway(admin_config(emu.url))
    r = _admin(gw, "POST", "/admin/withdrawals", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    r = _admin(gw, "POST", "/admin/drills", json={"target": "model", "name": "fable-5", "duration": "soon"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "duration"
    r = httpx.post(gw.url + "/admin/withdrawals", content=b"{not json", headers={
        "authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert _admin(gw, "DELETE", "/admin/withdrawals/model/gpt-5").status_code == 404
    assert _admin(gw, "DELETE", "/admin/withdrawals/planet/gpt-5").status_code == 400


def test_cli_withdraw_state_reinstate_drill(emu, make_gateway, capsys):
    gw = make_gateway(admin_config(emu.url))
    base = ["admin", "--url", gw.url, "--admin-key", ADMIN_KEY]
    assert cli_main([*base, "withdraw", "model", "fable-5", "--reason", "directive", "--reference", "BIS-1"]) == 0
    assert "withdrawn: model fable-5" in capsys.readouterr().out
    assert cli_main([*base, "state"]) == 0
    out = capsys.readouterr().out
    assert "withdrawn_by_operator" in out and "directive [BIS-1]" in out
    assert cli_main([*base, "reinstate", "model", "fable-5"]) == 0
    assert cli_main([*base, "drill", "vendor", "VendorB", "--duration", "5m"]) == 0
    assert "drill: vendor VendorB" in capsys.readouterr().out
    assert cli_main(["admin", "--url", gw.url, "--admin-key", GATEWAY_KEY, "state"]) == 1
    assert "HTTP 403" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "not-a-url", "http://[::1"])
def test_cli_admin_with_unreachable_or_bad_url_exits_cleanly(url, capsys):
    rc = cli_main(["admin", "--url", url, "--admin-key", "gwa-secret-value-123", "state"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "gateway admin state" in err and "Traceback" not in err and "gwa-secret-value-123" not in err


def _eventually(gw, attempts: str, what: str) -> None:
    """Poll until the gateway's next answer shows ``attempts`` (bounded: 5 s)."""
    deadline = time.monotonic() + 5
    while _chat(gw).headers["x-gateway-attempts"] != attempts:
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_withdrawal_reaches_every_worker_sharing_the_state_dir(emu, make_gateway):
    # Two gateway processes' worth of state (as with --workers 2, or two replicas on one volume).
    gw1 = make_gateway(admin_config(emu.url), sync_interval=0.1)
    gw2 = make_gateway(admin_config(emu.url), sync_interval=0.1)
    assert _withdraw(gw1).status_code == 201
    _eventually(gw2, "fable-5=skipped:withdrawn_by_operator,gpt-5=ok", "the other worker never saw the withdrawal")
    assert _admin(gw1, "DELETE", "/admin/withdrawals/model/fable-5").status_code == 200
    _eventually(gw2, "fable-5=ok", "the other worker never saw the reinstatement")


def test_admin_explain_uses_the_live_state(emu, make_gateway):
    gw = make_gateway(admin_config(emu.url))
    assert _withdraw(gw).status_code == 201
    req = {"request": {"model": "auto", "messages": [{"role": "user", "content": "Triage CVE-2024-1234"}]},
           "key_name": "tests"}
    r = _admin(gw, "POST", "/admin/explain", json=req)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["route"] == "security-review" and res["route_reason"] == "match:0"
    first = res["candidates"][0]
    assert first["model"] == "fable-5" and first["verdict"] == "skipped" and "jane@corp" in first["why"]
    assert res["candidates"][1]["model"] == "gpt-5"
    bad = _admin(gw, "POST", "/admin/explain", json={**req, "key_name": "nobody"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "key_name"
    assert _admin(gw, "POST", "/admin/explain", key=GATEWAY_KEY, json=req).status_code == 403
    assert _admin(gw, "POST", "/admin/explain", json={"request": "nope"}).status_code == 400


@pytest.mark.parametrize("request_body, param", [
    ({"messages": "x"}, "request.messages"),
    ({"messages": [5]}, "request.messages[0]"),
    ({"model": [[]]}, "request.model"),  # without messages too: the model is looked up by name
    ({"model": {"a": 1}}, "request.model"),
    ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "request.model"),
])
def test_admin_explain_malformed_request_is_a_400_naming_the_field(emu, make_gateway, request_body, param):
    gw = make_gateway(admin_config(emu.url))
    r = _admin(gw, "POST", "/admin/explain", json={"request": request_body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_lifecycle_events_are_json_lines(emu, make_gateway, caplog):
    import json
    import logging

    caplog.set_level(logging.INFO, logger="gateway.lifecycle")
    gw = make_gateway(admin_config(emu.url))
    assert _withdraw(gw).status_code == 201
    assert _admin(gw, "DELETE", "/admin/withdrawals/model/fable-5").status_code == 200
    emu.set("gpt-5", "overloaded")
    for _ in range(2):  # 2 requests x (1 + 1 retry) transient failures: the breaker (3 failures) opens
        _chat(gw, model="general")
    assert _admin(gw, "POST", "/admin/reload").status_code == 200
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.lifecycle"]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["withdrawal", "reinstatement"] and "breaker_opened" in kinds and "reload" in kinds
    w = events[0]
    assert w["actor"] == "jane@corp" and w["admin_key_name"] == "ops-oncall" and w["models"] == ["fable-5"]
    assert ADMIN_KEY not in caplog.text


def test_drill_reaches_every_worker_and_its_early_end_too(emu, make_gateway):
    gw1 = make_gateway(admin_config(emu.url), sync_interval=0.1)
    gw2 = make_gateway(admin_config(emu.url), sync_interval=0.1)
    r = _admin(gw1, "POST", "/admin/drills", json={"target": "model", "name": "fable-5", "duration": "10m",
                                                   "reason": "quarterly rehearsal"})
    assert r.status_code == 201, r.text
    _eventually(gw2, "fable-5=skipped:drill,gpt-5=ok", "the other worker never saw the drill")
    assert _admin(gw1, "DELETE", "/admin/drills/model/fable-5").status_code == 200
    _eventually(gw2, "fable-5=ok", "the other worker never saw the drill end")
