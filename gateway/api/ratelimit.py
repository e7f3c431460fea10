"""Per-key request-rate limits (``keys[].rate_limit``, requests per minute): a token bucket per key name.

State outlives a request and survives a config reload (keyed by key name; a changed limit applies at once).
One dict lookup and a little arithmetic per request; the clock is injected.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from gateway.errors import GatewayError


class RateLimiter:
    __slots__ = ("_clock", "_buckets")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # key name -> [tokens, last refill time]

    def check(self, key: str, per_minute: int) -> None:
        """Take one request from the key's budget or raise a 429 with Retry-After."""
        now = self._clock()
        rate = per_minute / 60.0
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = [float(per_minute), now]
        tokens = min(float(per_minute), b[0] + (now - b[1]) * rate)
        b[1] = now
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            return
        b[0] = tokens
        raise rate_limited(key, per_minute, max(1, math.ceil((1.0 - tokens) / rate)))

    async def acheck(self, key: str, per_minute: int) -> None:
        """``check`` for the request path; a fleet limiter (``gateway.state.ratelimit``) asks the shared store."""
        self.check(key, per_minute)


def rate_limited(key: str, per_minute: int, wait: int) -> GatewayError:
    return GatewayError(429, f"Rate limit of {per_minute} requests per minute reached for key {key!r}; "
                             f"retry in {wait}s.", type="rate_limit_error", code="rate_limit_exceeded",
                        headers={"retry-after": str(wait)})
