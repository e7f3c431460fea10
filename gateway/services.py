"""Small services shared by the endpoint and admin components, built once at start-up (``gateway.app``) and passed
in explicitly: no component imports the assembly (``gateway.app``) or reaches into it.

- ``LiveRuntime``: the current runtime snapshot, replaced whole on reload; readers take ``.runtime`` once per
  request and keep that snapshot to the end.
- ``UpstreamSlot``: the upstream client, opened in the lifespan (it needs the running loop) and closed on shutdown.
- ``Lifecycle``: one JSON line on the ``gateway.lifecycle`` logger (reload, withdrawal, drill, breaker transitions).
- ``RequestServices``: what the request path (chat completions, embeddings, the inbound dialects, stream
  continuation) uses, and nothing else.
- ``WithdrawalLedger``: operator withdrawals and drills in force (memory, read by the hot path) and their durable
  record (SQLite or PostgreSQL; optional), with the bookkeeping that keeps the cross-worker re-read from adopting
  a read that raced a local write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.api.ratelimit import RateLimiter
    from gateway.audit.wiring import Continuity
    from gateway.failover.engine import FailoverEngine
    from gateway.failover.state import StateStore
    from gateway.failover.withdrawals import WithdrawalDB, Withdrawals
    from gateway.observability.metrics import Metrics
    from gateway.runtime import Runtime
    from gateway.upstream import UpstreamClient


class LiveRuntime:
    """Holds the runtime snapshot in force. Only the assembly's ``swap`` assigns ``runtime``."""

    __slots__ = ("runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime


class UpstreamSlot:
    """The process's one upstream client: ``None`` before the lifespan started it and after it closed it."""

    __slots__ = ("client",)

    def __init__(self) -> None:
        self.client: UpstreamClient | None = None


class Lifecycle(Protocol):
    def __call__(self, event: str, **fields: Any) -> None: ...


class WithdrawalLedger:
    """The withdrawals in force (``withdrawals``) and their durable record (``db``, ``None`` when there is none:
    then withdrawals last until the process ends)."""

    def __init__(self, withdrawals: Withdrawals, db: WithdrawalDB | None) -> None:
        self.withdrawals = withdrawals
        self.db = db

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Around a local write of the record: while it runs (``pending``) and once it ended (``generation``) a
        concurrent re-read of the shared record is stale and not adopted."""
        w = self.withdrawals
        w.pending += 1
        try:
            yield
        finally:
            w.pending -= 1
            w.generation += 1

    async def write(self, op: Callable[[WithdrawalDB], Any]) -> None:
        """Run ``op(db)`` in a worker thread inside ``writing()``; nothing without a durable record."""
        db = self.db
        if db is not None:
            async with self.writing():
                await asyncio.to_thread(op, db)

    async def events(self) -> list[dict[str, Any]]:
        """The record's recent event log (newest first); empty without a durable record."""
        db = self.db
        return [] if db is None else await asyncio.to_thread(db.events)

    async def record_expired(self, op: Callable[[WithdrawalDB], Any]) -> None:
        """Record an event that needs no race bookkeeping (a drill that ended by itself)."""
        db = self.db
        if db is not None:
            await asyncio.to_thread(op, db)


@dataclass(frozen=True, slots=True)
class RequestServices:
    """The request path's services. ``withdrawals`` is read (the candidate precheck), never written; ``state``
    only for what a stream learns (prefill rejected); ``continuity`` records each finished request."""

    live: LiveRuntime
    clock: Callable[[], float]
    engine: FailoverEngine
    state: StateStore
    withdrawals: Withdrawals
    limiter: RateLimiter
    metrics: Metrics
    continuity: Continuity
    upstream: UpstreamSlot
