"""A per-model circuit breaker: closed -> open after N consecutive failures -> half-open after the cooldown,
where exactly one probe is let through; its success closes the breaker, its failure opens it again."""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    __slots__ = ("failures", "cooldown", "_clock", "_state", "_count", "_opened_at", "_probe_out")

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._count = 0
        self._opened_at = 0.0
        self._probe_out = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() >= self._opened_at + self.cooldown:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def recorded_state(self) -> BreakerState:
        """The state as last recorded, without consulting the clock (cheap; for transition detection)."""
        return self._state

    @property
    def open_until(self) -> float | None:
        return self._opened_at + self.cooldown if self._state is BreakerState.OPEN else None

    def allow(self) -> bool:
        """May a request go to this model now? In half-open, only the first caller gets True."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if self._clock() < self._opened_at + self.cooldown:
                return False
            self._state = BreakerState.HALF_OPEN
            self._probe_out = False
        if self._probe_out:
            return False
        self._probe_out = True
        return True

    def would_allow(self) -> bool:
        """Like ``allow`` without taking the half-open probe (for reports)."""
        st = self.state
        return st is BreakerState.CLOSED or (st is BreakerState.HALF_OPEN and not self._probe_out)

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._count = 0
        self._probe_out = False

    def record_failure(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._count += 1
        if self._count >= self.failures:
            self._open()

    def release_probe(self) -> None:
        """The half-open probe ended without a verdict on health (e.g. a rate limit or a bad request)."""
        self._probe_out = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._count = 0
        self._probe_out = False
