"""Route ``match`` patterns, compiled for linear-time matching.

Patterns run against callers' prompts, so a backtracking engine would let one crafted prompt stall the event
loop on a pattern such as ``(a+)+$`` (Python's ``re`` has no timeout). They are compiled with RE2 (the
``google-re2`` package), which guarantees time linear in the input; the price is that lookaround and
backreferences are not supported, which the config check reports with the pattern's dotted path.
"""

from __future__ import annotations

import re
from typing import Any

import re2


def check(pattern: str) -> str | None:
    """None if the pattern is valid for route matching, else why not."""
    try:
        re.compile(pattern)
    except re.error as e:
        return f"invalid regular expression {pattern!r}: {e}"
    try:
        _compile(pattern)
    except Exception as e:  # re2.error
        reason = str(e).strip("b'\"") or "unsupported syntax"
        return (f"{pattern!r} is not supported by the linear-time matcher ({reason}); lookaround and "
                "backreferences are not available in route patterns")
    return None


def compile_pattern(pattern: str) -> Any:
    """A compiled pattern with ``.search(text)`` and ``.pattern`` (call ``check`` first)."""
    return _compile(pattern)


def _compile(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print parse errors to stderr; ``check`` reports them with the path
    return re2.compile(pattern, options)
