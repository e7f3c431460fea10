"""OpenAI Chat Completions wire format for the emulator (plus vLLM / Ollama / Groq
error dialects chosen with the per-model ``flavor`` param).

Literal bodies follow ../shared/reference/provider-wire-formats.md sections 1, 6, 7, 8.

Routes: ``POST /v1/chat/completions``, ``POST /chat/completions``, ``GET /v1/models``.

All scripting (auth, behaviours, counters, pacing, stream faults, attempt log) lives in
:mod:`gateway.emulator.core`; this module only parses requests and renders OpenAI bodies
and SSE framing (:class:`OpenAIWire`, :class:`OpenAIFramer`).
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

import orjson
from aiohttp import web

from gateway.emulator.content import Reply, completion_tokens
from gateway.emulator.core import (  # noqa: F401  (constants re-exported for compatibility)
    DEFAULT_AFTER,
    DEFAULT_CONTEXT_WINDOW,
    ERROR_BEHAVIOURS,
    GARBAGE_LINES,
    JSON,
    MAX_HOLD_SECONDS,
    STREAM_FAULTS,
    ErrorResponse,
    ParsedRequest,
    Piece,
    ScriptedHandler,
    StreamFramer,
    Usage,
    Wire,
    bearer_token,
    register_wire,
)
from gateway.emulator.state import EmulatorState

WIRE = "openai"
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

ROUTES = [("POST", "/v1/chat/completions"), ("POST", "/chat/completions")]


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
    elif kind == "prefill_rejected":
        status, param = 400, "messages"
        msg = "This model does not support assistant message prefill. The conversation must end with a user message."
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


# --------------------------------------------------------------------------- wire
def _headers(flavor: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    hdrs = dict(base) if base else {}
    hdrs["x-request-id"] = _rid()
    if flavor in ("openai", "groq"):
        hdrs.update(_RATE_HEADERS)
    return hdrs


class OpenAIFramer(StreamFramer):
    """``data: {chat.completion.chunk}`` SSE framing, ``data: [DONE]`` terminator."""

    def __init__(self, req: ParsedRequest, model: str, reply: Reply, prompt_tokens: int,
                 params: dict[str, Any]) -> None:
        super().__init__(req, model, reply, prompt_tokens, params)
        self.flavor = params.get("flavor", "openai")
        self.base_id = "chatcmpl-" + os.urandom(12).hex()
        self.created = int(time.time())
        self.fingerprint = _FINGERPRINTS.get(self.flavor)
        # ``n`` > 1 on a text answer: choice k streams the same pieces plus k extra words, so choice 0 finishes
        # (with its own finish chunk, as OpenAI sends it) while the others are still streaming.
        body = req.body if isinstance(req.body, dict) else {}
        n = body.get("n")
        self.n = n if isinstance(n, int) and 1 < n <= 8 and reply.tool_call is None else 1
        self._last = -1

    def _obj(self, choices: list[Any]) -> dict[str, Any]:
        return {
            "id": self.base_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None, index: int = 0) -> bytes:
        obj = self._obj([{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])
        if self.req.include_usage:
            obj["usage"] = None
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    def headers(self) -> dict[str, str]:
        return _headers(self.flavor, _SSE_HEADERS)

    def pieces(self) -> list[Piece]:
        if self.reply.tool_call is not None and self.flavor == "ollama":
            return []  # Ollama emits whole calls in the first delta
        return super().pieces()

    def start(self) -> bytes:
        tc = self.reply.tool_call
        if tc is None:
            return self._chunk({"role": "assistant", "content": ""})
        whole = self.flavor == "ollama"
        call = {"index": 0, "id": "call_" + os.urandom(12).hex(), "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments_json if whole else ""}}
        return self._chunk({"role": "assistant", "content": None, "tool_calls": [call]})

    def piece(self, piece: Piece, index: int) -> bytes:
        if piece.arguments is not None:
            return self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece.arguments}}]})
        if self.n == 1:
            return self._chunk({"content": piece.text})
        if self._last < 0:
            self._last = len(self.pieces()) - 1
        out = b"".join(self._chunk({"content": piece.text}, index=k) for k in range(self.n))
        if index == self._last:
            out += self._chunk({}, "stop")  # choice 0 is complete; the others have more to say
        return out

    def finish(self, finish_reason: str, usage: Usage) -> bytes:
        out = b""
        if self.n > 1 and self._last >= 0:
            for k in range(1, self.n):
                out += self._chunk({"content": " more" * k}, index=k) + self._chunk({}, finish_reason, index=k)
        else:
            out = self._chunk({}, finish_reason)
        if self.req.include_usage and not self.params.get("no_usage"):
            obj = self._obj([])
            obj["usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                **_USAGE_DETAILS,
            }
            out += b"data: " + orjson.dumps(obj) + b"\n\n"
        return out

    def terminator(self) -> bytes:
        return _DONE

    def error_event(self) -> bytes:
        return _STREAM_ERROR + _DONE

    def malformed(self) -> bytes:
        return _MALFORMED


class OpenAIWire(Wire):
    """OpenAI Chat Completions (and the vLLM / Ollama / Groq dialects via ``flavor``)."""

    name = WIRE
    framer = OpenAIFramer

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        auth_header = request.headers.get("Authorization")
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                body = None
        except orjson.JSONDecodeError:
            body = None
        req = ParsedRequest(
            token=bearer_token(auth_header),
            auth=bool(auth_header or request.headers.get("api-key")),
            body=body,
            chat=body,
        )
        if body is None:
            req.error = "bad_json"
            return req
        model = body.get("model")
        req.model = model if model is None or isinstance(model, str) else str(model)
        req.stream = bool(body.get("stream"))
        opts = body.get("stream_options")
        req.include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        if not req.model:
            req.error = "missing_model"
        elif not isinstance(body.get("messages"), list):
            req.error = "missing_messages"
        return req

    def requires_auth(self, params: dict[str, Any]) -> bool:
        return params.get("flavor", "openai") != "ollama"  # local Ollama takes no key

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        flavor = params.get("flavor", "openai")
        hdrs = _headers(flavor)
        status, payload, headers = error_for(kind, flavor, model, params, rid=hdrs["x-request-id"], **extra)
        hdrs.update(headers)
        return status, orjson.dumps(payload), hdrs, JSON

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        flavor = params.get("flavor", "openai")
        ctoks = completion_tokens(reply)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if filtered:
            finish, ctoks = "content_filter", 0
        elif reply.tool_call is not None:
            tc = reply.tool_call
            message["tool_calls"] = [{
                "id": "call_" + os.urandom(12).hex(),
                "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments_json},
            }]
            finish = "tool_calls"
        else:
            message["content"] = reply.text
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
        return orjson.dumps(payload), _headers(flavor)


class OpenAIChatHandler(ScriptedHandler):
    """Backwards-compatible name: the core handler bound to :class:`OpenAIWire`."""

    def __init__(self, state: EmulatorState) -> None:
        super().__init__(state, OpenAIWire())
        self.chat_completions = self.handle


def register(app: web.Application, state: EmulatorState) -> None:
    """Wire hook: add the OpenAI routes for ``state`` to ``app``."""
    register_wire(app, state, OpenAIWire(), ROUTES)

    async def list_models(request: web.Request) -> web.Response:
        models = sorted(m for m in state.behaviours() if m != "*")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "emulator"} for m in models]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type=JSON)

    app.router.add_get("/v1/models", list_models)
