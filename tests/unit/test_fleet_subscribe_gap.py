"""A kill-switch change published while a worker starts, between its first read of the fleet's state and its
subscription, must still reach it (the announcement itself is lost to it: pub/sub keeps no history)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.failover.withdrawals import Withdrawals
from gateway.state.fleet import Fleet
from gateway.state.live import FleetState


class _Store:
    """Just enough of a ``SharedStore``: the fleet's withdrawals snapshot changes when the worker subscribes."""

    def __init__(self, change: dict[str, Any]) -> None:
        self.snapshot: dict[str, Any] | None = None
        self.change = change

    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, message: dict[str, Any]) -> None: ...
    async def heartbeat(self, worker: str, info: dict[str, Any]) -> None: ...
    async def leave(self, worker: str) -> None: ...
    async def marks(self) -> dict[str, dict[str, Any]]:
        return {}

    async def workers(self) -> dict[str, dict[str, Any]]:
        return {}

    async def get_withdrawals(self) -> dict[str, Any] | None:
        return self.snapshot

    async def listen(self):
        # Another worker's change landed just before this subscription took effect: only the snapshot has it.
        self.snapshot = self.change
        while True:
            await asyncio.sleep(0.01)
            yield None


async def test_a_change_published_while_the_worker_subscribes_is_adopted():
    entry = {"kind": "withdrawal", "target": "model", "name": "fable-5", "reason": "directive", "reference": "",
             "actor": "", "admin_key": "", "contact": "never", "created_at": time.time(), "until_wall": None}
    store = _Store({"at": time.time() + 1, "o": "other/1", "entries": [entry]})
    w = Withdrawals(time.monotonic)
    fleet = Fleet(store, FleetState(time.monotonic, time.time, "me/1"), w, _none, replica="me", worker="me/1")
    await fleet.start()
    try:
        for _ in range(50):
            if w.withdrawals:
                break
            await asyncio.sleep(0.01)
        assert ("model", "fable-5") in w.withdrawals
    finally:
        await fleet.stop()


async def _none() -> None:
    return None
