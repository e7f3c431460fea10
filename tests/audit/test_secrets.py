"""Distinctive fake secrets and a prompt canary must never reach the logs, the audit log or /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import openai

from gateway.audit.store import SQLiteAuditStore
from gateway.failover.attempts import Attempt
from gateway.observability import logs
from gateway.observability.record import RequestRecord
from tests.conftest import _sha, base_config

PROVIDER_KEY = "sk-FAKE-SECRET-9f8e7d"
ONPREM_KEY = "onprem-FAKE-7c6b5a4d"  # not key-shaped: only known-secret redaction catches it
HEADER_SECRET = "hdr-FAKE-1029384756"
CLIENT_KEY = "gw-FAKE-CLIENT-3a2b1c"
PROMPT = "PROMPT-CANARY-5e4d3c please do a security review"
MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]
_ADMIN_KEY_FOR_STATE = "gw-admin-key-0123456789"
SECRETS = (PROVIDER_KEY, ONPREM_KEY, HEADER_SECRET, CLIENT_KEY, "PROMPT-CANARY-5e4d3c")


def test_no_secret_or_prompt_in_logs_audit_or_metrics(emu, make_gateway, caplog, capfd, tmp_path):
    cfg = base_config(emu.url, keys=[{"name": "tests", "sha256": _sha(CLIENT_KEY)}])
    cfg["providers"]["vendor-a"]["api_key"] = PROVIDER_KEY
    cfg["providers"]["onprem"]["api_key"] = ONPREM_KEY
    cfg["providers"]["vendor-b"]["headers"] = {"x-org-token": HEADER_SECRET}
    caplog.set_level(logging.DEBUG, logger="gateway")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    gw = make_gateway(cfg)
    cont = gw.gateway.continuity
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=15)
    msgs = [{"role": "user", "content": PROMPT}]
    emu.set("fable-5", "access_revoked")
    assert client.chat.completions.create(model="security", messages=msgs).model == "gpt-5"
    for _chunk in client.chat.completions.create(model="security", messages=msgs, stream=True):
        pass
    emu.set("gpt-5", "overloaded")
    emu.set("qwen-coder", "withdrawn")
    try:
        client.chat.completions.create(model="general", messages=msgs)
    except openai.APIStatusError as e:
        assert e.status_code >= 500
    bad = openai.OpenAI(base_url=gw.url + "/v1", api_key="gw-WRONG-" + CLIENT_KEY, max_retries=0)
    try:
        bad.chat.completions.create(model="security", messages=msgs)
    except openai.AuthenticationError:
        pass
    metrics_text = httpx.get(gw.url + "/metrics").text
    # A record whose attempt message carries a secret (as an upstream echo would) and caller attributes.
    cont.on_request(RequestRecord("echo", time.time(), "tests", "general", "name", False, 502, 0.1,
                                  [Attempt("qwen-coder", "onprem", "self-hosted", "access_denied", 401, 0.01,
                                           f"Incorrect API key provided: {ONPREM_KEY} / {PROVIDER_KEY}")],
                                  [], None, ("qwen-coder",), {"team": "appsec"}, "all_models_failed"))
    gw.stop()
    asyncio.run(cont.aclose())

    request_lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == logs.REQUEST_LOG]
    assert len(request_lines) >= 4
    assert any(line["attempts"] == "fable-5=access_denied,gpt-5=ok" for line in request_lines)
    assert all({"request_id", "route", "served", "attempts", "latency_ms", "status"} <= set(x) for x in request_lines)
    rows = list(SQLiteAuditStore(cont.path).rows(0))
    assert len(rows) == len(request_lines) and cont.writer.dropped == 0
    assert "gateway_audit_dropped_total 0.0" in metrics_text
    out, err = capfd.readouterr()
    haystacks = {"logs": "\n".join(r.getMessage() + " " + str(r.args) for r in caplog.records),
                 "stdout/stderr": out + err, "metrics": metrics_text,
                 "audit": json.dumps(rows), "audit file": cont.path.read_bytes().decode("latin-1")}
    for where, text in haystacks.items():
        for s in SECRETS:
            assert s not in text, f"{s!r} leaked into {where}"


def test_lifecycle_events_drop_content_fields_and_redact(caplog):
    caplog.set_level(logging.INFO, logger=logs.LIFECYCLE_LOG)
    log = logs.JsonLog([ONPREM_KEY])
    log.lifecycle("withdrawal", target="vendor", name="VendorA", actor="alice", reason=f"leaked {ONPREM_KEY}",
                  prompt="PROMPT-CANARY-5e4d3c", headers={"authorization": "Bearer x"}, api_key=PROVIDER_KEY)
    (rec,) = [r for r in caplog.records if r.name == logs.LIFECYCLE_LOG]
    line = json.loads(rec.getMessage())
    assert line["event"] == "withdrawal" and line["actor"] == "alice" and line["reason"] == "leaked ***"
    assert "prompt" not in line and "headers" not in line and "api_key" not in line


def test_upstream_error_text_in_model_state_is_redacted(emu, make_gateway, client_for):
    """The reason a model is marked unavailable is the provider's error text, shown by /admin/state and the
    status page: a provider that echoes (part of) our key must not have it shown there."""
    import hashlib

    emu.set("fable-5", "access_revoked")
    cfg = base_config(emu.url)
    cfg["admin_keys"] = [{"name": "ops", "sha256": hashlib.sha256(_ADMIN_KEY_FOR_STATE.encode()).hexdigest()}]
    gw = make_gateway(cfg)
    client_for(gw).chat.completions.create(model="security", messages=MSG)
    auth = {"authorization": f"Bearer {_ADMIN_KEY_FOR_STATE}"}
    for path in ("/admin/state", "/status/data"):
        r = httpx.get(gw.url + path, headers=auth, timeout=10)
        assert r.status_code == 200
        reason = r.json()["models"]["fable-5"]["reason"]
        # OpenAI (and the emulator) echo a masked key, "sk-emula***-key": key-shaped text is masked everywhere else
        assert "Incorrect API key" in reason and "sk-" not in reason, reason
