"""``kind: gemini`` — Google Gemini API (generativelanguage.googleapis.com) ``generateContent`` /
``streamGenerateContent?alt=sse``.

Wire facts this module relies on (see the reference, section 3):
- the key travels in the ``x-goog-api-key`` header (never ``?key=``, so it cannot leak through a logged URL);
- roles are ``user`` and ``model``; system/developer messages become ``systemInstruction``;
- Gemini sends no tool-call ids and finishes a function call with ``STOP``: we synthesize ``call_<hex>`` ids and
  report ``finish_reason: "tool_calls"``; ids we are given are echoed as ``functionCall.id`` /
  ``functionResponse.id`` (optional API fields), and a tool result's function *name* is looked up from the
  assistant tool call with the same id;
- a stream is ``data:`` events of whole ``GenerateContentResponse`` objects (CRLF-separated) with NO terminator:
  the end is the event carrying a ``finishReason``; an in-band ``{"error": {...}}`` event is an error;
- errors are ``{"error": {code, message, status, details[]}}`` (google.rpc.Status); the class comes from
  ``status`` and ``details[].reason`` / ``RetryInfo``, the HTTP status second, message text last.
- Gemini 3 ``thoughtSignature`` on a functionCall part is surfaced as ``extra_content.google.thought_signature``
  on the tool call (Google's own OpenAI-compatibility shape) and sent back from there.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import Target, UpstreamRequest
from gateway.providers.common import excerpt, kind_from_status, load_json, retry_after_seconds, skip_malformed
from gateway.providers.common import refuse_untranslatable  # requests from an inbound dialect (gateway/api/dialects)
from gateway.providers.sse import SSEStreamDecoder

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",  # output cut for copyright reasons (Portkey says stop; reference: filter)
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "NO_IMAGE": "stop",
    "IMAGE_OTHER": "stop",
}
# Model output glitches: a retry (or another model) usually succeeds.
GLITCH_FINISH_REASONS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})

# google.rpc.ErrorInfo reasons that mean "this credential/project cannot use the API".
ACCESS_REASONS = frozenset({
    "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "CONSUMER_SUSPENDED", "SERVICE_DISABLED",
    "BILLING_DISABLED", "ACCESS_TOKEN_EXPIRED", "CONSUMER_INVALID", "API_KEY_HTTP_REFERRER_BLOCKED",
    "API_KEY_IP_ADDRESS_BLOCKED",
})
STATUS_KINDS = {
    "PERMISSION_DENIED": ErrorKind.ACCESS_DENIED,
    "UNAUTHENTICATED": ErrorKind.ACCESS_DENIED,
    "FAILED_PRECONDITION": ErrorKind.ACCESS_DENIED,  # "User location is not supported", free tier unavailable
    "NOT_FOUND": ErrorKind.WITHDRAWN,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMITED,
    "INTERNAL": ErrorKind.TRANSIENT,
    "UNAVAILABLE": ErrorKind.TRANSIENT,
    "DEADLINE_EXCEEDED": ErrorKind.TRANSIENT,
    "ABORTED": ErrorKind.TRANSIENT,
    "UNKNOWN": ErrorKind.TRANSIENT,
    "CANCELLED": ErrorKind.TRANSIENT,
}
# Gemini's context overflow is a bare INVALID_ARGUMENT 400 with no reason: the message text is the only signal.
_CONTEXT_TEXT = re.compile(r"input token count.*exceeds the maximum number of tokens", re.IGNORECASE | re.DOTALL)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")

# The OpenAPI-3.0 subset Gemini's ``Schema`` accepts (python-genai ``types.Schema``); anything else
# (``additionalProperties``, ``$schema``, ``$id``, ``strict``, ``const``, ``oneOf``...) is rejected with a 400.
_SCHEMA_KEYS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
    "propertyOrdering", "default", "items", "minimum", "maximum",
})
_SCHEMA_FORMATS = {"STRING": ("enum", "date-time"), "NUMBER": ("float", "double"), "INTEGER": ("int32", "int64")}
_SCHEMA_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
_MAX_SCHEMA_DEPTH = 32


class GeminiAdapter:
    """Adapter for one Gemini target. Immutable; safe to share across requests."""

    def __init__(self, target: Target) -> None:
        self.target = target
        version = str(target.options.get("api_version") or "v1beta")
        base = f"{target.base_url}/{version}/models/{target.upstream_model}"
        self._url = base + ":generateContent"
        self._stream_url = base + ":streamGenerateContent?alt=sse"
        headers = {"content-type": "application/json", **target.headers}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}

    # -- request -----------------------------------------------------------------------------------------
    def build_request(self, body: Mapping[str, Any], stream: bool) -> UpstreamRequest:
        refuse_untranslatable(body)
        out = translate_request(body)
        if stream:
            return UpstreamRequest("POST", self._stream_url, self._stream_headers, orjson.dumps(out), True)
        return UpstreamRequest("POST", self._url, self._headers, orjson.dumps(out), False)

    # -- response ----------------------------------------------------------------------------------------
    def parse_response(self, body: bytes) -> dict[str, Any]:
        data = load_json(body)
        if isinstance(data, list) and len(data) == 1:  # non-SSE stream shape; the SDK unwraps it too
            data = data[0]
        if not isinstance(data, dict):
            raise UpstreamError(ErrorKind.TRANSIENT, f"malformed response from upstream: {excerpt(body, 120)}")
        if data.get("error"):
            raise self._error_from_object(200, {}, data)
        candidates = data.get("candidates")
        feedback = data.get("promptFeedback") or {}
        if not candidates:
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                choices = [{"index": 0, "message": {"role": "assistant", "content": None},
                            "finish_reason": "content_filter", "logprobs": None}]
                return _completion(data, choices)
            raise UpstreamError(ErrorKind.TRANSIENT, f"malformed response from upstream: {excerpt(body, 120)}")
        if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
            raise UpstreamError(ErrorKind.TRANSIENT, f"malformed response from upstream: {excerpt(body, 120)}")
        choices = []
        for pos, cand in enumerate(candidates):
            reason = cand.get("finishReason")
            if reason in GLITCH_FINISH_REASONS:
                raise UpstreamError(ErrorKind.TRANSIENT, f"upstream model output error: {reason}",
                                    status=200, code=reason)
            texts: list[str] = []
            calls: list[dict[str, Any]] = []
            for part in _parts(cand):
                if part.get("thought"):  # thought summaries are not answer text
                    continue
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif isinstance(part.get("functionCall"), dict):
                    calls.append(_tool_call(part))
            message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
            if calls:
                message["tool_calls"] = calls
            finish = _finish_reason(reason, bool(calls))
            choices.append({"index": cand.get("index", pos) if isinstance(cand.get("index"), int) else pos,
                            "message": message, "finish_reason": finish, "logprobs": None})
        return _completion(data, choices)

    # -- stream ------------------------------------------------------------------------------------------
    def stream_decoder(self, body: Mapping[str, Any]) -> GeminiStreamDecoder:
        opts = body.get("stream_options") or {}
        n = body.get("n")
        return GeminiStreamDecoder(self, bool(isinstance(opts, Mapping) and opts.get("include_usage")),
                                   n if isinstance(n, int) and n > 1 else 1)

    # -- errors ------------------------------------------------------------------------------------------
    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        data = load_json(body)
        if isinstance(data, list) and data and isinstance(data[0], dict):
            data = data[0]
        return self._error_from_object(status, headers, data if isinstance(data, dict) else {}, body)

    def _error_from_object(
        self, status: int, headers: Mapping[str, str], data: dict[str, Any], raw: bytes = b""
    ) -> UpstreamError:
        err = data.get("error")
        if not isinstance(err, dict):
            err = {}
        message = str(err.get("message") or "") or (excerpt(raw) if raw else f"HTTP {status}")
        rpc_status = str(err.get("status") or "")
        details = [d for d in err.get("details") or () if isinstance(d, dict)]
        reasons = [str(d["reason"]) for d in details if d.get("reason")]
        effective = status
        if status == 200 and isinstance(err.get("code"), int):  # in-band: the error object carries the status
            effective = err["code"]
        kind = classify(effective, rpc_status, reasons, message)
        retry_after = None
        if kind is ErrorKind.RATE_LIMITED:
            retry_after = _retry_delay(details)
            if retry_after is None:
                retry_after = retry_after_seconds(headers)
        return UpstreamError(kind, message, status=effective or None, code=(reasons[0] if reasons else rpc_status)
                             or None, retry_after=retry_after, body=data or None)


def classify(status: int, rpc_status: str, reasons: list[str], message: str) -> ErrorKind:
    """Gemini classification: ErrorInfo reasons, then the google.rpc status name, then HTTP status, then text."""
    if any(r in ACCESS_REASONS for r in reasons):  # API_KEY_INVALID arrives as a 400 INVALID_ARGUMENT
        return ErrorKind.ACCESS_DENIED
    kind = STATUS_KINDS.get(rpc_status) or kind_from_status(status)
    if kind is not None:
        return kind
    # Last resort, a bare 400 INVALID_ARGUMENT: Gemini has no structured signal for an over-long prompt.
    if status == 400 and _CONTEXT_TEXT.search(message):
        return ErrorKind.CONTEXT_TOO_LONG
    return ErrorKind.BAD_REQUEST


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    for d in details:
        if str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = d.get("retryDelay")
            if isinstance(delay, dict):  # proto-JSON object form {"seconds": 17, "nanos": ...}
                try:
                    seconds = float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
                except (TypeError, ValueError):
                    return None
                return seconds if math.isfinite(seconds) else None  # "inf" would cool the model forever
            m = _DURATION.match(str(delay or ""))
            if m:
                return float(m.group(1))
    return None


# -- request translation ----------------------------------------------------------------------------------
def translate_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI chat body -> a Gemini ``GenerateContentRequest`` (camelCase). Never mutates ``body``."""
    messages = body.get("messages") or []
    names: dict[str, str] = {}  # tool_call_id -> function name, from earlier assistant turns
    for m in messages:
        if isinstance(m, Mapping) and m.get("role") == "assistant":
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function") or {}
                if tc.get("id") and fn.get("name"):
                    names[str(tc["id"])] = str(fn["name"])
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:  # Gemini wants alternating turns; merge neighbours
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            system.extend({"text": t} for t in _texts(m.get("content")) if t)
        elif role == "user":
            add("user", _user_parts(m.get("content")))
        elif role == "assistant":
            parts = [{"text": t} for t in _texts(m.get("content")) if t]
            for tc in m.get("tool_calls") or ():
                parts.append(_function_call_part(tc))
            add("model", parts)
        elif role == "tool":
            call_id = str(m.get("tool_call_id") or "")
            name = names.get(call_id) or str(m.get("name") or "") or "unknown_function"
            resp: dict[str, Any] = {"name": name, "response": _tool_result(m.get("content"))}
            if call_id:
                resp["id"] = call_id
            add("user", [{"functionResponse": resp}])
        elif role == "function":  # legacy OpenAI function-calling result
            add("user", [{"functionResponse": {"name": str(m.get("name") or "unknown_function"),
                                               "response": _tool_result(m.get("content"))}}])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}

    tools = [t for t in body.get("tools") or () if isinstance(t, Mapping) and t.get("type", "function") == "function"]
    decls = []
    for t in tools:
        fn = t.get("function") or {}
        decl: dict[str, Any] = {"name": fn.get("name")}
        if fn.get("description"):
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        if isinstance(params, Mapping) and params.get("properties"):
            decl["parameters"] = sanitize_schema(params)
        decls.append(decl)
    if decls:
        out["tools"] = [{"functionDeclarations": decls}]
        choice = body.get("tool_choice")
        mode = None
        allowed = None
        if choice == "none":
            mode = "NONE"
        elif choice == "required":
            mode = "ANY"
        elif choice == "auto":
            mode = "AUTO"
        elif isinstance(choice, Mapping):
            name = _obj(choice.get("function")).get("name")
            if name:
                mode, allowed = "ANY", [name]
        if mode:
            cfg: dict[str, Any] = {"mode": mode}
            if allowed:
                cfg["allowedFunctionNames"] = allowed
            out["toolConfig"] = {"functionCallingConfig": cfg}

    gen: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        gen["maxOutputTokens"] = max_tokens
    for src, dst in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                     ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if body.get(src) is not None:
            gen[dst] = body[src]
    stop = body.get("stop")
    if isinstance(stop, str):
        gen["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        gen["stopSequences"] = list(stop)
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        gen["candidateCount"] = n
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_object":
            gen["responseMimeType"] = "application/json"
        elif fmt.get("type") == "json_schema":
            gen["responseMimeType"] = "application/json"
            schema = _obj(fmt.get("json_schema")).get("schema")
            if isinstance(schema, Mapping):
                gen["responseSchema"] = sanitize_schema(schema)
    if gen:
        out["generationConfig"] = gen
    return out


def _texts(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    out = []
    for p in content if isinstance(content, list) else ():
        if isinstance(p, Mapping) and p.get("type") in ("text", "input_text", "refusal"):
            out.append(str(p.get("text") or p.get("refusal") or ""))
    return out


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for p in content if isinstance(content, list) else ():
        if not isinstance(p, Mapping):
            continue
        if p.get("type") == "text":
            if p.get("text"):
                parts.append({"text": str(p["text"])})
        elif p.get("type") == "image_url":
            url = str(_obj(p.get("image_url")).get("url") or "")
            if url.startswith("data:"):
                header, _, data = url[5:].partition(",")
                mime = header.split(";")[0] or "application/octet-stream"
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
            elif url:
                parts.append({"fileData": {"mimeType": _guess_mime(url), "fileUri": url}})
        elif p.get("type") == "input_audio":
            audio = _obj(p.get("input_audio"))
            parts.append({"inlineData": {"mimeType": "audio/" + str(audio.get("format") or "wav"),
                                         "data": audio.get("data") or ""}})
    return parts


def _obj(value: Any) -> Mapping[str, Any]:
    """``value`` if it is an object, else an empty one: a wrong type in an optional slot is read as absent."""
    return value if isinstance(value, Mapping) else {}


def _guess_mime(url: str) -> str:
    path = url.split("?")[0].lower()
    for ext, mime in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp"),
                      (".pdf", "application/pdf")):
        if path.endswith(ext):
            return mime
    return "image/jpeg"


def _function_call_part(tc: Mapping[str, Any]) -> dict[str, Any]:
    fn = tc.get("function") or {}
    raw = fn.get("arguments")
    if isinstance(raw, Mapping):
        args: Any = dict(raw)
    else:
        args = load_json(str(raw or "{}").encode()) if raw else {}
    if not isinstance(args, dict):
        args = {} if args is None else {"value": args}
    call: dict[str, Any] = {"name": fn.get("name"), "args": args}
    if tc.get("id"):
        call["id"] = str(tc["id"])
    part: dict[str, Any] = {"functionCall": call}
    sig = _obj(_obj(tc.get("extra_content")).get("google")).get("thought_signature")
    if sig:
        part["thoughtSignature"] = sig
    return part


def _tool_result(content: Any) -> dict[str, Any]:
    """``functionResponse.response`` must be an object: a JSON object passes, anything else is wrapped."""
    text = "".join(_texts(content)) if not isinstance(content, str) else content
    data = load_json(text.encode()) if text.lstrip()[:1] == "{" else None
    if isinstance(data, dict):
        return data
    return {"content": text}


def sanitize_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema -> Gemini's OpenAPI-subset ``Schema``: local ``$ref``s inlined, unsupported keys dropped,
    ``type: [x, "null"]`` -> ``nullable``, ``const`` -> ``enum``, ``oneOf`` -> ``anyOf``."""
    defs = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), Mapping):
            defs.update({f"#/{key}/{k}": v for k, v in schema[key].items()})
    return _sanitize(schema, defs, 0)


def _sanitize(schema: Any, defs: Mapping[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(schema, Mapping) or depth > _MAX_SCHEMA_DEPTH:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and isinstance(defs.get(ref), Mapping):
        merged = {**defs[ref], **{k: v for k, v in schema.items() if k != "$ref"}}
        return _sanitize(merged, defs, depth + 1)
    out: dict[str, Any] = {}
    nullable = False
    for key, value in schema.items():
        if key == "type":
            types = value if isinstance(value, list) else [value]
            real = [t for t in types if isinstance(t, str) and t != "null"]  # any JSON may sit here
            nullable = nullable or "null" in types
            if real and real[0] in _SCHEMA_TYPES:
                out["type"] = str(real[0]).upper()
        elif key == "const":
            out["enum"] = [str(value)]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [str(v) for v in value if v is not None]
            nullable = nullable or None in value
        elif key in ("oneOf", "anyOf") and isinstance(value, list):
            subs = [s for s in value if not (isinstance(s, Mapping) and s.get("type") == "null")]
            nullable = nullable or len(subs) < len(value)
            if len(subs) == 1:
                out.update(_sanitize(subs[0], defs, depth + 1))
            elif subs:
                out["anyOf"] = [_sanitize(s, defs, depth + 1) for s in subs]
        elif key == "allOf" and isinstance(value, list):
            for s in value:
                out.update(_sanitize(s, defs, depth + 1))
        elif key == "properties" and isinstance(value, Mapping):
            out["properties"] = {k: _sanitize(v, defs, depth + 1) for k, v in value.items()}
        elif key == "items":
            out["items"] = _sanitize(value[0] if isinstance(value, list) and value else value, defs, depth + 1)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
        elif key in _SCHEMA_KEYS and key not in out:
            out[key] = value
    fmt = out.get("format")
    if fmt is not None and fmt not in _SCHEMA_FORMATS.get(out.get("type", ""), ()):
        out.pop("format")  # Gemini rejects formats it does not know (e.g. "uri", "email") with a 400
    if out.get("properties") == {}:
        out.pop("properties")  # an OBJECT with empty properties is rejected; a bare OBJECT is fine
    if "enum" in out and "type" not in out:
        out["type"] = "STRING"
    if "enum" in out and out.get("type") != "STRING":  # Gemini enums are string-only
        out.pop("enum")
    if nullable:
        out["nullable"] = True
    if isinstance(out.get("required"), list) and isinstance(out.get("properties"), dict):
        out["required"] = [r for r in out["required"] if isinstance(r, str) and r in out["properties"]]
    return out


# -- response helpers -------------------------------------------------------------------------------------
def _parts(cand: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = cand.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _new_call_id() -> str:
    return "call_" + os.urandom(12).hex()


def _tool_call(part: Mapping[str, Any]) -> dict[str, Any]:
    fc = part["functionCall"]
    args = fc.get("args")
    call: dict[str, Any] = {
        "id": str(fc.get("id") or _new_call_id()),
        "type": "function",
        "function": {"name": str(fc.get("name") or ""),
                     "arguments": orjson.dumps(args if args is not None else {}).decode()},
    }
    if part.get("thoughtSignature"):
        call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return call


def _finish_reason(reason: Any, has_calls: bool) -> str:
    mapped = FINISH_REASONS.get(str(reason), "stop") if reason else "stop"
    if has_calls and mapped == "stop":
        return "tool_calls"
    return mapped


def convert_usage(meta: Any) -> dict[str, Any] | None:
    if not isinstance(meta, Mapping):
        return None

    def num(key: str) -> int:
        v = meta.get(key)
        return v if isinstance(v, int) else 0

    prompt = num("promptTokenCount") + num("toolUsePromptTokenCount")
    thoughts = num("thoughtsTokenCount")
    completion = num("candidatesTokenCount") + thoughts
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": num("totalTokenCount") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": num("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }
    return usage


def _completion(data: Mapping[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "chatcmpl-" + str(data.get("responseId") or os.urandom(12).hex()),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(data.get("modelVersion") or ""),
        "choices": choices,
    }
    usage = convert_usage(data.get("usageMetadata"))
    if usage is not None:
        out["usage"] = usage
    return out


# -- stream -----------------------------------------------------------------------------------------------
class GeminiStreamDecoder(SSEStreamDecoder):
    """Gemini ``alt=sse``: each ``data:`` event is a whole ``GenerateContentResponse`` with the new parts only.

    There is no terminator: the stream is complete once every candidate has sent a ``finishReason`` (or the
    prompt was blocked: ``promptFeedback.blockReason`` without candidates). Usage grows on every event; the last
    one seen is reported after the final chunk when the request asked for it.
    """

    __slots__ = ("_adapter", "_include_usage", "_expected", "_started", "_finished", "_calls",
                 "_usage", "_model", "_created", "done")
    INCOMPLETE = "upstream stream ended before a final finishReason"

    def __init__(self, adapter: GeminiAdapter, include_usage: bool = False, candidates: int = 1) -> None:
        super().__init__()
        self._adapter = adapter
        self._include_usage = include_usage
        self._expected = candidates
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate index -> tool calls emitted so far
        self._usage: Any = None
        self._model = ""
        self._created = int(time.time())
        self.done = False

    def _complete(self) -> bool:
        return self.done

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": "", "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "choices": choices}

    def _delta(self, index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return self._chunk([{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}])

    def _start(self, index: int, out: list[dict[str, Any]]) -> None:
        if index not in self._started:
            self._started.add(index)
            out.append(self._delta(index, {"role": "assistant", "content": ""}))

    def _events(self, events: list) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for ev in events:
            if self.done:
                break
            try:
                obj = orjson.loads(ev.data)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, list) and len(obj) == 1:
                obj = obj[0]
            if not isinstance(obj, dict):
                skip_malformed(self)
                continue
            self._bad_run = 0
            if obj.get("error"):
                raise self._adapter._error_from_object(200, {}, obj)
            self._event(obj, out)
        return out

    def _event(self, obj: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if obj.get("modelVersion"):
            self._model = str(obj["modelVersion"])
        if obj.get("usageMetadata"):
            self._usage = obj["usageMetadata"]
        candidates = obj.get("candidates")
        if not candidates:
            feedback = obj.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._start(0, out)
                out.append(self._delta(0, {}, "content_filter"))
                self._end(out)
            return
        for pos, cand in enumerate(candidates if isinstance(candidates, list) else ()):
            if not isinstance(cand, dict):
                continue
            index = cand["index"] if isinstance(cand.get("index"), int) else pos
            if index in self._finished:
                continue
            reason = cand.get("finishReason")
            if reason in GLITCH_FINISH_REASONS:
                raise UpstreamError(ErrorKind.TRANSIENT, f"upstream model output error: {reason}",
                                    status=200, code=reason)
            self._start(index, out)
            for part in _parts(cand):
                if part.get("thought"):
                    continue
                if isinstance(part.get("text"), str) and part["text"]:
                    out.append(self._delta(index, {"content": part["text"]}))
                elif isinstance(part.get("functionCall"), dict):
                    call = _tool_call(part)
                    n = self._calls.get(index, 0)
                    self._calls[index] = n + 1
                    args = call["function"]["arguments"]
                    head = {"index": n, "id": call["id"], "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""}}
                    if "extra_content" in call:
                        head["extra_content"] = call["extra_content"]
                    out.append(self._delta(index, {"tool_calls": [head]}))
                    out.append(self._delta(index, {"tool_calls": [{"index": n, "function": {"arguments": args}}]}))
            if reason:
                self._finished.add(index)
                out.append(self._delta(index, {}, _finish_reason(reason, bool(self._calls.get(index)))))
        if len(self._finished) >= self._expected:
            self._end(out)

    def _end(self, out: list[dict[str, Any]]) -> None:
        self.done = True
        if self._include_usage:
            usage = convert_usage(self._usage) or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            chunk = self._chunk([])
            chunk["usage"] = usage
            out.append(chunk)
