"""Azure OpenAI wire format for the emulator: the OpenAI wire with Azure's address, auth, filter annotations
and error bodies.

Literal bodies follow ../shared/reference/provider-wire-formats.md sections 4, 7.2 and 8.

Routes:
  ``POST /openai/deployments/{deployment}/chat/completions?api-version=V`` (the deployment is the model name
  for behaviours; without ``api-version`` -> 404 ``{"error":{"code":"404","message":"Resource not found"}}``)
  ``POST /openai/v1/chat/completions`` (model = deployment name in the body).
Auth: ``api-key`` header (an ``Authorization: Bearer`` Entra token is accepted too); none/wrong -> 401 code "401".

Behaviour -> Azure literal:
  withdrawn 404 DeploymentNotFound | access_revoked 401 code "401" | no_model_access 401 PermissionDenied [U] |
  region_blocked 403 "Public access is disabled..." [C shape] | rate_limited 429 code "429" "Please retry after
  N seconds" + retry-after | quota 429 code "429" with the 86400-second wording | overloaded 503 [U] |
  server_error 500 (OpenAI's body, Azure relays it) | context_exceeded 400 context_length_exceeded |
  invalid_prompt 400 code content_filter + innererror ResponsibleAIPolicyViolation |
  content_filter 200 with finish_reason content_filter and a filtered ``content_filter_results``.
Streams: the first event has empty ``choices``/``id``/``model`` and only ``prompt_filter_results``; every choice
carries ``content_filter_results``; the rest is OpenAI framing (``data: [DONE]``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import orjson
from aiohttp import web

from gateway.emulator.content import Reply
from gateway.emulator.core import JSON, ErrorResponse, ParsedRequest, bearer_token, register_wire
from gateway.emulator.openai_wire import OpenAIFramer, OpenAIWire, error_for
from gateway.emulator.state import EmulatorState

WIRE = "azure"
ROUTES = [
    ("POST", "/openai/deployments/{deployment}/chat/completions"),
    ("POST", "/openai/v1/chat/completions"),
]
BAD_API_VERSION = "bad_api_version"  # a wire-private request error (core passes req.error through to error())

_SAFE = {"filtered": False, "severity": "safe"}
FILTERS_SAFE = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": {
    **FILTERS_SAFE, "jailbreak": {"filtered": False, "detected": False}}}]
FILTERS_HIT = {**FILTERS_SAFE, "violence": {"filtered": True, "severity": "medium"}}

_MSG_401 = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
            "for an active subscription and use a correct regional API endpoint for your resource.")
_MSG_404_DEPLOYMENT = ("The API deployment for this resource does not exist. If you created the deployment within "
                       "the last 5 minutes, please wait a moment and try again.")
_MSG_FILTER = ("The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
               "Please modify your prompt and retry. To learn more about our content filtering policies please read "
               "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766")


def _headers() -> dict[str, str]:
    return {
        "apim-request-id": os.urandom(16).hex(),
        "x-request-id": os.urandom(16).hex(),
        "x-ms-region": "Sweden Central",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "99000",
    }


def _err(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_body(kind: str, model: str | None, params: Mapping[str, Any], **extra: Any) -> tuple[int, Any, dict]:
    """(status, JSON body, extra headers) of error ``kind`` as Azure OpenAI sends it."""
    m = model or ""
    if kind in ("unauthorized", "access_revoked"):
        return 401, _err("401", _MSG_401), {}
    if kind == BAD_API_VERSION:
        return 404, _err("404", "Resource not found"), {}
    if kind == "withdrawn":
        return 404, _err("DeploymentNotFound", _MSG_404_DEPLOYMENT), {}
    if kind == "no_model_access":
        # [U] Entra ID RBAC denial wording, from memory of Azure's data-plane responses.
        return 401, _err("PermissionDenied", "The principal `00000000-0000-0000-0000-000000000000` lacks the "
                         "required data action `Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/"
                         f"completions/action` to perform `POST /openai/deployments/{m}/chat/completions` "
                         "operation."), {}
    if kind == "region_blocked":
        # Message [O]; the body shape around it was not captured (reference 4.3), so it follows the 401 one.
        return 403, _err("403", "Public access is disabled. Please configure private endpoint."), {}
    if kind in ("rate_limited", "quota"):
        seconds = 86400 if kind == "quota" else params.get("retry_after", 1)
        shown = f"{seconds:g}" if isinstance(seconds, float) else str(seconds)
        msg = (f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
               f"2024-10-21 have exceeded token rate limit of your current OpenAI S0 "
               f"pricing tier. Please retry after {shown} seconds. Please go here: https://aka.ms/oai/quotaincrease "
               "if you would like to further increase the default rate limit.")
        return 429, _err("429", msg), {
            "retry-after": shown, "retry-after-ms": str(int(float(seconds) * 1000)),
            "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "0",
        }
    if kind == "overloaded":
        # [U] Azure's 503 body was not captured in the reference; shaped like its other service errors.
        return 503, _err("ServiceUnavailable", "The service is temporarily unable to process your request. "
                         "Please try again later."), {}
    if kind == "invalid_prompt":
        inner = {"code": "ResponsibleAIPolicyViolation",
                 "content_filter_result": {**FILTERS_HIT, "jailbreak": {"filtered": False, "detected": False}}}
        return 400, {"error": {"message": _MSG_FILTER, "type": None, "param": "prompt", "code": "content_filter",
                               "status": 400, "innererror": inner}}, {}
    # server_error, context_exceeded, bad_json, missing_*: Azure relays the OpenAI backend's bodies (4.3).
    status, body, headers = error_for(kind, "openai", model, dict(params), **extra)
    return status, body, headers


class AzureFramer(OpenAIFramer):
    """OpenAI SSE framing plus the prompt-filter preamble and per-choice ``content_filter_results``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fingerprint = "fp_emulator"

    def _obj(self, choices: list[Any]) -> dict[str, Any]:
        for c in choices:
            if c.get("finish_reason") == "content_filter":
                c["content_filter_results"] = FILTERS_HIT
            elif (c.get("delta") or {}).get("content") or (c.get("delta") or {}).get("tool_calls"):
                c["content_filter_results"] = FILTERS_SAFE
            else:
                c["content_filter_results"] = {}
        return super()._obj(choices)

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", **_headers()}

    def start(self) -> bytes:
        preamble = {"id": "", "choices": [], "created": 0, "model": "", "object": "", "system_fingerprint": None,
                    "prompt_filter_results": PROMPT_FILTERS}
        return b"data: " + orjson.dumps(preamble) + b"\n\n" + super().start()


class AzureWire(OpenAIWire):
    name = WIRE
    framer = AzureFramer

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        req = super().parse(request, raw, path_params)
        key = request.headers.get("api-key")
        req.token = key or bearer_token(request.headers.get("Authorization"))
        req.auth = req.token is not None
        version = request.query.get("api-version")
        req.extra["api_version"] = version
        deployment = path_params.get("deployment")
        if deployment is None:  # /openai/v1: the body names the deployment, as on OpenAI
            return req
        req.model = deployment
        if not version:
            req.error = BAD_API_VERSION
        elif req.error == "missing_model":  # the body's model is optional on the deployment route
            req.error = None if isinstance((req.body or {}).get("messages"), list) else "missing_messages"
        return req

    def requires_auth(self, params: dict[str, Any]) -> bool:
        return True

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        status, body, headers = error_body(kind, model, params, **extra)
        return status, orjson.dumps(body), {**_headers(), **headers}, JSON

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        body, _ = super().completion(reply, model, prompt_tokens, filtered, {**params, "flavor": "openai"})
        payload = orjson.loads(body)
        payload.pop("service_tier", None)
        payload["prompt_filter_results"] = PROMPT_FILTERS
        for choice in payload["choices"]:
            choice["content_filter_results"] = FILTERS_HIT if filtered else FILTERS_SAFE
            choice["message"].pop("annotations", None)
        return orjson.dumps(payload), _headers()


def register(app: web.Application, state: EmulatorState) -> None:
    """Wire hook: add the Azure OpenAI routes for ``state`` to ``app``."""
    register_wire(app, state, AzureWire(), ROUTES)
