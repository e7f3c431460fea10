"""Durable records in a real PostgreSQL (``store: {backend: postgres, url}``): withdrawals, drills and the audit
log; the reports read it; audit writes are buffered (never blocking a request) while the database is away."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import yaml

from gateway.audit.postgres import PostgresAuditStore, PostgresWithdrawalDB
from gateway.cli import main as cli_main
from tests.fleet.conftest import ADMIN_KEY, admin, chat, fleet_config


def _pg_config(emu_url: str, url: str, tmp_path: Path, **over):
    cfg = fleet_config(emu_url, "redis://unused:1/0", tmp_path, store={"backend": "postgres", "url": url}, **over)
    cfg["state"] = {"backend": "memory"}
    return cfg


def _wait(pred, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_withdrawals_drills_and_audit_live_in_postgres_and_the_reports_read_them(emu, postgres_session, make_gateway,
                                                                                 tmp_path, capsys):
    url = postgres_session.database("durable")
    cfg = _pg_config(emu.url, url, tmp_path)
    gw = make_gateway(cfg)
    assert chat(gw).status_code == 200
    r = admin(gw, "POST", "/admin/withdrawals", json={"target": "model", "name": "fable-5", "reason": "legal",
                                                       "reference": "BIS-1", "contact": "never"})
    assert r.status_code == 201, r.text
    assert admin(gw, "POST", "/admin/drills", json={"target": "model", "name": "qwen-coder",
                                                     "duration": "10m"}).status_code == 201
    assert chat(gw).headers["x-gateway-attempts"] == "fable-5=skipped:withdrawn_by_operator,gpt-5=ok"
    state = admin(gw, "GET", "/admin/state").json()
    assert state["state_db"].startswith("postgresql://") and "fable-5" in json.dumps(state["withdrawals"])
    db = PostgresWithdrawalDB(url)
    kinds = sorted((e.kind, e.name) for e in db.current())
    assert kinds == [("drill", "qwen-coder"), ("withdrawal", "fable-5")]
    assert [e["action"] for e in db.events()][:2] == ["drill-started", "withdraw"]
    store = PostgresAuditStore(url, readonly=True)
    _wait(lambda: store.count() >= 2, "the audit rows never reached PostgreSQL")
    rows = list(store.rows(0))
    assert rows[-1]["served"] == ["gpt-5"] and rows[-1]["attempts"][0]["outcome"] == "skipped:withdrawn_by_operator"
    assert store.newest(0, 1) == rows[-1:]
    store.close()

    # A restarted gateway (or another replica) takes the withdrawal from the database.
    gw.stop()
    gw2 = make_gateway(cfg)
    assert chat(gw2).headers["x-gateway-attempts"] == "fable-5=skipped:withdrawn_by_operator,gpt-5=ok"
    gw2.stop()

    path = tmp_path / "gateway.yaml"
    assert cli_main(["audit", "--config", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["audit_log"].startswith("postgresql://")
    assert sum((r.get("traffic") or {}).get("requests", 0) for r in report["routes"]) == 3  # all 3 answered
    assert cli_main(["explain", "--config", str(path), "--prompt", "security review please"]) == 0
    out = capsys.readouterr().out
    assert "fable-5" in out and "withdrawn" in out
    assert cli_main(["whatif", "--config", str(path), "--withdraw", "vendor=VendorB", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)


def test_postgres_down_buffers_the_audit_then_counts_drops_and_never_fails_a_request(emu, postgres_session,
                                                                                       make_gateway, tmp_path):
    url = postgres_session.database("outage")
    cfg = _pg_config(emu.url, url, tmp_path, audit={"queue_size": 20})
    gw = make_gateway(cfg)
    assert admin(gw, "POST", "/admin/withdrawals", json={"target": "model", "name": "fable-5", "reason": "legal",
                                                          "contact": "never"}).status_code == 201
    writer = gw.gateway.continuity.writer
    postgres_session.kill()
    try:
        statuses = [chat(gw).status_code for _ in range(30)]
        assert set(statuses) == {200}  # withdrawals keep being enforced from memory; nothing waits for the DB
        assert all(chat(gw).headers["x-gateway-attempts"].startswith("fable-5=skipped") for _ in range(3))
        # 33 answered, room for 20: the rest is dropped and counted (a batch being retried is out of the queue for
        # a moment, so wait for the writer to settle rather than read it mid-retry).
        _wait(lambda: writer.unavailable and writer.dropped >= 13, "the writer never buffered and dropped")
        assert writer.dropped == 13 and writer.depth <= 20
        metrics = httpx.get(gw.url + "/metrics").text
        assert "gateway_audit_dropped_total 13.0" in metrics
    finally:
        postgres_session.start()
    _wait(lambda: writer.depth == 0 and not writer.unavailable, "the buffered records were never written", 15)
    store = PostgresAuditStore(url, readonly=True)
    assert store.count() == 20 and writer.dropped == 13  # 33 answered: each one written or counted
    store.close()


def test_a_postgres_password_never_shows_whatever_form_the_url_takes():
    from gateway.audit.postgres import redacted

    table = {
        "postgresql://gw:pw-secret-1@db:5432/gw": "postgresql://gw:***@db:5432/gw",
        "postgresql://:pw-secret-2@db/gw": "postgresql://:***@db/gw",
        "postgresql://gw:p@ss-secret-3@db/gw": "postgresql://gw:***@db/gw",
        "postgresql://gw@db/gw?sslmode=require&password=pw-secret-4": "postgresql://gw@db/gw?sslmode=require&password=***",
        "postgres://gw@db/gw?PASSWORD=pw-secret-5&x=1": "postgres://gw@db/gw?PASSWORD=***&x=1",
        "host=db user=gw password=pw-secret-6 dbname=gw": "host=db user=gw password=*** dbname=gw",
        "host=db password = 'pw secret 7' dbname=gw": "host=db password = *** dbname=gw",
        "postgresql://gw@db/gw": "postgresql://gw@db/gw",
    }
    assert {u: redacted(u) for u in table} == table


def test_a_password_in_the_store_url_is_on_no_surface(emu, postgres_session, make_gateway, tmp_path, capsys):
    secret = "pg-Query-Secret-0123456789"
    url = postgres_session.database("secretive") + f"?password={secret}"  # trust auth: accepted, ignored
    cfg = _pg_config(emu.url, url, tmp_path)
    gw = make_gateway(cfg)
    assert chat(gw).status_code == 200
    surfaces = [admin(gw, "GET", "/admin/state").text, httpx.get(gw.url + "/metrics", timeout=5).text,
                httpx.get(gw.url + "/status", timeout=5).text]
    gw.stop()
    assert cli_main(["audit", "--config", str(tmp_path / "gateway.yaml"), "--format", "json"]) == 0
    surfaces.append(capsys.readouterr().out)
    assert "password=***" in surfaces[0]
    assert [secret in s for s in surfaces] == [False] * len(surfaces)
