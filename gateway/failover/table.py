"""The one table that says what each kind of upstream failure means for routing.

Providers classify (``ErrorKind``); this table decides. Nothing else in the gateway branches on a kind to
choose between retrying, moving on, or answering the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gateway.errors import ErrorKind


class Mark(Enum):
    NONE = "none"
    BREAKER = "breaker"  # count toward the model's circuit breaker
    COOLDOWN = "cooldown"  # skip the model until Retry-After has passed
    UNAVAILABLE = "unavailable"  # skip the model until the withdrawn-recheck time


@dataclass(frozen=True, slots=True)
class Decision:
    retry_same: bool  # retry this model (bounded by failover.retries and the deadline) before moving on
    fail_over: bool  # try the next candidate; False = answer the caller with this error
    mark: Mark
    larger_context_only: bool = False  # later candidates must have a larger context window


DECISIONS: dict[ErrorKind, Decision] = {
    ErrorKind.TRANSIENT: Decision(retry_same=True, fail_over=True, mark=Mark.BREAKER),
    ErrorKind.RATE_LIMITED: Decision(retry_same=False, fail_over=True, mark=Mark.COOLDOWN),
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


def decide(kind: ErrorKind, on_refusal: str = "return", continuation: bool = False) -> Decision:
    if kind is ErrorKind.POLICY_BLOCKED and on_refusal == "failover":
        return REFUSAL_FAILOVER
    if continuation and kind in (ErrorKind.BAD_REQUEST, ErrorKind.POLICY_BLOCKED):
        return CONTINUATION_REJECTED
    return DECISIONS[kind]
