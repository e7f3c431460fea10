"""Redaction of secrets from text that may reach logs, metrics or error bodies.

Known secrets (provider keys from config) are registered with a ``Redactor``; key-shaped tokens are masked
whatever their origin (a provider may echo part of a key: ``Incorrect API key provided: sk-PMa***E873``).
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
