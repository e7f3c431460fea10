"""``kind: azure-openai`` — Azure OpenAI Chat Completions: the OpenAI wire format at a different address.

Everything that is the same as OpenAI is inherited from ``OpenAIAdapter``: the request body passes through with
``model`` set to the deployment name, the response is already an OpenAI ``chat.completion``, the stream is OpenAI
SSE. The differences, and where they are handled:

* address: ``api_style: deployments`` -> ``{base}/openai/deployments/{deployment}/chat/completions?api-version=V``
  (the deployment decides the model; ``model`` in the body is ignored by Azure but kept);
  ``api_style: v1`` -> ``{base}/openai/v1/chat/completions`` with ``model`` = deployment in the body.
* auth: ``api-key: <key>`` instead of ``Authorization: Bearer`` (an Entra ID bearer token can still be given in
  the provider's ``headers``).
* stream: the first event may have an EMPTY ``choices`` list carrying only ``prompt_filter_results``, and with
  the asynchronous content filter there are choices with no ``delta`` carrying only ``content_filter_results``
  / ``content_filter_offsets``. Both are annotations, not content: dropped. ``content_filter_results`` inside
  a normal choice are passed through like any unknown field. ``finish_reason: content_filter`` in a 200 answer
  stays an answer (the refusal policy is applied centrally).
* errors: OpenAI-like envelope, but ``code`` is often the HTTP status as a *string* (``"401"``, ``"404"``,
  ``"429"``) or a PascalCase name (``DeploymentNotFound``), ``type``/``param`` may be missing, and a prompt
  filtered by Azure's content policy is a 400 ``code: content_filter`` with
  ``innererror.code: ResponsibleAIPolicyViolation``. See ``classify``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers import openai as _openai
from gateway.providers.base import Target
from gateway.providers.common import excerpt, retry_after_seconds

DEFAULT_API_VERSION = "2024-10-21"
# Azure's rate-limit wording: "Please retry after 86400 seconds." / "Rate limit is exceeded. Try again in 2 seconds."
_RETRY_TEXT = re.compile(r"(?:retry after|try again in)\s+(\d+(?:\.\d+)?)\s*(?:seconds?|s)\b", re.IGNORECASE)
# innererror codes that mean "the prompt was blocked by the content policy".
_POLICY_INNER_CODES = frozenset({"ResponsibleAIPolicyViolation"})


class AzureOpenAIAdapter(_openai.OpenAIAdapter):
    """Adapter for one Azure OpenAI deployment. Immutable; safe to share across requests."""

    @staticmethod
    def _endpoint(target: Target) -> str:
        if target.options.get("api_style", "deployments") == "v1":
            return f"{target.base_url}/openai/v1/chat/completions"
        deployment = quote(target.upstream_model, safe="")
        version = quote(str(target.options.get("api_version") or DEFAULT_API_VERSION), safe="")
        return f"{target.base_url}/openai/deployments/{deployment}/chat/completions?api-version={version}"

    @staticmethod
    def _auth_headers(target: Target) -> dict[str, str]:
        return {"api-key": target.api_key} if target.api_key else {}

    # -- response ----------------------------------------------------------------------------------------
    def parse_response(self, body: bytes) -> dict[str, Any]:
        data = super().parse_response(body)
        for choice in data["choices"]:
            if not isinstance(choice, dict):
                raise UpstreamError(ErrorKind.TRANSIENT, f"malformed response from upstream: {excerpt(body, 120)}")
            # A choice filtered on output may come without a message body; keep the OpenAI shape.
            message = choice.get("message")
            if not isinstance(message, dict):
                message = choice["message"] = {}
            message.setdefault("role", "assistant")
            message.setdefault("content", None)
        return data

    # -- stream ------------------------------------------------------------------------------------------
    def stream_decoder(self, body: Mapping[str, Any]) -> AzureStreamDecoder:
        return AzureStreamDecoder(self)

    # -- errors (the OpenAI envelope is read by the inherited _error_from_object; these are its hooks) -------
    @staticmethod
    def _classify(status: int, etype: str, code: str, message: str, data: dict[str, Any]) -> ErrorKind:
        err = data.get("error")
        inner = err.get("innererror") if isinstance(err, dict) else None
        inner_code = str(inner.get("code") or "") if isinstance(inner, dict) else ""
        return classify(status, etype, code, inner_code, message)

    @staticmethod
    def _retry_after(headers: Mapping[str, str], message: str) -> float | None:
        return retry_hint(headers, message)

    @staticmethod
    def _caller_code(code: str) -> str | None:
        # A status echoed as the code ("429") says nothing the status does not; callers get None.
        return None if code.isdigit() else (code or None)


def classify(status: int, etype: str, code: str, inner_code: str, message: str) -> ErrorKind:
    """Azure on top of the OpenAI-family rules.

    Azure's string codes are either a status echo ("401", "404", "429": the HTTP status already says it, so the
    shared rules, which branch on status after the known OpenAI codes, read them right) or a name
    (``DeploymentNotFound`` -> 404 -> withdrawn; ``content_filter`` -> policy). Two additions: the
    ``innererror.code`` of a content-policy block, and an error object inside a 200 stream whose code is a status
    echo, which is read as that status (an in-band ``"code": "429"`` is a rate limit, not a server fault).
    """
    if inner_code in _POLICY_INNER_CODES:
        return ErrorKind.POLICY_BLOCKED
    # ASCII and three digits: str.isdigit() accepts '²', which int() refuses (as it does 5,000 digits)
    if status == 200 and code.isascii() and code.isdigit() and len(code) == 3 and 400 <= int(code) <= 599:
        status = int(code)
    return _openai.classify(status, etype, code, message)


def retry_hint(headers: Mapping[str, str], message: str) -> float | None:
    """``retry-after-ms`` / ``retry-after`` headers first. Azure has been seen to omit them, or send ``-1``
    (reference 4.3), while the message still says "Please retry after N seconds": only then is the text read."""
    usable = {}
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value and not value.strip().startswith("-"):
            usable[name] = value
    seconds = retry_after_seconds(usable)
    if seconds is not None:
        return seconds
    m = _RETRY_TEXT.search(message)
    return float(m.group(1)) if m else None


class AzureStreamDecoder(_openai.OpenAIStreamDecoder):
    """OpenAI SSE minus Azure's filter annotations (see the module docstring). Completeness, in-band errors
    and malformed-event counting are the OpenAI decoder's."""

    __slots__ = ()

    def _events(self, events: list) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in super()._events(events):
            choices = chunk.get("choices")
            if isinstance(choices, list) and choices:
                kept = [_content_choice(c) for c in choices]
                kept = [c for c in kept if c is not None]
                if not kept:
                    continue  # only asynchronous-filter annotations
                chunk["choices"] = kept
            elif not chunk.get("usage"):
                continue  # the prompt_filter_results preamble (empty choices, empty id/model/object)
            chunk.pop("prompt_filter_results", None)
            out.append(chunk)
        return out


def _content_choice(choice: Any) -> dict[str, Any] | None:
    """A choice as OpenAI would send it, or None for a choice that is only a filter annotation."""
    if not isinstance(choice, dict):
        return None
    if "delta" in choice:
        return choice
    if choice.get("finish_reason"):
        return {**choice, "delta": {}}
    return None
