"""The one table that says what each kind of upstream failure means for routing.

Providers classify (``ErrorKind``); this table decides. Nothing else in the gateway branches on a kind to
choose between retrying, moving on, or answering the caller: the engine asks ``step`` after every failed
attempt and does what it says (``Action.RETRY`` after ``wait`` seconds, ``NEXT`` candidate, or ``ANSWER`` the
caller with this failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gateway.config.model import Backoff, FailoverConfig
from gateway.errors import ErrorKind, UpstreamError


class Mark(Enum):
    NONE = "none"
    BREAKER = "breaker"  # count toward the model's circuit breaker
    COOLDOWN = "cooldown"  # skip the model until Retry-After has passed
    UNAVAILABLE = "unavailable"  # skip the model until the withdrawn-recheck time


class Action(Enum):
    RETRY = "retry"  # the same model again, after Step.wait seconds
    NEXT = "next"  # the next candidate of the chain
    ANSWER = "answer"  # give the caller this failure (or the complete refusal answer it carries)


@dataclass(frozen=True, slots=True)
class Decision:
    retry_same: bool  # this kind may be retried on the same model (how often and when: ``step``)
    fail_over: bool  # try the next candidate; False = answer the caller with this error
    mark: Mark
    larger_context_only: bool = False  # later candidates must have a larger context window


DECISIONS: dict[ErrorKind, Decision] = {
    # Retried up to failover.retries times with exponential backoff while the breaker stays closed.
    ErrorKind.TRANSIENT: Decision(retry_same=True, fail_over=True, mark=Mark.BREAKER),
    # Retried once, only when Retry-After is at most failover.rate_limit_wait and fits the deadline.
    ErrorKind.RATE_LIMITED: Decision(retry_same=True, fail_over=True, mark=Mark.COOLDOWN),
    ErrorKind.WITHDRAWN: Decision(retry_same=False, fail_over=True, mark=Mark.UNAVAILABLE),
    ErrorKind.ACCESS_DENIED: Decision(retry_same=False, fail_over=True, mark=Mark.UNAVAILABLE),
    ErrorKind.CONTEXT_TOO_LONG: Decision(retry_same=False, fail_over=True, mark=Mark.NONE, larger_context_only=True),
    ErrorKind.POLICY_BLOCKED: Decision(retry_same=False, fail_over=False, mark=Mark.NONE),
    ErrorKind.BAD_REQUEST: Decision(retry_same=False, fail_over=False, mark=Mark.NONE),
}

# The per-route refusal override: ``on_refusal: failover`` turns policy_blocked into "try the next model".
REFUSAL_FAILOVER = Decision(retry_same=False, fail_over=True, mark=Mark.NONE)

# While continuing a cut stream, a model that rejects the continuation request (e.g. it refuses a prefill) is
# no reason to give up: the next model may accept it. The caller's original request was already accepted.
CONTINUATION_REJECTED = Decision(retry_same=False, fail_over=True, mark=Mark.NONE)

# Transient failures that say "this model is slow" (or that there is no time left), not "this model hiccuped":
# retrying the same model would only spend the caller's time again, so they move straight to the next model.
NOT_RETRIED = frozenset({"first_token_timeout", "stream_stall", "deadline"})

# A continuation request whose prefill (trailing assistant turn) the model rejected with a 400: the model is
# remembered as unable and asked again at once with the instruction form.
PREFILL_REJECTED = "prefill_rejected"


def decide(kind: ErrorKind, on_refusal: str = "return", continuation: bool = False) -> Decision:
    if kind is ErrorKind.POLICY_BLOCKED and on_refusal == "failover":
        return REFUSAL_FAILOVER
    if continuation and kind in (ErrorKind.BAD_REQUEST, ErrorKind.POLICY_BLOCKED):
        return CONTINUATION_REJECTED
    return DECISIONS[kind]


@dataclass(frozen=True, slots=True)
class Step:
    action: Action
    decision: Decision
    wait: float = 0.0


def backoff(cfg: Backoff, retry: int, jitter: float) -> float:
    """Seconds before the ``retry``-th retry (1-based): exponential from ``initial``, capped at ``max``, plus up to
    ``initial`` of jitter (``jitter`` in [0, 1))."""
    return min(cfg.initial * (2.0 ** (retry - 1)) + jitter * cfg.initial, cfg.max)


def step(e: UpstreamError, *, tries: int, time_left: float, breaker_closed: bool, cfg: FailoverConfig,
         on_refusal: str = "return", continuation: bool = False, jitter: float = 0.0) -> Step:
    """What to do after the ``tries``-th failed attempt at one model within one request."""
    d = decide(e.kind, on_refusal, continuation)
    if continuation and e.code == PREFILL_REJECTED and tries == 1:
        return Step(Action.RETRY, d)
    if d.retry_same:
        if e.kind is ErrorKind.TRANSIENT:
            if e.code not in NOT_RETRIED and tries <= cfg.retries and breaker_closed:
                wait = backoff(cfg.backoff, tries, jitter)
                if wait < time_left:
                    return Step(Action.RETRY, d, wait)
        elif e.kind is ErrorKind.RATE_LIMITED:
            ra = e.retry_after
            if tries == 1 and ra is not None and ra <= cfg.rate_limit_wait and ra < time_left:
                return Step(Action.RETRY, d, ra)
    return Step(Action.NEXT if d.fail_over else Action.ANSWER, d)
