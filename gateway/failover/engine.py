"""The attempt loop: try candidates in order, retry transient failures with backoff, consult the decision table,
keep the state store informed, and record every attempt. Streaming and non-streaming share this loop; they
differ only in the ``call`` they pass in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gateway.config.model import FailoverConfig
from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.failover.attempts import Attempt, exhausted_error
from gateway.failover.state import StateStore
from gateway.failover.table import decide
from gateway.observability.redact import redact
from gateway.upstream import Timeouts

T = TypeVar("T")
Call = Callable[[Any, Timeouts], Awaitable[T]]


@dataclass(slots=True)
class RunContext:
    """Per-request inputs and outputs of the loop."""

    route: str
    deadline: float
    attempts: list[Attempt] = field(default_factory=list)
    served: str | None = None
    # The generic pre-call skip hook: model name -> None (may be called) or an outcome ("denied:<policy>",
    # "skipped:<why>") and a message; evaluated for every candidate before the state store is consulted.
    precheck: Callable[[str], tuple[str, str] | None] | None = None
    on_refusal: str = "return"  # the route's override of the policy_blocked decision
    refusal_fallbacks: tuple[str, ...] = ()
    continuation: bool = False  # continuing a cut stream: a rejected continuation request moves on
    secrets: tuple[str, ...] = ()  # the config's secrets, masked in attempt messages and caller errors


# Transient failures that say "this model is slow", not "this model hiccuped": retrying the same model would
# only spend the caller's time again, so they move straight to the next model.
NOT_RETRIED = frozenset({"first_token_timeout", "stream_stall"})


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamError) and exc.kind is ErrorKind.TRANSIENT and exc.code not in NOT_RETRIED


class FailoverEngine:
    """Stateless apart from the injected ``state``; one per gateway process."""

    def __init__(
        self,
        state: StateStore,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.state = state
        self.clock = clock
        self.sleep = sleep

    async def run(
        self,
        ctx: RunContext,
        chain: Sequence[str],
        adapters: dict[str, Any],
        cfg: FailoverConfig,
        call: Call[T],
        timeouts: Any,
    ) -> T:
        """Return the first successful ``call`` result; raise ``GatewayError`` when none succeeded or when a
        failure must go back to the caller (bad_request, policy_blocked)."""
        larger_than = 0
        queue = list(chain)
        precheck = ctx.precheck
        i = 0
        while i < len(queue):
            name = queue[i]
            i += 1
            adapter = adapters[name]
            target = adapter.target
            if precheck is not None:
                hit = precheck(name)
                if hit is not None:
                    ctx.attempts.append(Attempt(name, target.provider, target.vendor, hit[0], message=hit[1]))
                    continue
            if target.context_window <= larger_than:
                ctx.attempts.append(Attempt(name, target.provider, target.vendor, "skipped:context_window"))
                continue
            skip = self.state.skip_reason(name)
            if skip is not None:
                ctx.attempts.append(Attempt(name, target.provider, target.vendor, f"skipped:{skip}"))
                continue
            try:
                result = await self._try_model(ctx, adapter, cfg, call, timeouts)
            except UpstreamError as e:
                decision = decide(e.kind, ctx.on_refusal, ctx.continuation)
                if not decision.fail_over:
                    if e.answer is not None:  # a refusal that is a complete answer (200, content_filter)
                        ctx.served = name
                        return e.answer
                    raise _caller_error(e, ctx.secrets) from e
                await _discard(e.answer)
                if e.kind is ErrorKind.POLICY_BLOCKED and ctx.refusal_fallbacks:
                    tried = set(queue[:i])
                    queue = queue[:i] + [m for m in ctx.refusal_fallbacks if m not in tried and m in adapters]
                if decision.larger_context_only:
                    larger_than = max(larger_than, target.context_window)
                continue
            ctx.served = name
            return result
        raise exhausted_error(ctx.route, ctx.attempts)

    async def _try_model(self, ctx: RunContext, adapter: Any, cfg: FailoverConfig, call: Call[T], timeouts: Any) -> T:
        """One model: a first attempt, then (only for transient failures) tenacity's bounded retries with
        exponential backoff and jitter. The first attempt runs outside tenacity because it is the hot path and
        building a retry controller per request costs ~30 us here."""
        name = adapter.target.name
        try:
            return await self._attempt(ctx, adapter, call, timeouts)
        except UpstreamError as e:
            # No retry once the failure opened the model's breaker (a failed half-open probe, or the threshold
            # reached): the breaker's verdict wins over the retry budget.
            if not _is_transient(e) or cfg.retries == 0 or not self.state.may_retry(name):
                raise
        deadline = ctx.deadline

        def stop_at_deadline(rs: RetryCallState) -> bool:
            return self.clock() + rs.upcoming_sleep >= deadline or not self.state.may_retry(name)

        backoff = wait_exponential_jitter(initial=cfg.backoff.initial, max=cfg.backoff.max, jitter=cfg.backoff.initial)

        def wait(rs: RetryCallState) -> float:
            # tenacity counts the retries it runs; the first attempt ran before it, so shift by one.
            rs.attempt_number += 1
            try:
                return backoff(rs)
            finally:
                rs.attempt_number -= 1

        retrying = AsyncRetrying(
            sleep=self.sleep,
            stop=stop_after_attempt(cfg.retries) | stop_at_deadline,
            wait=wait,
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        # The first failure already happened: back off before the first retry too.
        first_wait = backoff(RetryCallState(retrying, None, (), {}))  # type: ignore[arg-type]
        if self.clock() + first_wait >= deadline:
            raise UpstreamError(ErrorKind.TRANSIENT, "request deadline reached", code="deadline")
        await self.sleep(first_wait)
        async for attempt in retrying:
            with attempt:
                return await self._attempt(ctx, adapter, call, timeouts)
        raise AssertionError("unreachable: tenacity either returns or reraises")

    async def _attempt(self, ctx: RunContext, adapter: Any, call: Call[T], timeouts: Any) -> T:
        target = adapter.target
        remaining = ctx.deadline - self.clock()
        if remaining <= 0:
            err = UpstreamError(ErrorKind.TRANSIENT, "request deadline reached", code="deadline")
            ctx.attempts.append(Attempt(target.name, target.provider, target.vendor, "transient", message=err.message))
            # Not contacted, so no verdict on its health, but skip_reason() may have handed out the half-open
            # probe: give it back (a kind with no state mark only releases the probe).
            self.state.record_failure(target.name, ErrorKind.BAD_REQUEST, None, "")
            raise err
        t = attempt_timeouts(timeouts, target, remaining)
        t0 = self.clock()
        try:
            result = await call(adapter, t)
        except UpstreamError as e:
            # Upstream text enters gateway state here: masked once (configured secrets, then key shapes), so the
            # attempt list, model state, logs, audit, /admin/state, the status page and error bodies all get it
            # masked (an upstream may echo the key it received).
            e.message = redact(e.message, ctx.secrets)
            ctx.attempts.append(Attempt(target.name, target.provider, target.vendor, e.kind.value, e.status,
                                        self.clock() - t0, e.message, e.retry_after))
            self.state.record_failure(target.name, e.kind, e.retry_after, e.message)
            raise
        except BaseException:
            # Cancelled (client went away) or a bug: the half-open probe must not stay taken.
            self.state.record_failure(target.name, ErrorKind.BAD_REQUEST, None, "")
            raise
        ctx.attempts.append(Attempt(target.name, target.provider, target.vendor, "ok", 200, self.clock() - t0))
        self.state.record_success(target.name)
        return result


async def _discard(answer: Any) -> None:
    """Release an answer that will not be used (an open stream holds a connection)."""
    close = getattr(answer, "aclose", None)
    if close is not None:
        await close()


def attempt_timeouts(route: Any, target: Any, remaining: float) -> Timeouts:
    """One attempt's limits. Precedence, field by field: ``providers.<name>.timeouts`` (what this upstream needs)
    over the route's ``timeouts`` over ``failover.timeouts``. A provider's ``total`` bounds each attempt on it; the
    request's deadline (route or global ``total``, as ``remaining``) bounds every attempt whatever the provider says."""
    o = getattr(target, "timeouts", None) or {}
    return Timeouts(connect=o.get("connect", route.connect), idle=o.get("idle", route.idle),
                    total=min(remaining, o.get("total", remaining)),
                    first_token=o.get("first_token", getattr(route, "first_token", None)))


def _caller_error(e: UpstreamError, secrets: tuple[str, ...] = ()) -> GatewayError:
    """A failure that goes back to the caller as the provider said it (bad request, policy block)."""
    status = e.status if e.status and 400 <= e.status < 500 else 400
    etype = "invalid_request_error"
    if e.kind is ErrorKind.POLICY_BLOCKED:
        code = e.code or "content_filter"
    else:
        code = e.code
    return GatewayError(status, redact(e.message, secrets) or "upstream rejected the request", type=etype, code=code,
                        param=e.param)


