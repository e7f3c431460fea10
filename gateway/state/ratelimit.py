"""Fleet-wide per-key rate limits: one token bucket per key name in the shared store (Redis, on its own clock),
so that ``keys[].rate_limit`` holds for the whole fleet, not per worker. Only keys with a rate limit pay the
round trip (~0.1-0.3 ms on a LAN). While the store is unreachable, each worker falls back to its local bucket
(the limit then holds per worker) and no request fails because of the store.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from gateway.api.ratelimit import RateLimiter, rate_limited
from gateway.state.store import SharedStore, StoreUnavailable

TIMEOUT = 0.25  # seconds: a slow store must not hold a request longer than this


class FleetRateLimiter(RateLimiter):
    __slots__ = ("_store", "_up")

    def __init__(self, clock: Callable[[], float], store: SharedStore, up: Callable[[], bool]) -> None:
        super().__init__(clock)
        self._store = store
        self._up = up

    async def acheck(self, key: str, per_minute: int) -> None:
        if self._up():
            try:
                wait = await asyncio.wait_for(self._store.take_token(key, per_minute), TIMEOUT)
            except (StoreUnavailable, asyncio.TimeoutError):
                pass  # the fleet's bucket is out of reach: this worker's own bucket decides
            else:
                if wait > 0:
                    raise rate_limited(key, per_minute, max(1, math.ceil(wait)))
                return
        self.check(key, per_minute)
