"""One finished request, as data. Built once by the chat endpoint when a request ends; metrics, the structured
log line and the audit record are all derived from it (never from a second bookkeeping path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.failover.attempts import Attempt


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    time: float  # wall-clock epoch seconds at arrival
    key_name: str | None  # the caller's key *name*; never the secret
    route: str
    route_reason: str  # header | name | alias | model | match:<i> | default | none (rejected before routing)
    stream: bool
    status: int
    latency: float  # seconds
    attempts: list[Attempt] = field(default_factory=list)
    served: list[str] = field(default_factory=list)  # models that produced the answer (several if continued)
    usage: dict[str, Any] | None = None
    chain: tuple[str, ...] = ()
    caller: dict[str, str] = field(default_factory=dict)  # caller attributes (jurisdiction, team, ...)
    error: str | None = None  # error code when status >= 400
    prompt_hash: str | None = None  # sha256 of the prompt, only when the opt-in is on
    dialect: str = "chat_completions"  # inbound API: chat_completions | anthropic_messages | responses | embeddings
