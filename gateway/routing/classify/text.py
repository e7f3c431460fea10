"""What the classifier reads: the last user message and the system prompt(s), each truncated deterministically.

Pure functions over the internal (OpenAI-shaped) request. Truncation keeps the head and the tail of a long
prompt (a request usually states the task at one end and pastes code at the other), so the same prompt always
yields the same text and the cost of classifying is bounded whatever the prompt's length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_CHARS = 4000  # default; ``classifier.max_chars`` in the config
_JOIN = "\n...\n"


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def request_parts(messages: Sequence[Any]) -> tuple[str, str]:
    """(the last user message, the system/developer prompts in order joined by newlines); ("", "") when there
    is no user message. The classifier scores the two apart (``Classifier.scores``)."""
    last_user = ""
    for msg in reversed(messages):
        if isinstance(msg, Mapping) and msg.get("role") == "user":
            last_user = content_text(msg.get("content"))
            break
    if not last_user:
        return "", ""
    system = [content_text(m.get("content")) for m in messages
              if isinstance(m, Mapping) and m.get("role") in ("system", "developer")]
    return last_user, "\n".join(s for s in system if s)


def request_text(messages: Sequence[Any]) -> str:
    """System/developer prompts (in order) then the last user message; "" when there is no user message."""
    user, system = request_parts(messages)
    return f"{system}\n{user}" if system else user


def truncate(text: str, max_chars: int = MAX_CHARS) -> str:
    """At most ``max_chars`` characters: the first three quarters and the last quarter of the budget."""
    if len(text) <= max_chars:
        return text
    budget = max_chars - len(_JOIN)
    head = budget * 3 // 4
    return text[:head] + _JOIN + text[len(text) - (budget - head):]
