"""Distinctive fake secrets and a prompt canary must never reach the logs, the audit log or /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import openai
import pytest

from gateway.audit.store import SQLiteAuditStore
from gateway.failover.attempts import Attempt
from gateway.observability import logs
from gateway.observability.record import RequestRecord
from tests.conftest import GATEWAY_KEY, _sha, base_config

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


# One model per provider kind on the emulator, each with a configured key that has no key shape (only the
# configured-secret redaction can catch it), in a route that falls back to an OpenAI-kind model.
_ECHO_PROVIDERS = {
    "openai": ({"base_url": "{emu}/v1"}, "echo-openai-model"),
    "anthropic": ({"base_url": "{emu}"}, "echo-anthropic-model"),
    "gemini": ({"base_url": "{emu}"}, "echo-gemini-model"),
    "azure-openai": ({"base_url": "{emu}", "api_style": "deployments", "api_version": "2024-10-21"},
                     "echo-azure-deploy"),
    "bedrock": ({"base_url": "{emu}", "region": "us-east-1"}, "anthropic.echo-bedrock-v1:0"),
}


@pytest.mark.parametrize("kind", sorted(_ECHO_PROVIDERS))
def test_a_key_echoed_by_the_upstream_is_masked_on_every_surface(emu, make_gateway, caplog, capfd, kind):
    """The upstream answers 401, 403 and 404 quoting the key it received, in clear. Admin state, the status page
    and its data, the request and lifecycle logs, metrics, the audit log and the client's error body show it
    masked."""
    secret = f"cfg-secret-{kind}-7f6e5d4c3b2a"
    extra, upstream_model = _ECHO_PROVIDERS[kind]
    cfg = base_config(emu.url)
    cfg["admin_keys"] = [{"name": "ops", "sha256": _sha(_ADMIN_KEY_FOR_STATE)}]
    cfg["providers"]["echo"] = {"kind": kind, "api_key": secret, "vendor": "Echo", "jurisdiction": "US",
                                **{k: v.format(emu=emu.url) for k, v in extra.items()}}
    cfg["models"]["echo-m"] = {"provider": "echo", "model": upstream_model, "context_window": 1000}
    cfg["routes"]["echo-first"] = {"models": ["echo-m", "gpt-5"]}
    cfg["routes"]["echo-only"] = {"models": ["echo-m"]}
    caplog.set_level(logging.DEBUG, logger="gateway")
    gw = make_gateway(cfg)
    admin = {"authorization": f"Bearer {_ADMIN_KEY_FOR_STATE}"}
    client = {"authorization": f"Bearer {GATEWAY_KEY}"}
    seen: dict[str, str] = {}
    for status in (401, 403, 404):
        emu.set(upstream_model, f"echo_key:status={status}")
        r = httpx.post(gw.url + "/v1/chat/completions", headers=client, timeout=15,
                       json={"model": "echo-first", "messages": MSG, "stream": status == 403})
        assert r.status_code == 200 and r.headers["x-gateway-model"] == "gpt-5", (status, r.text[:300])
        assert emu.attempts(upstream_model)[-1]["status"] >= 400  # each wire's own status for that error
        state = httpx.get(gw.url + "/admin/state", headers=admin, timeout=10).text
        assert "the key received was ***" in state, state[:2000]
        seen[f"admin state {status}"] = state
        seen[f"status data {status}"] = httpx.get(gw.url + "/status/data", headers=admin, timeout=10).text
        seen[f"status page {status}"] = httpx.get(gw.url + "/status", headers=admin, timeout=10).text
        assert httpx.delete(gw.url + "/admin/withdrawals/model/echo-m", headers=admin,
                            timeout=10).status_code == 200  # clears the verdict for the next status
    # the error body when the echoing model is the only one
    emu.set(upstream_model, "echo_key:status=401")
    r = httpx.post(gw.url + "/v1/chat/completions", headers=client, timeout=15,
                   json={"model": "echo-only", "messages": MSG})
    assert r.status_code >= 400
    seen["error body"] = r.text
    seen["metrics"] = httpx.get(gw.url + "/metrics", timeout=10).text
    cont = gw.gateway.continuity
    gw.stop()
    asyncio.run(cont.aclose())
    seen["audit"] = json.dumps(list(SQLiteAuditStore(cont.path).rows(0)))
    seen["logs"] = "\n".join(r.getMessage() + " " + str(r.args) for r in caplog.records)
    out, err = capfd.readouterr()
    seen["stdout/stderr"] = out + err
    for where, text in seen.items():
        assert secret not in text, f"the {kind} key leaked into {where}"
    assert "the key received was ***" in seen["audit"]
