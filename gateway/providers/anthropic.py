"""``kind: anthropic`` — the Anthropic Messages API (``POST /v1/messages``).

Translation (reference section 2.1): system/developer messages become the top-level ``system``; tool results
become ``tool_result`` blocks in a user turn; assistant ``tool_calls`` become ``tool_use`` blocks; consecutive
turns of one role are merged (Anthropic wants alternating roles). ``max_tokens`` is required upstream, so the
provider's ``default_max_tokens`` fills it in. ``temperature`` is clamped to Anthropic's 0..1.

JSON mode: Anthropic has no ``response_format``. With ``structured_outputs: true`` on the provider (models that
have Anthropic's structured outputs), a ``json_schema`` format with an object schema is sent as
``output_config.format`` and the answer is the model's text. Otherwise (and for ``json_object``) it is enforced
with a forced tool, ``JSON_TOOL``, whose input schema is the requested schema (``{"type": "object"}`` for ``json_object``):
Anthropic validates tool input against it. Its ``tool_use`` input comes back as the message *content* (a JSON
string, finish reason ``stop``), streamed as content deltas, exactly where an OpenAI caller expects it. With the
caller's own tools in the request too, the model must use one of them or ``JSON_TOOL`` (``tool_choice: any``).

Prefill: a trailing assistant message is sent as the final assistant turn, which Anthropic continues. Anthropic
rejects a final assistant turn that ends in whitespace, so its trailing whitespace is stripped.

Errors (reference 2.4, 7.2): ``{"type": "error", "error": {"type", "message"}, "request_id"}``; classified by
``error.type`` first, then HTTP status; message text only for a bare 400 ``invalid_request_error`` (credit
balance, prompt too long), where Anthropic sends no structured signal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import Target, UpstreamRequest, native_body
from gateway.providers.common import excerpt, load_json, retry_after_seconds, skip_malformed
from gateway.providers.sse import SSEEvent, SSEStreamDecoder

DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}

# error.type -> kind, where the type alone decides (reference 7.2). not_found_error and invalid_request_error
# need more than the type and are handled in ``classify``.
_TYPE_KINDS = {
    "authentication_error": ErrorKind.ACCESS_DENIED,
    "permission_error": ErrorKind.ACCESS_DENIED,
    "billing_error": ErrorKind.ACCESS_DENIED,
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "request_too_large": ErrorKind.CONTEXT_TOO_LONG,
    "overloaded_error": ErrorKind.TRANSIENT,
    "api_error": ErrorKind.TRANSIENT,
    "timeout_error": ErrorKind.TRANSIENT,
}
_STATUS_KINDS = {
    401: ErrorKind.ACCESS_DENIED,
    402: ErrorKind.ACCESS_DENIED,
    403: ErrorKind.ACCESS_DENIED,
    408: ErrorKind.TRANSIENT,
    409: ErrorKind.TRANSIENT,
    413: ErrorKind.CONTEXT_TOO_LONG,
    429: ErrorKind.RATE_LIMITED,
}
# Bare-400 wording (no structured code exists for these): "prompt is too long: 205000 tokens > 200000 maximum",
# "input length and `max_tokens` exceed context limit: ...", "Your credit balance is too low ...".
_CONTEXT_TEXT = re.compile(r"prompt is too long|exceed context limit", re.IGNORECASE)
_CREDIT_TEXT = re.compile(r"credit balance is too low", re.IGNORECASE)
# Observed 400 (and in-band) body: {"type":"invalid_request_error","message":"Output blocked by content filtering
# policy"} (anthropics/claude-code#18542, #58367); not in the reference table.
_POLICY_TEXT = re.compile(r"blocked by content filtering policy", re.IGNORECASE)
_MODEL_NOT_FOUND = re.compile(r"^\s*model:", re.IGNORECASE)

# Content blocks OpenAI has no equivalent for (thinking, redacted_thinking, server tool use and results), relayed
# only to clients that speak Anthropic themselves (the gateway's Anthropic dialect: a conversation with thinking
# and tool use must send the thinking blocks back, signatures intact), as chunk deltas
# ``{"x_anthropic": {"content_block": {...}}}`` and ``{"x_anthropic": {"delta": {...}}}`` (every delta of such a
# block), and the exact stop as ``{"x_anthropic": {"stop": {"stop_reason", "stop_sequence"}}}``.
NATIVE_DELTA = "x_anthropic"
_TRANSLATED_BLOCKS = frozenset({"text", "tool_use"})

_JSON_INSTRUCTION = "Give your answer to the user by calling this tool with the answer as its input."
JSON_TOOL = "json_response"  # the forced tool that carries response_format (see the module docstring)


def _bad(message: str, param: str | None = None) -> UpstreamError:
    """A request this provider cannot express: answered to the caller, not failed over."""
    return UpstreamError(ErrorKind.BAD_REQUEST, message, status=400, code="unsupported_for_provider", param=param)


class AnthropicAdapter:
    """Adapter for one Anthropic Messages target. Immutable; safe to share across requests."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._url = target.base_url + "/v1/messages"
        options = target.options
        headers = {
            "content-type": "application/json",
            "anthropic-version": str(options.get("anthropic_version") or DEFAULT_VERSION),
            **target.headers,
        }
        if target.api_key:
            headers["x-api-key"] = target.api_key
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._default_max_tokens = int(options.get("default_max_tokens") or DEFAULT_MAX_TOKENS)
        self._native_json = bool(options.get("structured_outputs"))

    # -- request -----------------------------------------------------------------------------------------
    def build_request(self, body: Mapping[str, Any], stream: bool) -> UpstreamRequest:
        headers = self._stream_headers if stream else self._headers
        native = native_body(body, "anthropic")
        if native is not None:
            out = passthrough_request(native, self.target.upstream_model, self._default_max_tokens, stream)
            beta = getattr(body, "native_headers", {}).get("anthropic-beta")
            if beta and "anthropic-beta" not in headers:  # configured provider headers win
                headers = {**headers, "anthropic-beta": beta}
        else:
            out = translate_request(body, self.target.upstream_model, self._default_max_tokens,
                                    self._native_json)
        if stream:
            out["stream"] = True
        return UpstreamRequest("POST", self._url, headers, orjson.dumps(out), stream)

    # -- response ----------------------------------------------------------------------------------------
    def parse_response(self, body: bytes) -> dict[str, Any]:
        data = load_json(body)
        if isinstance(data, dict) and data.get("type") == "error":
            raise self._error_from_object(200, {}, data)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise UpstreamError(ErrorKind.TRANSIENT, f"malformed response from upstream: {excerpt(body, 120)}")
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        json_answer = False
        for block in data["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text") or ""))
            elif block.get("type") == "tool_use" and block.get("name") == JSON_TOOL:
                texts.append(_dumps(block.get("input") or {}))
                json_answer = True
            elif block.get("type") == "tool_use":
                tool_calls.append(
                    {
                        "id": block.get("id"),
                        "type": "function",
                        "function": {"name": block.get("name"), "arguments": _dumps(block.get("input") or {})},
                    }
                )
            # thinking / redacted_thinking / server tool blocks have no OpenAI equivalent: dropped.
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts or not tool_calls else None,
            "refusal": None,
        }
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": data.get("id") or "",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": data.get("model") or self.target.upstream_model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None,
                 "finish_reason": "stop" if json_answer and not tool_calls else map_stop_reason(data.get("stop_reason"))}
            ],
            "usage": map_usage(data.get("usage") or {}),
        }

    # -- stream ------------------------------------------------------------------------------------------
    def stream_decoder(self, body: Mapping[str, Any]) -> AnthropicStreamDecoder:
        opts = body.get("stream_options")
        include_usage = bool(isinstance(opts, Mapping) and opts.get("include_usage"))
        return AnthropicStreamDecoder(self, include_usage, native_body(body, "anthropic") is not None)

    # -- errors ------------------------------------------------------------------------------------------
    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        data = load_json(body)
        return self._error_from_object(status, headers, data if isinstance(data, dict) else {}, body)

    def _error_from_object(
        self, status: int, headers: Mapping[str, str], data: dict[str, Any], raw: bytes = b""
    ) -> UpstreamError:
        err = data.get("error")
        err = err if isinstance(err, dict) else {}
        etype = str(err.get("type") or "")
        message = str(err.get("message") or "") or (excerpt(raw) if raw else f"HTTP {status}")
        kind = classify(status, etype, message)
        retry_after = retry_after_seconds(headers) if kind is ErrorKind.RATE_LIMITED else None
        code = "content_filter" if kind is ErrorKind.POLICY_BLOCKED else etype or None
        return UpstreamError(
            kind, message, status=status or None, code=code, retry_after=retry_after, body=data or None
        )


def classify(status: int, etype: str, message: str) -> ErrorKind:
    """Anthropic classification: ``error.type`` first, then HTTP status, text only for a bare 400."""
    if etype == "not_found_error":
        # Unknown and retired models both answer exactly "model: <id>"; other 404s name files, batches, ...
        return ErrorKind.WITHDRAWN if _MODEL_NOT_FOUND.match(message) else ErrorKind.BAD_REQUEST
    if status == 404 and not etype:
        # No Anthropic envelope: a proxy or a wrong base_url answered. A config problem of this target (like
        # Azure's bare 404): stop using it and fail over rather than blame the caller.
        return ErrorKind.WITHDRAWN
    kind = _TYPE_KINDS.get(etype) or _STATUS_KINDS.get(status)
    if kind is not None:
        return kind
    if status >= 500 or status == 0:
        return ErrorKind.TRANSIENT
    if status == 200 and etype != "invalid_request_error":  # in-band error event of an unknown type
        return ErrorKind.TRANSIENT
    # A bare invalid_request_error (HTTP 400, or in-band): Anthropic has no code for these cases, so the
    # message is all there is.
    if _CREDIT_TEXT.search(message):
        return ErrorKind.ACCESS_DENIED
    if _CONTEXT_TEXT.search(message):
        return ErrorKind.CONTEXT_TOO_LONG
    if _POLICY_TEXT.search(message):
        return ErrorKind.POLICY_BLOCKED
    return ErrorKind.BAD_REQUEST


def map_stop_reason(reason: Any) -> str:
    return FINISH_REASONS.get(reason, "stop") if reason else "stop"


def map_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic counts cached input separately; OpenAI's ``prompt_tokens`` is the total input."""
    fresh = int(usage.get("input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    prompt = fresh + written + read
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
    }


# -- request translation -----------------------------------------------------------------------------------
def passthrough_request(native: Mapping[str, Any], model: str, default_max_tokens: int,
                        stream: bool = True) -> dict[str, Any]:
    """A client's own Messages body (the gateway's Anthropic dialect) sent natively: every field kept as sent
    (``cache_control``, ``thinking``, ``top_k``, server tools, fields added later), only ``model`` replaced by
    this target's and ``stream`` set by the caller of ``build_request``.

    ``thinking`` is kept for streams only: a stream relays thinking blocks (``NATIVE_DELTA``), a non-streaming
    answer is parsed into the internal answer, which has no place for them, and a client that never saw its
    thinking blocks could not send them back with a tool result (Anthropic answers 400)."""
    out = {k: v for k, v in native.items() if k != "stream" and (stream or k != "thinking")}
    out["model"] = model
    if not isinstance(out.get("max_tokens"), int):
        out["max_tokens"] = default_max_tokens
    return out


def translate_request(body: Mapping[str, Any], model: str, default_max_tokens: int,
                      native_json: bool = False) -> dict[str, Any]:
    """An OpenAI chat request -> an Anthropic Messages request body. ``body`` is not mutated. ``native_json``: a
    ``json_schema`` response format goes out as structured outputs (``output_config.format``)."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for i, msg in enumerate(body.get("messages") or ()):
        role = msg.get("role")
        if role in ("system", "developer"):
            text = _text_only(msg.get("content"), f"messages[{i}].content")
            if text:
                system.append(text)
            continue
        if role == "user":
            _append(messages, "user", _user_blocks(msg.get("content"), f"messages[{i}].content"))
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(msg, i))
        elif role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": msg.get("tool_call_id"),
                "content": _tool_result_content(msg.get("content"), f"messages[{i}].content"),
            }
            _append(messages, "user", [block])
        else:
            raise _bad(f"messages[{i}].role: role {role!r} cannot be sent to an Anthropic model",
                       f"messages[{i}].role")
    _strip_prefill(messages)

    out: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body, default_max_tokens)}
    fmt = body.get("response_format")
    native = _native_format(fmt) if native_json else None
    json_tool = None if native is not None else _json_tool(fmt)
    if native is not None:
        out["output_config"] = {"format": native}
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = messages
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = list(stop)
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t, j) for j, t in enumerate(tools)]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if json_tool is not None:
        if tools and body.get("tool_choice") != "none":
            out["tools"].append(json_tool)
            if out.get("tool_choice", {}).get("type") in (None, "auto"):
                out["tool_choice"] = {"type": "any"}
        else:
            out["tools"] = [json_tool]
            out["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    return out


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add a turn; a turn of the same role as the previous one is merged into it (roles must alternate)."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"] = messages[-1]["content"] + blocks
    else:
        messages.append({"role": role, "content": list(blocks)})


def _strip_prefill(messages: list[dict[str, Any]]) -> None:
    """Anthropic rejects a final assistant turn that ends in whitespace."""
    if not messages or messages[-1]["role"] != "assistant":
        return
    blocks = messages[-1]["content"]
    last = blocks[-1]
    if last.get("type") == "text":
        stripped = last["text"].rstrip()
        if stripped:
            blocks[-1] = {**last, "text": stripped}
        else:
            blocks.pop()
            if not blocks:
                messages.pop()


def _text_only(content: Any, path: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.get("type") != "text":
            raise _bad(f"{path}: only text parts are allowed here for an Anthropic model", path)
        parts.append(part.get("text") or "")
    return "\n".join(parts)


def _user_blocks(content: Any, path: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content):
        block = _part(part, f"{path}[{j}]")
        if block is not None:
            blocks.append(block)
    return blocks


def _part(part: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    ptype = part.get("type")
    if ptype == "text":
        text = part.get("text") or ""
        return {"type": "text", "text": text} if text else None
    if ptype == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return _image(url, path)
    raise _bad(f"{path}: content part type {ptype!r} is not supported for an Anthropic model", path)


def _image(url: Any, path: str) -> dict[str, Any]:
    if not isinstance(url, str):
        raise _bad(f"{path}.image_url.url: expected a string", path)
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise _bad(f"{path}.image_url.url: data URLs must be 'data:<media type>;base64,<data>'", path)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _bad(f"{path}.image_url.url: expected an http(s) or data URL", path)


def _assistant_blocks(msg: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    content = msg.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if part.get("type") in ("text", "refusal"):
                text = part.get("text") or part.get("refusal") or ""
                if isinstance(text, str) and text:
                    blocks.append({"type": "text", "text": text})
            else:
                raise _bad(f"messages[{i}].content[{j}]: assistant part type {part.get('type')!r} is not "
                           "supported for an Anthropic model", f"messages[{i}].content")
    for j, call in enumerate(msg.get("tool_calls") or ()):
        fn = call.get("function") or {}
        arguments = fn.get("arguments") or "{}"
        try:
            args = orjson.loads(arguments) if isinstance(arguments, (str, bytes)) else arguments
        except orjson.JSONDecodeError as e:
            raise _bad(f"messages[{i}].tool_calls[{j}].function.arguments: not valid JSON ({e})",
                       f"messages[{i}].tool_calls") from e
        if not isinstance(args, dict):
            raise _bad(f"messages[{i}].tool_calls[{j}].function.arguments: must be a JSON object for an "
                       "Anthropic model", f"messages[{i}].tool_calls")
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": args})
    return blocks


def _tool_result_content(content: Any, path: str) -> Any:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return _user_blocks(content, path)


def _tool(tool: Mapping[str, Any], j: int) -> dict[str, Any]:
    if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), Mapping):
        raise _bad(f"tools[{j}]: only function tools can be sent to an Anthropic model", f"tools[{j}]")
    fn = tool["function"]
    out: dict[str, Any] = {"name": fn.get("name")}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise _bad(f"tool_choice: {choice!r} is not supported for an Anthropic model", "tool_choice")
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _native_format(fmt: Any) -> dict[str, Any] | None:
    """Structured outputs' ``output_config.format`` for a ``json_schema`` response format with an object schema
    (None otherwise: ``json_object`` and other schemas use the forced tool)."""
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        return None
    return {"type": "json_schema", "schema": dict(schema)}


def _json_tool(fmt: Any) -> dict[str, Any] | None:
    """The forced tool that carries a ``response_format`` (None when the request asks for no JSON)."""
    if not isinstance(fmt, Mapping) or fmt.get("type") not in ("json_object", "json_schema"):
        return None
    schema: Any = None
    description = _JSON_INSTRUCTION
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        if isinstance(spec, Mapping):
            schema = spec.get("schema")
            if spec.get("description"):
                description += " " + str(spec["description"])
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        # Tool input must be an object; a non-object schema is wrapped.
        schema = {"type": "object"} if schema is None else {
            "type": "object", "properties": {"value": schema}, "required": ["value"]}
    return {"name": JSON_TOOL, "description": description, "input_schema": dict(schema)}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# -- stream ------------------------------------------------------------------------------------------------
class AnthropicStreamDecoder(SSEStreamDecoder):
    """Anthropic SSE: named events ``message_start`` -> content blocks -> ``message_delta`` -> ``message_stop``.

    ``ping`` and unknown event types produce nothing. ``event: error`` raises, classified by ``error.type``.
    ``message_delta.usage`` is cumulative, so the latest value wins. A stream that ends after a stop reason but
    without ``message_stop`` is accepted as complete; one that ends before any stop reason was cut.
    """

    __slots__ = ("_adapter", "_include_usage", "_id", "_model", "_created", "_usage", "_tools",
                 "started", "finished", "done", "_json_block", "_calls", "_native", "_relayed")
    INCOMPLETE = "upstream stream ended before it was complete (no message_stop)"

    def __init__(self, adapter: AnthropicAdapter, include_usage: bool = False, native: bool = False) -> None:
        super().__init__()
        self._native = native  # the client speaks Anthropic (the gateway's Anthropic dialect): relay thinking
        self._relayed: set[Any] = set()  # indices of the blocks relayed as they are
        self._adapter = adapter
        self._include_usage = include_usage
        self._id = ""
        self._model = adapter.target.upstream_model
        self._created = int(time.time())
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # Anthropic content-block index -> OpenAI tool_call index
        self._json_block: int | None = None  # the JSON_TOOL block: its input is streamed as content
        self._calls = 0  # real tool calls seen
        self.started = False
        self.finished = False
        self.done = False

    def _complete(self) -> bool:
        return self.done or self.finished

    def _tail(self) -> list[dict[str, Any]]:
        # Ended after the stop reason but without message_stop: the usage chunk message_stop would have sent.
        return [] if self.done else self._usage_chunk()

    def _events(self, events: list[SSEEvent]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for ev in events:
            if self.done:
                break
            try:
                data = orjson.loads(ev.data)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                skip_malformed(self)
                continue
            self._bad_run = 0
            etype = data.get("type") or ev.event
            if etype == "error":
                raise self._adapter._error_from_object(200, {}, data)
            if etype == "message_start":
                out.extend(self._on_message_start(data))
            elif etype == "content_block_start":
                out.extend(self._on_block_start(data))
            elif etype == "content_block_delta":
                out.extend(self._on_block_delta(data))
            elif etype == "message_delta":
                out.extend(self._on_message_delta(data))
            elif etype == "message_stop":
                out.extend(self._on_message_stop())
            # ping, content_block_stop and event types added later produce nothing
        return out

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def _start(self) -> list[dict[str, Any]]:
        if self.started:
            return []
        self.started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_message_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        msg = data.get("message") or {}
        self._id = str(msg.get("id") or "")
        self._model = str(msg.get("model") or self._model)
        if isinstance(msg.get("usage"), dict):
            self._usage.update(msg["usage"])
        return self._start()

    def _on_block_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        out = self._start()
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            out.append(self._chunk({"content": block["text"]}))
        elif block.get("type") == "tool_use" and block.get("name") == JSON_TOOL:
            self._json_block = data.get("index", -1)
            if block.get("input"):
                out.append(self._chunk({"content": _dumps(block["input"])}))
        elif self._native and block.get("type") not in _TRANSLATED_BLOCKS:
            self._relayed.add(data.get("index"))
            out.append(self._chunk({NATIVE_DELTA: {"content_block": block}}))
        elif block.get("type") == "tool_use":
            k = len(self._tools)
            self._calls += 1
            self._tools[data.get("index", k)] = k
            args = _dumps(block["input"]) if block.get("input") else ""
            out.append(self._chunk({"tool_calls": [{
                "index": k, "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"), "arguments": args},
            }]}))
        return out

    def _on_block_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = data.get("delta") or {}
        if self._relayed and data.get("index") in self._relayed:
            return [self._chunk({NATIVE_DELTA: {"delta": delta}})]
        dtype = delta.get("type")
        if dtype == "text_delta" and delta.get("text"):
            return [*self._start(), self._chunk({"content": delta["text"]})]
        if dtype == "input_json_delta" and delta.get("partial_json"):
            if self._json_block is not None and data.get("index", -1) == self._json_block:
                return [self._chunk({"content": delta["partial_json"]})]
            k = self._tools.get(data.get("index", -1))
            if k is None:
                return []
            return [self._chunk({"tool_calls": [{"index": k, "function": {"arguments": delta["partial_json"]}}]})]
        return []  # thinking, signature and citation deltas have no OpenAI equivalent

    def _on_message_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(data.get("usage"), dict):
            self._usage.update({k: v for k, v in data["usage"].items() if v is not None})
        reason = (data.get("delta") or {}).get("stop_reason")
        if not reason or self.finished:
            return []
        self.finished = True
        finish = "stop" if self._json_block is not None and not self._calls else map_stop_reason(reason)
        delta = {}
        if self._native:  # the exact stop reason and the stop sequence that matched, for the Anthropic dialect
            delta[NATIVE_DELTA] = {"stop": {"stop_reason": reason,
                                            "stop_sequence": (data.get("delta") or {}).get("stop_sequence")}}
        return [*self._start(), self._chunk(delta, finish)]

    def _on_message_stop(self) -> list[dict[str, Any]]:
        out = [] if self.finished else [*self._start(), self._chunk({}, "stop")]  # tolerate a missing stop_reason
        self.finished = self.done = True
        return out + self._usage_chunk()

    def _usage_chunk(self) -> list[dict[str, Any]]:
        if not self._include_usage:
            return []
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = map_usage(self._usage)
        return [chunk]

