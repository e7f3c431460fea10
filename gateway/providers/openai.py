"""``kind: openai`` — OpenAI Chat Completions and OpenAI-compatible servers (vLLM, Ollama, LM Studio, Groq).

The request passes through with ``model`` replaced, so fields the gateway does not know reach the upstream.
Error shapes differ by server; ``_error_fields`` reads all of them:
OpenAI ``{"error": {message, type, param, code}}``; vLLM ``{"error": {..., "code": 400}}`` (integer code),
older vLLM flat ``{"object": "error", "message", "type", "code"}`` and ``{"error": "Unauthorized"}``;
Ollama ``{"error": {"type": "not_found_error", ...}}``; Groq ``code: model_decommissioned``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import Target, UpstreamRequest
from gateway.providers.common import excerpt, kind_from_status, load_json, retry_after_seconds, skip_malformed
from gateway.providers.common import refuse_untranslatable  # requests from an inbound dialect (gateway/api/dialects)
from gateway.providers.sse import SSEStreamDecoder

# Context-length wording for servers that send no structured code (vLLM, llama.cpp); only consulted for a 400.
_CONTEXT_TEXT = re.compile(
    r"maximum context length|context length is|input tokens exceed the configured limit"
    r"|exceeds the available context size|prompt is too long",
    re.IGNORECASE,
)


class OpenAIAdapter:
    """Adapter for one OpenAI-compatible target. Immutable; safe to share across requests."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._url = self._endpoint(target)
        headers = {"content-type": "application/json", **target.headers, **self._auth_headers(target)}
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}

    # Hooks for OpenAI-format vendors that differ only in where and how they authenticate (Azure).
    @staticmethod
    def _endpoint(target: Target) -> str:
        return target.base_url + "/chat/completions"

    @staticmethod
    def _auth_headers(target: Target) -> dict[str, str]:
        return {"authorization": f"Bearer {target.api_key}"} if target.api_key else {}

    # -- request -----------------------------------------------------------------------------------------
    def build_request(self, body: Mapping[str, Any], stream: bool) -> UpstreamRequest:
        refuse_untranslatable(body)
        out = dict(body)
        out["model"] = self.target.upstream_model
        return UpstreamRequest(
            "POST", self._url, self._stream_headers if stream else self._headers, orjson.dumps(out), stream
        )

    # -- response ----------------------------------------------------------------------------------------
    def parse_response(self, body: bytes) -> dict[str, Any]:
        data = load_json(body)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
            if isinstance(data, dict) and data.get("error"):
                raise self._error_from_object(200, {}, data)
            raise UpstreamError(ErrorKind.TRANSIENT, f"malformed response from upstream: {excerpt(body, 120)}")
        return data

    # -- stream ------------------------------------------------------------------------------------------
    def stream_decoder(self, body: Mapping[str, Any]) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(self)

    # -- errors ------------------------------------------------------------------------------------------
    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        data = load_json(body)
        return self._error_from_object(status, headers, data if isinstance(data, dict) else {}, body)

    def _error_from_object(
        self, status: int, headers: Mapping[str, str], data: dict[str, Any], raw: bytes = b""
    ) -> UpstreamError:
        message, etype, code, param = _error_fields(data)
        if not message:
            message = excerpt(raw) if raw else f"HTTP {status}"
        kind = self._classify(status, etype, code, message, data)
        retry_after = self._retry_after(headers, message) if kind is ErrorKind.RATE_LIMITED else None
        return UpstreamError(
            kind, message, status=status or None, code=self._caller_code(code), retry_after=retry_after,
            body=data or None, param=param,
        )

    # Hooks for vendors with OpenAI's error envelope but their own codes and hints (Azure).
    @staticmethod
    def _classify(status: int, etype: str, code: str, message: str, data: dict[str, Any]) -> ErrorKind:
        return classify(status, etype, code, message)

    @staticmethod
    def _retry_after(headers: Mapping[str, str], message: str) -> float | None:
        return retry_after_seconds(headers)

    @staticmethod
    def _caller_code(code: str) -> str | None:
        return code


def _error_fields(data: dict[str, Any]) -> tuple[str, str, str, str | None]:
    err = data.get("error", data)
    if isinstance(err, str):  # vLLM: {"error": "Unauthorized"}
        return err, "", "", None
    if not isinstance(err, dict):
        return "", "", "", None
    code = err.get("code")
    param = err.get("param")
    return (
        str(err.get("message") or ""),
        str(err.get("type") or ""),
        "" if code is None or isinstance(code, int) else str(code),
        param if isinstance(param, str) else None,
    )


def classify(status: int, etype: str, code: str, message: str) -> ErrorKind:
    """The OpenAI-family classification: structured code/type first, then status, text only for a bare 400."""
    if code in ("model_decommissioned",):
        return ErrorKind.WITHDRAWN
    if code == "context_length_exceeded" or etype == "context_length_exceeded":
        return ErrorKind.CONTEXT_TOO_LONG
    if code in ("invalid_prompt", "content_filter", "content_policy_violation"):
        return ErrorKind.POLICY_BLOCKED
    if code == "insufficient_quota" or etype == "insufficient_quota":
        return ErrorKind.ACCESS_DENIED
    if status == 200:  # an error object in a 200 body or mid-stream: server-side unless it says otherwise
        return ErrorKind.BAD_REQUEST if etype == "invalid_request_error" else ErrorKind.TRANSIENT
    kind = kind_from_status(status)
    if kind is not None:
        return kind
    if status == 400 and _CONTEXT_TEXT.search(message):
        return ErrorKind.CONTEXT_TOO_LONG
    return ErrorKind.BAD_REQUEST


class OpenAIStreamDecoder(SSEStreamDecoder):
    """OpenAI SSE: ``data:`` lines of chunk JSON, ``data: [DONE]`` at the end, ``data: {"error": ...}`` in-band.

    A stream that closes after a chunk with a ``finish_reason`` but without ``[DONE]`` is complete (some servers
    omit the marker); one that closes before any finish_reason was cut.
    """

    __slots__ = ("_adapter", "done", "finished")
    INCOMPLETE = "upstream stream ended before it was complete (no [DONE])"

    def __init__(self, adapter: OpenAIAdapter) -> None:
        super().__init__()
        self._adapter = adapter
        self.done = False
        self.finished = False

    def _complete(self) -> bool:
        return self.done or self.finished

    def _events(self, events: list) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for ev in events:
            if self.done:
                break
            data = ev.data
            if data.startswith("[DONE]"):
                self.done = True
                break
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                chunk = None
            if not isinstance(chunk, dict):
                skip_malformed(self)
                continue
            self._bad_run = 0
            if chunk.get("error"):
                raise self._adapter._error_from_object(200, {}, chunk)
            choices = chunk.get("choices") or []
            if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
                skip_malformed(self)
                continue
            for choice in choices:
                if choice.get("finish_reason"):
                    self.finished = True
            out.append(chunk)
        return out
