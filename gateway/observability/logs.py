"""Structured logs: one JSON line per finished request (``gateway.requests``) and lifecycle events (reload,
withdrawal, drill, breaker transitions: ``gateway.lifecycle``).

A request line is derived from the ``RequestRecord`` only: request id, caller key *name*, route and why, served
model, the attempts summary (``model=outcome`` as in ``x-gateway-attempts``), latency, status, usage, error code.
Prompts, completions and upstream error texts are never logged; every string goes through ``redact`` with the
config's secrets registered, so a key that slipped into a field is masked anyway.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from gateway.observability.redact import redact

REQUEST_LOG = "gateway.requests"
LIFECYCLE_LOG = "gateway.lifecycle"

# Field names that could carry user content or credentials: dropped from lifecycle events whatever the caller passes.
_FORBIDDEN = frozenset({"prompt", "messages", "content", "completion", "text", "body", "api_key", "key", "secret",
                        "authorization", "headers", "password", "token"})



def _clean(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {str(k): _clean(v, secrets) for k, v in value.items() if str(k).lower() not in _FORBIDDEN}
    if isinstance(value, (list, tuple)):
        return [_clean(v, secrets) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value), secrets)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


def request_fields(record: Any) -> dict[str, Any]:
    attempts = record.attempts
    failovers = 0
    prev = None
    for a in attempts:
        if prev is not None and prev.model != a.model and prev.outcome != "ok":
            failovers += 1
        prev = a
    usage = record.usage or {}
    fields: dict[str, Any] = {
        "event": "request",
        "time": _iso(record.time),
        "request_id": record.request_id,
        "key": record.key_name,
        "route": record.route,
        "route_reason": record.route_reason,
        "dialect": record.dialect,
        "stream": record.stream,
        "status": record.status,
        "latency_ms": round(record.latency * 1000, 1),
        "served": record.served[-1] if record.served else None,
        "attempts": ",".join(f"{a.model}={a.outcome}" for a in attempts),
        "upstream_calls": sum(1 for a in attempts if a.contacted),
        "failovers": failovers,
    }
    if len(record.served) > 1:
        fields["served_models"] = list(record.served)
    if usage:
        fields["tokens"] = {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens") if k in usage}
    if record.error:
        fields["error"] = record.error
    return fields


class JsonLog:
    """The two JSON loggers, with the known secrets (provider keys, header values) masked in every line. One per
    gateway; ``set_secrets`` is called on every config (re)load."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        self.set_secrets(secrets)

    def set_secrets(self, values: Iterable[str | None]) -> None:
        self.secrets = tuple(sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True))

    def request_line(self, record: Any) -> str:
        # Every field of a request line is an id, a config name, an enum or a number (attempt messages, prompts
        # and completions are left out by ``request_fields``), so it is serialised as is: running the redactor
        # over it cost ~45 us a request. The secrets test scans these lines for planted keys.
        return orjson.dumps(request_fields(record), default=str).decode()

    def request(self, record: Any) -> None:
        logger = logging.getLogger(REQUEST_LOG)
        if logger.isEnabledFor(logging.INFO):
            logger.info(self.request_line(record))

    def lifecycle(self, event: str, **fields: Any) -> None:
        """One JSON line for a state change: ``lifecycle("withdrawal", target="vendor", name="Anthropic", ...)``.
        Fields named like content or credentials (prompt, messages, api_key, headers, ...) are dropped."""
        logger = logging.getLogger(LIFECYCLE_LOG)
        if not logger.isEnabledFor(logging.INFO):
            return
        line = {"event": event, "time": _iso(time.time()), **_clean(fields, self.secrets)}
        logger.info(json.dumps(line, separators=(",", ":"), default=str))


def ensure_output() -> None:
    """Make the two JSON loggers emit at INFO. When nothing up the logger tree has a handler (uvicorn configures
    only its own loggers), lines go to stdout as bare JSON; otherwise they propagate to the existing handlers."""
    for name in (REQUEST_LOG, LIFECYCLE_LOG):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:  # an explicit level (e.g. WARNING to silence them) is kept
            logger.setLevel(logging.INFO)
        if not logger.hasHandlers():
            h = logging.StreamHandler(sys.stdout)
            h.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(h)
