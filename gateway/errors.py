"""The gateway's error taxonomy.

Two families, drawn here so a reader sees them before any code::

    ErrorKind                    what one upstream failure means (classified locally by a provider module)
      transient | rate_limited | withdrawn | access_denied | policy_blocked | context_too_long | bad_request

    Exception
    ├── UpstreamError            ONE attempt at ONE model failed; carries .kind, .status, .retry_after, .code.
    │                            Raised by the upstream client (transport failures) or returned by a provider's
    │                            classify_error(); always chained ``from`` the foreign cause when there is one.
    └── GatewayError             what a client is told: .status, .type, .code, .param, .message, .headers.
                                 Rendered as the OpenAI error envelope, so the openai SDK raises its usual classes.

The failover table (``gateway.failover.table``) is the only place that decides what a kind *means* for routing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    WITHDRAWN = "withdrawn"
    ACCESS_DENIED = "access_denied"
    POLICY_BLOCKED = "policy_blocked"
    CONTEXT_TOO_LONG = "context_too_long"
    BAD_REQUEST = "bad_request"


class UpstreamError(Exception):
    """One attempt at one upstream failed.

    ``message`` is the provider's own message (already free of our secrets: providers never echo the key
    back in full, and the upstream client never puts it in a message). ``retry_after`` is seconds, or None.
    ``body`` is the raw error body for pass-through of bad_request/policy_blocked answers to the caller.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
        param: str | None = None,
        answer: Any = None,
    ) -> None:
        super().__init__(message)
        self.answer = answer  # a refusal that arrived as a complete answer (200 + content_filter): returnable
        self.kind = kind
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.body = body
        self.param = param

    def __repr__(self) -> str:
        return f"UpstreamError(kind={self.kind.value!r}, status={self.status!r}, code={self.code!r})"


_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class GatewayError(Exception):
    """An error the client sees, in OpenAI's envelope ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _STATUS_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class ConfigError(Exception):
    """The config is invalid. ``errors`` are lines of the form ``<file>: <dotted.path>: <reason>``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
