"""Google Gemini API (generativelanguage) wire format for the emulator.

Literal bodies follow ../shared/reference/provider-wire-formats.md sections 3, 7.2 and 8.

Routes: ``POST /{v1beta,v1}/models/{model}:generateContent`` and ``...:streamGenerateContent`` (``alt=sse``).
aiohttp cannot put a parameter before a literal colon, so the route captures ``{model_and_method}`` and
``parse`` splits it at the last colon.

Auth: ``x-goog-api-key`` header or ``?key=`` query (both accepted by Google). No key -> 403 PERMISSION_DENIED
"unregistered callers"; a wrong key (emulator started with ``api_key``) -> 400 INVALID_ARGUMENT with
``details[].reason: API_KEY_INVALID`` (literal bodies from the reference, table 3.4).

Behaviour -> Gemini literal:
  withdrawn 404 NOT_FOUND | access_revoked 400 API_KEY_INVALID | no_model_access 403 PERMISSION_DENIED |
  region_blocked 400 FAILED_PRECONDITION "User location is not supported for the API use." |
  rate_limited 429 RESOURCE_EXHAUSTED (+QuotaFailure, Help, RetryInfo.retryDelay "<retry_after>s") |
  quota 429 RESOURCE_EXHAUSTED with a PerDay quotaId and a multi-hour retryDelay |
  overloaded 503 UNAVAILABLE | server_error 500 INTERNAL | context_exceeded 400 INVALID_ARGUMENT input token count |
  invalid_prompt and content_filter: HTTP 200 with ``promptFeedback.blockReason`` (Gemini has no 400 for a
  flagged prompt); in a stream, content_filter ends with ``finishReason: SAFETY``.

Stream framing: ``data: <GenerateContentResponse>`` events separated by ``\\r\\n\\r\\n`` (Google's own framing),
no terminator. The event carrying ``finishReason`` *is* the end marker, so it is sent as the framer's
``terminator()``: ``missing_done`` then produces a stream that simply stops before its finishReason.
Function calls arrive whole in one event, with ``finishReason: STOP`` and no ids.
"""

from __future__ import annotations

import contextvars
import json
import os
from typing import Any, Mapping

import orjson
from aiohttp import web

from gateway.emulator.content import Reply, completion_tokens
from gateway.emulator.core import JSON, ErrorResponse, ParsedRequest, Piece, StreamFramer, Usage, Wire, register_wire
from gateway.emulator.state import EmulatorState

WIRE = "gemini"
SEP = b"\r\n\r\n"
METHODS = ("generateContent", "streamGenerateContent")
ROUTES = [("POST", "/v1beta/models/{model_and_method}"), ("POST", "/v1/models/{model_and_method}")]

# Per-request facts error() needs but does not receive (each aiohttp request runs in its own task/context).
_CURRENT: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("gemini_wire_request", default={})

_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]
_API_KEY_INVALID = {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
         "message": "API key not valid. Please pass a valid API key."},
    ],
}
_OVERLOADED = {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}
_MALFORMED = b"data: {not json" + SEP


def _quota_details(model: str, quota_id: str, metric: str, delay: str) -> list[dict[str, Any]]:
    return [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaMetric": f"generativelanguage.googleapis.com/{metric}", "quotaId": quota_id,
             "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "10"}]},
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [
            {"description": "Learn more about Gemini API quotas",
             "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    ]


def _seconds(value: Any) -> str:
    v = float(value)
    return f"{int(v)}s" if v == int(v) else f"{v:.3f}s"


def error_body(kind: str, model: str | None, params: Mapping[str, Any], **extra: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of scripted error ``kind`` in Google's ``{"error": {...}}`` envelope."""
    m = model or ""
    version = _CURRENT.get().get("version", "v1beta")
    method = _CURRENT.get().get("method") or "generateContent"
    if kind == "unauthorized":
        if extra.get("key"):
            return 400, {"error": _API_KEY_INVALID}
        return 403, {"error": {"code": 403, "message": (
            "Method doesn't allow unregistered callers (callers without established identity). Please use API "
            "Key or other form of API consumer identity to call this API."), "status": "PERMISSION_DENIED"}}
    if kind == "access_revoked":
        return 400, {"error": _API_KEY_INVALID}
    if kind == "no_model_access":
        return 403, {"error": {"code": 403, "message": "The caller does not have permission",
                               "status": "PERMISSION_DENIED"}}
    if kind == "region_blocked":
        return 400, {"error": {"code": 400, "message": "User location is not supported for the API use.",
                               "status": "FAILED_PRECONDITION"}}
    if kind in ("withdrawn", "missing_model"):
        return 404, {"error": {"code": 404, "message": (
            f"models/{m} is not found for API version {version}, or is not supported for {method}. Call "
            "ListModels to see the list of available models and their supported methods."), "status": "NOT_FOUND"}}
    if kind == "rate_limited":
        delay = _seconds(params.get("retry_after", 1))
        return 429, {"error": {"code": 429, "message": (
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."),
            "status": "RESOURCE_EXHAUSTED", "details": _quota_details(
                m, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "generate_content_free_tier_requests", delay)}}
    if kind == "quota":
        return 429, {"error": {"code": 429, "message": (
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."),
            "status": "RESOURCE_EXHAUSTED", "details": _quota_details(
                m, "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                "generate_content_free_tier_requests", _seconds(params.get("retry_after", 52758)))}}
    if kind == "overloaded":
        return 503, {"error": dict(_OVERLOADED)}
    if kind == "server_error":
        return 500, {"error": {"code": 500, "message": (
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"), "status": "INTERNAL"}}
    if kind == "context_exceeded":
        window = int(extra.get("window") or params.get("context_window") or 1048576)
        used = int(extra.get("used") or 0)
        used = used if used > window else window + 1
        return 400, {"error": {"code": 400, "message": (
            f"The input token count ({used}) exceeds the maximum number of tokens allowed ({window})."),
            "status": "INVALID_ARGUMENT"}}
    if kind == "bad_json":
        return 400, {"error": {"code": 400, "message": (
            "Invalid JSON payload received. Unexpected token.\n{not json\n ^"), "status": "INVALID_ARGUMENT"}}
    if kind == "missing_messages":
        return 400, {"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified\n",
                               "status": "INVALID_ARGUMENT"}}
    if kind == "prefill_rejected":
        return 400, {"error": {"code": 400, "message": "Please ensure that the conversation ends with a user turn.",
                               "status": "INVALID_ARGUMENT"}}
    raise ValueError(f"unknown error kind {kind!r}")  # pragma: no cover - programming error


# --------------------------------------------------------------------------- request -> neutral chat
def _lower_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Gemini request -> the OpenAI-shaped dict ``content.make_reply`` understands."""
    messages: list[dict[str, Any]] = []
    sys_parts = ((body.get("systemInstruction") or body.get("system_instruction") or {}).get("parts")) or []
    sys_text = " ".join(str(p.get("text") or "") for p in sys_parts if isinstance(p, dict))
    if sys_text:
        messages.append({"role": "system", "content": sys_text})
    for content in body.get("contents") or ():
        if not isinstance(content, dict):
            continue
        role = "assistant" if content.get("role") == "model" else "user"
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for part in content.get("parts") or ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            fc = part.get("functionCall") or part.get("function_call")
            if isinstance(fc, dict):
                calls.append({"id": fc.get("id") or fc.get("name"), "type": "function",
                              "function": {"name": fc.get("name"), "arguments": json.dumps(fc.get("args") or {})}})
            fr = part.get("functionResponse") or part.get("function_response")
            if isinstance(fr, dict):
                results.append({"role": "tool", "tool_call_id": fr.get("id") or fr.get("name"),
                                "content": json.dumps(fr.get("response"))})
        if results:
            messages.extend(results)
        if texts or calls:
            msg: dict[str, Any] = {"role": role, "content": " ".join(texts) if texts else None}
            if calls:
                msg["tool_calls"] = calls
            messages.append(msg)
    chat: dict[str, Any] = {"messages": messages}
    tools = []
    for tool in body.get("tools") or ():
        for decl in (tool.get("functionDeclarations") or tool.get("function_declarations") or ()) \
                if isinstance(tool, dict) else ():
            params = decl.get("parameters") or decl.get("parametersJsonSchema") or {}
            tools.append({"type": "function", "function": {"name": decl.get("name"),
                                                           "parameters": _lower_types(params)}})
    if tools:
        chat["tools"] = tools
        cfg = ((body.get("toolConfig") or body.get("tool_config") or {}).get("functionCallingConfig")) or {}
        mode = str(cfg.get("mode") or "AUTO").upper()
        names = cfg.get("allowedFunctionNames") or cfg.get("allowed_function_names") or []
        if mode == "NONE":
            chat["tool_choice"] = "none"
        elif mode == "ANY" and len(names) == 1:
            chat["tool_choice"] = {"type": "function", "function": {"name": names[0]}}
        elif mode == "ANY":
            chat["tool_choice"] = "required"
    gen = body.get("generationConfig") or body.get("generation_config") or {}
    if isinstance(gen, dict) and (gen.get("responseMimeType") or gen.get("response_mime_type")) == "application/json":
        schema = gen.get("responseSchema") or gen.get("response_schema")
        # A response schema is honoured (the answer is an object of its required properties), as Gemini does.
        chat["response_format"] = {"type": "json_schema", "json_schema": {"schema": schema}} \
            if isinstance(schema, dict) else {"type": "json_object"}
    return chat


# --------------------------------------------------------------------------- bodies
def _usage(prompt_tokens: int, completion: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    if completion is not None:
        usage["candidatesTokenCount"] = completion
    usage["totalTokenCount"] = prompt_tokens + (completion or 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    return usage


def _response(candidates: list[dict[str, Any]] | None, usage: dict[str, Any], model: str, rid: str,
              feedback: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if candidates is not None:
        out["candidates"] = candidates
    if feedback is not None:
        out["promptFeedback"] = feedback
    out.update({"usageMetadata": usage, "modelVersion": model, "responseId": rid})
    return out


def _rid() -> str:
    return os.urandom(12).hex()


def _event(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + SEP


class GeminiFramer(StreamFramer):
    """``alt=sse``: whole GenerateContentResponse objects; the finishReason event ends the stream."""

    def __init__(self, req: ParsedRequest, model: str, reply: Reply, prompt_tokens: int,
                 params: dict[str, Any]) -> None:
        super().__init__(req, model, reply, prompt_tokens, params)
        self.rid = _rid()
        self.sent = 0
        self._final = b""
        # generationConfig.candidateCount: that many candidates (same text), each with its index, as Gemini does.
        gen = req.body.get("generationConfig") if isinstance(req.body, dict) else None
        n = gen.get("candidateCount") if isinstance(gen, dict) else None
        self.n = n if isinstance(n, int) and 1 < n <= 8 else 1

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                "Server": "scaffolding on HTTPServer2"}

    def pieces(self) -> list[Piece]:
        tc = self.reply.tool_call
        if tc is not None:  # Gemini sends a function call whole, in one event
            return [Piece(arguments=tc.arguments_json)]
        return super().pieces()

    def piece(self, piece: Piece, index: int) -> bytes:
        self.sent += 1
        if piece.arguments is not None and self.reply.tool_call is not None:
            part: dict[str, Any] = {"functionCall": {"name": self.reply.tool_call.name,
                                                     "args": json.loads(piece.arguments)}}
        else:
            part = {"text": piece.text or ""}
        cands = [{"content": {"parts": [part], "role": "model"}, "index": k} for k in range(self.n)]
        return _event(_response(cands, _usage(self.prompt_tokens, None), self.model, self.rid))

    def finish(self, finish_reason: str, usage: Usage) -> bytes:
        if finish_reason == "content_filter":
            cand: dict[str, Any] = {"finishReason": "SAFETY", "index": 0, "safetyRatings": _SAFETY_RATINGS}
            completion = 0
        else:  # function calls also finish with STOP
            cand = {"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}
            completion = usage.completion_tokens
        cands = [{**cand, "index": k} for k in range(self.n)]
        self._final = _event(_response(cands, _usage(usage.prompt_tokens, completion), self.model, self.rid))
        return b""  # sent as terminator(): for Gemini the finishReason event is the end marker

    def terminator(self) -> bytes:
        return self._final

    def error_event(self) -> bytes:
        return _event({"error": dict(_OVERLOADED)})

    def malformed(self) -> bytes:
        return _MALFORMED


class GeminiWire(Wire):
    name = WIRE
    framer = GeminiFramer

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        model, _, method = str(path_params.get("model_and_method", "")).rpartition(":")
        version = request.path.split("/")[1] if request.path.count("/") > 1 else "v1beta"
        _CURRENT.set({"version": version, "method": method})
        token = request.headers.get("x-goog-api-key") or request.query.get("key") or None
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                body = None
        except orjson.JSONDecodeError:
            body = None
        req = ParsedRequest(model=model or None, stream=method == "streamGenerateContent", token=token,
                            auth=token is not None, body=body, include_usage=True,
                            extra={"method": method, "version": version, "alt": request.query.get("alt")})
        if method not in METHODS:
            req.model = None  # -> 404 NOT_FOUND "... is not supported for <method>"
            req.chat = {}
            req.error = "missing_model"
            return req
        if body is None:
            req.error = "bad_json"
            return req
        req.chat = to_chat(body)
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            req.error = "missing_messages"
        return req

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        if kind == "invalid_prompt":  # Gemini answers a flagged prompt with HTTP 200 and promptFeedback
            if _CURRENT.get().get("method") == "streamGenerateContent":
                feedback = _response(None, _usage(0, None), model or "", _rid(), {"blockReason": "PROHIBITED_CONTENT"})
                return 200, _event(feedback), {"Cache-Control": "no-cache"}, "text/event-stream"
            body, _ = self._blocked(model or "", 0, "PROHIBITED_CONTENT")
            return 200, body, {}, JSON
        status, payload = error_body(kind, model, params, **extra)
        return status, orjson.dumps(payload), {}, JSON

    def _blocked(self, model: str, prompt_tokens: int, reason: str) -> tuple[bytes, Mapping[str, str]]:
        feedback = {"blockReason": reason, "safetyRatings": _SAFETY_RATINGS}
        return orjson.dumps(_response(None, _usage(prompt_tokens, None), model, _rid(), feedback)), {}

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        if filtered:
            return self._blocked(model, prompt_tokens, "SAFETY")
        if reply.tool_call is not None:
            part: dict[str, Any] = {"functionCall": {"name": reply.tool_call.name, "args": reply.tool_call.arguments}}
        else:
            part = {"text": reply.text or ""}
        cand = {"content": {"parts": [part], "role": "model"}, "finishReason": "STOP", "index": 0}
        usage = _usage(prompt_tokens, completion_tokens(reply))
        return orjson.dumps(_response([cand], usage, model, _rid())), {}


def register(app: web.Application, state: EmulatorState) -> None:
    """Wire hook: add the Gemini routes for ``state`` to ``app``."""
    register_wire(app, state, GeminiWire(), ROUTES)
