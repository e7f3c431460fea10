"""OpenAI Chat Completions wire format for the emulator (plus vLLM / Ollama / Groq
error dialects chosen with the per-model ``flavor`` param).

Literal bodies follow ../shared/reference/provider-wire-formats.md sections 1, 6, 7, 8.

Routes: ``POST /v1/chat/completions``, ``POST /chat/completions``, ``GET /v1/models``.

Stream-only behaviours (stream_cut, stream_error, stream_stall, malformed_chunk,
garbage, missing_done) answer non-streaming requests normally (healthy).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import orjson
from aiohttp import web

from gateway.emulator.behaviours import Behaviour
from gateway.emulator.content import (
    Reply,
    completion_tokens,
    estimate_prompt_tokens,
    make_reply,
    split_pieces,
)
from gateway.emulator.state import EmulatorState

WIRE = "openai"
MAX_HOLD_SECONDS = 600.0  # upper bound for no_response / stream_stall delays
GARBAGE_LINES = 20
DEFAULT_AFTER = 3
DEFAULT_CONTEXT_WINDOW = 8192

_JSON = "application/json"
_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "openai-version": "2020-10-01",
}
# Sent on every OpenAI-flavoured response (values from the reference, section 1.4).
_RATE_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-limit-tokens": "10000000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-remaining-tokens": "9993230",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-reset-tokens": "40ms",
    "openai-version": "2020-10-01",
    "openai-processing-ms": "1",
}
_USAGE_DETAILS = {
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
_FINGERPRINTS = {"openai": "fp_emulator", "groq": "fp_emulator", "ollama": "fp_ollama"}
_VLLM_TYPES = {  # vLLM error `type` by HTTP status ([U] for 403/429/503)
    400: "BadRequestError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}
_SERVER_ERROR_MSG = (
    "The server had an error processing your request. Sorry about that! You can retry your "
    "request, or contact us through our help center at help.openai.com if you keep seeing this "
    "error. (Please include the request ID {rid} in your email.)"
)
_STREAM_ERROR = (
    b'data: {"error":{"message":"The server experienced an error while processing your request. '
    b'We apologize for the inconvenience!","type":"server_error","param":null,"code":null}}\n\n'
)
_DONE = b"data: [DONE]\n\n"
_MALFORMED = b"data: {not json\n\n"

ERROR_BEHAVIOURS = frozenset(
    {
        "withdrawn",
        "access_revoked",
        "no_model_access",
        "region_blocked",
        "rate_limited",
        "quota",
        "overloaded",
        "server_error",
        "context_exceeded",
        "invalid_prompt",
    }
)
STREAM_FAULTS = frozenset({"stream_cut", "stream_error", "stream_stall", "malformed_chunk", "garbage"})


def _rid() -> str:
    return "req_" + os.urandom(16).hex()


def go_duration(seconds: float) -> str:
    """Go-style duration as used in x-ratelimit-reset-* (``6ms``, ``1s``, ``1m30s``)."""
    if seconds < 1:
        return f"{int(round(seconds * 1000))}ms"
    minutes, secs = divmod(seconds, 60)
    secs_s = f"{secs:g}s" if secs else ""
    return f"{int(minutes)}m{secs_s or '0s'}" if minutes else secs_s


def _mask_key(key: str) -> str:
    if len(key) <= 8:
        return "***"
    return f"{key[:8]}***{key[-4:]}"


# --------------------------------------------------------------------------- errors
def error_for(
    kind: str,
    flavor: str,
    model: str | None,
    params: dict[str, Any] | None = None,
    **extra: Any,
) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body, extra headers) of error ``kind`` in dialect ``flavor``.

    ``kind`` is an error behaviour name or one of ``unauthorized``, ``bad_json``,
    ``missing_model``, ``missing_messages``.
    """
    params = params or {}
    m = model if model is not None else ""
    headers: dict[str, str] = {}
    param: str | None = None
    code: Any = None
    etype = "invalid_request_error"
    if kind in ("unauthorized", "access_revoked"):
        status = 401
        key = extra.get("key")
        if kind == "unauthorized" and not key:
            msg = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys."
            )
        else:
            msg = (
                f"Incorrect API key provided: {_mask_key(key or 'sk-emulator-revoked-key')}. "
                "You can find your API key at https://platform.openai.com/account/api-keys."
            )
        code = "invalid_api_key"
    elif kind == "withdrawn":
        status, code = 404, "model_not_found"
        msg = f"The model `{m}` does not exist or you do not have access to it."
    elif kind == "no_model_access":
        status, code = 403, "model_not_found"
        msg = f"Project `{params.get('project', 'proj_emulator')}` does not have access to model `{m}`"
    elif kind == "region_blocked":
        status, etype, code = 403, "request_forbidden", "unsupported_country_region_territory"
        msg = "Country, region, or territory not supported"
    elif kind == "rate_limited":
        status, code = 429, "rate_limit_exceeded"
        retry_after = params.get("retry_after", 1)
        etype = str(params.get("kind", "requests"))
        if etype == "tokens":
            msg = (
                f"Rate limit reached for {m} in organization org-emulator on tokens per min (TPM): "
                f"Limit 30000, Used 29000, Requested 1500. Please try again in {retry_after}s. "
                "Visit https://platform.openai.com/account/rate-limits to learn more."
            )
        else:
            msg = (
                f"Rate limit reached for {m} in organization org-emulator on requests per min (RPM): "
                f"Limit 3, Used 3, Requested 1. Please try again in {retry_after}s. "
                "Visit https://platform.openai.com/account/rate-limits to learn more."
            )
        reset = go_duration(float(retry_after))
        headers = {
            "retry-after": f"{retry_after:g}" if isinstance(retry_after, float) else str(retry_after),
            "retry-after-ms": str(int(float(retry_after) * 1000)),
            "x-ratelimit-limit-requests": "3" if etype == "requests" else "10000",
            "x-ratelimit-remaining-requests": "0" if etype == "requests" else "9999",
            "x-ratelimit-reset-requests": reset if etype == "requests" else "6ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "0" if etype == "tokens" else "29000",
            "x-ratelimit-reset-tokens": reset if etype == "tokens" else "40ms",
        }
    elif kind == "quota":
        status, etype, code = 429, "insufficient_quota", "insufficient_quota"
        msg = (
            "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors."
        )
    elif kind == "overloaded":
        # UNVERIFIED: OpenAI's literal 503 body was not captured; code per third-party catalogues.
        status, etype, code = 503, "server_error", "server_is_overloaded"
        msg = "The server is overloaded or not ready yet."
    elif kind == "server_error":
        status, etype = 500, "server_error"
        msg = _SERVER_ERROR_MSG.format(rid=extra.get("rid") or _rid())
    elif kind == "context_exceeded":
        status, param, code = 400, "messages", "context_length_exceeded"
        n = int(extra.get("window") or params.get("context_window") or DEFAULT_CONTEXT_WINDOW)
        used = int(extra.get("used") or 0)
        used = used if used > n else n + 1
        msg = (
            f"This model's maximum context length is {n} tokens. However, your messages resulted "
            f"in {used} tokens. Please reduce the length of the messages."
        )
        if flavor in ("vllm", "vllm_legacy"):
            msg = (
                f"This model's maximum context length is {n} tokens. However, you requested "
                f"{used} tokens ({used} in the messages, 0 in the completion). Please reduce the "
                "length of the messages or completion."
            )
    elif kind == "invalid_prompt":
        status, code = 400, "invalid_prompt"
        msg = (
            "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "
            "Please try again with a different prompt: "
            "https://platform.openai.com/docs/guides/reasoning#advice-on-prompting"
        )
    elif kind == "bad_json":
        status = 400
        msg = (
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
            "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
            "contact us through our help center at help.openai.com.)"
        )
    elif kind == "missing_model":
        status, msg = 400, "you must provide a model parameter"
    elif kind == "missing_messages":
        status, param, code = 400, "messages", "missing_required_parameter"
        msg = "Missing required parameter: 'messages'."
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown error kind {kind!r}")

    # ---- dialects -------------------------------------------------------------
    if flavor in ("vllm", "vllm_legacy"):
        if status == 401:
            return 401, {"error": "Unauthorized"}, headers
        if kind == "withdrawn":
            msg = f"The model `{m}` does not exist."
        vtype = _VLLM_TYPES.get(status, "BadRequestError" if status < 500 else "InternalServerError")
        if flavor == "vllm":
            return status, {"error": {"message": msg, "type": vtype, "param": None, "code": status}}, headers
        return (
            status,
            {"object": "error", "message": msg, "type": vtype, "param": None, "code": status},
            headers,
        )
    if flavor == "ollama":
        if kind == "withdrawn":
            msg = f'model "{m}" not found, try pulling it first'
        otype = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return status, {"error": {"message": msg, "type": otype, "param": None, "code": None}}, headers
    if flavor == "groq":
        if kind == "withdrawn":
            return (
                400,
                {
                    "error": {
                        "message": f"The model `{m}` has been decommissioned and is no longer supported. "
                        "Please refer to https://console.groq.com/docs/deprecations for a "
                        "recommendation on which model to use instead.",
                        "type": "invalid_request_error",
                        "code": "model_decommissioned",
                    }
                },
                headers,
            )
        if status == 401:
            return (
                401,
                {"error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}},
                headers,
            )
    return status, {"error": {"message": msg, "type": etype, "param": param, "code": code}}, headers


# --------------------------------------------------------------------------- helpers
def _closing(request: web.Request) -> bool:
    t = request.transport
    return t is None or t.is_closing()


async def _sleep_watch(request: web.Request, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True early if the client disconnected."""
    deadline = time.monotonic() + min(max(float(seconds), 0.0), MAX_HOLD_SECONDS)
    while True:
        if _closing(request):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, 0.05))


async def _abort_after_flush(request: web.Request) -> None:
    t = request.transport
    if t is None:
        return
    for _ in range(100):  # give buffered bytes up to ~1 s to reach the socket
        if t.is_closing() or t.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.01)
    t.abort()


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


class _Disconnected(Exception):
    pass


# --------------------------------------------------------------------------- handler
class OpenAIChatHandler:
    """Handles ``POST /v1/chat/completions`` against an :class:`EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # -- entry point ----------------------------------------------------------
    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        raw = await request.read()
        auth_header = request.headers.get("Authorization")
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                body = None
        except orjson.JSONDecodeError:
            body = None
        model = body.get("model") if body is not None else None
        if model is not None and not isinstance(model, str):
            model = str(model)
        behaviour = state.behaviour_for(model)
        stream = bool(body.get("stream")) if body is not None else False
        entry = state.begin_attempt(
            wire=WIRE,
            path=request.path,
            model=model,
            stream=stream,
            behaviour=behaviour.name,
            request=body,
            auth=bool(auth_header or request.headers.get("api-key")),
        )
        try:
            return await self._handle(request, entry, body, model, behaviour, stream, auth_header)
        finally:
            if not entry["done"]:
                state.finish_attempt(entry)

    async def _handle(
        self,
        request: web.Request,
        entry: dict[str, Any],
        body: dict[str, Any] | None,
        model: str | None,
        behaviour: Behaviour,
        stream: bool,
        auth_header: str | None,
    ) -> web.StreamResponse:
        state = self.state
        flavor = behaviour.flavor
        params = behaviour.params
        if flavor != "ollama" or state.api_key is not None:
            token = _bearer(auth_header)
            if token is None or (state.api_key is not None and token != state.api_key):
                return self._error(entry, "unauthorized", flavor, model, params, key=token)
        if body is None:
            return self._error(entry, "bad_json", flavor, model, params)
        if not model:
            return self._error(entry, "missing_model", flavor, model, params)
        if not isinstance(body.get("messages"), list):
            return self._error(entry, "missing_messages", flavor, model, params)

        name = behaviour.name
        if name in ERROR_BEHAVIOURS:
            return self._error(entry, name, flavor, model, params)
        if name in ("failing_once", "failing_n"):
            limit = 1 if name == "failing_once" else int(params.get("n", 1))
            if state.next_count(model) < limit:
                return self._error(entry, "server_error", flavor, model, params)
        elif name == "reset":
            t = request.transport
            if t is not None:
                t.abort()
            state.finish_attempt(entry, status=0)
            return web.Response(status=500)  # never reaches the (aborted) socket
        elif name == "no_response":
            gone = await _sleep_watch(request, params.get("delay", 30))
            await _abort_after_flush(request)
            state.finish_attempt(entry, status=0, disconnected=gone)
            return web.Response(status=500)  # never reaches the (aborted) socket

        # ---- answering ----------------------------------------------------------
        prompt_tokens = estimate_prompt_tokens(body)
        window = params.get("context_window")
        if window is not None and prompt_tokens > window:
            return self._error(
                entry, "context_exceeded", flavor, model, params, window=window, used=prompt_tokens
            )
        reply = make_reply(body, model, params)
        if stream:
            return await self._stream(request, entry, body, model, behaviour, reply, prompt_tokens)
        if name == "slow_first_token":
            if await _sleep_watch(request, params.get("delay", 1)):
                state.finish_attempt(entry, status=0, disconnected=True)
                return web.Response(status=499)
        return self._completion(entry, model, flavor, reply, prompt_tokens, name == "content_filter")

    # -- responses --------------------------------------------------------------
    def _error(
        self,
        entry: dict[str, Any],
        kind: str,
        flavor: str,
        model: str | None,
        params: dict[str, Any],
        **extra: Any,
    ) -> web.Response:
        rid = _rid()
        status, payload, headers = error_for(kind, flavor, model, params, rid=rid, **extra)
        hdrs = {"x-request-id": rid}
        if flavor in ("openai", "groq"):
            hdrs.update(_RATE_HEADERS)
        hdrs.update(headers)
        self.state.finish_attempt(entry, status=status)
        return web.Response(status=status, body=orjson.dumps(payload), content_type=_JSON, headers=hdrs)

    def _completion(
        self,
        entry: dict[str, Any],
        model: str,
        flavor: str,
        reply: Reply,
        prompt_tokens: int,
        filtered: bool,
    ) -> web.Response:
        ctoks = completion_tokens(reply)
        if filtered:
            message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
            finish, ctoks = "content_filter", 0
        elif reply.tool_call is not None:
            tc = reply.tool_call
            message = {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "annotations": [],
                "tool_calls": [
                    {
                        "id": "call_" + os.urandom(12).hex(),
                        "type": "function",
                        "function": {"name": tc.name, "arguments": tc.arguments_json},
                    }
                ],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
            finish = "stop"
        payload = {
            "id": "chatcmpl-" + os.urandom(12).hex(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": ctoks,
                "total_tokens": prompt_tokens + ctoks,
                **_USAGE_DETAILS,
            },
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINTS.get(flavor),
        }
        rid = _rid()
        hdrs = {"x-request-id": rid}
        if flavor in ("openai", "groq"):
            hdrs.update(_RATE_HEADERS)
        self.state.finish_attempt(entry, status=200, tokens_sent=ctoks)
        return web.Response(body=orjson.dumps(payload), content_type=_JSON, headers=hdrs)

    async def _stream(
        self,
        request: web.Request,
        entry: dict[str, Any],
        body: dict[str, Any],
        model: str,
        behaviour: Behaviour,
        reply: Reply,
        prompt_tokens: int,
    ) -> web.StreamResponse:
        state = self.state
        name = behaviour.name
        params = behaviour.params
        flavor = behaviour.flavor
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        token_delay = float(params.get("token_delay", 0) or 0)
        after = int(params.get("after", DEFAULT_AFTER)) if name in STREAM_FAULTS else -1

        # pieces: one delta per content piece, after a role/preamble delta
        if name == "content_filter":
            role_delta: dict[str, Any] = {"role": "assistant", "content": ""}
            pieces: list[dict[str, Any]] = []
            finish = "content_filter"
        elif reply.tool_call is not None:
            tc = reply.tool_call
            args = tc.arguments_json
            call = {"index": 0, "id": "call_" + os.urandom(12).hex(), "type": "function"}
            if flavor == "ollama":  # Ollama emits whole calls in one delta
                role_delta = {"role": "assistant", "content": None, "tool_calls": [
                    {**call, "function": {"name": tc.name, "arguments": args}}]}
                pieces = []
            else:
                role_delta = {"role": "assistant", "content": None, "tool_calls": [
                    {**call, "function": {"name": tc.name, "arguments": ""}}]}
                half = len(args) // 2
                pieces = [
                    {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
                    for part in (args[:half], args[half:])
                ]
            finish = "tool_calls"
        else:
            role_delta = {"role": "assistant", "content": ""}
            pieces = [{"content": p} for p in split_pieces(reply.text or "")]
            finish = "stop"

        base_id = "chatcmpl-" + os.urandom(12).hex()
        created = int(time.time())
        fingerprint = _FINGERPRINTS.get(flavor)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            obj: dict[str, Any] = {
                "id": base_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": fingerprint,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                obj["usage"] = None
            return b"data: " + orjson.dumps(obj) + b"\n\n"

        rid = _rid()
        headers = dict(_SSE_HEADERS)
        headers["x-request-id"] = rid
        if flavor in ("openai", "groq"):
            headers.update(_RATE_HEADERS)
        resp = web.StreamResponse(status=200, headers=headers)
        sent = 0
        status = 0

        async def write(data: bytes) -> None:
            if _closing(request):
                raise _Disconnected()
            await resp.write(data)

        try:
            await resp.prepare(request)
            status = 200
            entry["status"] = 200
            await write(chunk(role_delta))
            if name == "slow_first_token":
                if await _sleep_watch(request, params.get("delay", 1)):
                    raise _Disconnected()
            fault_at = min(after, len(pieces)) if after >= 0 else -1
            for i in range(len(pieces) + 1):
                if i == fault_at:
                    if name == "stream_cut":
                        await _abort_after_flush(request)
                        state.finish_attempt(entry, status=200, tokens_sent=sent)
                        return resp
                    if name == "stream_error":
                        await write(_STREAM_ERROR)
                        await write(_DONE)
                        await resp.write_eof()
                        state.finish_attempt(entry, status=200, tokens_sent=sent)
                        return resp
                    if name == "garbage":
                        await write(_MALFORMED * GARBAGE_LINES)
                        await resp.write_eof()
                        state.finish_attempt(entry, status=200, tokens_sent=sent)
                        return resp
                    if name == "malformed_chunk":
                        await write(_MALFORMED)
                    elif name == "stream_stall":
                        if await _sleep_watch(request, params.get("delay", 30)):
                            raise _Disconnected()
                if i == len(pieces):
                    break
                if token_delay and i > 0:
                    if await _sleep_watch(request, token_delay):
                        raise _Disconnected()
                await write(chunk(pieces[i]))
                sent += 1
                entry["tokens_sent"] = sent
            await write(chunk({}, finish))
            if include_usage:
                ctoks = 0 if name == "content_filter" else completion_tokens(reply)
                usage_obj = {
                    "id": base_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": fingerprint,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": ctoks,
                        "total_tokens": prompt_tokens + ctoks,
                        **_USAGE_DETAILS,
                    },
                }
                await write(b"data: " + orjson.dumps(usage_obj) + b"\n\n")
            if name != "missing_done":
                await write(_DONE)
            await resp.write_eof()
            state.finish_attempt(entry, status=status, tokens_sent=sent)
        except (_Disconnected, ConnectionError):
            state.finish_attempt(entry, status=status, tokens_sent=sent, disconnected=True)
        return resp


def register(app: web.Application, state: EmulatorState) -> None:
    """Wire hook: add the OpenAI routes for ``state`` to ``app``."""
    handler = OpenAIChatHandler(state)
    app.router.add_post("/v1/chat/completions", handler.chat_completions)
    app.router.add_post("/chat/completions", handler.chat_completions)

    async def list_models(request: web.Request) -> web.Response:
        models = sorted(m for m in state.behaviours() if m != "*")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "emulator"} for m in models]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type=_JSON)

    app.router.add_get("/v1/models", list_models)
