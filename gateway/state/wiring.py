"""Building the live-state services from the config (once, at start-up); the gateway passes them in explicitly."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.config.model import GatewayConfig
from gateway.failover.state import MemoryStateStore
from gateway.state.fleet import Fleet, worker_identity
from gateway.state.live import FleetState
from gateway.state.store import RedisStore


def make_state(config: GatewayConfig, clock: Callable[[], float]) -> MemoryStateStore:
    """The state store the engine reads: this process's memory, or (``state.backend: redis``) the local cache of the
    fleet's shared state."""
    if config.state.backend == "redis":
        return FleetState(clock, time.time, worker_identity()[1])
    return MemoryStateStore(clock)


def make_fleet(config: GatewayConfig, state: MemoryStateStore, withdrawals: Any,
               reread: Callable[[], Awaitable[list[Any] | None]],
               lifecycle: Callable[..., None] | None = None,
               last_change: Callable[[], Awaitable[float]] | None = None,
               mirror: Callable[[list[Any]], Awaitable[Any]] | None = None) -> Fleet | None:
    if not isinstance(state, FleetState) or config.state.url is None:
        return None
    replica, worker = worker_identity()
    store = RedisStore(config.state.url, config.state.key_prefix)
    return Fleet(store, state, withdrawals, reread, replica=replica, worker=worker,
                 ack_timeout=config.state.ack_timeout, lifecycle=lifecycle, last_change=last_change, mirror=mirror)


def probe_ttl(config: GatewayConfig) -> float:
    """How long the fleet's half-open probe token lasts: the longest a probe request may take, plus a second."""
    return config.failover.timeouts.total + 1.0
