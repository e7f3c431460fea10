"""The audit store and writer, directly: a temp SQLite file, no gateway."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from gateway.audit.store import SQLiteAuditStore, record_to_row
from gateway.audit.writer import AuditWriter
from gateway.config.loader import parse_config
from gateway.config.paths import audit_path
from gateway.failover.attempts import Attempt
from gateway.observability.metrics import Metrics
from gateway.observability.record import RequestRecord


def rec(i: int = 0, t: float | None = None, route: str = "security-review", **kw) -> RequestRecord:
    attempts = kw.pop("attempts", [Attempt("fable-5", "anthropic", "Anthropic", "withdrawn", 404, 0.01,
                                           "model gone; key sk-FAKE-SECRET-9f8e7d"),
                                   Attempt("gpt-5", "openai", "OpenAI", "ok", 200, 0.2)])
    return RequestRecord(request_id=f"r{i}", time=t if t is not None else time.time(), key_name="tests",
                         route=route, route_reason="alias", stream=False, status=200, latency=0.25,
                         attempts=attempts, served=["gpt-5"], usage={"total_tokens": 12},
                         chain=("fable-5", "gpt-5"), caller={"jurisdiction": "US"}, prompt_hash="abc", **kw)


def test_row_roundtrip_redacts_and_drops_prompt_hash(tmp_path):
    store = SQLiteAuditStore(tmp_path / "a.sqlite")
    store.open()
    store.write([record_to_row(rec(1), lambda s: s.replace("sk-FAKE-SECRET-9f8e7d", "***"))])
    (row,) = list(store.rows(0))
    assert row["request_id"] == "r1" and row["served"] == ["gpt-5"] and row["chain"] == ["fable-5", "gpt-5"]
    assert row["attempts"][0]["outcome"] == "withdrawn" and row["attempts"][0]["vendor"] == "Anthropic"
    assert "sk-FAKE" not in row["attempts"][0]["message"]
    assert row["prompt_hash"] is None  # opt-in only
    assert row["caller"] == {"jurisdiction": "US"} and row["stream"] is False
    mode = sqlite3.connect(tmp_path / "a.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.close()


def test_audit_path(tmp_path, monkeypatch):
    monkeypatch.delenv("GATEWAY_STATE_DIR", raising=False)
    base = {"providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"}},
            "models": {"m": {"provider": "p", "model": "m"}}, "routes": {"r": {"models": ["m"]}}}
    cfg = parse_config({**base, "audit": {"path": "var/audit.sqlite"}}, env={})
    assert audit_path(cfg, tmp_path / "gateway.yaml") == tmp_path.resolve() / "var/audit.sqlite"
    cfg = parse_config({**base, "audit": {"path": "/x/a.sqlite"}}, env={})
    assert audit_path(cfg, tmp_path / "g.yaml").as_posix() == "/x/a.sqlite"
    # Unset: in the state directory, which a read-only config mount does not need to hold.
    cfg = parse_config(base, env={})
    assert audit_path(cfg, tmp_path / "g.yaml") == tmp_path.resolve() / "state" / "audit.sqlite"
    monkeypatch.setenv("GATEWAY_STATE_DIR", "/var/lib/gateway")
    assert audit_path(cfg, tmp_path / "g.yaml").as_posix() == "/var/lib/gateway/audit.sqlite"


def test_flush_on_close_writes_everything_in_batches(tmp_path):
    store = SQLiteAuditStore(tmp_path / "a.sqlite")
    m = Metrics()
    w = AuditWriter(store, queue_size=10000, batch_size=100, metrics=m)

    async def main():
        await w.start()
        for i in range(1000):
            assert w.submit(rec(i))
        assert w.depth > 0  # nothing was written on the submitting path
        await w.aclose()

    asyncio.run(main())
    s2 = SQLiteAuditStore(tmp_path / "a.sqlite")
    assert s2.count() == 1000
    assert [r["request_id"] for r in s2.rows(0)][:3] == ["r0", "r1", "r2"]
    assert w.written == 1000 and w.dropped == 0
    assert 10 <= w.batches < 1000  # batched, never one transaction per record
    assert b"gateway_audit_dropped_total 0.0" in m.exposition()


def test_submit_before_start_and_close_without_start(tmp_path):
    w = AuditWriter(SQLiteAuditStore(tmp_path / "a.sqlite"))
    w.submit(rec(1))
    asyncio.run(w.aclose())
    assert SQLiteAuditStore(tmp_path / "a.sqlite").count() == 1


def test_full_queue_drops_and_counts_without_raising(tmp_path):
    m = Metrics()
    w = AuditWriter(SQLiteAuditStore(tmp_path / "a.sqlite"), queue_size=5, metrics=m)
    results = [w.submit(rec(i)) for i in range(8)]  # not started: nothing drains
    assert results == [True] * 5 + [False] * 3
    assert w.dropped == 3
    text = m.exposition().decode()
    assert "gateway_audit_dropped_total 3.0" in text and "gateway_audit_queue_depth 5.0" in text
    asyncio.run(w.aclose())
    assert SQLiteAuditStore(tmp_path / "a.sqlite").count() == 5
    assert w.submit(rec(99)) is False  # closed: counted, not raised


def test_submit_never_raises_on_garbage(tmp_path):
    w = AuditWriter(SQLiteAuditStore(tmp_path / "a.sqlite"))

    async def main():
        await w.start()
        w.submit(object())  # not a record: dropped when converted, the writer lives on
        w.submit(rec(1))
        await w.aclose()

    asyncio.run(main())
    assert SQLiteAuditStore(tmp_path / "a.sqlite").count() == 1
    assert w.dropped == 1


def test_write_failure_is_retried_then_counted(tmp_path):
    class Broken(SQLiteAuditStore):
        calls = 0

        def write(self, rows):
            Broken.calls += 1
            if Broken.calls < 3:
                raise sqlite3.OperationalError("database is locked")
            super().write(rows)

    w = AuditWriter(Broken(tmp_path / "a.sqlite"))

    async def main():
        await w.start()
        w.submit(rec(1))
        await w.aclose()

    asyncio.run(main())
    assert w.dropped == 0 and SQLiteAuditStore(tmp_path / "a.sqlite").count() == 1


async def test_audit_checkpoint_failure_does_not_rewrite_a_written_batch(tmp_path):
    """A failing WAL checkpoint after a successful insert used to send the batch round the write-retry loop:
    the same rows inserted three times, then counted as dropped."""
    class Store(SQLiteAuditStore):
        def checkpoint(self) -> None:
            raise OSError("disk I/O error")

    store = Store(tmp_path / "a.sqlite")
    writer = AuditWriter(store, linger=0, checkpoint_every=1)
    await writer.start()
    writer.submit(rec(1))
    await writer.aclose()
    store.open()
    assert [r["request_id"] for r in store.rows(0)] == ["r1"]
    assert writer.written == 1 and writer.dropped == 0
    store.close()


def test_retention_prunes_old_rows_at_start(tmp_path):
    now = time.time()
    store = SQLiteAuditStore(tmp_path / "a.sqlite")
    store.write([record_to_row(rec(1, t=now - 40 * 86400)), record_to_row(rec(2, t=now - 10 * 86400))])
    store.close()
    w = AuditWriter(SQLiteAuditStore(tmp_path / "a.sqlite"), retention=30 * 86400)

    async def main():
        await w.start()
        await w.aclose()

    asyncio.run(main())
    assert [r["request_id"] for r in SQLiteAuditStore(tmp_path / "a.sqlite").rows(0)] == ["r2"]
