"""The attempt loop: walk the candidates in order, skip those that cannot be called now, call the rest, and after
every failure do what the decision table's ``step`` says (retry the same model after a wait, the next
candidate, or answer the caller). It keeps the state store informed and records every attempt. Streaming and
non-streaming (and any other call type) share this loop; they differ only in the ``call`` they pass in.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.config.model import FailoverConfig
from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.failover.attempts import Attempt, Outcome, exhausted_error
from gateway.failover.state import StateStore
from gateway.failover.table import Action, step
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
    # The request's pre-call skip hook (``gateway.failover.candidates``): model name -> None (may be called) or
    # an outcome ("denied:<policy>", "skipped:<why>") and a message; evaluated for every candidate before the
    # context-window rule, the deadline and the state store (breaker, cooldown, withdrawn marks).
    precheck: Callable[[str], tuple[str, str] | None] | None = None
    on_refusal: str = "return"  # the route's override of the policy_blocked decision
    refusal_fallbacks: tuple[str, ...] = ()
    continuation: bool = False  # continuing a cut stream: a rejected continuation request moves on
    secrets: tuple[str, ...] = ()  # the config's secrets, masked in attempt messages and caller errors


class FailoverEngine:
    """Stateless apart from the injected ``state``; one per gateway process."""

    def __init__(
        self,
        state: StateStore,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.state = state
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter

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
        i = 0
        while i < len(queue):
            name = queue[i]
            i += 1
            adapter = adapters[name]
            target = adapter.target
            skip = self._skip(ctx, name, target.context_window, larger_than)
            if skip is not None:
                ctx.attempts.append(Attempt(name, target.provider, target.vendor, skip[0], message=skip[1]))
                continue
            tries = 0
            while True:
                tries += 1
                try:
                    result = await self._attempt(ctx, adapter, call, timeouts)
                except UpstreamError as e:
                    s = step(e, tries=tries, time_left=ctx.deadline - self.clock(),
                             breaker_closed=self.state.may_retry(name), cfg=cfg, on_refusal=ctx.on_refusal,
                             continuation=ctx.continuation, jitter=self.jitter())
                    if s.action is Action.RETRY:
                        await _discard(e.answer)
                        if s.wait > 0:
                            await self.sleep(s.wait)
                        # A withdrawal or drill made during the wait holds for the retry too (the kill switch is
                        # in force once the admin call returned, even for a request that started before it).
                        hit = ctx.precheck(name) if ctx.precheck is not None else None
                        if hit is not None:
                            ctx.attempts.append(Attempt(name, target.provider, target.vendor, hit[0], message=hit[1]))
                            break
                        continue
                    if s.action is Action.ANSWER:
                        if e.answer is not None:  # a refusal that is a complete answer (200, content_filter)
                            ctx.served = name
                            return e.answer
                        raise _caller_error(e, ctx.secrets) from e
                    await _discard(e.answer)
                    if e.kind is ErrorKind.POLICY_BLOCKED and ctx.refusal_fallbacks:
                        tried = set(queue[:i])
                        queue = queue[:i] + [m for m in ctx.refusal_fallbacks if m not in tried and m in adapters]
                    if s.decision.larger_context_only:
                        larger_than = max(larger_than, target.context_window)
                    break
                ctx.served = name
                return result
        raise exhausted_error(ctx.route, ctx.attempts)

    def _skip(self, ctx: RunContext, name: str, window: int, larger_than: int) -> tuple[str, str] | None:
        """Why this candidate is not called now, in the one order every call type and continuation shares:
        the request's precheck (caller policy, capabilities, operator withdrawals and drills), the context-window
        rule, the deadline, then the shared state (withdrawn marks, cooldown, breaker; may take the half-open
        probe, so it is asked last)."""
        if ctx.precheck is not None:
            hit = ctx.precheck(name)
            if hit is not None:
                return hit
        if window <= larger_than:
            return Outcome.SKIPPED_CONTEXT, ""
        if ctx.deadline <= self.clock():
            return Outcome.SKIPPED_DEADLINE, "the request's deadline was reached before this model was tried"
        reason = self.state.skip_reason(name)
        if reason is not None:
            return f"skipped:{reason}", ""
        return None

    async def _attempt(self, ctx: RunContext, adapter: Any, call: Call[T], timeouts: Any) -> T:
        target = adapter.target
        remaining = ctx.deadline - self.clock()
        if remaining <= 0:
            # Not contacted, so no verdict on its health; but skip_reason() may have handed out the half-open
            # probe: give it back.
            ctx.attempts.append(Attempt(target.name, target.provider, target.vendor, Outcome.SKIPPED_DEADLINE,
                                        message="the request's deadline was reached before this model was tried"))
            self.state.release(target.name)
            raise UpstreamError(ErrorKind.TRANSIENT, "request deadline reached", code="deadline")
        t = attempt_timeouts(timeouts, target, remaining)
        t0 = self.clock()
        try:
            result = await call(adapter, t)
        except UpstreamError as e:
            self.record_failure(ctx, target, e, self.clock() - t0)
            raise
        except BaseException:
            # Cancelled (client went away) or a bug: the half-open probe must not stay taken.
            self.state.release(target.name)
            raise
        ctx.attempts.append(Attempt(target.name, target.provider, target.vendor, Outcome.OK, 200, self.clock() - t0))
        self.state.record_success(target.name)
        return result

    def record_failure(self, ctx: RunContext, target: Any, e: UpstreamError, latency: float = 0.0) -> None:
        """Record one failed attempt on the attempt list and in the state store. Also used for a committed stream
        that is cut later, outside ``run``: one place records failures.

        Upstream text enters gateway state here: it is masked once (configured secrets, then key shapes), in the
        error itself, so the attempt list, model state, logs, audit, ``/admin/state``, the status page and error
        bodies all carry the masked text (an upstream may echo the key it received)."""
        e.message = redact(e.message, ctx.secrets)
        ctx.attempts.append(Attempt(target.name, target.provider, target.vendor, e.kind.value, e.status, latency,
                                    e.message, e.retry_after))
        self.state.record_failure(target.name, e.kind, e.retry_after, e.message)


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
