"""Failed attempts are data: every request carries its list of ``Attempt``s, and headers, metrics, logs and
audit records all read from it. ``exhausted_error`` derives the client's status from the list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.routing.policy import denied_error

# Outcomes that mean "this model cannot serve now", as opposed to "this model broke".
UNAVAILABLE = {"withdrawn", "access_denied", "skipped:withdrawn", "skipped:access_denied", "skipped:breaker_open",
               "skipped:cooling", "skipped:context_window", "skipped:withdrawn_by_operator", "skipped:drill"}


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
    if outcomes and all(o in ("rate_limited", "skipped:cooling") for o in outcomes):
        waits = [a.retry_after for a in attempts if a.retry_after is not None]
        retry = max(1, int(min(waits) + 0.999)) if waits else 1
        return GatewayError(429, message, type="rate_limit_error", code="all_models_rate_limited",
                            headers={"retry-after": str(retry)})
    if "context_too_long" in outcomes and all(o in ("context_too_long", "skipped:context_window") for o in outcomes):
        # Every model said the prompt is too long or is smaller than one that did: the caller's to fix (as OpenAI
        # says it: 400 context_length_exceeded), not a server error for the SDK to retry.
        return GatewayError(400, message, type="invalid_request_error", code="context_length_exceeded",
                            param="messages")
    if "policy_blocked" in outcomes:
        # Every model that could answer refused (the route fails over on refusals): the caller gets the refusal.
        return GatewayError(400, message, type="invalid_request_error", code="content_filter")
    if outcomes and all(o in UNAVAILABLE or o.startswith("denied:") for o in outcomes):
        return GatewayError(503, message, type="service_unavailable", code="no_model_available")
    return GatewayError(502, message, type="upstream_error", code="all_models_failed")
