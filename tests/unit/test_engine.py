"""The failover loop with scripted calls: no network, injected clock and sleep."""

from __future__ import annotations

import pytest

from gateway.config.model import FailoverConfig
from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.failover.breaker import BreakerState
from gateway.failover.engine import FailoverEngine, RunContext
from gateway.failover.state import MemoryStateStore
from gateway.providers.base import Target


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeAdapter:
    def __init__(self, name: str, window: int = 1000) -> None:
        self.target = Target(name=name, provider="p-" + name, kind="openai", upstream_model=name, base_url="http://x",
                             vendor="V", jurisdiction="US", context_window=window)


def make(script: dict[str, list], retries: int = 1, windows: dict[str, int] | None = None):
    clock = Clock()
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        clock.t += s

    state = MemoryStateStore(clock)
    state.configure(script, failures=3, cooldown=30, recheck=900)
    engine = FailoverEngine(state, clock, sleep)
    adapters = {m: FakeAdapter(m, (windows or {}).get(m, 1000)) for m in script}
    calls: list[str] = []

    async def call(adapter, t):
        calls.append(adapter.target.name)
        outcome = script[adapter.target.name].pop(0)
        if isinstance(outcome, UpstreamError):
            raise outcome
        return outcome

    cfg = FailoverConfig.model_validate({"retries": retries, "backoff": {"initial": "100ms", "max": "1s"}})
    return engine, adapters, call, cfg, calls, slept, clock


def err(kind: ErrorKind, **kw) -> UpstreamError:
    return UpstreamError(kind, kind.value, **kw)


async def run(engine, adapters, call, cfg, chain, clock, total=60.0):
    ctx = RunContext(route="r", deadline=clock() + total)
    result = await engine.run(ctx, chain, adapters, cfg, call, cfg.timeouts)
    return ctx, result


async def test_transient_retries_with_backoff_then_next():
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.TRANSIENT), err(ErrorKind.TRANSIENT), err(ErrorKind.TRANSIENT)], "b": ["ok-b"]},
        retries=2)
    ctx, result = await run(engine, adapters, call, cfg, ["a", "b"], clock)
    assert result == "ok-b"
    assert calls == ["a", "a", "a", "b"]
    assert [a.outcome for a in ctx.attempts] == ["transient", "transient", "transient", "ok"]
    assert len(slept) == 2
    assert 0.1 <= slept[0] <= 0.2 and 0.2 <= slept[1] <= 0.3  # exponential with up to `initial` of jitter


async def test_retries_stop_at_the_deadline():
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.TRANSIENT)] * 5, "b": ["ok-b"]}, retries=5)
    with pytest.raises(GatewayError):
        await run(engine, adapters, call, cfg, ["a"], clock, total=0.05)
    assert calls == ["a"] and slept == []


@pytest.mark.parametrize("kind", [ErrorKind.WITHDRAWN, ErrorKind.ACCESS_DENIED, ErrorKind.RATE_LIMITED])
async def test_no_retry_for_these_kinds_and_later_requests_skip(kind):
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(kind, retry_after=10)], "b": ["ok-b", "ok-b2"]})
    ctx, _ = await run(engine, adapters, call, cfg, ["a", "b"], clock)
    assert calls == ["a", "b"]
    ctx, result = await run(engine, adapters, call, cfg, ["a", "b"], clock)
    assert result == "ok-b2" and calls == ["a", "b", "b"]
    assert ctx.attempts[0].outcome.startswith("skipped:")


@pytest.mark.parametrize("kind,status", [(ErrorKind.BAD_REQUEST, 400), (ErrorKind.POLICY_BLOCKED, 400)])
async def test_caller_errors_are_returned_without_failover(kind, status):
    engine, adapters, call, cfg, calls, slept, clock = make({"a": [err(kind, status=400, code="x")], "b": ["ok"]})
    with pytest.raises(GatewayError) as ei:
        await run(engine, adapters, call, cfg, ["a", "b"], clock)
    assert ei.value.status == status and calls == ["a"]


async def test_breaker_opens_after_consecutive_transient_failures():
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.TRANSIENT)] * 3 + ["ok-a"], "b": ["ok"] * 5}, retries=0)
    for _ in range(3):
        await run(engine, adapters, call, cfg, ["a", "b"], clock)
    ctx, _ = await run(engine, adapters, call, cfg, ["a", "b"], clock)
    assert ctx.attempts[0].outcome == "skipped:breaker_open"
    clock.t += 30  # half-open: one probe goes through and closes it
    ctx, result = await run(engine, adapters, call, cfg, ["a", "b"], clock)
    assert result == "ok-a"


async def test_context_too_long_skips_smaller_windows():
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.CONTEXT_TOO_LONG)], "small": ["never"], "big": ["ok-big"]},
        windows={"a": 1000, "small": 500, "big": 5000})
    ctx, result = await run(engine, adapters, call, cfg, ["a", "small", "big"], clock)
    assert result == "ok-big" and "small" not in calls
    assert [a.outcome for a in ctx.attempts] == ["context_too_long", "skipped:context_window", "ok"]


async def test_a_failed_half_open_probe_is_not_retried():
    # retries=2, but the breaker's single half-open probe fails: the model gets exactly one request.
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.TRANSIENT)] * 6, "b": ["ok"] * 5}, retries=2)
    await run(engine, adapters, call, cfg, ["a", "b"], clock)  # 3 transient failures: breaker opens
    assert calls.count("a") == 3
    clock.t += 30
    calls.clear()
    ctx, result = await run(engine, adapters, call, cfg, ["a", "b"], clock)
    assert calls == ["a", "b"] and result == "ok"
    assert [a.outcome for a in ctx.attempts] == ["transient", "ok"]


async def test_deadline_reached_on_a_half_open_model_does_not_keep_the_probe():
    """skip_reason() hands out the half-open probe; an attempt that then finds the deadline passed must give it
    back, or the breaker stays half-open with its probe taken and the model is skipped forever."""
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.TRANSIENT)] * 3 + ["ok-a"]}, retries=0)
    for _ in range(3):
        with pytest.raises(GatewayError):
            await run(engine, adapters, call, cfg, ["a"], clock)
    assert engine.state.breaker_state("a") is BreakerState.OPEN
    clock.t += 31  # past the breaker cooldown: half-open, one probe available
    with pytest.raises(GatewayError):
        await run(engine, adapters, call, cfg, ["a"], clock, total=0)  # deadline already reached
    ctx, result = await run(engine, adapters, call, cfg, ["a"], clock)  # the next request may probe
    assert result == "ok-a" and [a.outcome for a in ctx.attempts] == ["ok"]


async def test_configured_secrets_are_masked_in_attempts_and_caller_errors():
    secret = "local-vllm-key"  # not key-shaped: only the configured value can catch it
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.TRANSIENT, status=500)], "b": [UpstreamError(
            ErrorKind.BAD_REQUEST, f"bad header value {secret}", status=400)]}, retries=0)
    ctx = RunContext(route="r", deadline=clock() + 60, secrets=(secret,))
    with pytest.raises(GatewayError) as ei:
        await engine.run(ctx, ["a", "b"], adapters, cfg, call, cfg.timeouts)
    assert secret not in ei.value.message and "***" in ei.value.message
    assert [a.outcome for a in ctx.attempts] == ["transient", "bad_request"]
    assert all(secret not in a.message for a in ctx.attempts)


async def test_a_withdrawal_made_during_a_retry_wait_holds_for_the_retry():
    engine, adapters, call, cfg, calls, slept, clock = make(
        {"a": [err(ErrorKind.TRANSIENT), "ok-a"], "b": ["ok-b"]}, retries=2)
    withdrawn: set[str] = set()

    async def sleep(s: float) -> None:  # the operator withdraws `a` while the engine waits to retry it
        slept.append(s)
        clock.t += s
        withdrawn.add("a")

    engine.sleep = sleep
    ctx = RunContext(route="r", deadline=clock() + 60,
                     precheck=lambda m: ("skipped:withdrawn_by_operator", "legal") if m in withdrawn else None)
    result = await engine.run(ctx, ["a", "b"], adapters, cfg, call, cfg.timeouts)
    assert result == "ok-b" and calls == ["a", "b"]
    assert [a.outcome for a in ctx.attempts] == ["transient", "skipped:withdrawn_by_operator", "ok"]
