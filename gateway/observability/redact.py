"""Redaction of secrets from text that may reach logs, metrics, error bodies or any surface.

``redact(text, secrets)`` masks the configured secrets (provider keys and header values, ``Runtime.secrets``,
longest first) and key-shaped tokens whatever their origin (a provider may echo part of a key: ``Incorrect API
key provided: sk-PMa***E873``). It is applied once where upstream text enters gateway state (the failover
engine's attempt, the stream relay), so every surface built from that state (attempt list, model state,
``/admin/state``, the status page, logs, audit, error bodies) shows the masked text; the log and audit writers
apply it again as a safety net.
"""

from __future__ import annotations

import re

_KEY_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-*.]{6,}|sk-ant-[A-Za-z0-9_\-*]{6,}|AIza[0-9A-Za-z_\-]{20,}|AKIA[0-9A-Z]{12,}"
    r"|Bearer\s+[A-Za-z0-9_\-.=:+/]{8,})"
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    if not text:
        return text
    for s in secrets:
        if s and len(s) >= 4 and s in text:
            text = text.replace(s, "***")
    return _KEY_SHAPES.sub("***", text)
