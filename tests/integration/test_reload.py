"""Hot reload: POST /admin/reload and the file watcher; an invalid file keeps the running config; state survives;
and reload under continuous load (plain and streaming) fails no client request."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import GATEWAY_KEY
from tests.integration.test_admin import ADMIN_KEY, admin_config

AUTH = {"authorization": f"Bearer {GATEWAY_KEY}"}
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
MSG = [{"role": "user", "content": "hello"}]


def _write(path: Path, cfg_or_text) -> None:
    text = cfg_or_text if isinstance(cfg_or_text, str) else yaml.safe_dump(cfg_or_text, sort_keys=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic, as editors and config management do


def _chat(url: str, model: str = "general") -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", headers=AUTH, json={"model": model, "messages": MSG}, timeout=10)


def test_invalid_reload_keeps_running_config_and_reports_it(emu, make_gateway):
    cfg = admin_config(emu.url)
    cfg["reload"] = {"watch": False}
    gw = make_gateway(cfg)
    emu.set("fable-5", "withdrawn")
    assert _chat(gw.url, "security").headers["x-gateway-attempts"] == "fable-5=withdrawn,gpt-5=ok"
    httpx.post(gw.url + "/admin/withdrawals", headers=ADMIN, json={"target": "model", "name": "qwen-coder",
                                                                    "reason": "test"})
    v0 = httpx.get(gw.url + "/admin/state", headers=ADMIN).json()["config"]["version"]

    bad = dict(cfg, routes={**cfg["routes"], "general": {"models": ["gpt-5", "gpt-6"]}})
    _write(gw.config_path, bad)
    r = httpx.post(gw.url + "/admin/reload", headers=ADMIN)
    assert r.status_code == 422
    assert "routes.general.models[1]: unknown model 'gpt-6'" in r.json()["error"]["message"]
    st = httpx.get(gw.url + "/admin/state", headers=ADMIN).json()
    assert st["config"]["version"] == v0
    assert st["config"]["last_reload"]["result"] == "error"
    assert any("routes.general.models[1]" in e for e in st["config"]["last_reload"]["errors"])
    assert 'gateway_config_reloads_total{result="error"} 1.0' in httpx.get(gw.url + "/metrics").text
    assert _chat(gw.url).status_code == 200

    good = dict(cfg, routes={**cfg["routes"], "general": {"models": ["qwen-coder", "gpt-5"]}})
    _write(gw.config_path, good)
    r = httpx.post(gw.url + "/admin/reload", headers=ADMIN)
    assert r.status_code == 200 and r.json()["reload"]["result"] == "ok"
    # The operator withdrawal and the discovered upstream withdrawal both survive the reload.
    assert _chat(gw.url).headers["x-gateway-attempts"] == "qwen-coder=skipped:withdrawn_by_operator,gpt-5=ok"
    assert _chat(gw.url, "security").headers["x-gateway-attempts"] == "fable-5=skipped:withdrawn,gpt-5=ok"


def test_a_reload_with_a_new_provider_key_clears_access_denied(emu, make_gateway):
    """access_denied is the old key's verdict: a reload that rotates the key lets the model be tried again at
    once (not after withdrawn_recheck); a reload that keeps the key keeps the verdict."""
    cfg = admin_config(emu.url)
    cfg["reload"] = {"watch": False}
    gw = make_gateway(cfg)
    emu.set("fable-5", "access_revoked")
    assert _chat(gw.url, "security").headers["x-gateway-attempts"] == "fable-5=access_denied,gpt-5=ok"
    emu.set("fable-5", "healthy")
    cfg["routes"]["general"]["models"] = ["qwen-coder", "gpt-5"]  # an unrelated change: the verdict stays
    _write(gw.config_path, cfg)
    assert httpx.post(gw.url + "/admin/reload", headers=ADMIN).json()["reload"]["result"] == "ok"
    assert _chat(gw.url, "security").headers["x-gateway-attempts"] == "fable-5=skipped:access_denied,gpt-5=ok"
    cfg["providers"]["vendor-a"]["api_key"] = "sk-provider-a-rotated-654321"
    _write(gw.config_path, cfg)
    assert httpx.post(gw.url + "/admin/reload", headers=ADMIN).json()["reload"]["result"] == "ok"
    assert _chat(gw.url, "security").headers["x-gateway-attempts"] == "fable-5=ok"


def test_reinstate_clears_an_upstream_verdict_instead_of_404(emu, make_gateway):
    cfg = admin_config(emu.url)
    cfg["reload"] = {"watch": False}
    gw = make_gateway(cfg)
    emu.set("fable-5", "access_revoked")
    _chat(gw.url, "security")
    emu.set("fable-5", "healthy")
    r = httpx.delete(gw.url + "/admin/withdrawals/model/fable-5", headers=ADMIN)
    assert r.status_code == 200 and r.json()["cleared"] == ["fable-5"], r.text
    assert _chat(gw.url, "security").headers["x-gateway-attempts"] == "fable-5=ok"
    r = httpx.delete(gw.url + "/admin/withdrawals/model/fable-5", headers=ADMIN)  # nothing left to clear
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_withdrawn"


def test_a_reload_that_would_turn_authentication_off_fails_closed(emu, make_gateway, caplog):
    """A valid file without `keys:` (a truncated or half-written edit looks exactly like that) is rejected like an
    invalid one: logged, counted, shown, the running keys stay. Saying so explicitly turns authentication off."""
    cfg = admin_config(emu.url)
    cfg["reload"] = {"watch": False}
    gw = make_gateway(cfg)
    open_cfg = {k: v for k, v in cfg.items() if k != "keys"}
    _write(gw.config_path, open_cfg)
    with caplog.at_level("ERROR", logger="gateway.reload"):
        r = httpx.post(gw.url + "/admin/reload", headers=ADMIN)
    assert r.status_code == 422 and "auth: {enabled: false}" in r.json()["error"]["message"]
    assert any("turn client authentication off" in rec.getMessage() for rec in caplog.records)
    st = httpx.get(gw.url + "/admin/state", headers=ADMIN).json()["config"]["last_reload"]
    assert st["result"] == "error" and any(e.endswith("`auth: {enabled: false}`") for e in st["errors"])
    assert 'gateway_config_reloads_total{result="error"} 1.0' in httpx.get(gw.url + "/metrics").text
    no_key = httpx.post(gw.url + "/v1/chat/completions", json={"model": "general", "messages": MSG}, timeout=10)
    assert no_key.status_code == 401

    no_admin = {k: v for k, v in cfg.items() if k != "admin_keys"}
    _write(gw.config_path, no_admin)
    r = httpx.post(gw.url + "/admin/reload", headers=ADMIN)
    assert r.status_code == 422 and "auth: {admin: false}" in r.json()["error"]["message"]

    _write(gw.config_path, {**open_cfg, "auth": {"enabled": False}})
    r = httpx.post(gw.url + "/admin/reload", headers=ADMIN)
    assert r.status_code == 200 and r.json()["reload"]["result"] == "ok"
    assert httpx.post(gw.url + "/v1/chat/completions", json={"model": "general", "messages": MSG},
                      timeout=10).status_code == 200


def test_policy_added_by_one_yaml_edit_takes_effect_via_the_watcher(emu, make_gateway):
    cfg = admin_config(emu.url)
    cfg["reload"] = {"watch": True, "debounce": "50ms"}
    gw = make_gateway(cfg)
    assert _chat(gw.url, "security").headers["x-gateway-attempts"] == "fable-5=ok"
    cfg["policies"] = [{"name": "export-control-2026-06", "deny": {"models": ["fable-5"]},
                        "unless": {"jurisdiction": ["US"]}, "reason": "Commerce Department directive"}]
    _write(gw.config_path, cfg)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        attempts = _chat(gw.url, "security").headers["x-gateway-attempts"]
        if attempts != "fable-5=ok":
            break
        time.sleep(0.05)
    assert attempts == "fable-5=denied:export-control-2026-06,gpt-5=ok"


def test_reload_under_load_fails_no_request(emu, make_gateway):
    emu.set("gpt-5", "healthy:token_delay=0.005")
    emu.set("qwen-coder", "healthy:token_delay=0.005")
    cfg = admin_config(emu.url)
    cfg["reload"] = {"watch": False}
    gw = make_gateway(cfg)
    stop = threading.Event()
    failures: list[str] = []
    counts = {"plain": 0, "stream": 0}

    def worker(stream: bool) -> None:
        with httpx.Client(headers=AUTH, timeout=10) as c:
            while not stop.is_set():
                body = {"model": "general", "messages": MSG, "stream": stream}
                try:
                    if stream:
                        with c.stream("POST", gw.url + "/v1/chat/completions", json=body) as r:
                            text = r.read().decode()
                        ok = r.status_code == 200 and text.rstrip().endswith("data: [DONE]")
                    else:
                        r = c.post(gw.url + "/v1/chat/completions", json=body)
                        ok = r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
                except httpx.HTTPError as e:
                    ok, text = False, repr(e)
                if not ok:
                    failures.append(f"{r.status_code}: {r.text[:200] if not stream else text[:200]}")
                counts["stream" if stream else "plain"] += 1

    threads = [threading.Thread(target=worker, args=(s,)) for s in (False, False, True, True)]
    for t in threads:
        t.start()
    try:
        orders = (["qwen-coder", "gpt-5"], ["gpt-5", "qwen-coder"])  # the first differs from the running one
        invalid = [
            "providers: [unclosed\n",
            yaml.safe_dump(dict(cfg, routes={**cfg["routes"], "general": {"models": ["nope"]}})),
            yaml.safe_dump(dict(cfg, policies=[{"name": "p", "deny": {"vendors": ["NoSuchVendor"]}, "reason": "r"}])),
        ]
        valid_seen = 0
        for i in range(20):
            if i % 3 == 2:
                _write(gw.config_path, invalid[i % len(invalid)])
                r = httpx.post(gw.url + "/admin/reload", headers=ADMIN, timeout=10)
                assert r.status_code == 422, r.text
            else:
                order = orders[valid_seen % 2]
                valid_seen += 1
                _write(gw.config_path, dict(cfg, routes={**cfg["routes"], "general": {"models": order}}))
                r = httpx.post(gw.url + "/admin/reload", headers=ADMIN, timeout=10)
                assert r.status_code == 200 and r.json()["reload"]["result"] == "ok", r.text
                assert _chat(gw.url).headers["x-gateway-model"] == order[0]  # the change took effect
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert failures == []
    assert counts["plain"] > 20 and counts["stream"] > 10, counts
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_config_reloads_total{result="ok"} 14.0' in metrics
    assert 'gateway_config_reloads_total{result="error"} 6.0' in metrics
