"""Task classification end to end: real gateway on loopback, the official OpenAI SDK, the emulator upstream.
Both prompts of issue 13 reach the security route; the audit row has the reason and score and never the
prompt; the metric counts decisions; examples reload with the config."""

from __future__ import annotations

import sqlite3

import httpx

from tests.classify.test_classifier import BENIGN_FIX, FIX, REVIEW
from tests.conftest import GATEWAY_KEY, base_config
from tests.integration.test_admin import ADMIN_KEY, admin_config


def _classified_config(emu_url: str) -> dict:
    cfg = base_config(emu_url)
    cfg["routes"]["security-review"]["classify"] = {"builtin": "security-review", "threshold": 0.5}
    return cfg


def _route(client, prompt: str, model: str = "auto") -> str:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": prompt}])
    assert raw.http_response.status_code == 200
    return raw.headers["x-gateway-route"]


def test_plain_and_explicit_security_prompts_reach_the_security_route(emu, make_gateway, client_for):
    gw = make_gateway(_classified_config(emu.url))
    client = client_for(gw)
    assert _route(client, FIX) == "security-review"
    assert _route(client, REVIEW) == "security-review"
    assert _route(client, BENIGN_FIX) == "general"
    assert _route(client, FIX, model="general") == "general"  # a named route is never classified
    # Streaming takes the same route selection.
    with client.chat.completions.with_streaming_response.create(
            model="auto", stream=True, messages=[{"role": "user", "content": FIX}]) as r:
        assert r.headers["x-gateway-route"] == "security-review"
        for _ in r.iter_lines():
            pass

    metrics = httpx.get(gw.url + "/metrics").text
    assert ('gateway_route_classifications_total{engine="builtin",outcome="matched",route="security-review"} 3.0'
            in metrics)
    assert 'gateway_route_classifications_total{engine="builtin",outcome="no_route",route="none"} 1.0' in metrics

    gw.stop()  # flushes the audit writer
    db = gw.gateway.continuity.path
    rows = sqlite3.connect(db).execute("SELECT route, route_reason FROM requests ORDER BY id").fetchall()
    reasons = [r for _, r in rows]
    assert [r for r, _ in rows] == ["security-review", "security-review", "general", "general", "security-review"]
    assert reasons[0].startswith("classify:") and 0.5 <= float(reasons[0].split(":")[1]) <= 1
    assert reasons[2].startswith("default:classify=") and reasons[3] == "name"
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert "find_user" not in dump and "fix this code" not in dump and "SELECT * FROM users" not in dump


def test_examples_reload_with_the_config(emu, make_gateway, client_for, tmp_path):
    cfg = admin_config(emu.url)
    cfg["reload"] = {"watch": False}
    examples = tmp_path / "translate.txt"
    examples.write_text("Summarise this meeting transcript\n")
    cfg["routes"]["security-review"]["classify"] = {"builtin": "security-review"}
    cfg["routes"]["translate"] = {"models": ["qwen-coder"], "classify": {"examples_file": "translate.txt"}}
    gw = make_gateway(cfg)
    client = client_for(gw)
    prompt = "Translate into Italian: the train leaves at noon"
    assert _route(client, prompt) != "translate"

    examples.write_text("\n".join([
        "Translate this into French: good morning", "Please translate to German: where is the station?",
        "How do you say thank you in Japanese?", "Traduis en anglais : je suis en retard",
        "translate the following paragraph into Spanish", "Translate to Portuguese: see you tomorrow"]) + "\n")
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.post(gw.url + "/admin/reload", headers=admin, timeout=30)
    assert r.status_code == 200, r.text
    assert _route(client, prompt) == "translate"
    assert _route(client, FIX) == "security-review"

    examples.write_text("")  # a bad examples file: the reload fails, naming it, and the running config stays
    r = httpx.post(gw.url + "/admin/reload", headers=admin, timeout=30)
    assert r.status_code == 422
    assert f"routes.translate.classify.examples_file: {examples}: no examples in the file" in r.text
    assert _route(client, prompt) == "translate"


def test_classification_does_not_bypass_policy_or_failover(emu, make_gateway, client_for):
    cfg = _classified_config(emu.url)
    cfg["keys"] = [dict(cfg["keys"][0], routes=["general"])]
    gw = make_gateway(cfg)
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                   json={"model": "auto", "messages": [{"role": "user", "content": FIX}]}, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "route_not_allowed"

    gw2 = make_gateway(_classified_config(emu.url))
    emu.set("fable-5", "withdrawn")
    raw = client_for(gw2).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": REVIEW}])
    assert raw.headers["x-gateway-route"] == "security-review"
    assert raw.headers["x-gateway-attempts"] == "fable-5=withdrawn,gpt-5=ok"


def test_embedding_engine_end_to_end(emu, make_gateway, client_for):
    cfg = _classified_config(emu.url)
    cfg["classifier"] = {"engine": "embedding"}
    gw = make_gateway(cfg)
    client = client_for(gw)
    assert _route(client, FIX) == "security-review"
    assert _route(client, REVIEW) == "security-review"
    assert _route(client, BENIGN_FIX) == "general"
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_route_classifications_total{engine="embedding",outcome="matched",route="security-review"} 2.0' in metrics
