"""Route selection and the candidate chain. Pure: no I/O, no state.

Order: the ``x-gateway-route`` header; ``model`` equal to a route name or alias; ``model`` equal to a configured
model (that model first, then the fallbacks of the route whose primary it is); ``model`` = ``auto`` or absent ->
the first route whose ``match`` patterns hit the last user message, else ``default_route``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError
from gateway.runtime import Route, Runtime


@dataclass(frozen=True, slots=True)
class RouteChoice:
    route: Route
    reason: str  # header | name | alias | model | match:<i> | default
    chain: tuple[str, ...]


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
            return ""
    return ""


ENDPOINTS = {"chat": "POST /v1/chat/completions", "embeddings": "POST /v1/embeddings"}


def select_route(runtime: Runtime, model: str | None, header: str | None, messages: Sequence[Any],
                 kind: str = "chat") -> RouteChoice:
    """The route and chain for a request to an endpoint of ``kind`` (chat | embeddings); a route of the other
    kind is a clear 400 naming the endpoint that serves it."""
    choice = _select(runtime, model, header, messages)
    if choice.route.kind != kind:
        if kind == "embeddings" and (choice.reason == "default" or choice.reason.startswith("match:")):
            # `auto`: classification and the default route are for chat only.
            raise GatewayError(400, "`model` must name an embeddings route, alias or embedding model.",
                               code="invalid_request", param="model")
        what = "an embeddings" if choice.route.kind == "embeddings" else "a chat"
        raise GatewayError(400, f"`{header or model}` is {what} route or model; send it to "
                                f"{ENDPOINTS[choice.route.kind]}.", code="wrong_endpoint",
                           param="x-gateway-route" if header else "model")
    return choice


def _select(runtime: Runtime, model: str | None, header: str | None, messages: Sequence[Any]) -> RouteChoice:
    if header:
        route = runtime.names.get(header)
        if route is None:
            raise GatewayError(404, f"unknown route {header!r} in x-gateway-route", code="route_not_found",
                               param="x-gateway-route")
        return RouteChoice(route, "header", route.models)
    if model and model != "auto":
        route = runtime.names.get(model)
        if route is not None:
            return RouteChoice(route, "name" if route.name == model else "alias", route.models)
        if model in runtime.targets:
            home = runtime.primary_of.get(model)
            if home is None:
                # A model that is no route's primary: find any route that lists it, for its later fallbacks.
                home = next((r for r in runtime.routes.values() if model in r.models), None)
            if home is None:
                solo = _solo(model, "chat" if runtime.targets[model].dimensions is None else "embeddings")
                return RouteChoice(solo, "model", (model,))
            rest = home.models[home.models.index(model) + 1 :]
            return RouteChoice(home, "model", (model, *rest))
        raise GatewayError(404, f"The model `{model}` does not exist on this gateway (no such route, alias or model).",
                           code="model_not_found", param="model")
    text = last_user_text(messages)
    if text:
        for route in runtime.routes.values():
            for i, pattern in enumerate(route.patterns):
                if pattern.search(text):
                    return RouteChoice(route, f"match:{i}", route.models)
    default = runtime.default_route
    if default is None:
        raise GatewayError(400, "no route matched and no default_route is configured; send a route name as `model`",
                           code="route_not_found", param="model")
    return RouteChoice(default, "default", default.models)


def _solo(model: str, kind: str = "chat") -> Route:
    return Route(name=model, models=(model,), aliases=(), patterns=(), kind=kind)
