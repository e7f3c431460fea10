"""State that outlives one request: breakers, withdrawn/unavailable marks, rate-limit cooldowns.

``StateStore`` is the interface the engine uses; ``MemoryStateStore`` keeps it in this process. A shared store
(for several replicas) implements the same methods. State is keyed by the gateway model name, so it survives a
config reload that keeps the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.errors import ErrorKind
from gateway.failover.breaker import BreakerState, CircuitBreaker
from gateway.failover.table import DECISIONS, Mark
from gateway.observability.redact import redact

DEFAULT_COOLDOWN = 1.0  # seconds, for a 429 that carries no Retry-After


class StateStore(Protocol):
    def skip_reason(self, model: str) -> str | None:
        """None if the model may be called now (this may take a half-open probe), else why it is skipped."""
        ...

    def record_success(self, model: str) -> None: ...

    def may_retry(self, model: str) -> bool:
        """May a failed attempt be retried on this model at once? False once its breaker is not closed."""
        ...

    def record_failure(self, model: str, kind: ErrorKind, retry_after: float | None, message: str) -> None: ...

    def release(self, model: str) -> None:
        """An attempt ended without a verdict on the model's health (never contacted, cancelled): give back the
        half-open probe if this request held it."""
        ...

    def prefill_rejected(self, model: str) -> bool:
        """True once the model answered a prefill (trailing assistant turn) with a 400."""
        ...

    def reject_prefill(self, model: str) -> None: ...

    def describe(self, model: str) -> dict[str, Any]: ...

    # The rest of what the gateway (not the engine) calls: config swaps, gauges/readiness, operator reinstatement.
    # Synchronous on purpose: the request path reads a local view. In a fleet that view is the cache of
    # ``gateway.state`` (``FleetState``), kept current by the async ``SharedStore`` (Redis) in the background.
    def configure(self, models: Iterable[str], failures: int, cooldown: float, recheck: float,
                  max_cooldown: float | None = None) -> None: ...

    def available(self, model: str) -> bool:
        """Usable now, without taking a half-open probe."""
        ...

    def reinstate(self, model: str) -> None:
        """Forget the model's breaker, cooldown and upstream marks (an operator's reinstatement)."""
        ...

    def breaker_state(self, model: str) -> BreakerState: ...


@dataclass(slots=True)
class _ModelState:
    breaker: CircuitBreaker
    unavailable_until: float = 0.0
    unavailable_kind: str = ""
    unavailable_message: str = ""
    cooldown_until: float = 0.0
    events: list[str] = field(default_factory=list)


class MemoryStateStore:
    """In-process state. ``configure`` is called on every config (re)load; models that still exist keep theirs."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        # Called on state changes only (breaker opened/closed, model marked unavailable), never per request.
        self.on_transition: Callable[..., None] | None = None
        self._models: dict[str, _ModelState] = {}
        self._failures = 3
        self._cooldown = 30.0
        self._recheck = 900.0
        self._max_cooldown = 300.0
        self._no_prefill: set[str] = set()

    def configure(self, models: Iterable[str], failures: int, cooldown: float, recheck: float,
                  max_cooldown: float | None = None) -> None:
        self._failures, self._cooldown, self._recheck = failures, cooldown, recheck
        self._max_cooldown = cooldown if max_cooldown is None else max_cooldown
        names = set(models)
        self._no_prefill &= names
        for name in list(self._models):
            if name not in names:
                del self._models[name]
        for name in names:
            st = self._models.get(name)
            if st is None:
                self._models[name] = _ModelState(self._breaker())
            else:
                b = st.breaker
                b.failures, b.cooldown, b.max_cooldown = failures, cooldown, max(self._max_cooldown, cooldown)

    def _breaker(self) -> CircuitBreaker:
        return CircuitBreaker(self._failures, self._cooldown, self._clock, self._max_cooldown)

    def _get(self, model: str) -> _ModelState:
        st = self._models.get(model)
        if st is None:
            st = self._models[model] = _ModelState(self._breaker())
        return st

    def skip_reason(self, model: str) -> str | None:
        st = self._get(model)
        now = self._clock()
        if st.unavailable_until > now:
            return st.unavailable_kind
        if st.cooldown_until > now:
            return "cooling"
        if not st.breaker.allow():
            return "breaker_open"
        return None

    def may_retry(self, model: str) -> bool:
        return self._get(model).breaker.state is BreakerState.CLOSED

    def record_success(self, model: str) -> None:
        st = self._get(model)
        was = st.breaker.recorded_state
        st.breaker.record_success()
        if was is not BreakerState.CLOSED and self.on_transition is not None:
            self.on_transition("breaker_closed", model=model)
        if st.unavailable_kind:
            st.unavailable_until = 0.0
            st.unavailable_kind = ""

    def record_failure(self, model: str, kind: ErrorKind, retry_after: float | None, message: str) -> None:
        st = self._get(model)
        mark = DECISIONS[kind].mark
        now = self._clock()
        if mark is Mark.BREAKER:
            was = st.breaker.recorded_state
            st.breaker.record_failure()
            if st.breaker.recorded_state is BreakerState.OPEN and was is not BreakerState.OPEN and self.on_transition:
                self.on_transition("breaker_opened", model=model, cooldown_s=st.breaker.current_cooldown)
            return
        st.breaker.release_probe()
        if mark is Mark.COOLDOWN:
            st.cooldown_until = now + (retry_after if retry_after is not None else DEFAULT_COOLDOWN)
        elif mark is Mark.UNAVAILABLE:
            st.unavailable_until = now + self._recheck
            st.unavailable_kind = kind.value
            st.unavailable_message = redact(message)[:300]  # shown by /admin/state and /status: providers echo keys
            if self.on_transition is not None:
                self.on_transition("model_unavailable", model=model, kind=kind.value, recheck_s=self._recheck,
                                   reason=st.unavailable_message)

    def release(self, model: str) -> None:
        self._get(model).breaker.release_probe()

    def prefill_rejected(self, model: str) -> bool:
        return model in self._no_prefill

    def reject_prefill(self, model: str) -> None:
        self._no_prefill.add(model)

    def reinstate(self, model: str) -> None:
        st = self._get(model)
        st.unavailable_until = st.cooldown_until = 0.0
        st.unavailable_kind = ""
        st.breaker.record_success()

    def describe(self, model: str) -> dict[str, Any]:
        st = self._get(model)
        now = self._clock()
        info: dict[str, Any] = {"state": "ok", "breaker": st.breaker.state.name.lower()}
        if st.unavailable_until > now:
            info.update(state=st.unavailable_kind, until_in_s=round(st.unavailable_until - now, 3),
                        reason=st.unavailable_message)
        elif st.cooldown_until > now:
            info.update(state="cooling", until_in_s=round(st.cooldown_until - now, 3))
        elif st.breaker.state is BreakerState.OPEN:
            info.update(state="breaker_open", until_in_s=round((st.breaker.open_until or now) - now, 3))
        return info

    def available(self, model: str) -> bool:
        """For gauges and readiness: usable now, without taking a half-open probe."""
        st = self._get(model)
        now = self._clock()
        return st.unavailable_until <= now and st.cooldown_until <= now and st.breaker.would_allow()

    def breaker_state(self, model: str) -> BreakerState:
        return self._get(model).breaker.state
