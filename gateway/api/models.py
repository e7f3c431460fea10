"""``GET /v1/models`` and ``GET /v1/models/{id}``: the routes (with aliases) and models a caller may use, as
OpenAI model objects. One visibility rule for both: routes the caller's key allows whose models are not all denied
to it by policy, their aliases, and every model no policy denies it. Anything else is a 404 in OpenAI's shape
(``model_not_found``), whether it does not exist or is hidden from this caller."""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError
from gateway.routing.policy import Caller
from gateway.runtime import Runtime


def visible(rt: Runtime, caller: Caller) -> list[dict[str, Any]]:
    denied = caller.denials
    data: list[dict[str, Any]] = []
    for name, route in rt.routes.items():
        if caller.routes is not None and name not in caller.routes:
            continue
        usable = [m for m in route.models if m not in denied]
        if not usable:
            continue
        data.append({"id": name, "object": "model", "created": 0, "owned_by": "gateway-route",
                     "models": usable, "aliases": list(route.aliases)})
        for alias in route.aliases:
            data.append({"id": alias, "object": "model", "created": 0, "owned_by": "gateway-route"})
    for name, t in rt.targets.items():
        if name not in denied:
            data.append({"id": name, "object": "model", "created": 0, "owned_by": t.vendor})
    return data


def find(rt: Runtime, caller: Caller, model_id: str) -> dict[str, Any]:
    for entry in visible(rt, caller):
        if entry["id"] == model_id:
            return entry
    raise GatewayError(404, f"The model `{model_id}` does not exist or you do not have access to it.",
                       code="model_not_found", param="model")
