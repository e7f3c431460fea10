"""Route selection and the candidate chain. Pure: no I/O, no state.

Order: the ``x-gateway-route`` header; ``model`` equal to a route name or alias; ``model`` equal to a configured
model (that model first, then the fallbacks of the route whose primary it is); ``model`` = ``auto`` or absent ->
the first route whose ``match`` patterns hit the last user message, else the task classifier (routes with
``classify``: the nearest route's examples, if its score clears its threshold), else ``default_route``.

``messages`` are the internal (OpenAI-shaped) request's messages: the classifier reads the system prompt(s) and
the last user message. A classified choice's reason is ``classify:<score>``; a request the classifier saw but
did not place carries it in its reason, ``default:classify=<route>:<score><<threshold>`` (the nearest route
scored below its threshold) or ``default:classify=none:<score>`` (nearest to no route: the "no route" class's
probability), and ``verdict`` on the choice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError
from gateway.routing.classify.text import content_text, request_parts
from gateway.runtime import Route, Runtime


@dataclass(frozen=True, slots=True)
class RouteChoice:
    route: Route
    reason: str  # header | name | alias | model | match:<i> | classify:<score> | default[:classify=<what>:<score>...]
    chain: tuple[str, ...]
    verdict: Any = None  # the classifier's Verdict when it ran (for its metric), else None


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return content_text(msg.get("content"))
    return ""


ENDPOINTS = {"chat": "POST /v1/chat/completions", "embeddings": "POST /v1/embeddings"}


def select_route(runtime: Runtime, model: str | None, header: str | None, messages: Sequence[Any],
                 kind: str = "chat") -> RouteChoice:
    """The route and chain for a request to an endpoint of ``kind`` (chat | embeddings); a route of the other
    kind is a clear 400 naming the endpoint that serves it."""
    choice = _select(runtime, model, header, messages)
    if choice.route.kind != kind:
        if kind == "embeddings" and choice.reason.startswith(("default", "match:", "classify:")):
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
    verdict = None
    classifier = runtime.classifier
    if classifier is not None and text:
        verdict = classifier.classify(*request_parts(messages))
        if verdict.route is not None:
            route = runtime.routes[verdict.route]
            return RouteChoice(route, f"classify:{verdict.score:.3f}", route.models, verdict)
    default = runtime.default_route
    if default is None:
        raise GatewayError(400, "no route matched and no default_route is configured; send a route name as `model`",
                           code="route_not_found", param="model")
    if verdict is not None:
        # The audit record keeps only the reason: name what scored, so a near miss of a route (below its
        # threshold) is told apart from a prompt nearest to no route (whose score is the "no route" class's).
        seen = (f"{verdict.candidate}:{verdict.score:.3f}<{verdict.threshold:.2f}" if verdict.candidate is not None
                else f"none:{verdict.score:.3f}")
        return RouteChoice(default, f"default:classify={seen}", default.models, verdict)
    return RouteChoice(default, "default", default.models)


async def select_route_async(runtime: Runtime, model: str | None, header: str | None,
                             messages: Sequence[Any], kind: str = "chat") -> RouteChoice:
    """``select_route`` for the event loop: when the request would reach a classifier whose engine blocks for
    milliseconds (``embedding``: an ONNX run, which releases the GIL), it runs in a worker thread so other
    requests keep flowing; otherwise inline (the builtin engine costs well under a millisecond)."""
    classifier = runtime.classifier
    if classifier is not None and classifier.blocking and not header and (not model or model == "auto"):
        return await asyncio.to_thread(select_route, runtime, model, header, messages, kind)
    return select_route(runtime, model, header, messages, kind)


def _solo(model: str, kind: str = "chat") -> Route:
    return Route(name=model, models=(model,), aliases=(), patterns=(), kind=kind)
