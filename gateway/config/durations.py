"""Durations in config: ``100ms``, ``2s``, ``15m``, ``1h``, ``1m30s``, or a bare number of seconds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Return seconds. Raises ValueError with a message fit for a config error."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use e.g. 100ms, 2s, 15m, 1h")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: use e.g. 100ms, 2s, 15m, 1h")
    text = value.strip()
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r}: use e.g. 100ms, 2s, 15m, 1h")
    return total


Duration = Annotated[float, BeforeValidator(parse_duration)]
