"""A per-model circuit breaker: closed -> open after N consecutive failures -> half-open after the cooldown,
where exactly one probe is let through; its success closes the breaker (and resets the back-off), its failure
opens it again for twice as long (up to ``max_cooldown``).

The state that matters is small and serialisable (``BreakerSnapshot``: state, consecutive failures, when it
opened, how many openings in a row, whether the probe is out), so a shared store can hold it remotely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(slots=True)
class BreakerSnapshot:
    state: BreakerState = BreakerState.CLOSED
    count: int = 0  # consecutive failures while closed
    opened_at: float = 0.0
    openings: int = 0  # consecutive openings without a success in between (drives the back-off)
    probe_out: bool = False


def open_for(cooldown: float, max_cooldown: float, openings: int) -> float:
    """How long the ``openings``-th consecutive opening lasts: ``cooldown`` doubled per re-opening, capped."""
    if openings <= 1:
        return min(cooldown, max_cooldown)
    return min(cooldown * (2.0 ** min(openings - 1, 60)), max_cooldown)


class CircuitBreaker:
    __slots__ = ("failures", "cooldown", "max_cooldown", "_clock", "s")

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float],
                 max_cooldown: float | None = None) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self.max_cooldown = cooldown if max_cooldown is None else max(max_cooldown, cooldown)
        self._clock = clock
        self.s = BreakerSnapshot()

    @property
    def current_cooldown(self) -> float:
        """How long the current (or last) opening lasts."""
        return open_for(self.cooldown, self.max_cooldown, self.s.openings)

    @property
    def state(self) -> BreakerState:
        s = self.s
        if s.state is BreakerState.OPEN and self._clock() >= s.opened_at + self.current_cooldown:
            return BreakerState.HALF_OPEN
        return s.state

    @property
    def recorded_state(self) -> BreakerState:
        """The state as last recorded, without consulting the clock (cheap; for transition detection)."""
        return self.s.state

    @property
    def open_until(self) -> float | None:
        s = self.s
        return s.opened_at + self.current_cooldown if s.state is BreakerState.OPEN else None

    def allow(self) -> bool:
        """May a request go to this model now? In half-open, only the first caller gets True."""
        s = self.s
        if s.state is BreakerState.CLOSED:
            return True
        if s.state is BreakerState.OPEN:
            if self._clock() < s.opened_at + self.current_cooldown:
                return False
            s.state = BreakerState.HALF_OPEN
            s.probe_out = False
        if s.probe_out:
            return False
        s.probe_out = True
        return True

    def would_allow(self) -> bool:
        """Like ``allow`` without taking the half-open probe (for reports)."""
        st = self.state
        return st is BreakerState.CLOSED or (st is BreakerState.HALF_OPEN and not self.s.probe_out)

    def record_success(self) -> None:
        self.s = BreakerSnapshot()

    def record_failure(self) -> None:
        s = self.s
        if s.state is BreakerState.HALF_OPEN or (s.state is BreakerState.OPEN and self.state is BreakerState.HALF_OPEN):
            self._open()
            return
        if s.state is BreakerState.OPEN:
            return  # a request that started before the opening: no new verdict
        s.count += 1
        if s.count >= self.failures:
            self._open()

    def release_probe(self) -> None:
        """The half-open probe ended without a verdict on health (e.g. a rate limit or a bad request)."""
        self.s.probe_out = False

    def _open(self) -> None:
        s = self.s
        s.state = BreakerState.OPEN
        s.opened_at = self._clock()
        s.count = 0
        s.openings += 1
        s.probe_out = False
