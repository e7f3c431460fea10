"""Wire-format-neutral "what the model says".

Input is an OpenAI-shaped request dict (``messages``, ``tools``, ``tool_choice``,
``response_format``); other wire modules translate their requests into that shape
(or at least into ``messages`` of ``{"role", "content"}``) before calling in.

Reply rules (first match wins):

1. ``tools`` present, ``tool_choice != "none"`` and the last message is a user
   message -> a tool call of the ``tool_choice`` function if one is named, else the
   first function tool; arguments come from the JSON-schema ``required``
   properties (string -> "example", integer/number -> 1, boolean -> true,
   anything else -> null).
2. last message is a ``tool`` result -> ``"Tool result received: <first 80 chars>"``.
3. ``response_format.type`` is ``json_object``/``json_schema`` -> the JSON object
   string ``{"model": <model>, "answer": "ok"}`` (a schema with ``required`` properties: an example object
   built like tool arguments).
4. otherwise ``"Hello from <model>. You said: <last user text, first 120 chars>"``.

0. continuation: the last message is an assistant turn with text P (prefill), or a user turn starting with
   ``CONTINUE_MARKER`` right after an assistant turn with text P -> the rest of the answer the model would
   have given without those turns, if that answer starts with P (else the whole answer). This is how the
   gateway's mid-stream continuation is exercised: with ``words=N`` every model gives the same answer, so a
   continuation completes exactly what the cut model had started.

Params ``text=...`` (fixed reply) or ``words=N`` (``"w1 w2 ... wN"``) replace the
text of rules 2-4.

Token accounting (deliberately crude and deterministic):

* prompt tokens = number of whitespace-separated words across all message text
  (string contents and ``{"type": "text"}`` parts, any role);
* completion tokens = number of stream pieces, i.e. words of the reply (for a tool
  call: words of the arguments JSON string, at least 1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    tool_call: ToolCall | None = None


def message_text(content: Any) -> str:
    """Text of a message ``content`` (string or list of parts); non-text parts are skipped."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                out.append(part["text"])
            elif isinstance(part, str):
                out.append(part)
        return " ".join(out)
    return ""


def estimate_prompt_tokens(request: dict[str, Any]) -> int:
    """Whitespace-separated words across all message text (see module docstring)."""
    n = 0
    for m in request.get("messages") or ():
        if isinstance(m, dict):
            n += len(message_text(m.get("content")).split())
    return n


def split_pieces(text: str) -> list[str]:
    """Split into words, keeping the leading space on every piece after the first.

    ``"Hello from x."`` -> ``["Hello", " from", " x."]``; ``"".join(pieces)`` equals
    the text with runs of whitespace collapsed to single spaces. A continuation that starts with a space
    (``" w4 w5"``) keeps it on its first piece.
    """
    words = text.split()
    if not words:
        return []
    first = (" " if text[:1].isspace() else "") + words[0]
    return [first] + [" " + w for w in words[1:]]


def completion_tokens(reply: Reply) -> int:
    if reply.tool_call is not None:
        return max(1, len(reply.tool_call.arguments_json.split()))
    return len(split_pieces(reply.text or ""))


_SCHEMA_DEFAULTS = {"string": "example", "integer": 1, "number": 1, "boolean": True}


def _example_arguments(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        return {}
    props = parameters.get("properties") or {}
    args: dict[str, Any] = {}
    for name in parameters.get("required") or ():
        schema = props.get(name) if isinstance(props, dict) else None
        typ = schema.get("type") if isinstance(schema, dict) else None
        if isinstance(typ, list):  # e.g. ["string", "null"]
            typ = next((t for t in typ if t != "null"), None)
        args[name] = _SCHEMA_DEFAULTS.get(typ.lower()) if isinstance(typ, str) else None  # Gemini: "STRING"
    return args


def _pick_tool(request: dict[str, Any]) -> ToolCall | None:
    tools = request.get("tools")
    if not tools or not isinstance(tools, list):
        return None
    choice = request.get("tool_choice")
    if choice == "none":
        return None
    functions = [
        t["function"]
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
    ]
    if not functions:
        return None
    chosen = functions[0]
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        if wanted:
            chosen = next((f for f in functions if f["name"] == wanted), {"name": wanted})
    return ToolCall(chosen["name"], _example_arguments(chosen.get("parameters")))


def make_reply(request: dict[str, Any], model: str, params: dict[str, Any] | None = None) -> Reply:
    """Decide the model's answer for ``request`` (see module docstring for the rules).

    Reply text has whitespace runs collapsed to single spaces so that the
    non-streamed text equals ``"".join(split_pieces(text))``.
    """
    messages = request.get("messages") or []
    prefix, base = _continuation(messages)
    if prefix is not None:
        full = _make_reply({**request, "messages": base}, model, params)
        if full.text is not None:
            text = " ".join(full.text.split())
            if prefix and text.startswith(prefix):
                rest = text[len(prefix):]
                return Reply(text=(" " if rest[:1].isspace() else "") + " ".join(rest.split()))
            return Reply(text=text)
    reply = _make_reply(request, model, params)
    if reply.text is not None:
        return Reply(text=" ".join(reply.text.split()))
    return reply


def ends_with_prefill(request: dict[str, Any]) -> bool:
    """The request's last message is an assistant turn (a prefill)."""
    messages = request.get("messages") or []
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant"


def misbehaving_continuation(name: str, request: dict[str, Any], model: str, params: dict[str, Any] | None) -> Reply | None:
    """What a model that does not follow a continuation request says (None: not a continuation request).

    ``restart_on_continue``: the whole answer from the start, same words. ``restart_different``: the whole answer
    from the start in other words (a short preamble, every third word changed). ``repeat_tail``: the last
    sentence of the text so far (its last three words when it has no sentence end) again, then the rest.
    """
    prefix, base = _continuation(request.get("messages") or [])
    if prefix is None:
        return None
    full = _make_reply({**request, "messages": base}, model, params)
    if full.text is None:
        return None
    text = " ".join(full.text.split())
    if name == "restart_on_continue":
        return Reply(text=text)
    if name == "restart_different":
        words = text.split()
        return Reply(text="Let me start again. " + " ".join(
            ("alt-" + w) if i % 3 == 2 else w for i, w in enumerate(words)))
    # repeat_tail
    rest = text[len(prefix):] if prefix and text.startswith(prefix) else " " + text
    sentences = [p for p in re.split(r"(?<=[.!?])\s+", prefix) if p]
    tail = sentences[-1] if len(sentences) > 1 else " ".join(prefix.split()[-3:])
    return Reply(text=" " + tail + (rest if rest[:1].isspace() else " " + rest))


# What the gateway says when it asks a model that takes no prefill to continue a cut answer.
CONTINUE_MARKER = "Continue exactly where your previous message stops"


def _continuation(messages: list[Any]) -> tuple[str | None, list[Any]]:
    """(the text already given, the conversation before it) if this request asks to continue an answer."""
    if not messages or not isinstance(messages[-1], dict):
        return None, messages
    last = messages[-1]
    if last.get("role") == "assistant" and not last.get("tool_calls"):
        return " ".join(message_text(last.get("content")).split()), messages[:-1]
    if (last.get("role") == "user" and message_text(last.get("content")).startswith(CONTINUE_MARKER)
            and len(messages) >= 2 and isinstance(messages[-2], dict) and messages[-2].get("role") == "assistant"):
        return " ".join(message_text(messages[-2].get("content")).split()), messages[:-2]
    return None, messages


def _make_reply(request: dict[str, Any], model: str, params: dict[str, Any] | None) -> Reply:
    params = params or {}
    messages = request.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    role = last.get("role")
    if role == "user":
        call = _pick_tool(request)
        if call is not None:
            return Reply(tool_call=call)
    if "text" in params:
        return Reply(text=str(params["text"]))
    if "words" in params:
        n = int(params["words"])
        return Reply(text=" ".join(f"w{i}" for i in range(1, n + 1)))
    if role == "tool":
        return Reply(text="Tool result received: " + message_text(last.get("content"))[:80])
    rf = request.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
        spec = rf.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict) and schema.get("required"):
            return Reply(text=json.dumps(_example_arguments(schema)))
        return Reply(text=json.dumps({"model": model, "answer": "ok"}))
    user_text = ""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            user_text = message_text(m.get("content"))
            break
    return Reply(text=f"Hello from {model}. You said: {user_text[:120]}")
