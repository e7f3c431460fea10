"""Review findings (unit level): each test failed before its fix."""

from __future__ import annotations

import pytest

from gateway.errors import ErrorKind, GatewayError
from gateway.failover.breaker import BreakerState
from tests.unit.test_engine import err, make, run


async def test_deadline_reached_on_a_half_open_model_does_not_keep_the_probe():
    """skip_reason() hands out the half-open probe; an attempt that then finds the deadline passed must give it
    back, or the breaker stays half-open with its probe taken and the model is skipped forever."""
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.TRANSIENT)] * 3 + ["ok-a"]}, retries=0)
    for _ in range(3):
        with pytest.raises(GatewayError):
            await run(engine, adapters, call, cfg, ["a"], clock)
    assert engine.state.breaker_state("a") is BreakerState.OPEN
    clock.t += 31  # past the breaker cooldown: half-open, one probe available
    with pytest.raises(GatewayError):
        await run(engine, adapters, call, cfg, ["a"], clock, total=0)  # deadline already reached
    ctx, result = await run(engine, adapters, call, cfg, ["a"], clock)  # the next request may probe
    assert result == "ok-a" and [a.outcome for a in ctx.attempts] == ["ok"]


async def test_audit_checkpoint_failure_does_not_rewrite_a_written_batch(tmp_path):
    """A failing WAL checkpoint after a successful insert used to send the batch round the write-retry loop:
    the same rows inserted three times, then counted as dropped."""
    from gateway.audit.store import SQLiteAuditStore
    from gateway.audit.writer import AuditWriter
    from tests.audit.test_writer import rec

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
