"""``FleetState``: the state store the failover engine reads in a fleet, as a local cache.

It is a ``MemoryStateStore`` (this worker's breakers, cooldowns and marks, unchanged) plus ``remote``: the marks
other workers published (breaker open, cooling, withdrawn, access denied), each with its end on this worker's
clock. The hot path stays synchronous and local: ``skip_reason`` costs one extra dict lookup. Changes go out
through ``outbox`` (a callable the ``Fleet`` service sets; it queues them for a background publisher), so
nothing on the request path waits for Redis.

A breaker opened anywhere is open everywhere; when its cooldown ends, exactly one worker of the fleet gets the
half-open probe: the one that takes the store's probe token (requested in the background when a request finds
the model half-open; until the token is granted, that worker skips the model too). The probe's success closes the
breaker fleet-wide; its failure opens it again everywhere. While the store is down (``shared`` False), remote
marks still hold until they end, and each worker's own breaker decides alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.errors import ErrorKind
from gateway.failover.breaker import BreakerState, open_for
from gateway.failover.state import MemoryStateStore
from gateway.failover.table import DECISIONS, Mark

BREAKER_OPEN = "breaker_open"
CLAIM_TTL = 1.0  # seconds a probe token is held by a worker that has not started the probe yet


@dataclass(slots=True)
class RemoteMark:
    kind: str  # breaker_open | cooling | withdrawn | access_denied
    until: float  # this worker's clock
    message: str = ""
    origin: str = ""
    wall: float = 0.0  # ``until`` as published (wall clock): names the breaker's opening, for its probe token
    openings: int = 0  # breaker marks: consecutive openings fleet-wide (each failed probe doubles the cooldown)

    @property
    def epoch(self) -> str:
        return repr(self.wall)


class FleetState(MemoryStateStore):
    def __init__(self, clock: Callable[[], float], wall: Callable[[], float], worker: str) -> None:
        super().__init__(clock)
        self._wall = wall
        self.worker = worker
        self.remote: dict[str, RemoteMark] = {}
        self.shared = False  # the store is reachable (set by Fleet)
        self.outbox: Callable[[dict[str, Any]], None] = lambda msg: None
        self.request_probe: Callable[[str, str], None] = lambda model, epoch: None
        self.probe_ttl = 30.0
        # model -> (opening, until on this worker's clock): the fleet's probe token for that opening is ours
        self._granted: dict[str, tuple[str, float]] = {}
        # models whose fleet probe this worker is running now -> the opening (epoch) the probe token belongs to
        self._probing: dict[str, str] = {}

    # -- clocks ------------------------------------------------------------------------------------------
    def to_wall(self, t: float) -> float:
        return self._wall() + (t - self._clock())

    def from_wall(self, w: float) -> float:
        return self._clock() + (w - self._wall())

    # -- the hot path --------------------------------------------------------------------------------------
    def skip_reason(self, model: str) -> str | None:
        m = self.remote.get(model)
        if m is not None:
            if self._clock() < m.until:
                return m.kind
            if m.kind != BREAKER_OPEN or not self.shared:
                del self.remote[model]  # ended (or the store is down: this worker's own breaker decides)
            else:
                granted = self._granted.pop(model, None)
                if granted is None or granted[0] != m.epoch or granted[1] <= self._clock():
                    self.request_probe(model, m.epoch)
                    return BREAKER_OPEN
                self._probing[model] = m.epoch
                self.outbox({"t": "extend", "m": model, "e": m.epoch})
                reason = super().skip_reason(model)
                if reason is not None:
                    self._end_probe(model)
                return reason
        return super().skip_reason(model)

    def may_retry(self, model: str) -> bool:
        if model in self._probing or model in self.remote:
            return False
        return super().may_retry(model)

    def record_success(self, model: str) -> None:
        super().record_success(model)
        if self._probing and model in self._probing:
            del self._probing[model]
            self.remote.pop(model, None)
            self.outbox({"t": "clear", "m": model})

    def record_failure(self, model: str, kind: ErrorKind, retry_after: float | None, message: str) -> None:
        st = self._get(model)
        was = st.breaker.recorded_state
        super().record_failure(model, kind, retry_after, message)
        mark = DECISIONS[kind].mark
        probing = model in self._probing
        if mark is Mark.BREAKER:
            b = st.breaker
            reopened = b.recorded_state is BreakerState.OPEN and (was is not BreakerState.OPEN or probing)
            if reopened or probing:
                # The fleet's count of consecutive openings decides the cooldown (doubled per failed probe, up to
                # max_cooldown), whichever worker's probe failed: this one's own breaker may have been closed.
                prev = self.remote.get(model)
                fleet_n = prev.openings if prev is not None and prev.kind == BREAKER_OPEN else 0
                n = max(b.s.openings if reopened else 0, fleet_n + 1 if probing else 1)
                until = self._clock() + open_for(b.cooldown, b.max_cooldown, n)
                self._share(model, BREAKER_OPEN, max(until, b.open_until or 0.0) if reopened else until, openings=n)
            if probing:
                del self._probing[model]  # its token stays taken: it belongs to the opening that just ended
            return
        if probing:
            self._end_probe(model)  # no verdict on health: give the probe token back
        if mark is Mark.COOLDOWN:
            self._share(model, "cooling", st.cooldown_until)
        elif mark is Mark.UNAVAILABLE:
            self._share(model, kind.value, st.unavailable_until, st.unavailable_message)

    def release(self, model: str) -> None:
        """An attempt ended with no verdict on the model's health: give back the probe (ours and the fleet's)."""
        base = getattr(super(), "release", None)
        if base is not None:
            base(model)
        if model in self._probing:
            self._end_probe(model)

    def reinstate(self, model: str) -> None:
        super().reinstate(model)
        if self.remote.pop(model, None) is not None or self.shared:
            self.outbox({"t": "clear", "m": model})

    # -- sharing -------------------------------------------------------------------------------------------
    def _share(self, model: str, kind: str, until: float, message: str = "", openings: int = 0) -> None:
        wall = self.to_wall(until)
        self.remote[model] = RemoteMark(kind, until, message, self.worker, wall, openings)
        self.outbox({"t": "mark", "m": model, "k": kind, "u": wall, "msg": message, "n": openings})

    def _end_probe(self, model: str) -> None:
        epoch = self._probing.pop(model, None)
        if epoch is not None:
            self.outbox({"t": "release", "m": model, "e": epoch})

    def grant_probe(self, model: str, epoch: str) -> None:
        """The fleet's probe token for this opening of ``model``'s breaker is ours, for a short claim
        (``CLAIM_TTL``): if no request comes here to use it, another worker's traffic gets it soon after. The probe,
        when it starts, extends the token to ``probe_ttl``."""
        self._granted[model] = (epoch, self._clock() + CLAIM_TTL * 0.8)

    def apply_mark(self, model: str, kind: str, until_wall: float, message: str = "", origin: str = "",
                   openings: int = 0) -> None:
        """A mark another worker published (or one read back from the store on resync)."""
        until = self.from_wall(until_wall)
        if until <= self._clock() and kind != BREAKER_OPEN:
            return
        cur = self.remote.get(model)
        if cur is not None and cur.kind == kind and cur.until >= until and cur.origin == self.worker:
            return  # our own, at least as long
        self.remote[model] = RemoteMark(kind, until, message[:300], origin, until_wall, openings)

    def apply_clear(self, model: str) -> None:
        """Another worker's fleet probe succeeded, or an operator reinstated the model: forget what this worker
        knew about it too (its own breaker closes, its own cooldown and withdrawn marks end)."""
        self.remote.pop(model, None)
        self._granted.pop(model, None)
        if model in self._models:
            super().reinstate(model)

    def own_marks(self) -> list[tuple[str, RemoteMark]]:
        """Marks this worker published that still hold (re-shared after the store comes back)."""
        now = self._clock()
        return [(m, r) for m, r in self.remote.items() if r.origin == self.worker and r.until > now]

    # -- reads for gauges, readiness, /admin/state -----------------------------------------------------------
    def _active(self, model: str) -> RemoteMark | None:
        m = self.remote.get(model)
        if m is not None and self._clock() < m.until:
            return m
        return None

    def describe(self, model: str) -> dict[str, Any]:
        info = super().describe(model)
        m = self._active(model)
        if m is not None and info.get("state") == "ok":
            info.update(state=m.kind, until_in_s=round(m.until - self._clock(), 3))
            if m.message:
                info["reason"] = m.message
            if m.kind == BREAKER_OPEN:
                info["breaker"] = "open"
            if m.origin and m.origin != self.worker:
                info["seen_by"] = m.origin
        return info

    def available(self, model: str) -> bool:
        return self._active(model) is None and super().available(model)

    def breaker_state(self, model: str) -> BreakerState:
        m = self.remote.get(model)
        if m is not None and m.kind == BREAKER_OPEN:
            return BreakerState.OPEN if self._clock() < m.until else BreakerState.HALF_OPEN
        return super().breaker_state(model)
