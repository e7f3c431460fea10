"""AWS Bedrock Converse / ConverseStream wire format for the emulator.

Routes: ``POST /model/{modelId}/converse`` and ``POST /model/{modelId}/converse-stream`` (botocore
``bedrock-runtime/2023-09-30`` request URIs). The model name for behaviours is the URL-decoded ``modelId``.

Auth: presence only: ``Authorization: AWS4-HMAC-SHA256 Credential=<AKID>/...`` (SigV4) or ``Bearer <key>``
(Bedrock API key). The credential the core compares with an emulator ``api_key`` is the access key id (SigV4)
or the bearer key. Missing -> 403 ``MissingAuthenticationTokenException``; wrong -> 403
``UnrecognizedClientException``.

Errors: JSON ``{"message": ...}`` with ``x-amzn-ErrorType: <Name>:http://internal.amazon.com/coral/...``
(reference 5.4). Streams: binary AWS event-stream frames (:func:`encode_frame`), ``messageStart`` ->
(``contentBlockStart`` for tool use) -> ``contentBlockDelta``* -> ``contentBlockStop`` -> ``messageStop`` +
``metadata``. ``messageStop`` is this wire's end marker, so it is sent as the terminator (``missing_done``
omits it). ``stream_error`` sends a ``modelStreamErrorException`` exception frame.
"""

from __future__ import annotations

import binascii
import os
import struct
from typing import Any, Mapping

import orjson
from aiohttp import web

from gateway.emulator.content import Reply, completion_tokens
from gateway.emulator.core import JSON, ErrorResponse, ParsedRequest, Piece, StreamFramer, Usage, Wire, register_wire
from gateway.emulator.state import EmulatorState

WIRE = "bedrock"
EVENTSTREAM_CT = "application/vnd.amazon.eventstream"
_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
ROUTES = [
    ("POST", "/model/{model_id}/converse"),
    ("POST", "/model/{model_id}/converse-stream"),
]
# Neutral finish reason -> Converse stopReason.
STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "content_filter": "guardrail_intervened",
                "length": "max_tokens"}
# Default blocked-input message of a Bedrock guardrail ([U]: the configured text is returned as the answer).
GUARDRAIL_TEXT = "Sorry, the model cannot answer this question."

# kind -> (status, exception name, message). [O]/[S]/[U] as in the reference, section 5.4.
_ERRORS: dict[str, tuple[int, str, str]] = {
    "withdrawn": (404, "ResourceNotFoundException",
                  "This model version has reached the end of its life. Please refer to the AWS documentation "
                  "for more details."),  # [O]
    "access_revoked": (403, "UnrecognizedClientException",
                       "The security token included in the request is invalid."),  # [U] AWS front-door text
    "no_model_access": (403, "AccessDeniedException",
                        "You don't have access to the model with the specified model ID."),  # [U-high]
    "region_blocked": (400, "ValidationException",
                       "Access to Anthropic models is not allowed from unsupported countries, regions, or "
                       "territories. Please refer to https://www.anthropic.com/supported-countries for more "
                       "information on the countries and regions Anthropic currently supports."),  # [O] (tail U)
    "quota": (400, "ServiceQuotaExceededException",
              "Your request exceeds the service quota for your account. You can view your service quotas at "
              "https://docs.aws.amazon.com/servicequotas/latest/userguide/gs-request-quota.html"),  # [U] text
    "overloaded": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),  # [U] text
    "server_error": (500, "InternalServerException",
                     "The system encountered an unexpected error during processing. Try your request again."),  # [U]
    "context_exceeded": (400, "ValidationException", "Input is too long for requested model."),  # [F]
    # Bedrock has no prompt-policy error (guardrails answer 200 guardrail_intervened); a plain 400 is nearest.
    "invalid_prompt": (400, "ValidationException",
                       "The request was rejected because the prompt violates the content policy."),  # [U]
    "bad_json": (400, "ValidationException", "Malformed input request, please reformat your input and try again."),
    "missing_model": (400, "ValidationException", "The provided model identifier is invalid."),
    "missing_messages": (400, "ValidationException",
                         "A conversation must start with a user message. Try again with a conversation that "
                         "starts with a user message."),
    "prefill_rejected": (400, "ValidationException",
                         "This model does not support assistant message prefill. The conversation must end with a "
                         "user message."),
}


# --------------------------------------------------------------------------- event-stream encoding
def _header(name: str, value: str) -> bytes:
    n = name.encode()
    v = value.encode()
    return struct.pack("!B", len(n)) + n + struct.pack("!BH", 7, len(v)) + v  # 7 = string


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total_len, headers_len, prelude CRC32), headers, payload,
    message CRC32 (all big-endian, CRC32/IEEE as in ``binascii.crc32``)."""
    hbytes = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(hbytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(hbytes))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + hbytes + payload
    return body + struct.pack("!I", binascii.crc32(body) & 0xFFFFFFFF)


def event_frame(event_type: str, payload: Mapping[str, Any]) -> bytes:
    return encode_frame({":event-type": event_type, ":content-type": JSON, ":message-type": "event"},
                        orjson.dumps(payload))


def exception_frame(exception_type: str, payload: Mapping[str, Any]) -> bytes:
    return encode_frame({":exception-type": exception_type, ":content-type": JSON, ":message-type": "exception"},
                        orjson.dumps(payload))


def _padding() -> str:
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"[: 1 + os.urandom(1)[0] % 30]


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}


def _request_id() -> str:
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _tool_use_id() -> str:
    return "tooluse_" + os.urandom(11).hex()


# --------------------------------------------------------------------------- request translation
def _text(blocks: Any) -> str:
    if not isinstance(blocks, list):
        return ""
    return "".join(str(b["text"]) for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))


def _tool_result_text(content: Any) -> str:
    parts = []
    for b in content if isinstance(content, list) else ():
        if isinstance(b, dict) and isinstance(b.get("text"), str):
            parts.append(b["text"])
        elif isinstance(b, dict) and "json" in b:
            parts.append(orjson.dumps(b["json"]).decode())
    return "".join(parts)


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Converse body -> the OpenAI-shaped ``chat`` dict the core's reply logic reads."""
    messages: list[dict[str, Any]] = []
    system = _text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for m in body.get("messages") or ():
        if not isinstance(m, dict):
            continue
        blocks = m.get("content") if isinstance(m.get("content"), list) else []
        if m.get("role") == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": _text(blocks) or None}
            calls = [b["toolUse"] for b in blocks if isinstance(b, dict) and isinstance(b.get("toolUse"), dict)]
            if calls:
                msg["tool_calls"] = [{"id": c.get("toolUseId"), "type": "function",
                                      "function": {"name": c.get("name"),
                                                   "arguments": orjson.dumps(c.get("input", {})).decode()}}
                                     for c in calls]
            messages.append(msg)
            continue
        for b in blocks:
            if isinstance(b, dict) and isinstance(b.get("toolResult"), dict):
                tr = b["toolResult"]
                messages.append({"role": "tool", "tool_call_id": tr.get("toolUseId"),
                                 "content": _tool_result_text(tr.get("content"))})
        text = _text(blocks)
        if text or not any(isinstance(b, dict) and "toolResult" in b for b in blocks):
            messages.append({"role": "user", "content": text})
    chat: dict[str, Any] = {"messages": messages}
    tc = body.get("toolConfig")
    if isinstance(tc, dict) and isinstance(tc.get("tools"), list):
        tools = []
        for t in tc["tools"]:
            spec = t.get("toolSpec") if isinstance(t, dict) else None
            if isinstance(spec, dict):
                tools.append({"type": "function", "function": {
                    "name": spec.get("name"), "description": spec.get("description", ""),
                    "parameters": (spec.get("inputSchema") or {}).get("json") or {}}})
        chat["tools"] = tools
        choice = tc.get("toolChoice") or {}
        if "any" in choice:
            chat["tool_choice"] = "required"
        elif isinstance(choice.get("tool"), dict):
            chat["tool_choice"] = {"type": "function", "function": {"name": choice["tool"].get("name")}}
        elif "auto" in choice:
            chat["tool_choice"] = "auto"
    fmt = ((body.get("outputConfig") or {}).get("textFormat") or {}) if isinstance(body.get("outputConfig"), dict) \
        else {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema"}
    return chat


def _credential(auth: str | None) -> str | None:
    """The access key id of a SigV4 header, or a Bedrock API key (Bearer); None when neither."""
    if not auth:
        return None
    if auth.startswith("AWS4-HMAC-SHA256 "):
        for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
            key, _, value = part.strip().partition("=")
            if key == "Credential" and value:
                return value.split("/", 1)[0] or None
        return None
    scheme, _, token = auth.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


# --------------------------------------------------------------------------- framing
class BedrockFramer(StreamFramer):
    """ConverseStream event-stream framing (one content block: text, or one tool use)."""

    def __init__(self, req: ParsedRequest, model: str, reply: Reply, prompt_tokens: int,
                 params: dict[str, Any]) -> None:
        super().__init__(req, model, reply, prompt_tokens, params)
        self.stop_reason = "end_turn"
        self.usage = Usage(prompt_tokens, 0)

    def headers(self) -> dict[str, str]:
        return {"Content-Type": EVENTSTREAM_CT, "x-amzn-RequestId": _request_id()}

    def start(self) -> bytes:
        out = event_frame("messageStart", {"p": _padding(), "role": "assistant"})
        tc = self.reply.tool_call
        if tc is not None:
            out += event_frame("contentBlockStart", {
                "contentBlockIndex": 0, "p": _padding(),
                "start": {"toolUse": {"toolUseId": _tool_use_id(), "name": tc.name}}})
        return out

    def piece(self, piece: Piece, index: int) -> bytes:
        delta = {"toolUse": {"input": piece.arguments}} if piece.arguments is not None else {"text": piece.text}
        return event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta, "p": _padding()})

    def finish(self, finish_reason: str, usage: Usage) -> bytes:
        self.stop_reason = STOP_REASONS.get(finish_reason, "end_turn")
        self.usage = usage
        return event_frame("contentBlockStop", {"contentBlockIndex": 0, "p": _padding()})

    def terminator(self) -> bytes:
        u = self.usage
        return (event_frame("messageStop", {"p": _padding(), "stopReason": self.stop_reason})
                + event_frame("metadata", {"metrics": {"latencyMs": 100}, "p": _padding(),
                                           "usage": _usage(u.prompt_tokens, u.completion_tokens)}))

    def error_event(self) -> bytes:
        return exception_frame("modelStreamErrorException", {
            "message": "The model encountered an error while processing the stream.",
            "originalStatusCode": 500, "originalMessage": "Internal server error"})  # [U] texts

    def malformed(self) -> bytes:
        # A well-framed event whose payload is not JSON (the decoder can skip it and count it).
        return encode_frame({":event-type": "contentBlockDelta", ":content-type": JSON, ":message-type": "event"},
                            b"{not json")


class BedrockWire(Wire):
    name = WIRE
    framer = BedrockFramer

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        auth = request.headers.get("Authorization")
        token = _credential(auth)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        req = ParsedRequest(model=path_params.get("model_id") or None, stream=request.path.endswith("-stream"),
                            token=token, auth=token is not None, body=body if isinstance(body, dict) else None)
        if not isinstance(body, dict):
            req.error = "bad_json"
            return req
        req.include_usage = True  # ConverseStream always ends with a metadata event
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            req.error = "missing_messages"
            req.chat = {}
            return req
        req.chat = to_chat(body)
        return req

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        if kind == "unauthorized":
            if extra.get("key"):
                status, etype, msg = 403, "UnrecognizedClientException", \
                    "The security token included in the request is invalid."
            else:
                status, etype, msg = 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
        elif kind == "rate_limited" and params.get("kind") == "tokens":
            status, etype, msg = 429, "ThrottlingException", "Too many tokens, please wait before trying again."
        elif kind == "rate_limited":
            status, etype, msg = 429, "ThrottlingException", "Too many requests, please wait before trying again."
        else:
            status, etype, msg = _ERRORS.get(kind, _ERRORS["server_error"])
        headers = {"x-amzn-RequestId": _request_id(), "x-amzn-ErrorType": etype + _TYPE_SUFFIX}
        return status, orjson.dumps({"message": msg}), headers, JSON

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        ctoks = completion_tokens(reply)
        if filtered:
            content: list[dict[str, Any]] = [{"text": GUARDRAIL_TEXT}]
            stop, ctoks = "guardrail_intervened", 0
        elif reply.tool_call is not None:
            tc = reply.tool_call
            content = [{"toolUse": {"toolUseId": _tool_use_id(), "name": tc.name, "input": tc.arguments}}]
            stop = "tool_use"
        else:
            content = [{"text": reply.text or ""}]
            stop = "end_turn"
        payload = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": _usage(prompt_tokens, ctoks),
            "metrics": {"latencyMs": 100},
        }
        return orjson.dumps(payload), {"x-amzn-RequestId": _request_id()}


def register(app: web.Application, state: EmulatorState) -> None:
    """Wire hook: add the Bedrock Converse routes for ``state`` to ``app``."""
    register_wire(app, state, BedrockWire(), ROUTES)
