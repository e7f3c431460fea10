"""The candidate chain of one request, built once and used for the first attempt and for continuations alike.

A request's chain is its route's models in order (``gateway.routing.select``). Before a candidate is called,
``FailoverEngine._skip`` asks, in this order: the request's precheck built here (caller policy, capabilities the
request needs, operator withdrawals and drills), the context-window rule, the deadline, then the shared state
(withdrawn marks, cooldown, breaker). A continuation walks the same chain after the model that was cut, minus
the models that already served, through the same checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.errors import GatewayError
from gateway.failover.attempts import unsupported

Precheck = Callable[[str], "tuple[str, str] | None"]

# capability -> the request parameter that needs it (named in skips and errors)
CAPABILITY_PARAMS: dict[str, str] = {
    "tools": "tools",
    "json_schema": "response_format",
    "n": "n",
    "logprobs": "logprobs",
    "vision": "image_url",
}


def required_capabilities(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The capabilities a chat request needs from the model that serves it (cheap: a few dict reads)."""
    needs: list[str] = []
    if body.get("tools") and body.get("tool_choice") != "none":
        needs.append("tools")
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
        needs.append("json_schema")
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        needs.append("n")
    if body.get("logprobs") is True or body.get("top_logprobs"):
        needs.append("logprobs")
    if _has_image(body.get("messages")):
        needs.append("vision")
    return tuple(needs)


def _has_image(messages: Any) -> bool:
    for m in messages or ():
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in ("image_url", "input_image", "image"):
                    return True
    return False


def check_capabilities(route: str, chain: Sequence[str], targets: Mapping[str, Any], needs: Sequence[str]) -> None:
    """A 400 naming the parameter when no model of the chain has a capability the request needs."""
    for cap in needs:
        if not any(cap in targets[m].capabilities for m in chain if m in targets):
            param = CAPABILITY_PARAMS[cap]
            raise GatewayError(400, f"No model on route '{route}' supports '{param}' ({', '.join(chain)}); "
                                    f"send the request without it or use a route whose models support it.",
                               code="unsupported_parameter", param=param)


def request_precheck(caller: Any, withdrawals: Any, needs: Sequence[str], targets: Mapping[str, Any]) -> Precheck:
    """The engine's pre-call skip hook for this request: caller policy, then capabilities, then operator
    withdrawals/drills (read live: a continuation minutes later still honours a withdrawal made since)."""
    denials = caller.denials
    if not denials and not needs:
        return withdrawals_only(withdrawals)
    caps_needed = tuple(needs)

    def precheck(model: str) -> tuple[str, str] | None:
        d = denials.get(model)
        if d is not None:
            return d.outcome, d.reason
        if caps_needed:
            caps = targets[model].capabilities
            for cap in caps_needed:
                if cap not in caps:
                    param = CAPABILITY_PARAMS[cap]
                    return unsupported(param), f"{model} does not support '{param}'"
        if withdrawals.blocks:
            e = withdrawals.check(model)
            if e is not None:
                return e.outcome, e.reason
        return None

    return precheck


def withdrawals_only(withdrawals: Any) -> Precheck:
    def precheck(model: str) -> tuple[str, str] | None:
        if not withdrawals.blocks:
            return None
        e = withdrawals.check(model)
        return None if e is None else (e.outcome, e.reason)

    return precheck


def continuation_chain(chain: Sequence[str], cut: str, served: Sequence[str]) -> tuple[str, ...]:
    """The candidates that may continue an answer cut on ``cut``: the rest of the chain after it, minus the
    models that already served part of the answer."""
    rest = chain[chain.index(cut) + 1:] if cut in chain else ()
    return tuple(m for m in rest if m not in served)
