"""Breaker, state store, decision table and attempt-derived statuses: no network, injected clock."""

from __future__ import annotations

import pytest

from gateway.errors import ErrorKind
from gateway.failover.attempts import Attempt, exhausted_error, header_value
from gateway.failover.breaker import BreakerState, CircuitBreaker
from gateway.failover.state import MemoryStateStore
from gateway.failover.table import DECISIONS


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_decision_table_is_total():
    assert set(DECISIONS) == set(ErrorKind)
    assert not DECISIONS[ErrorKind.BAD_REQUEST].fail_over
    assert DECISIONS[ErrorKind.TRANSIENT].retry_same


def test_breaker_opens_half_opens_with_one_probe_and_closes():
    clock = Clock()
    b = CircuitBreaker(failures=3, cooldown=30, clock=clock)
    for _ in range(2):
        b.record_failure()
    assert b.state is BreakerState.CLOSED and b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.t += 30
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow() is True
    assert b.allow() is False  # only one probe
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.t += 30
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.allow() and b.allow()


def test_success_resets_consecutive_count():
    b = CircuitBreaker(failures=2, cooldown=1, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is BreakerState.CLOSED


def test_state_store_marks_and_expiry():
    clock = Clock()
    s = MemoryStateStore(clock)
    s.configure(["a", "b"], failures=1, cooldown=10, recheck=900)
    s.record_failure("a", ErrorKind.WITHDRAWN, None, "gone")
    assert s.skip_reason("a") == "withdrawn"
    assert s.describe("a")["state"] == "withdrawn"
    s.record_failure("b", ErrorKind.RATE_LIMITED, 5.0, "slow down")
    assert s.skip_reason("b") == "cooling"
    clock.t += 5
    assert s.skip_reason("b") is None
    s.record_failure("b", ErrorKind.TRANSIENT, None, "boom")
    assert s.skip_reason("b") == "breaker_open"
    clock.t += 900
    assert s.skip_reason("a") is None
    # A reload keeps state for models that still exist and drops the rest.
    s.record_failure("a", ErrorKind.ACCESS_DENIED, None, "revoked")
    s.configure(["a"], failures=1, cooldown=10, recheck=900)
    assert s.skip_reason("a") == "access_denied"
    assert not s.available("a")


def test_policy_and_bad_request_do_not_touch_state():
    s = MemoryStateStore(Clock())
    s.configure(["a"], failures=1, cooldown=10, recheck=900)
    s.record_failure("a", ErrorKind.BAD_REQUEST, None, "")
    s.record_failure("a", ErrorKind.POLICY_BLOCKED, None, "")
    s.record_failure("a", ErrorKind.CONTEXT_TOO_LONG, None, "")
    assert s.skip_reason("a") is None


def _a(model: str, outcome: str, retry_after: float | None = None) -> Attempt:
    return Attempt(model, "p", "v", outcome, retry_after=retry_after)


@pytest.mark.parametrize(
    "attempts,status",
    [
        ([_a("a", "rate_limited", 3), _a("b", "rate_limited", 9)], 429),
        ([_a("a", "rate_limited", 3), _a("b", "skipped:cooling")], 429),
        ([_a("a", "withdrawn"), _a("b", "skipped:breaker_open"), _a("c", "access_denied")], 503),
        ([_a("a", "denied:export"), _a("b", "withdrawn")], 503),
        ([_a("a", "withdrawn"), _a("b", "transient")], 502),
        ([_a("a", "transient"), _a("a", "transient")], 502),
    ],
)
def test_exhausted_status_derives_from_attempts(attempts, status):
    err = exhausted_error("r", attempts)
    assert err.status == status
    for a in attempts:
        assert f"{a.model}: {a.outcome}" in err.message
    if status == 429:
        assert err.headers["retry-after"] == "3"


def test_header_value():
    assert header_value([_a("fable-5", "withdrawn"), _a("gpt-5", "ok")]) == "fable-5=withdrawn,gpt-5=ok"
