"""The Anthropic Messages API (``POST /v1/messages``) as an inbound dialect. Pure: bodies in, bodies out.

Request -> internal chat request (``to_internal``), with every field type-checked first (a 400 names the
Anthropic field: ``messages[1].content[0].source.data``):

- ``system`` (string or text blocks) -> one system message; ``cache_control`` has no OpenAI equivalent and is
  dropped in translation (kept when an Anthropic-kind model serves: the original body is sent natively).
- user blocks: ``text``; ``image`` (base64 -> data URL, url); ``tool_result`` -> a ``tool`` message (before the
  user's other content, in order; ``is_error`` is prefixed to the text as ``[error] ``); plain-text documents.
- assistant blocks: ``text``; ``tool_use`` -> ``tool_calls``; earlier turns' thinking and server tool blocks
  are left out (the assistant's own text says what it made of them).
- ``tools`` (custom tools: name, description, input_schema) -> function tools.
- Anthropic-only parts of the request (server tools such as ``web_search_*``, ``mcp_servers``, PDFs, file or
  other non-text sources, non-text tool results): the request still goes natively to an Anthropic-kind model;
  any other model answers 400 naming the part (``Untranslatable`` notes), never a silently different answer.
- ``tool_choice`` auto/any/tool/none -> auto/required/function/none; ``disable_parallel_tool_use`` ->
  ``parallel_tool_calls: false``.
- ``stop_sequences`` -> ``stop`` (the first 4: OpenAI's limit); ``temperature``, ``top_p`` as is; ``top_k`` has
  no OpenAI equivalent: dropped; ``metadata.user_id`` -> ``user``; ``max_tokens`` (required) as is.
- ``thinking``: documented rule: an Anthropic-kind model gets it natively on streams, and its thinking blocks
  are relayed (``thinking_delta``/``signature_delta``) so the client can send them back with a tool result; on
  non-streaming requests and for other vendors it is dropped (their own default reasoning applies), because the
  internal answer has no place for thinking blocks and the gateway cannot tell which other models accept a
  reasoning setting (an unknown one is a 400 upstream).
- ``model`` is the gateway's route name, alias or model name, like ``model`` in chat completions.

Answer -> Anthropic: ``from_completion`` (a ``message`` object), ``StreamTranslator`` (named SSE events exactly
as the anthropic SDK parses them), ``error_body`` (``{"type": "error", "error": {"type", "message"}}``).
``stop_sequence`` is null in translation (OpenAI does not say which sequence matched); a stream from an
Anthropic-kind model relays its own ``stop_reason`` and ``stop_sequence``.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from gateway.api.dialects.common import (
    STREAM_OPTIONS,
    bad,
    dumps,
    expect,
    number,
    optional,
    parse_arguments,
    positive_int,
    text_tokens,
    usage_numbers,
)
from gateway.api.validate import missing
from gateway.errors import GatewayError
from gateway.providers.anthropic import NATIVE_DELTA

DIALECT = "anthropic_messages"
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}
# HTTP status -> Anthropic error.type (https://docs.anthropic.com/en/api/errors); the anthropic SDK picks its
# exception class from the status, so the status is kept as the gateway decided it.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
               413: "request_too_large", 415: "invalid_request_error", 422: "invalid_request_error",
               429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "overloaded_error",
               504: "timeout_error", 529: "overloaded_error"}
_THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


# -- request -----------------------------------------------------------------------------------------------
class Untranslatable(NamedTuple):
    """A part of a valid Messages request that only an Anthropic model can take (a server tool, a PDF, ...)."""

    param: str
    reason: str


def to_internal(body: Any, *, count_only: bool = False, notes: list[Untranslatable] | None = None) -> dict[str, Any]:
    """A Messages request -> the internal chat request; raises ``GatewayError(400)`` naming the field.
    ``count_only`` (``/v1/messages/count_tokens``): ``max_tokens`` is not required.

    Parts only an Anthropic model can take are left out of the internal request and listed in ``notes``; the
    request then goes natively to an Anthropic-kind model, and any other model answers 400 naming the first
    such part (``providers.common.refuse_untranslatable``), rather than silently answer a different question."""
    notes = [] if notes is None else notes
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.", code="invalid_request")
    out: dict[str, Any] = {}
    model = optional(body, "model", str, "a string")
    if model is not None:
        out["model"] = model
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        text = _system_text(system)
        if text:
            messages.append({"role": "system", "content": text})
    raw = body.get("messages")
    if raw is None:
        raise missing("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("messages", "expected a non-empty array of messages")
    for i, msg in enumerate(raw):
        _message(msg, f"messages[{i}]", messages, notes)
    if not any(m["role"] != "system" for m in messages):
        if not notes:
            raise bad("messages", "at least one user or assistant message with content is required")
        messages.append({"role": "user", "content": ""})  # everything was Anthropic-only: see ``notes``
    out["messages"] = messages
    max_tokens = positive_int(body, "max_tokens", required=not count_only)
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    stream = optional(body, "stream", bool, "a boolean")
    if stream:
        out["stream"] = True
        out["stream_options"] = dict(STREAM_OPTIONS)
    temperature = number(body, "temperature", 0, 1)
    if temperature is not None:
        out["temperature"] = temperature
    top_p = number(body, "top_p", 0, 1)
    if top_p is not None:
        out["top_p"] = top_p
    positive_int(body, "top_k")  # checked, then dropped: no OpenAI equivalent
    stops = optional(body, "stop_sequences", list, "an array of strings")
    if stops:
        for j, s in enumerate(stops):
            expect(s, str, f"stop_sequences[{j}]", "a string")
        out["stop"] = stops[:4]
    metadata = optional(body, "metadata", dict, "an object")
    if metadata is not None:
        user = optional(metadata, "user_id", str, "a string", "metadata.")
        if user:
            out["user"] = user
    optional(body, "thinking", dict, "an object")  # checked; see the module docstring for the rule
    tools = optional(body, "tools", list, "an array of tools")
    if tools:
        translated = [t for t in (_tool(t, f"tools[{j}]", notes) for j, t in enumerate(tools)) if t is not None]
        if translated:
            out["tools"] = translated
    if body.get("mcp_servers") is not None:
        notes.append(Untranslatable("mcp_servers", "MCP servers are connected by Anthropic's API"))
    choice = optional(body, "tool_choice", dict, "an object")
    if choice is not None:
        _tool_choice(choice, out)
    return out


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    expect(system, list, "system", "a string or an array of text blocks")
    parts = []
    for j, block in enumerate(system):
        p = f"system[{j}]"
        expect(block, dict, p, "a text block")
        if block.get("type") != "text":
            raise bad(f"{p}.type", "system blocks must be of type 'text'")
        parts.append(expect(block.get("text"), str, f"{p}.text", "a string"))
    return "\n\n".join(parts)


def _message(msg: Any, path: str, out: list[dict[str, Any]], notes: list[Untranslatable]) -> None:
    expect(msg, dict, path, "a message object")
    role = msg.get("role")
    if role not in ("user", "assistant"):
        raise bad(f"{path}.role", f"expected 'user' or 'assistant', got {role!r}")
    content = msg.get("content")
    if isinstance(content, str):
        out.append({"role": role, "content": content})
        return
    expect(content, list, f"{path}.content", "a string or an array of content blocks")
    if role == "assistant":
        _assistant(content, path, out)
    else:
        _user(content, path, out, notes)


def _block(block: Any, p: str) -> str:
    expect(block, dict, p, "a content block object")
    return expect(block.get("type"), str, f"{p}.type", "a string")


def _user(content: list[Any], path: str, out: list[dict[str, Any]], notes: list[Untranslatable]) -> None:
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        p = f"{path}.content[{j}]"
        btype = _block(block, p)
        try:
            if btype == "text":
                parts.append({"type": "text", "text": expect(block.get("text"), str, f"{p}.text", "a string")})
            elif btype == "image":
                parts.append(_image(block.get("source"), f"{p}.source"))
            elif btype == "tool_result":
                out.append({"role": "tool",
                            "tool_call_id": expect(block.get("tool_use_id"), str, f"{p}.tool_use_id", "a string"),
                            "content": _tool_result_text(block, p)})
            elif btype == "document":
                parts.append({"type": "text", "text": _document_text(block, p)})
            else:
                raise _Only(f"{p}.type", f"content block type {btype!r}")
        except _Only as e:
            notes.append(Untranslatable(*e.args))
    if parts:
        out.append({"role": "user", "content": parts})


def _assistant(content: list[Any], path: str, out: list[dict[str, Any]]) -> None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        p = f"{path}.content[{j}]"
        btype = _block(block, p)
        if btype == "text":
            texts.append(expect(block.get("text"), str, f"{p}.text", "a string"))
        elif btype == "tool_use":
            args = block.get("input", {})
            expect(args, dict, f"{p}.input", "an object")
            calls.append({"id": expect(block.get("id"), str, f"{p}.id", "a string"), "type": "function",
                          "function": {"name": expect(block.get("name"), str, f"{p}.name", "a string"),
                                       "arguments": dumps(args, f"{p}.input")}})
        # Earlier turns' thinking and server tool blocks (web search calls and results, ...) are left out: the
        # assistant's own text says what it made of them, and the conversation can still move to another model.
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        msg["tool_calls"] = calls
    if texts or calls:
        out.append(msg)


def _image(source: Any, p: str) -> dict[str, Any]:
    expect(source, dict, p, "an image source object")
    stype = source.get("type")
    if stype == "base64":
        media = expect(source.get("media_type"), str, f"{p}.media_type", "a string")
        data = expect(source.get("data"), str, f"{p}.data", "a base64 string")
        try:  # checked here (Anthropic's API checks it too) so the 400 names this field, whichever model serves
            binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):
            raise bad(f"{p}.data", "not valid base64") from None
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if stype == "url":
        return {"type": "image_url", "image_url": {"url": expect(source.get("url"), str, f"{p}.url", "a string")}}
    raise _Only(f"{p}.type", f"image source type {stype!r}")


def _document_text(block: Mapping[str, Any], p: str) -> str:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text":
        return expect(source.get("data"), str, f"{p}.source.data", "a string")
    raise _Only(f"{p}.source", "a document other than plain text")


def _tool_result_text(block: Mapping[str, Any], p: str) -> str:
    content = block.get("content", "")
    if isinstance(content, str):
        text = content
    else:
        expect(content, list, f"{p}.content", "a string or an array of blocks")
        pieces = []
        for k, part in enumerate(content):
            q = f"{p}.content[{k}]"
            if _block(part, q) == "text":
                pieces.append(expect(part.get("text"), str, f"{q}.text", "a string"))
            else:
                raise _Only(f"{q}.type", "a non-text block in a tool_result")
        text = "\n".join(pieces)
    if optional(block, "is_error", bool, "a boolean", f"{p}."):
        text = "[error] " + text
    return text


def _tool(tool: Any, p: str, notes: list[Untranslatable]) -> dict[str, Any] | None:
    expect(tool, dict, p, "a tool object")
    ttype = tool.get("type")
    if ttype not in (None, "custom"):
        notes.append(Untranslatable(f"{p}.type", f"Anthropic server tool {ttype!r}"))
        return None
    fn: dict[str, Any] = {"name": expect(tool.get("name"), str, f"{p}.name", "a string")}
    desc = optional(tool, "description", str, "a string", f"{p}.")
    if desc:
        fn["description"] = desc
    fn["parameters"] = expect(tool.get("input_schema", {"type": "object", "properties": {}}), dict,
                              f"{p}.input_schema", "a JSON Schema object")
    return {"type": "function", "function": fn}


def _tool_choice(choice: Mapping[str, Any], out: dict[str, Any]) -> None:
    ctype = choice.get("type")
    if ctype == "auto":
        out["tool_choice"] = "auto"
    elif ctype == "any":
        out["tool_choice"] = "required"
    elif ctype == "none":
        out["tool_choice"] = "none"
    elif ctype == "tool":
        name = expect(choice.get("name"), str, "tool_choice.name", "a string")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise bad("tool_choice.type", "expected auto, any, tool or none")
    if optional(choice, "disable_parallel_tool_use", bool, "a boolean", "tool_choice.") and "tools" in out:
        out["parallel_tool_calls"] = False


class _Only(Exception):
    """Raised inside a block's translation: the block is Anthropic-only (args: param, what)."""


def count_tokens(internal: Mapping[str, Any]) -> dict[str, int]:
    """``/v1/messages/count_tokens``: an estimate (4 characters a token over the text of the messages and the
    tool definitions), the same for every route; no upstream is called."""
    texts = []
    for m in internal["messages"]:
        texts.append(m.get("content"))
        texts.append(m.get("tool_calls"))
    return {"input_tokens": max(1, text_tokens(*texts, internal.get("tools")))}


# -- answer ------------------------------------------------------------------------------------------------
def usage(internal: Mapping[str, Any] | None) -> dict[str, int]:
    """Internal usage -> Anthropic's, where fresh, cache-read and cache-written input are counted apart."""
    prompt, completion, read, written = usage_numbers(internal)
    return {"input_tokens": max(0, prompt - read - written), "output_tokens": completion,
            "cache_creation_input_tokens": written, "cache_read_input_tokens": read}


def from_completion(result: Mapping[str, Any], msg_id: str) -> dict[str, Any]:
    """A ``chat.completion`` dict (``model`` = the model that served) -> an Anthropic ``message`` object."""
    choices = result.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text") or "" for p in text if isinstance(p, Mapping))
    if not text and message.get("refusal"):
        text = message["refusal"]
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or "", "name": fn.get("name") or "",
                        "input": parse_arguments(fn.get("arguments"))})
    return {"id": msg_id, "type": "message", "role": "assistant", "model": result.get("model") or "",
            "content": content, "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None, "usage": usage(result.get("usage"))}


def error_body(status: int, err: Mapping[str, Any] | None, request_id: str | None = None) -> dict[str, Any]:
    """An OpenAI error envelope's ``error`` object -> Anthropic's error body for ``status``."""
    message = str((err or {}).get("message") or f"HTTP {status}")
    etype = ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    out: dict[str, Any] = {"type": "error", "error": {"type": etype, "message": message}}
    if request_id:
        out["request_id"] = request_id
    return out


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamTranslator:
    """``chat.completion.chunk`` dicts (the gateway's relay output) -> Anthropic's named SSE events.

    One instance per request. ``chunk`` for each data event, ``done`` for ``[DONE]``, ``error`` for the relay's
    in-band error, ``end`` when the relay's output ended (an end without ``[DONE]`` is a cut: it becomes an
    ``error`` event, never a clean ``message_stop``). Blocks: text and each tool call are content blocks in
    arrival order; a tool call's arguments stream as ``input_json_delta``.
    """

    def __init__(self, msg_id: str) -> None:
        self.msg_id = msg_id
        self.started = False
        self.closed = False
        self.index = -1  # current content block index
        self.open: str | None = None  # "text" | "tool:<k>" | None
        self.stop_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.native_stop: dict[str, Any] = {}  # an Anthropic upstream's own stop_reason / stop_sequence
        self.model = ""

    def _start(self, model: str) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        self.model = model
        message = {"id": self.msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
                   "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}
        return [_event("message_start", {"type": "message_start", "message": message}),
                _event("ping", {"type": "ping"})]

    def _close_block(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [_event("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _open_block(self, key: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close_block()
        self.index += 1
        self.open = key
        out.append(_event("content_block_start", {"type": "content_block_start", "index": self.index,
                                                  "content_block": block}))
        return out

    def chunk(self, chunk: Mapping[str, Any]) -> bytes:
        if self.closed:
            return b""
        out = self._start(str(chunk.get("model") or ""))
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            native = delta.get(NATIVE_DELTA)
            if isinstance(native, Mapping):  # relayed by an Anthropic-kind upstream: a thinking block, the stop
                if isinstance(native.get("stop"), Mapping):
                    self.native_stop = dict(native["stop"])
                elif isinstance(native.get("content_block"), Mapping):
                    out += self._open_block(f"native:{self.index + 1}", dict(native["content_block"]))
                elif isinstance(native.get("delta"), Mapping) and (self.open or "").startswith("native:"):
                    out.append(_event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                              "delta": dict(native["delta"])}))
            text = delta.get("content") or delta.get("refusal")
            if text:
                if self.open != "text":
                    out += self._open_block("text", {"type": "text", "text": ""})
                out.append(_event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                          "delta": {"type": "text_delta", "text": text}}))
            for call in delta.get("tool_calls") or ():
                key = f"tool:{call.get('index', 0)}"
                fn = call.get("function") or {}
                if self.open != key:
                    out += self._open_block(key, {"type": "tool_use", "id": call.get("id") or "",
                                                  "name": fn.get("name") or "", "input": {}})
                if fn.get("arguments"):
                    out.append(_event("content_block_delta", {
                        "type": "content_block_delta", "index": self.index,
                        "delta": {"type": "input_json_delta", "partial_json": fn["arguments"]}}))
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
                out += self._close_block()
        return b"".join(out)

    def done(self) -> bytes:
        if self.closed:
            return b""
        out = self._start(self.model) + self._close_block()
        self.closed = True
        u = usage(self.usage)
        stop = {"stop_reason": self.stop_reason or "end_turn", "stop_sequence": None}
        if self.native_stop.get("stop_reason"):
            stop = {"stop_reason": self.native_stop["stop_reason"],
                    "stop_sequence": self.native_stop.get("stop_sequence")}
        out.append(_event("message_delta", {"type": "message_delta", "delta": stop, "usage": u}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, status: int, err: Mapping[str, Any] | None) -> bytes:
        if self.closed:
            return b""
        self.closed = True
        return _event("error", error_body(status, err))

    def end(self) -> bytes:
        """The relay's output ended. Without ``[DONE]`` or an error before it, the answer was cut."""
        if self.closed:
            return b""
        return self.error(502, {"message": "upstream stream ended before the answer was complete"})
