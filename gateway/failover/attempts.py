"""Failed attempts are data: every request carries its list of ``Attempt``s, and headers, metrics, logs and
audit records all read from it. ``exhausted_error`` derives the client's status from the list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from gateway.errors import GatewayError
from gateway.routing.policy import denied_error


class Outcome(StrEnum):
    """The fixed attempt outcomes. Two families add a suffix: ``skipped:unsupported:<param>`` (``unsupported``)
    and ``denied:<policy>`` (caller policy); an upstream failure's outcome is its ``ErrorKind`` value."""

    OK = "ok"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    WITHDRAWN = "withdrawn"
    ACCESS_DENIED = "access_denied"
    POLICY_BLOCKED = "policy_blocked"
    CONTEXT_TOO_LONG = "context_too_long"
    BAD_REQUEST = "bad_request"
    SKIPPED_WITHDRAWN = "skipped:withdrawn"
    SKIPPED_ACCESS_DENIED = "skipped:access_denied"
    SKIPPED_BREAKER = "skipped:breaker_open"
    SKIPPED_COOLING = "skipped:cooling"
    SKIPPED_CONTEXT = "skipped:context_window"
    SKIPPED_DEADLINE = "skipped:deadline"
    SKIPPED_OPERATOR = "skipped:withdrawn_by_operator"
    SKIPPED_DRILL = "skipped:drill"


def unsupported(param: str) -> str:
    return f"skipped:unsupported:{param}"


# Outcomes that mean "this model cannot serve now", as opposed to "this model broke".
UNAVAILABLE = {Outcome.WITHDRAWN, Outcome.ACCESS_DENIED, Outcome.SKIPPED_WITHDRAWN, Outcome.SKIPPED_ACCESS_DENIED,
               Outcome.SKIPPED_BREAKER, Outcome.SKIPPED_COOLING, Outcome.SKIPPED_CONTEXT, Outcome.SKIPPED_OPERATOR,
               Outcome.SKIPPED_DRILL}
RATE_LIMITED = {Outcome.RATE_LIMITED, Outcome.SKIPPED_COOLING}
CONTEXT = {Outcome.CONTEXT_TOO_LONG, Outcome.SKIPPED_CONTEXT}


@dataclass(slots=True)
class Attempt:
    model: str
    provider: str
    vendor: str
    outcome: str  # "ok", an ErrorKind value, "skipped:<why>" or "denied:<policy>" (message: the policy's reason)
    status: int | None = None
    latency: float = 0.0  # seconds
    message: str = ""
    retry_after: float | None = None

    @property
    def contacted(self) -> bool:
        return not (self.outcome.startswith("skipped:") or self.outcome.startswith("denied:"))

    def token(self) -> str:
        return f"{self.model}={self.outcome}"


def header_value(attempts: Sequence[Attempt]) -> str:
    return ",".join(a.token() for a in attempts)


def exhausted_error(route: str, attempts: Sequence[Attempt]) -> GatewayError:
    """Every candidate failed or was skipped. 429 if all were rate limited (or cooling), with the soonest
    Retry-After; 503 if all were unavailable; else 502. The message lists each attempt's model and kind."""
    outcomes = [a.outcome for a in attempts]
    if outcomes and all(o.startswith("denied:") for o in outcomes):
        return denied_error(route, [(a.model, a.outcome[len("denied:"):], a.message) for a in attempts])
    parts = []
    for a in attempts:
        detail = f" ({a.status})" if a.status else ""
        parts.append(f"{a.model}: {a.outcome}{detail}")
    listing = "; ".join(parts) or "no candidates"
    message = f"all models failed for route '{route}': {listing}"
    if outcomes and all(o in RATE_LIMITED for o in outcomes):
        waits = [a.retry_after for a in attempts if a.retry_after is not None]
        retry = max(1, int(min(waits) + 0.999)) if waits else 1
        return GatewayError(429, message, type="rate_limit_error", code="all_models_rate_limited",
                            headers={"retry-after": str(retry)})
    if Outcome.CONTEXT_TOO_LONG in outcomes and all(o in CONTEXT for o in outcomes):
        # Every model said the prompt is too long or is smaller than one that did: the caller's to fix (as OpenAI
        # says it: 400 context_length_exceeded), not a server error for the SDK to retry.
        return GatewayError(400, message, type="invalid_request_error", code="context_length_exceeded",
                            param="messages")
    if Outcome.POLICY_BLOCKED in outcomes:
        # Every model that could answer refused (the route fails over on refusals): the caller gets the refusal.
        return GatewayError(400, message, type="invalid_request_error", code="content_filter")
    if outcomes and all(o in UNAVAILABLE or o.startswith(("denied:", "skipped:unsupported:")) for o in outcomes):
        return GatewayError(503, message, type="service_unavailable", code="no_model_available")
    return GatewayError(502, message, type="upstream_error", code="all_models_failed")
