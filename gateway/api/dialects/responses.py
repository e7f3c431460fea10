"""The OpenAI Responses API (``POST /v1/responses``) as an inbound dialect, stateless. Pure: bodies in, bodies out.

Request -> internal chat request (``to_internal``), every field type-checked first (a 400 names the Responses
field, ``input[3].call_id``):

- ``instructions`` -> a leading system message; ``input`` as a string (one user message) or items: messages
  (``role`` user/system/developer/assistant, content a string or ``input_text``/``input_image``/``output_text``/
  ``refusal`` parts), ``function_call`` (-> assistant ``tool_calls``, consecutive calls merged into one turn),
  ``function_call_output`` (-> a ``tool`` message); ``reasoning`` items are dropped (no portable equivalent).
- function ``tools`` -> chat function tools; built-in tools (web_search, file_search, ...) are a 400 naming the
  tool. ``tool_choice`` as in chat; ``{"type": "function", "name"}`` -> chat's object form.
- ``text.format`` json_schema / json_object -> ``response_format``; ``max_output_tokens`` -> ``max_tokens``;
  ``temperature``, ``top_p``, ``parallel_tool_calls`` as is; ``user``/``safety_identifier`` -> ``user``.
- ``store`` (default true, as at OpenAI) keeps the answer in the gateway's bounded in-memory ``ResponseStore``
  (``response_store.py``); ``previous_response_id`` continues a stored conversation and ``item_reference``
  input items name stored output items. Not found (expired, evicted, another process) -> a 400 naming the
  field. ``background: true`` and ``conversation`` (server-side conversations) are a 400: not supported.

Answer -> Responses: ``from_completion`` (a ``response`` object), ``StreamTranslator`` (the event sequence the
openai SDKs' stream accumulators require), errors stay in OpenAI's envelope. A stream that cannot complete
ends with ``error`` then ``response.failed`` (``error.code: server_error``, which clients treat as retryable),
never ``response.completed``; the ``error`` event also carries the nested ``error`` object, so openai-python and
openai-node raise ``APIError`` on it while iterating (as they do for OpenAI's own mid-stream errors).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.api.dialects.common import STREAM_OPTIONS, bad, expect, number, optional, positive_int, usage_numbers
from gateway.api.validate import missing
from gateway.errors import GatewayError

DIALECT = "responses"
_UNSUPPORTED = "The gateway's Responses API does not support {what}; send the whole conversation as 'input'."
_NOT_FOUND = ("{what} with id '{id}' not found. The gateway keeps stored responses for a limited time, in memory, "
              "per process; send the whole conversation as 'input' instead.")


# -- request -----------------------------------------------------------------------------------------------
def to_internal(body: Any, store: Any = None) -> dict[str, Any]:
    """A Responses request -> the internal chat request. ``store`` (a ``ResponseStore``, or None when none is
    kept) resolves ``previous_response_id`` and ``item_reference`` items."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.", code="invalid_request")
    if body.get("conversation") is not None:
        raise GatewayError(400, _UNSUPPORTED.format(what="'conversation'"), code="unsupported_parameter",
                           param="conversation")
    if optional(body, "background", bool, "a boolean"):
        raise GatewayError(400, _UNSUPPORTED.format(what="'background': true"), code="unsupported_parameter",
                           param="background")
    optional(body, "store", bool, "a boolean")
    out: dict[str, Any] = {}
    model = optional(body, "model", str, "a string")
    if model is not None:
        out["model"] = model
    messages: list[dict[str, Any]] = []
    instructions = optional(body, "instructions", str, "a string")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    previous = optional(body, "previous_response_id", str, "a string")
    if previous is not None:
        earlier = store.conversation(previous) if store is not None else None
        if earlier is None:
            raise GatewayError(400, _NOT_FOUND.format(what="Previous response", id=previous),
                               code="previous_response_not_found", param="previous_response_id")
        # Copies down to the tool_calls list: consecutive function_call items append to the last turn in place.
        messages.extend({**m, "tool_calls": list(m["tool_calls"])} if m.get("tool_calls") else dict(m)
                        for m in earlier)
    raw = body.get("input")
    if raw is None:
        raise missing("input")
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    else:
        expect(raw, list, "input", "a string or an array of input items")
        for i, item in enumerate(raw):
            _item(item, f"input[{i}]", messages, store)
    if not any(m["role"] != "system" for m in messages):
        raise bad("input", "at least one input message is required")
    out["messages"] = messages
    max_tokens = positive_int(body, "max_output_tokens")
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    if optional(body, "stream", bool, "a boolean"):
        out["stream"] = True
        out["stream_options"] = dict(STREAM_OPTIONS)
    for key, hi in (("temperature", 2), ("top_p", 1)):
        v = number(body, key, 0, hi)
        if v is not None:
            out[key] = v
    ptc = optional(body, "parallel_tool_calls", bool, "a boolean")
    if ptc is not None:
        out["parallel_tool_calls"] = ptc
    user = optional(body, "safety_identifier", str, "a string") or optional(body, "user", str, "a string")
    if user:
        out["user"] = user
    tools = optional(body, "tools", list, "an array of tools")
    if tools:
        out["tools"] = [_tool(t, f"tools[{j}]") for j, t in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice(choice)
    text = optional(body, "text", dict, "an object")
    if text is not None:
        fmt = _format(text.get("format"))
        if fmt is not None:
            out["response_format"] = fmt
    return out


def history(body: Mapping[str, Any], internal: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation a stored answer continues: the internal messages without this request's
    ``instructions`` (OpenAI does not carry them over to a ``previous_response_id`` follow-up)."""
    messages = list(internal["messages"])
    return messages[1:] if body.get("instructions") else messages


def output_messages(items: Any) -> list[dict[str, Any]]:
    """Output items (the answer) as internal chat messages, to be stored after the conversation."""
    out: list[dict[str, Any]] = []
    for item in items:
        if item.get("type") == "message":
            content = item.get("content") or []
            text = "".join(c.get("text") or c.get("refusal") or "" for c in content if isinstance(c, dict))
            out.append({"role": "assistant", "content": text})
        elif item.get("type") == "function_call":
            _item(item, "output", out)
    return out


def _item(item: Any, p: str, out: list[dict[str, Any]], store: Any = None) -> None:
    expect(item, dict, p, "an input item object")
    itype = item.get("type", "message")
    if itype == "item_reference":
        ref = expect(item.get("id"), str, f"{p}.id", "a string")
        found = store.item(ref) if store is not None else None
        if found is None:
            raise GatewayError(400, _NOT_FOUND.format(what="Item", id=ref), code="item_not_found", param=f"{p}.id")
        if found.get("type") == "message":
            out.extend(output_messages([found]))
        else:
            _item(found, p, out)
        return
    if itype == "message":
        role = item.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise bad(f"{p}.role", f"expected user, system, developer or assistant, got {role!r}")
        content = item.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            return
        expect(content, list, f"{p}.content", "a string or an array of content parts")
        parts = [_part(part, f"{p}.content[{j}]") for j, part in enumerate(content)]
        if role == "assistant" or role in ("system", "developer"):
            out.append({"role": role, "content": "".join(x["text"] for x in parts if x["type"] == "text")})
        else:
            out.append({"role": role, "content": parts})
    elif itype == "function_call":
        call = {"id": expect(item.get("call_id"), str, f"{p}.call_id", "a string"), "type": "function",
                "function": {"name": expect(item.get("name"), str, f"{p}.name", "a string"),
                             "arguments": expect(item.get("arguments", "{}"), str, f"{p}.arguments",
                                                 "a JSON-encoded string")}}
        last = out[-1] if out else None
        if last is not None and last["role"] == "assistant":
            # In place (a copy per call would be quadratic in the number of calls: one request could hold the
            # event loop for seconds); ``last`` is never a stored turn's own dict or list (see ``to_internal``).
            last.setdefault("tool_calls", []).append(call)
            if not last.get("content"):
                last["content"] = None
        else:
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif itype == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = "".join(x["text"] for x in (_part(q, f"{p}.output[{k}]") for k, q in enumerate(output))
                             if x["type"] == "text")
        out.append({"role": "tool", "tool_call_id": expect(item.get("call_id"), str, f"{p}.call_id", "a string"),
                    "content": expect(output, str, f"{p}.output", "a string")})
    elif itype == "reasoning":
        return
    else:
        raise bad(f"{p}.type", f"input item type {itype!r} is not supported by the gateway")


def _part(part: Any, p: str) -> dict[str, Any]:
    expect(part, dict, p, "a content part object")
    ptype = part.get("type")
    if ptype in ("input_text", "output_text", "text"):
        return {"type": "text", "text": expect(part.get("text"), str, f"{p}.text", "a string")}
    if ptype == "refusal":
        return {"type": "text", "text": expect(part.get("refusal"), str, f"{p}.refusal", "a string")}
    if ptype == "input_image":
        url = expect(part.get("image_url"), str, f"{p}.image_url", "a URL string (file_id is not supported)")
        if not url.startswith(("http://", "https://", "data:")):  # checked here so the 400 names this field
            raise bad(f"{p}.image_url", "expected an http(s) URL or a data: URL")
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise bad(f"{p}.type", f"content part type {ptype!r} is not supported by the gateway")


def _tool(tool: Any, p: str) -> dict[str, Any]:
    expect(tool, dict, p, "a tool object")
    if tool.get("type") != "function":
        raise bad(f"{p}.type", f"only function tools are supported by the gateway, got {tool.get('type')!r}")
    fn: dict[str, Any] = {"name": expect(tool.get("name"), str, f"{p}.name", "a string")}
    desc = optional(tool, "description", str, "a string", f"{p}.")
    if desc:
        fn["description"] = desc
    params = optional(tool, "parameters", dict, "a JSON Schema object", f"{p}.")
    if params is not None:
        fn["parameters"] = params
    strict = optional(tool, "strict", bool, "a boolean", f"{p}.")
    if strict is not None:
        fn["strict"] = strict
    return {"type": "function", "function": fn}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise bad("tool_choice", f"expected auto, none, required or an object, got {choice!r}")
        return choice
    expect(choice, dict, "tool_choice", "a string or an object")
    if choice.get("type") != "function":
        raise bad("tool_choice.type", "only 'function' tool choices are supported by the gateway")
    return {"type": "function", "function": {"name": expect(choice.get("name"), str, "tool_choice.name",
                                                            "a string")}}


def _format(fmt: Any) -> dict[str, Any] | None:
    if fmt is None:
        return None
    expect(fmt, dict, "text.format", "an object")
    ftype = fmt.get("type")
    if ftype == "text":
        return None
    if ftype == "json_object":
        return {"type": "json_object"}
    if ftype == "json_schema":
        spec: dict[str, Any] = {"name": expect(fmt.get("name"), str, "text.format.name", "a string"),
                                "schema": expect(fmt.get("schema"), dict, "text.format.schema",
                                                 "a JSON Schema object")}
        for key, kind, what in (("strict", bool, "a boolean"), ("description", str, "a string")):
            v = optional(fmt, key, kind, what, "text.format.")
            if v is not None:
                spec[key] = v
        return {"type": "json_schema", "json_schema": spec}
    raise bad("text.format.type", "expected text, json_object or json_schema")


# -- answer ------------------------------------------------------------------------------------------------
def usage(internal: Mapping[str, Any] | None) -> dict[str, Any]:
    prompt, completion, read, _ = usage_numbers(internal)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": read}, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}


def _status(finish: str | None) -> tuple[str, dict[str, str] | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def envelope(resp_id: str, model: str, request: Mapping[str, Any], created: int) -> dict[str, Any]:
    """The ``response`` object's fields that do not depend on the answer (echoing the request as OpenAI does)."""
    text = request.get("text") if isinstance(request.get("text"), dict) else {}
    return {"id": resp_id, "object": "response", "created_at": created, "status": "in_progress", "error": None,
            "incomplete_details": None, "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"), "model": model, "output": [],
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "tool_choice": request.get("tool_choice", "auto"), "tools": request.get("tools") or [],
            "text": {"format": text.get("format") or {"type": "text"}}, "store": request.get("store") is not False,
            "metadata": {},
            "usage": None}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def from_completion(result: Mapping[str, Any], resp_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` dict (``model`` = the model that served) -> a ``response`` object."""
    out = envelope(resp_id, str(result.get("model") or ""), request, int(result.get("created") or time.time()))
    choices = result.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    message = choice.get("message") or {}
    items: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text") or "" for p in text if isinstance(p, Mapping))
    if text or message.get("refusal"):
        item = message_item(f"msg_{resp_id[5:]}", text or "")
        if not text:
            item["content"] = [{"type": "refusal", "refusal": message["refusal"]}]
        items.append(item)
    for n, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        items.append(call_item(f"fc_{resp_id[5:]}_{n}", call.get("id") or "", fn.get("name") or "",
                               fn.get("arguments") or ""))
    status, incomplete = _status(choice.get("finish_reason"))
    out.update(status=status, incomplete_details=incomplete, output=items, usage=usage(result.get("usage")))
    return out


def _event(data: dict[str, Any]) -> bytes:
    return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamTranslator:
    """``chat.completion.chunk`` dicts -> Responses stream events, in the order the SDKs' accumulators require:
    ``response.created``, ``response.in_progress``; per output item ``output_item.added`` (+ for a message
    ``content_part.added``), its deltas, its ``.done`` events, ``output_item.done``; then ``response.completed``
    (or ``response.incomplete`` for a length/content-filter finish). Every event has a ``sequence_number``."""

    def __init__(self, resp_id: str, request: Mapping[str, Any],
                 on_done: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        self.resp_id = resp_id
        self.request = request
        self.on_done = on_done  # called with the output items of an answer that completed
        self.seq = 0
        self.started = False
        self.closed = False
        self.items: list[dict[str, Any]] = []  # finished output items
        self.current: dict[str, Any] | None = None  # the open item
        self.pieces: list[str] = []  # the open item's text or arguments so far (joined once: ``_settle``)
        self.tool_key: Any = None
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.response: dict[str, Any] = {}

    def _ev(self, etype: str, **fields: Any) -> bytes:
        data = {"type": etype, "sequence_number": self.seq, **fields}
        self.seq += 1
        return _event(data)

    def _start(self, model: str) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        self.response = envelope(self.resp_id, model, self.request, int(time.time()))
        return [self._ev("response.created", response=self.response),
                self._ev("response.in_progress", response=self.response)]

    def _settle(self, item: dict[str, Any]) -> None:
        """Put the open item's streamed pieces into it (once: appending to a string per delta is quadratic)."""
        joined = "".join(self.pieces)
        self.pieces = []
        if item["type"] == "message":
            item["content"][0]["text"] = joined
        else:
            item["arguments"] = joined

    def _close_item(self) -> list[bytes]:
        item = self.current
        if item is None:
            return []
        self.current = None
        self._settle(item)
        n = len(self.items)
        out = []
        if item["type"] == "message":
            part = item["content"][0]
            out.append(self._ev("response.output_text.done", item_id=item["id"], output_index=n, content_index=0,
                                text=part["text"], logprobs=[]))
            out.append(self._ev("response.content_part.done", item_id=item["id"], output_index=n, content_index=0,
                                part=part))
        else:
            out.append(self._ev("response.function_call_arguments.done", item_id=item["id"], output_index=n,
                                name=item["name"], arguments=item["arguments"]))
        item["status"] = "completed"
        out.append(self._ev("response.output_item.done", output_index=n, item=item))
        self.items.append(item)
        return out

    def _open(self, make: Any) -> list[bytes]:
        """Close the open item, then open ``make(output_index)``."""
        out = self._close_item()
        n = len(self.items)
        item = self.current = make(n)
        shell = {**item, "content": []} if item["type"] == "message" else dict(item)
        out.append(self._ev("response.output_item.added", output_index=n, item=shell))
        if item["type"] == "message":
            out.append(self._ev("response.content_part.added", item_id=item["id"], output_index=n, content_index=0,
                                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []}))
        return out

    def chunk(self, chunk: Mapping[str, Any]) -> bytes:
        if self.closed:
            return b""
        out = self._start(str(chunk.get("model") or ""))
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                if self.current is None or self.current["type"] != "message":
                    out += self._open(lambda n: message_item(f"msg_{self.resp_id[5:]}_{n}", "", "in_progress"))
                    self.tool_key = None
                item = self.current
                assert item is not None
                self.pieces.append(text)
                out.append(self._ev("response.output_text.delta", item_id=item["id"], output_index=len(self.items),
                                    content_index=0, delta=text, logprobs=[]))
            for call in delta.get("tool_calls") or ():
                key = call.get("index", 0)
                fn = call.get("function") or {}
                if self.current is None or self.current["type"] != "function_call" or self.tool_key != key:
                    call_id, name = call.get("id") or "", fn.get("name") or ""
                    out += self._open(lambda n, c=call_id, f=name: call_item(f"fc_{self.resp_id[5:]}_{n}", c, f,
                                                                             "", "in_progress"))
                    self.tool_key = key
                item = self.current
                assert item is not None
                if fn.get("arguments"):
                    self.pieces.append(fn["arguments"])
                    out.append(self._ev("response.function_call_arguments.delta", item_id=item["id"],
                                        output_index=len(self.items), delta=fn["arguments"]))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                out += self._close_item()
        return b"".join(out)

    def done(self) -> bytes:
        if self.closed:
            return b""
        out = self._start("") + self._close_item()
        self.closed = True
        status, incomplete = _status(self.finish)
        self.response.update(status=status, incomplete_details=incomplete, output=self.items,
                             usage=usage(self.usage))
        out.append(self._ev("response.completed" if status == "completed" else "response.incomplete",
                            response=self.response))
        if self.on_done is not None:
            self.on_done(self.items)
        return b"".join(out)

    def error(self, status: int, err: Mapping[str, Any] | None) -> bytes:
        """The answer cannot complete: ``error`` then ``response.failed`` with what was streamed so far."""
        if self.closed:
            return b""
        out = self._start("")
        self.closed = True
        message = str((err or {}).get("message") or "the answer could not be completed")
        code = "server_error" if status >= 500 or status in (408, 429) else str((err or {}).get("code") or
                                                                              "invalid_request")
        if self.current is not None:
            self._settle(self.current)
            self.current["status"] = "incomplete"
            self.items.append(self.current)
            self.current = None
        # Both shapes of the ``error`` event: the documented one (code/message/param on the event) and the nested
        # ``error`` object OpenAI's servers send, the one openai-python and openai-node raise ``APIError`` on, so a
        # cut stream is an exception in the client, not a quietly shorter list of events.
        out.append(self._ev("error", code=code, message=message, param=None, error={
            "type": "server_error" if code == "server_error" else "invalid_request_error", "code": code,
            "message": message, "param": None}))
        self.response.update(status="failed", error={"code": code, "message": message}, output=self.items,
                             usage=usage(self.usage) if self.usage else None)
        out.append(self._ev("response.failed", response=self.response))
        return b"".join(out)

    def end(self) -> bytes:
        if self.closed:
            return b""
        return self.error(502, {"message": "upstream stream ended before the answer was complete"})
