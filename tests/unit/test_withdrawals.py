"""Withdrawals and drills in memory: precedence of overlapping entries, continuation re-checks, cross-worker sync."""

from __future__ import annotations

import pytest

from gateway.failover.withdrawals import Entry, Withdrawals
from gateway.providers.base import Target
from tests.conftest import base_config


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _target(name: str, vendor: str) -> Target:
    return Target(name=name, provider="p-" + vendor, kind="openai", upstream_model=name, base_url="http://x",
                  vendor=vendor, jurisdiction="US", context_window=1000, supports_tools=True, prefill=False,
                  api_key=None, headers={}, options={})


def test_expired_recheck_withdrawal_does_not_hide_a_contact_never_withdrawal():
    clock = _Clock()
    w = Withdrawals(clock)
    w.configure({"fable-5": _target("fable-5", "VendorA")}, recheck=60.0)
    w.add(Entry("withdrawal", "model", "fable-5", "flaky", contact="recheck"))
    w.add(Entry("withdrawal", "vendor", "VendorA", "legal directive", contact="never"))
    clock.t += 3600  # the recheck window of the model withdrawal is over; the vendor withdrawal is not
    e = w.check("fable-5")
    assert e is not None and e.target == "vendor" and e.contact == "never"


def test_expired_drill_does_not_hide_a_longer_drill():
    clock = _Clock()
    w = Withdrawals(clock)
    w.configure({"fable-5": _target("fable-5", "VendorA")}, recheck=60.0)
    w.add(Entry("drill", "model", "fable-5", "short"), duration=10)
    w.add(Entry("drill", "vendor", "VendorA", "long"), duration=600)
    clock.t += 30
    assert w.check("fable-5") is not None


async def test_stream_continuation_checks_a_withdrawal_made_after_the_request_started():
    """A request that started with no withdrawal in force gets no precheck (the cheap path); a cut stream continued
    minutes later must still not contact a model withdrawn in the meantime."""
    from types import SimpleNamespace

    from gateway.api.streaming import StreamRelay
    from gateway.errors import ErrorKind, UpstreamError
    from gateway.failover.engine import RunContext

    clock = _Clock()
    w = Withdrawals(clock)
    w.configure({"fable-5": _target("fable-5", "VendorA"), "gpt-5": _target("gpt-5", "VendorB")}, recheck=60.0)
    seen = {}

    async def run(ctx, chain, *a):
        seen["hits"] = {m: ctx.precheck(m) if ctx.precheck else None for m in chain}
        return None

    gw = SimpleNamespace(withdrawals=w, engine=SimpleNamespace(run=run), clock=clock)
    route = SimpleNamespace(timeouts=None, on_stream_cut="continue")
    rt = SimpleNamespace(config=SimpleNamespace(failover=SimpleNamespace(timeouts=SimpleNamespace(total=60.0))),
                         adapters={})
    choice = SimpleNamespace(route=route, chain=("fable-5", "gpt-5"))
    ctx = RunContext(route="r", deadline=1e9, precheck=None)
    relay = StreamRelay(gw, rt, {}, choice, ctx, None, "id", 0.0)
    relay.text.append("partial answer")
    relay.served.append("fable-5")
    w.add(Entry("withdrawal", "model", "gpt-5", "directive"))  # withdrawn while fable-5 was streaming
    await relay._continue(UpstreamError(ErrorKind.TRANSIENT, "cut"), "fable-5")
    assert seen["hits"]["gpt-5"] is not None and seen["hits"]["gpt-5"][0] == "skipped:withdrawn_by_operator"


async def test_sync_does_not_drop_a_withdrawal_made_while_it_read_the_db(tmp_path):
    """The cross-worker sync reads the DB in a thread; a withdrawal made here meanwhile (in memory at once, persisted
    just after) must not be replaced away by the stale read, not even for one sync interval."""
    import asyncio
    import threading

    import yaml

    from gateway.app import Gateway
    from gateway.config.loader import load_config
    from gateway.runtime import build_runtime

    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(base_config("http://127.0.0.1:1")))
    gw = Gateway(build_runtime(load_config(path), path.read_bytes()), config_path=str(path), sync_interval=0.01)
    reading, release = threading.Event(), threading.Event()

    class SlowDB:
        calls = 0

        def version(self):
            SlowDB.calls += 1
            return SlowDB.calls  # always "changed"

        def current(self):
            reading.set()
            release.wait(5)
            return list(SlowDB.rows)  # the first read happens before the new withdrawal is persisted

        rows: list = []

        snapshot = None

    db = SlowDB()
    db.snapshot = lambda: (db.version(), db.current())
    gw.withdrawals_db = db
    task = asyncio.create_task(gw._sync_withdrawals())
    try:
        await asyncio.to_thread(reading.wait, 5)
        # What POST /admin/withdrawals does: in force in memory at once, then persisted in a worker thread.
        e = gw.withdrawals.add(Entry("withdrawal", "model", "fable-5", "directive"))
        gw.withdrawals.pending += 1
        release.set()
        for _ in range(5):
            await asyncio.sleep(0.01)
            assert gw.withdrawals.check("fable-5") is not None
        SlowDB.rows = [e]
        gw.withdrawals.pending -= 1
        gw.withdrawals.generation += 1
        for _ in range(5):
            await asyncio.sleep(0.01)
            assert gw.withdrawals.check("fable-5") is not None
    finally:
        release.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
