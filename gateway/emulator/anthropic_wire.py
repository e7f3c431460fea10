"""Anthropic Messages wire format for the emulator: ``POST /v1/messages``.

Literal bodies follow ../shared/reference/provider-wire-formats.md sections 2, 7.2 and 8:
``x-api-key`` (or ``Authorization: Bearer``) required (401 ``authentication_error``), ``anthropic-version`` header
and ``max_tokens`` required (400 ``invalid_request_error``); error envelope
``{"type":"error","error":{"type","message"},"request_id"}`` plus a ``request-id`` header on every response;
529 ``overloaded_error`` with ``x-should-retry: true``; named SSE events with one ``ping``, cumulative
``message_delta.usage``, ``message_stop`` as the end marker; in-band ``event: error`` (overloaded_error) for
stream_error; content_filter -> HTTP 200 ``stop_reason: "refusal"`` with ``stop_details``.

Behaviours without an Anthropic equivalent map to the nearest literal body:
``no_model_access`` -> 403 ``permission_error`` (model-specific wording [U]); ``quota`` -> the observed 400
"credit balance is too low"; ``invalid_prompt`` -> the observed 400 "Output blocked by content filtering policy".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from gateway.emulator.content import Reply, completion_tokens, message_text
from gateway.emulator.core import (
    JSON,
    ErrorResponse,
    ParsedRequest,
    Piece,
    StreamFramer,
    Usage,
    Wire,
    bearer_token,
    register_wire,
)
from gateway.emulator.state import EmulatorState

ROUTES = [("POST", "/v1/messages")]
STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "content_filter": "refusal", "length": "max_tokens"}
REFUSAL_DETAILS = {"type": "refusal", "category": "cyber", "explanation": "This request was refused due to policy."}

_MESSAGES: dict[str, tuple[int, str, str]] = {  # kind -> (status, error.type, message)
    "withdrawn": (404, "not_found_error", "model: {model}"),
    "access_revoked": (401, "authentication_error", "invalid x-api-key"),
    "no_model_access": (403, "permission_error", "Your organization does not have access to model {model}."),
    "region_blocked": (403, "permission_error", "Request not allowed"),
    "rate_limited": (429, "rate_limit_error",
                     "This request would exceed your account's rate limit. Please try again later."),
    "quota": (400, "invalid_request_error",
              "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade "
              "or purchase credits."),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server_error": (500, "api_error", "Internal server error"),
    "context_exceeded": (400, "invalid_request_error", "prompt is too long: {used} tokens > {window} maximum"),
    "invalid_prompt": (400, "invalid_request_error", "Output blocked by content filtering policy"),
    "bad_json": (400, "invalid_request_error", "There was an error parsing the body of your request."),
    "missing_model": (400, "invalid_request_error", "model: Field required"),
    "missing_messages": (400, "invalid_request_error", "messages: Field required"),
    "prefill_rejected": (400, "invalid_request_error", "This model does not support assistant message prefill. "
                         "The conversation must end with a user message."),
    "missing_max_tokens": (400, "invalid_request_error", "max_tokens: Field required"),
    "missing_version": (400, "invalid_request_error", "anthropic-version: header is required"),
    "thinking_missing": (400, "invalid_request_error",
                         "messages: Expected `thinking` or `redacted_thinking` first in the final `assistant` message. "
                         "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
                         "(preceeding the lastmost set of `tool_use` and `tool_result` blocks)."),
}
# With ``thinking`` enabled a streamed answer starts with one thinking block (text + signature).
THINKING_TEXT = "Considering the request."
_TOKENS_MESSAGE = (
    "This request would exceed the rate limit for your organization ({org}) of 40,000 input tokens per minute. "
    "For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see the response headers for "
    "current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."
)


def _rid() -> str:
    return "req_011C" + os.urandom(9).hex()


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


# --------------------------------------------------------------------------- request -> neutral chat
def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic request -> the OpenAI-shaped dict the neutral reply rules read."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": system if isinstance(system, str) else message_text(system)})
    for m in body.get("messages") or ():
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if m.get("role") == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": message_text(content)}
            calls = [{"id": b.get("id"), "type": "function",
                      "function": {"name": b.get("name"), "arguments": orjson.dumps(b.get("input") or {}).decode()}}
                     for b in content or () if isinstance(b, dict) and b.get("type") == "tool_use"] \
                if isinstance(content, list) else []
            if calls:
                msg["tool_calls"] = calls
            messages.append(msg)
            continue
        if isinstance(content, list):
            for b in content:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    messages.append({"role": "tool", "tool_call_id": b.get("tool_use_id"),
                                     "content": message_text(b.get("content"))})
            texts = [b for b in content if isinstance(b, dict) and b.get("type") == "text"]
            if texts:
                messages.append({"role": "user", "content": texts})
        else:
            messages.append({"role": "user", "content": content})
    chat: dict[str, Any] = {"messages": messages}
    fmt = (body.get("output_config") or {}).get("format") if isinstance(body.get("output_config"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {"schema": fmt.get("schema")}}
    tools = body.get("tools")
    if isinstance(tools, list):
        chat["tools"] = [{"type": "function", "function": {"name": t.get("name"), "description": t.get("description"),
                                                           "parameters": t.get("input_schema")}}
                         for t in tools if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        ctype = choice.get("type")
        if ctype == "tool":
            chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif ctype in ("auto", "any", "none"):
            chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[ctype]
    return chat


def thinking_enabled(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("thinking"), dict) and \
        body["thinking"].get("type") == "enabled"


def _thinking_missing(messages: list[Any]) -> bool:
    """Anthropic's rule with thinking on: the last assistant turn, when it made tool calls, must start with its
    thinking block (the client has to send back what it was streamed, signature intact)."""
    for m in reversed(messages):
        if not isinstance(m, dict) or m.get("role") != "assistant":
            continue
        content = m.get("content")
        if not isinstance(content, list) or not content:
            return False
        if not any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content):
            return False
        first = content[0].get("type") if isinstance(content[0], dict) else None
        return first not in ("thinking", "redacted_thinking")
    return False


# --------------------------------------------------------------------------- stream framing
class AnthropicFramer(StreamFramer):
    """Named SSE events: message_start, content_block_*, one ping, message_delta, message_stop."""

    def __init__(self, req: ParsedRequest, model: str, reply: Reply, prompt_tokens: int,
                 params: dict[str, Any]) -> None:
        super().__init__(req, model, reply, prompt_tokens, params)
        self.msg_id = "msg_" + os.urandom(12).hex()
        self.thinking = thinking_enabled(req.body)
        self.block = 1 if self.thinking else 0  # index of the answer's content block

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
                "request-id": _rid()}

    def start(self) -> bytes:
        message = {"id": self.msg_id, "type": "message", "role": "assistant", "content": [], "model": self.model,
                   "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": self.prompt_tokens, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": 1}}
        tc = self.reply.tool_call
        if tc is None:
            block: dict[str, Any] = {"type": "text", "text": ""}
        else:
            block = {"type": "tool_use", "id": "toolu_" + os.urandom(12).hex(), "name": tc.name, "input": {}}
        thinking = b""
        if self.thinking:
            thinking = (
                _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                + _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "thinking_delta", "thinking": THINKING_TEXT}})
                + _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "signature_delta", "signature": "sig-emu"}})
                + _sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        return (_sse("message_start", {"type": "message_start", "message": message}) + thinking
                + _sse("content_block_start", {"type": "content_block_start", "index": self.block,
                                               "content_block": block})
                + _sse("ping", {"type": "ping"}))

    def piece(self, piece: Piece, index: int) -> bytes:
        if piece.arguments is not None:
            delta = {"type": "input_json_delta", "partial_json": piece.arguments}
        else:
            delta = {"type": "text_delta", "text": piece.text}
        return _sse("content_block_delta", {"type": "content_block_delta", "index": self.block, "delta": delta})

    def finish(self, finish_reason: str, usage: Usage) -> bytes:
        delta: dict[str, Any] = {"stop_reason": STOP_REASONS.get(finish_reason, "end_turn"), "stop_sequence": None}
        if finish_reason == "content_filter":
            delta["stop_details"] = REFUSAL_DETAILS
        return (_sse("content_block_stop", {"type": "content_block_stop", "index": self.block})
                + _sse("message_delta", {"type": "message_delta", "delta": delta,
                                         "usage": {"output_tokens": usage.completion_tokens}}))

    def terminator(self) -> bytes:
        return _sse("message_stop", {"type": "message_stop"})

    def error_event(self) -> bytes:
        return _sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    def malformed(self) -> bytes:
        return b"event: content_block_delta\ndata: {not json\n\n"


# --------------------------------------------------------------------------- wire
class AnthropicWire(Wire):
    name = "anthropic"
    framer = AnthropicFramer

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        api_key = request.headers.get("x-api-key")
        auth_header = request.headers.get("Authorization")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            body = None
        req = ParsedRequest(token=api_key or bearer_token(auth_header), auth=bool(api_key or auth_header), body=body)
        if body is None:
            req.error = "bad_json"
            return req
        model = body.get("model")
        req.model = model if model is None or isinstance(model, str) else str(model)
        req.stream = bool(body.get("stream"))
        req.include_usage = True  # Anthropic always reports usage
        req.chat = to_chat(body)
        if not request.headers.get("anthropic-version"):
            req.error = "missing_version"
        elif not req.model:
            req.error = "missing_model"
        elif not isinstance(body.get("messages"), list):
            req.error = "missing_messages"
        elif not isinstance(body.get("max_tokens"), int):
            req.error = "missing_max_tokens"
        elif thinking_enabled(body) and _thinking_missing(body["messages"]):
            req.error = "thinking_missing"
        return req

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        rid = _rid()
        headers = {"request-id": rid}
        if kind == "unauthorized":
            status, etype = 401, "authentication_error"
            message = "invalid x-api-key" if extra.get("key") else "x-api-key header is required"
        else:
            status, etype, template = _MESSAGES.get(kind, (500, "api_error", "Internal server error"))
            message = template.format(model=model or "", used=extra.get("used", 0), window=extra.get("window", 0))
        if kind == "rate_limited":
            retry_after = params.get("retry_after", 1)
            headers["retry-after"] = str(int(retry_after) if float(retry_after).is_integer() else retry_after)
            headers["anthropic-ratelimit-requests-limit"] = "50"
            headers["anthropic-ratelimit-requests-remaining"] = "0"
            if params.get("kind") == "tokens":
                message = _TOKENS_MESSAGE.format(org="org_emulator")
        if kind == "overloaded":
            headers["x-should-retry"] = "true"
        body = {"type": "error", "error": {"type": etype, "message": message}, "request_id": rid}
        return status, orjson.dumps(body), headers, JSON

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        content: list[dict[str, Any]] = []
        stop_details = None
        if filtered:
            stop_reason, output = "refusal", 0
            stop_details = REFUSAL_DETAILS
        elif reply.tool_call is not None:
            tc = reply.tool_call
            content.append({"type": "tool_use", "id": "toolu_" + os.urandom(12).hex(), "name": tc.name,
                            "input": tc.arguments})
            stop_reason, output = "tool_use", completion_tokens(reply)
        else:
            content.append({"type": "text", "text": reply.text or ""})
            stop_reason, output = "end_turn", completion_tokens(reply)
        payload = {
            "id": "msg_" + os.urandom(12).hex(), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": None, "stop_details": stop_details,
            "usage": {"input_tokens": prompt_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "output_tokens": output, "service_tier": "standard"},
        }
        return orjson.dumps(payload), {"request-id": _rid()}


def register(app: web.Application, state: EmulatorState) -> None:
    """Wire hook: add ``POST /v1/messages`` for ``state`` to ``app``."""
    register_wire(app, state, AnthropicWire(), ROUTES)
