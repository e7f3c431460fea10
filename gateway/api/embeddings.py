"""``POST /v1/embeddings``: OpenAI's embeddings API in front of embedding routes (``routes.<r>.kind: embeddings``).

Flow, as for chat: authenticate -> read and validate the body -> select the route (``model`` = a route, alias or
embedding model; or ``x-gateway-route``) -> caller policy -> the failover engine over the route's embedding models
-> the answer in OpenAI's shape, with the ``x-gateway-*`` headers -> metrics and audit from the attempt list.

Dimensions: vectors from different models are not interchangeable, so a request needs one vector length: the
caller's ``dimensions`` when sent, else the declared ``dimensions`` of the first model of the chain. Models of
another length are skipped without contact (``skipped:dimensions`` on the attempt list); a vector of the wrong
length from upstream is a failure of that model (``dimensions_mismatch``), and the next one is tried.

Inputs: a string or an array of strings (at most ``MAX_INPUTS``). Token arrays are refused with a 400: the models
behind a route use different tokenizers, so token ids cannot be failed over. ``encoding_format: base64`` returns
little-endian float32 bytes, as OpenAI does; upstreams are always asked for floats, which the gateway checks.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from array import array
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.api.asgi import header, parse_json, read_body
from gateway.api.chat import _RID, _precheck, _RequestIds, _routed_headers, authenticate
from gateway.api.validate import missing
from gateway.audit.wiring import prompt_hash
from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.failover.attempts import Attempt, exhausted_error
from gateway.failover.engine import RunContext
from gateway.observability.record import RequestRecord
from gateway.providers.embeddings import EmbeddingRequest, Embeddings, batches
from gateway.routing.policy import KEY_ROUTES_POLICY, check_route
from gateway.routing.select import RouteChoice, select_route
from gateway.runtime import Runtime
from gateway.upstream import Timeouts

if TYPE_CHECKING:
    from gateway.services import RequestServices
    from gateway.upstream import UpstreamClient

MAX_INPUTS = 2048  # OpenAI's limit per request
MAX_PARALLEL = 8  # upstream calls in flight for one request when a model takes fewer inputs per call
_KNOWN = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
SKIPPED_DIMENSIONS = "skipped:dimensions"  # a model whose vectors have another length: never a candidate

REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "description": "An embeddings route, alias or embedding model."},
        "input": {"oneOf": [{"type": "string", "minLength": 1},
                            {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                             "maxItems": MAX_INPUTS}]},
        "encoding_format": {"type": "string", "enum": ["float", "base64"], "default": "float"},
        "dimensions": {"type": "integer", "minimum": 1},
        "user": {"type": "string"},
    },
}

DIALECT = "embeddings"  # the ``dialect`` label / audit field of these requests


def _bad(param: str, message: str, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, f"Invalid value for '{param}': {message}", code=code, param=param)


def validate_embeddings(body: Any) -> tuple[EmbeddingRequest, str]:
    """The validated request and the ``encoding_format``; ``GatewayError(400)`` naming the field otherwise."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.", code="invalid_request")
    model = body.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "expected a non-empty string")
    value = body.get("input")
    if value is None:
        raise missing("input")
    if isinstance(value, str):
        inputs: tuple[str, ...] = (value,)
    elif isinstance(value, list) and value:
        if len(value) > MAX_INPUTS:
            raise _bad("input", f"at most {MAX_INPUTS} inputs per request, got {len(value)}")
        for i, x in enumerate(value):
            if not isinstance(x, str):
                if _token_array(x):
                    raise _bad("input", "token arrays are not supported: the models behind a route use different "
                                        "tokenizers; send the text", code="unsupported_input")
                raise _bad(f"input[{i}]", f"expected a string, got {type(x).__name__}")
        inputs = tuple(value)
    else:
        raise _bad("input", "expected a non-empty string or a non-empty array of strings")
    for i, text in enumerate(inputs):
        if not text:
            raise _bad("input" if isinstance(value, str) else f"input[{i}]", "must not be empty")
    fmt = body.get("encoding_format")
    if fmt is None:
        fmt = "float"
    elif fmt not in ("float", "base64"):
        raise _bad("encoding_format", f"expected 'float' or 'base64', got {fmt!r}")
    dims = body.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise _bad("dimensions", "expected a positive integer")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("user", "expected a string")
    extra = {k: v for k, v in body.items() if k not in _KNOWN}
    return EmbeddingRequest(inputs, dims, user, extra), fmt


def _token_array(x: Any) -> bool:
    """A token id, or an array of them (OpenAI accepts both shapes for ``input``)."""
    if isinstance(x, list):
        return bool(x) and all(isinstance(t, int) and not isinstance(t, bool) for t in x)
    return isinstance(x, int) and not isinstance(x, bool)


def required_dimensions(runtime: Runtime, choice: RouteChoice, asked: int | None) -> int:
    """The one vector length this request is served in (see the module docstring)."""
    chain = choice.chain
    want = asked if asked is not None else runtime.targets[chain[0]].dimensions
    if not any(runtime.targets[m].dimensions == want for m in chain):
        declared = ", ".join(f"{m}: {runtime.targets[m].dimensions}" for m in chain)
        raise GatewayError(400, f"No model of route '{choice.route.name}' returns {want}-dimension vectors "
                                f"(declared: {declared}).", code="unsupported_dimensions", param="dimensions")
    assert want is not None
    return want


def encode(vectors: list[list[float]], fmt: str) -> list[Any]:
    if fmt == "float":
        return vectors  # type: ignore[return-value]
    out = []
    for v in vectors:
        packed = array("f", v)
        if sys.byteorder == "big":
            packed.byteswap()
        out.append(base64.b64encode(packed.tobytes()).decode())
    return out


class EmbeddingsEndpoint:
    def __init__(self, svc: RequestServices) -> None:
        self.svc = svc
        self._ids = _RequestIds()

    async def __call__(self, request: Request) -> Response:
        svc = self.svc
        runtime = svc.live.runtime
        scope = request.scope
        start = svc.clock()
        wall = time.time()
        rid = header(scope, b"x-request-id")
        if rid is None or not _RID.match(rid):
            rid = self._ids()
        base = [(b"x-request-id", rid.encode())]
        choice = caller = None
        body: Any = None
        try:
            caller = authenticate(scope, runtime)
            if caller.rate_limit is not None:
                await svc.limiter.acheck(caller.name or "", caller.rate_limit)  # fleet-wide with state: redis
            raw = await read_body(request.receive, runtime.config.limits.max_body_bytes,
                                  header(scope, b"content-length"))
            body = parse_json(raw)
            req, fmt = validate_embeddings(body)
            choice = select_route(runtime, body["model"], header(scope, b"x-gateway-route"), (), kind="embeddings")
            check_route(caller, choice.route.name)
            want = required_dimensions(runtime, choice, req.dimensions)
        except GatewayError as e:
            route_label = choice.route.name if choice is not None else "none"
            if e.code == "route_not_allowed":
                svc.metrics.policy_denials.labels(KEY_ROUTES_POLICY, route_label).inc()
            svc.metrics.record_request(route_label, e.status, (), (), None, DIALECT)
            svc.continuity.on_request(RequestRecord(
                rid, wall, caller.name if caller is not None else None, route_label,
                choice.reason if choice is not None else "none", False, e.status, svc.clock() - start,
                error=e.code or e.type, dialect=DIALECT))
            return _error(e, base)
        except ConnectionAbortedError:
            return Response(status_code=499)
        route = choice.route
        timeouts = route.timeouts or runtime.config.failover.timeouts
        ctx = RunContext(route=route.name, deadline=start + timeouts.total,
                         precheck=_dimensions_precheck(runtime, want, _precheck(caller, svc.withdrawals)),
                         on_refusal=route.on_refusal, secrets=runtime.secrets)
        status, usage, error = 500, None, None
        try:
            try:
                result = await svc.engine.run(ctx, choice.chain, runtime.embedders, runtime.config.failover,
                                              _attempt_call(svc.upstream.client, req, timeouts.first_token), timeouts)
            except GatewayError as e:
                e = _exhausted(e, route.name, ctx.attempts)
                if e.param == "messages":  # the engine names the chat field (context_length_exceeded)
                    e.param = "input"
                status, error = e.status, e.code or e.type
                return _error(e, _routed_headers(base, choice, ctx))
            usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
            data = [{"object": "embedding", "index": i, "embedding": v}
                    for i, v in enumerate(encode(result.vectors, fmt))]
            payload = {"object": "list", "data": data, "model": ctx.served, "usage": usage}
            status = 200
            return Response(orjson.dumps(payload), media_type="application/json",
                            headers=_str_headers(_routed_headers(base, choice, ctx)))
        finally:
            # Models of another length were never candidates: metrics, the request log, the audit record (and so
            # the reports and the status page) see no failover to or from them, and the depth of the model that
            # served is its place among the candidates (the recorded chain). The x-gateway-attempts header and
            # error messages still list the skips.
            tried = candidates(ctx.attempts)
            chain = tuple(m for m in choice.chain if runtime.targets[m].dimensions == want)
            svc.metrics.record_request(route.name, status, tried, chain, ctx.served, DIALECT)
            hashed = prompt_hash(list(req.inputs)) if runtime.config.audit.store_prompt_hash else None
            svc.continuity.on_request(RequestRecord(
                rid, wall, caller.name, route.name, choice.reason, False, status, svc.clock() - start,
                tried, [ctx.served] if ctx.served else [], usage, chain, dict(caller.attributes),
                error, hashed, DIALECT))


def candidates(attempts: list[Attempt]) -> list[Attempt]:
    """The attempts at models of the request's vector length (what failover moved between)."""
    return [a for a in attempts if a.outcome != SKIPPED_DIMENSIONS]


def _exhausted(e: GatewayError, route: str, attempts: list[Attempt]) -> GatewayError:
    """The engine classifies an exhausted chain from all its attempts; a model skipped for its dimensions was
    never a candidate, so it must not turn "all rate limited" (429) or "all unavailable" (503) into a 502."""
    if e.code not in ("all_models_failed", "no_model_available"):
        return e
    tried = candidates(attempts)
    if len(tried) == len(attempts):
        return e
    better = exhausted_error(route, tried)
    if better.status != 403:  # a policy denial names its policies; otherwise keep the full attempt listing
        better.message = e.message
    return better


def _dimensions_precheck(runtime: Runtime, want: int, then: Any) -> Any:
    targets = runtime.targets

    def precheck(model: str) -> tuple[str, str] | None:
        dims = targets[model].dimensions
        if dims != want:
            return SKIPPED_DIMENSIONS, f"returns {dims}-dimension vectors; this request needs {want}"
        return then(model) if then is not None else None

    return precheck


def _attempt_call(upstream: UpstreamClient | None, req: EmbeddingRequest, first_token: float) -> Any:
    """The engine's ``call`` for one attempt at one embedding model: the inputs in batches the model accepts
    (several upstream calls at most ``MAX_PARALLEL`` at a time; the first failure fails the attempt)."""
    assert upstream is not None, "the upstream client is opened in the lifespan"

    async def one(embedder: Any, part: tuple[str, ...], t: Timeouts) -> Embeddings:
        raw = await upstream.send(embedder.build_request(replace(req, inputs=part)), t)
        if raw.status >= 300:
            raise embedder.classify_error(raw.status, raw.headers, raw.body)
        result: Embeddings = embedder.parse_response(raw.body, len(part))
        return result

    async def call(embedder: Any, t: Timeouts) -> Embeddings:
        # An embeddings answer is all-or-nothing, so the route's first_token limit bounds the whole attempt: an
        # upstream that hangs is abandoned (and not retried) in time for the next model.
        limit = min(first_token, t.total)
        try:
            async with asyncio.timeout(limit):
                return await attempt(embedder, t)
        except TimeoutError:
            raise UpstreamError(ErrorKind.TRANSIENT, f"no answer within {limit:g}s", code="first_token_timeout") \
                from None

    async def attempt(embedder: Any, t: Timeouts) -> Embeddings:
        parts = batches(req.inputs, embedder.max_batch)
        if len(parts) == 1:
            return await one(embedder, parts[0], t)
        gate = asyncio.Semaphore(MAX_PARALLEL)

        async def gated(part: tuple[str, ...]) -> Embeddings:
            async with gate:
                return await one(embedder, part, t)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(gated(p)) for p in parts]
        except* UpstreamError as eg:
            raise eg.exceptions[0] from None
        results = [task.result() for task in tasks]
        return Embeddings([v for r in results for v in r.vectors], sum(r.prompt_tokens for r in results))

    return call


def _str_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    # latin-1 both ways (Starlette encodes header values as latin-1): the bytes the chat endpoint would send.
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}


def _error(e: GatewayError, headers: list[tuple[bytes, bytes]]) -> Response:
    return Response(e.body_bytes(), status_code=e.status, media_type="application/json",
                    headers={**_str_headers(headers), **e.headers})


def build_router(svc: RequestServices) -> APIRouter:
    router = APIRouter()
    endpoint = EmbeddingsEndpoint(svc)

    @router.post("/v1/embeddings", openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": REQUEST_SCHEMA}}}},
        summary="OpenAI embeddings on an embeddings route (failover between models of the same dimensions)")
    async def embeddings(request: Request) -> Response:
        return await endpoint(request)

    return router
