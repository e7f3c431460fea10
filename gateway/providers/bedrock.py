"""``kind: bedrock`` — AWS Bedrock Converse (``/model/{modelId}/converse``) and ConverseStream
(``/model/{modelId}/converse-stream``), per botocore's ``bedrock-runtime/2023-09-30/service-2.json``.

Auth: SigV4 (signing name ``bedrock``) with credentials resolved once from the usual AWS chain (env, profile,
SSO, instance role) when the adapter is built; or, when the provider has an ``api_key`` (a Bedrock API key),
``Authorization: Bearer <key>``. botocore is imported lazily: it is the optional ``bedrock`` extra.

Purity: ``build_request`` signs, and a SigV4 signature includes the time, so the adapter reads ``clock`` (an
injected callable, ``time.time`` by default; also used for ``created``). Refreshable AWS credentials (SSO,
assumed roles) may refresh themselves inside botocore when read; that is botocore's behaviour, not ours.

Stream: binary AWS event-stream frames (``application/vnd.amazon.eventstream``), decoded with botocore's
``EventStreamBuffer`` across arbitrary chunk boundaries. Errors: JSON ``{"message": ...}`` with the exception
name in the ``x-amzn-ErrorType`` header (``ThrottlingException:http://internal.amazon.com/...``).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import orjson

from gateway.errors import ConfigError, ErrorKind, UpstreamError
from gateway.providers.base import Target, UpstreamRequest
from gateway.providers.common import excerpt, kind_from_status, load_json, retry_after_seconds, skip_malformed
from gateway.providers.common import refuse_untranslatable  # requests from an inbound dialect (gateway/api/dialects)

SIGNING_NAME = "bedrock"
EVENTSTREAM_CT = "application/vnd.amazon.eventstream"

# Converse stopReason -> OpenAI finish_reason. malformed_model_output / malformed_tool_use are model glitches:
# raised as transient (a retry or another model can do better), not returned.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
MALFORMED_STOPS = frozenset({"malformed_model_output", "malformed_tool_use"})

# Exception name (x-amzn-ErrorType, or :exception-type in a stream, first letter case-insensitive) -> kind.
# ValidationException is decided in ``classify`` (it covers region blocks, context and model-id problems).
ERROR_KINDS: dict[str, ErrorKind] = {
    "resourcenotfoundexception": ErrorKind.WITHDRAWN,
    "accessdeniedexception": ErrorKind.ACCESS_DENIED,
    # SigV4 / credential failures from the AWS front door (403).
    "unrecognizedclientexception": ErrorKind.ACCESS_DENIED,
    "invalidsignatureexception": ErrorKind.ACCESS_DENIED,
    "incompletesignatureexception": ErrorKind.ACCESS_DENIED,
    "missingauthenticationtokenexception": ErrorKind.ACCESS_DENIED,
    "expiredtokenexception": ErrorKind.ACCESS_DENIED,
    "throttlingexception": ErrorKind.RATE_LIMITED,
    "servicequotaexceededexception": ErrorKind.RATE_LIMITED,
    "modelnotreadyexception": ErrorKind.TRANSIENT,
    "modeltimeoutexception": ErrorKind.TRANSIENT,
    "modelerrorexception": ErrorKind.TRANSIENT,
    "modelstreamerrorexception": ErrorKind.TRANSIENT,
    "internalserverexception": ErrorKind.TRANSIENT,
    "serviceunavailableexception": ErrorKind.TRANSIENT,
}

# ValidationException is Bedrock's one catch-all 400 and carries no finer structured code, so its message text
# is the only signal that separates these cases (reference 5.4 / 7.2); consulted for ValidationException only.
_REGION_TEXT = re.compile(r"not allowed from unsupported countries|unsupported countries, regions", re.IGNORECASE)
_CONTEXT_TEXT = re.compile(
    r"input is too long|prompt is too long|too many input tokens|exceeds? (the )?(model'?s? )?context"
    r"|maximum context length",
    re.IGNORECASE,
)
_MODEL_ID_TEXT = re.compile(
    r"on-demand throughput isn.?t supported|provided model identifier is invalid", re.IGNORECASE
)

_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_DATA_URL = re.compile(r"^data:image/([a-zA-Z0-9.+-]+);base64,(.*)$", re.DOTALL)
_JSON_OBJECT_HINT = "Respond only with a single valid JSON object, with no text before or after it."


def _config_error(target: Target, reason: str) -> ConfigError:
    return ConfigError([f"providers.{target.provider}: {reason}"])


class BedrockAdapter:
    """Adapter for one Bedrock model. Immutable after construction; safe to share across requests."""

    def __init__(self, target: Target, clock: Callable[[], float] = time.time) -> None:
        self.target = target
        self.clock = clock
        self.region = str(target.options.get("region") or "us-east-1")
        model = quote(target.upstream_model, safe="")
        base = target.base_url.rstrip("/")
        # yarl (under aiohttp) sends ':' unescaped in a path; sign exactly the form that goes on the wire.
        self._url = _wire_url(f"{base}/model/{model}/converse")
        self._stream_url = _wire_url(f"{base}/model/{model}/converse-stream")
        self._headers = {"content-type": "application/json", "accept": "application/json", **target.headers}
        self._stream_headers = {**self._headers, "accept": EVENTSTREAM_CT}
        self._signer: Any = None
        try:  # needed for ConverseStream decoding either way, and for SigV4
            import botocore.eventstream  # noqa: F401
            import botocore.session
            from botocore.exceptions import BotoCoreError
        except ImportError as e:
            raise _config_error(
                target, "kind bedrock needs botocore: pip install 'gateway[bedrock]'") from e
        if target.api_key:
            self._headers["authorization"] = f"Bearer {target.api_key}"
            self._stream_headers["authorization"] = f"Bearer {target.api_key}"
            return
        try:
            creds = botocore.session.Session(profile=target.options.get("aws_profile")).get_credentials()
        except BotoCoreError as e:
            raise _config_error(target, f"cannot load AWS credentials: {e}") from e
        if creds is None:
            raise _config_error(
                target, "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, aws_profile, "
                        "or api_key)")
        self._signer = _make_signer(creds, self.region)

    # -- request -----------------------------------------------------------------------------------------
    def build_request(self, body: Mapping[str, Any], stream: bool) -> UpstreamRequest:
        refuse_untranslatable(body)
        payload = orjson.dumps(translate_request(body))
        url = self._stream_url if stream else self._url
        headers = self._stream_headers if stream else self._headers
        if self._signer is not None:
            headers = self._signer(url, headers, payload, self.clock())
        return UpstreamRequest("POST", url, headers, payload, stream)

    # -- response ----------------------------------------------------------------------------------------
    def parse_response(self, body: bytes) -> dict[str, Any]:
        data = load_json(body)
        try:
            message = data["output"]["message"]
            blocks = message["content"]
            stop = data["stopReason"]
            if not isinstance(blocks, list) or not isinstance(stop, str):
                raise TypeError
        except (TypeError, KeyError) as e:
            raise UpstreamError(
                ErrorKind.TRANSIENT, f"malformed response from upstream: {excerpt(body, 120)}") from e
        if stop in MALFORMED_STOPS:
            raise UpstreamError(ErrorKind.TRANSIENT, f"model produced malformed output (stopReason {stop})",
                                code=stop)
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in blocks:
            if not isinstance(block, dict):
                continue
            if isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif isinstance(block.get("toolUse"), dict):
                tu = block["toolUse"]
                tool_calls.append({
                    "id": str(tu.get("toolUseId", "")),
                    "type": "function",
                    "function": {"name": str(tu.get("name", "")),
                                 "arguments": orjson.dumps(tu.get("input", {})).decode()},
                })
        msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None}
        if tool_calls:
            msg["tool_calls"] = tool_calls
        out: dict[str, Any] = {
            "id": "",
            "object": "chat.completion",
            "created": int(self.clock()),
            "model": self.target.upstream_model,
            "choices": [{"index": 0, "message": msg, "finish_reason": FINISH_REASONS.get(stop, "stop"),
                         "logprobs": None}],
        }
        usage = convert_usage(data.get("usage"))
        if usage is not None:
            out["usage"] = usage
        return out

    # -- stream ------------------------------------------------------------------------------------------
    def stream_decoder(self, body: Mapping[str, Any]) -> BedrockStreamDecoder:
        opts = body.get("stream_options") or {}
        return BedrockStreamDecoder(self, include_usage=bool(isinstance(opts, dict) and opts.get("include_usage")))

    # -- errors ------------------------------------------------------------------------------------------
    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        data = load_json(body)
        data = data if isinstance(data, dict) else {}
        etype = _error_type(_header(headers, "x-amzn-errortype") or str(data.get("__type") or data.get("code") or ""))
        message = str(data.get("message") or data.get("Message") or "") or (excerpt(body) if body else f"HTTP {status}")
        kind = classify(status, etype, message)
        retry_after = retry_after_seconds(_lower(headers)) if kind is ErrorKind.RATE_LIMITED else None
        return UpstreamError(kind, message, status=status or None, code=etype or None, retry_after=retry_after,
                             body=data or None)


# -- request translation (pure functions) -----------------------------------------------------------------
def translate_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI chat request -> a Converse request body (without ``modelId``, which is in the URL)."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    tool_names_used: list[str] = []  # names of toolUse blocks in the history

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:  # Converse needs alternating roles: merge runs
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for m in body.get("messages") or ():
        role = m.get("role")
        if role in ("system", "developer"):
            text = _text_of(m.get("content"))
            if text:
                system.append({"text": text})
        elif role == "user":
            push("user", _user_blocks(m.get("content")))
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = _text_of(m.get("content"))
            if text:
                blocks.append({"text": text})
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function") or {}
                name = str(fn.get("name", ""))
                tool_names_used.append(name)
                blocks.append({"toolUse": {"toolUseId": str(tc.get("id", "")), "name": name,
                                           "input": _tool_input(fn.get("arguments"))}})
            push("assistant", blocks)
        elif role in ("tool", "function"):
            push("user", [{"toolResult": {"toolUseId": str(m.get("tool_call_id") or m.get("name") or ""),
                                          "content": [_tool_result_content(m.get("content"))],
                                          "status": "success"}}])
    rf = body.get("response_format") or {}
    out_config: dict[str, Any] | None = None
    if isinstance(rf, dict) and rf.get("type") == "json_object":
        # Converse has no plain JSON mode; an instruction is the portable equivalent.
        system.append({"text": _JSON_OBJECT_HINT})
    elif isinstance(rf, dict) and rf.get("type") == "json_schema":
        js = rf.get("json_schema") if isinstance(rf.get("json_schema"), dict) else {}
        schema: dict[str, Any] = {"schema": orjson.dumps(js.get("schema") or {"type": "object"}).decode()}
        if js.get("name"):
            schema["name"] = str(js["name"])
        if js.get("description"):
            schema["description"] = str(js["description"])
        out_config = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}

    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    inference = _inference_config(body)
    if inference:
        out["inferenceConfig"] = inference
    has_tool_blocks = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    tool_config = _tool_config(body, tool_names_used, has_tool_blocks)
    if tool_config:
        out["toolConfig"] = tool_config
    if out_config:
        out["outputConfig"] = out_config
    return out


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and part.get("text"):
            blocks.append({"text": str(part["text"])})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else ""
            blocks.append({"image": _image_block(str(url))})
    return blocks


def _image_block(url: str) -> dict[str, Any]:
    m = _DATA_URL.match(url)
    fmt = _IMAGE_FORMATS.get(m.group(1).lower()) if m else None
    if not m or fmt is None:
        # Converse takes inline bytes (or S3), never a URL to fetch; a pure adapter cannot download it.
        raise UpstreamError(ErrorKind.BAD_REQUEST,
                            "Bedrock accepts images only as base64 data: URLs (png, jpeg, gif, webp)",
                            status=400, code="unsupported_image")
    # Validate and normalise the base64 (the JSON wire form of a blob is base64 text).
    try:
        raw = base64.b64decode(m.group(2), validate=False)
    except ValueError as e:
        raise UpstreamError(ErrorKind.BAD_REQUEST, "image data URL is not valid base64", status=400,
                            code="invalid_image") from e
    return {"format": fmt, "source": {"bytes": base64.b64encode(raw).decode()}}


def _tool_input(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {"arguments": str(arguments)}  # keep what the model said rather than drop it
    return value if isinstance(value, dict) else {"value": value}


def _tool_result_content(content: Any) -> dict[str, Any]:
    text = _text_of(content)
    if text.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return {"json": value}
    return {"text": text or " "}  # Converse rejects a blank text block


def _inference_config(body: Mapping[str, Any]) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        cfg["maxTokens"] = int(max_tokens)
    if body.get("temperature") is not None:
        # OpenAI allows 0..2, Converse 0..1: clamp so a request valid for the route stays valid on failover.
        cfg["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        cfg["topP"] = float(body["top_p"])
    stop = body.get("stop")
    if stop:
        cfg["stopSequences"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
    return cfg


def _tool_config(body: Mapping[str, Any], names_in_history: list[str], has_tool_blocks: bool) -> dict[str, Any] | None:
    tools = []
    for t in body.get("tools") or ():
        fn = t.get("function") or {}
        spec: dict[str, Any] = {"name": str(fn.get("name", "")),
                                "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}}}
        if fn.get("description"):
            spec["description"] = str(fn["description"])
        tools.append({"toolSpec": spec})
    choice = body.get("tool_choice")
    if not tools:
        if not has_tool_blocks:
            return None
        # Converse rejects toolUse/toolResult blocks without a toolConfig; declare the tools the history used.
        seen = list(dict.fromkeys(n for n in names_in_history if n)) or ["tool"]
        return {"tools": [{"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}} for n in seen]}
    if choice == "none":
        if not has_tool_blocks:
            return None  # Converse has no "none": sending no tools is the equivalent
        return {"tools": tools}  # history needs the toolConfig; the model decides (best available)
    cfg: dict[str, Any] = {"tools": tools}
    if choice == "required":
        cfg["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        cfg["toolChoice"] = {"tool": {"name": str(choice["function"]["name"])}}
    elif choice == "auto":
        cfg["toolChoice"] = {"auto": {}}
    return cfg


def convert_usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    inp = int(usage.get("inputTokens") or 0)
    outp = int(usage.get("outputTokens") or 0)
    cache_read = usage.get("cacheReadInputTokens")
    cache_write = usage.get("cacheWriteInputTokens")
    out: dict[str, Any] = {"prompt_tokens": inp, "completion_tokens": outp,
                           "total_tokens": int(usage.get("totalTokens") or inp + outp)}
    if cache_read is not None or cache_write is not None:
        # OpenAI's prompt_tokens include cached tokens; Converse reports them apart from inputTokens.
        out["prompt_tokens"] = inp + int(cache_read or 0) + int(cache_write or 0)
        out["total_tokens"] = out["prompt_tokens"] + outp
        out["prompt_tokens_details"] = {"cached_tokens": int(cache_read or 0)}
    return out


# -- signing ----------------------------------------------------------------------------------------------
def _wire_url(url: str) -> str:
    from yarl import URL  # a declared dependency (aiohttp's URL type: what goes on the wire)

    return str(URL(url))


def _make_signer(credentials: Any, region: str) -> Callable[[str, Mapping[str, str], bytes, float], dict[str, str]]:
    from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
    from botocore.awsrequest import AWSRequest

    auth = SigV4Auth(credentials, SIGNING_NAME, region)

    def sign(url: str, headers: Mapping[str, str], payload: bytes, now: float) -> dict[str, str]:
        req = AWSRequest(method="POST", url=url, data=payload, headers=dict(headers))
        req.context["timestamp"] = datetime.fromtimestamp(now, timezone.utc).strftime(SIGV4_TIMESTAMP)
        # SigV4Auth.add_auth with the timestamp from our clock instead of botocore's own reading.
        auth._modify_request_before_signing(req)
        signature = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
        auth._inject_signature_to_request(req, signature)
        return dict(req.headers.items())

    return sign


# -- stream -----------------------------------------------------------------------------------------------
class BedrockStreamDecoder:
    """ConverseStream event-stream frames -> OpenAI chunks. Complete once ``messageStop`` arrived; the
    ``metadata`` event (usage) normally follows it and yields the usage chunk when requested."""

    def __init__(self, adapter: BedrockAdapter, include_usage: bool = False) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._adapter = adapter
        self._buf = EventStreamBuffer()
        self.include_usage = include_usage
        self.malformed = 0
        self._bad_run = 0
        self.started = False
        self.done = False  # messageStop seen
        self.usage_sent = False
        self._tools: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool_call index
        self._created = int(adapter.clock())

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        from botocore.eventstream import ParserError

        self._buf.add_data(data)
        out: list[dict[str, Any]] = []
        try:
            for msg in self._buf:
                out.extend(self._message(msg.headers, msg.payload))
        except ParserError as e:
            # A bad prelude CRC or length means frame boundaries are lost: nothing after it can be trusted.
            raise UpstreamError(ErrorKind.TRANSIENT, f"upstream event stream is corrupt: {e}",
                                code="eventstream_corrupt") from e
        return out

    def close(self) -> list[dict[str, Any]]:
        if not self.done:
            raise UpstreamError(ErrorKind.TRANSIENT, "upstream stream ended before it was complete (no messageStop)")
        return []

    # -- one frame -------------------------------------------------------------------------------------
    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "", "object": "chat.completion.chunk", "created": self._created,
                "model": self._adapter.target.upstream_model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    def _bad(self) -> list[dict[str, Any]]:
        skip_malformed(self)
        return []

    def _start(self, out: list[dict[str, Any]]) -> None:
        if not self.started:
            self.started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))

    def _message(self, headers: Mapping[str, Any], payload: bytes) -> list[dict[str, Any]]:
        mtype = headers.get(":message-type")
        if mtype == "exception":
            data = load_json(payload)
            data = data if isinstance(data, dict) else {}
            etype = str(headers.get(":exception-type") or "")
            message = str(data.get("message") or data.get("Message") or "") or excerpt(payload) or etype
            raise UpstreamError(classify(200, etype, message), message, code=etype or None, body=data or None)
        if mtype == "error":
            code = str(headers.get(":error-code") or "")
            message = str(headers.get(":error-message") or code or "stream error")
            raise UpstreamError(classify(200, code, message), message, code=code or None)
        if mtype != "event":
            return self._bad()
        data = load_json(payload)
        if not isinstance(data, dict):
            return self._bad()
        self._bad_run = 0
        if self.done and self.usage_sent:
            return []
        event = headers.get(":event-type")
        out: list[dict[str, Any]] = []
        if event == "messageStart":
            self._start(out)
        elif event == "contentBlockStart":
            tool = (data.get("start") or {}).get("toolUse")
            if isinstance(tool, dict):
                self._start(out)
                idx = len(self._tools)
                self._tools[int(data.get("contentBlockIndex", -1))] = idx
                out.append(self._chunk({"tool_calls": [{
                    "index": idx, "id": str(tool.get("toolUseId", "")), "type": "function",
                    "function": {"name": str(tool.get("name", "")), "arguments": ""}}]}))
        elif event == "contentBlockDelta":
            delta = data.get("delta") or {}
            if isinstance(delta.get("text"), str) and delta["text"]:
                self._start(out)
                out.append(self._chunk({"content": delta["text"]}))
            elif isinstance(delta.get("toolUse"), dict):
                block = int(data.get("contentBlockIndex", -1))
                if block not in self._tools:  # a delta without its start: still keep the call
                    self._tools[block] = len(self._tools)
                self._start(out)
                frag = str(delta["toolUse"].get("input", ""))
                if frag:
                    out.append(self._chunk({"tool_calls": [{"index": self._tools[block],
                                                            "function": {"arguments": frag}}]}))
        elif event == "messageStop":
            stop = str(data.get("stopReason", ""))
            if stop in MALFORMED_STOPS:
                raise UpstreamError(ErrorKind.TRANSIENT, f"model produced malformed output (stopReason {stop})",
                                    code=stop)
            self._start(out)
            self.done = True
            out.append(self._chunk({}, FINISH_REASONS.get(stop, "stop")))
            if not self.include_usage:
                self.usage_sent = True  # nothing more to wait for
        elif event == "metadata":
            usage = convert_usage(data.get("usage"))
            if self.include_usage and usage is not None and not self.usage_sent:
                self.usage_sent = True
                out.append({"id": "", "object": "chat.completion.chunk", "created": self._created,
                            "model": self._adapter.target.upstream_model, "choices": [], "usage": usage})
        # contentBlockStop and unknown event types carry nothing for the client.
        return out


# -- errors -----------------------------------------------------------------------------------------------
def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): v for k, v in headers.items()}


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if str(k).lower() == name:
                return str(v)
        return ""
    return str(value)


def _error_type(raw: str) -> str:
    """``ThrottlingException:http://internal.amazon.com/...`` or ``com.amazon...#ThrottlingException`` ->
    ``ThrottlingException``."""
    name = raw.split(":", 1)[0]
    return name.rsplit("#", 1)[-1].strip()


def classify(status: int, etype: str, message: str) -> ErrorKind:
    """Bedrock classification: exception name first, then HTTP status; text only inside ValidationException."""
    key = etype.lower()
    if key == "validationexception":
        if _REGION_TEXT.search(message):
            return ErrorKind.ACCESS_DENIED
        if _CONTEXT_TEXT.search(message):
            return ErrorKind.CONTEXT_TOO_LONG
        if _MODEL_ID_TEXT.search(message):
            return ErrorKind.WITHDRAWN  # a config problem: the route needs another model id / inference profile
        return ErrorKind.BAD_REQUEST
    if key in ERROR_KINDS:
        return ERROR_KINDS[key]
    return kind_from_status(status) or ErrorKind.BAD_REQUEST
