"""A bounded, in-memory store of Responses API answers, for ``previous_response_id`` and ``item_reference``.

OpenAI's Responses API stores answers by default (``store`` defaults to true) and clients lean on it: a
follow-up names ``previous_response_id``, and the Vercel AI SDK replays earlier assistant turns as
``{"type": "item_reference", "id": ...}``. The gateway keeps the last ``max_responses`` stored answers for
``ttl`` seconds and at most ``max_chars`` characters of conversation in all (config ``responses_store``, read
on every store so a reload applies), in memory, in this process only: after a restart, or on another
worker/replica, a reference is not found and the request gets a clear 400 (send the whole conversation as
``input`` with ``store: false`` to be independent of it). Oldest entries go first.

Stored answers belong to the caller (gateway key name) that made them: a lookup by another caller finds nothing
(the same 400 as an unknown id), so a response id (the gateway's request id, which is guessable) never lets one
key read another key's conversation. ``view(owner)`` is the store as one caller sees it.

What is kept per response: the conversation as internal chat messages (the earlier turns, this request's input
without its ``instructions``, which OpenAI does not carry over, and the answer), and each output item by id.
Owned by the Responses endpoint (built once per gateway); not shared between processes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

MAX_RESPONSES = 1000
MAX_CHARS = 32 * 1024 * 1024
TTL = 3600.0


@dataclass(frozen=True, slots=True)
class Stored:
    messages: tuple[dict[str, Any], ...]  # the whole conversation, internal chat messages
    items: tuple[dict[str, Any], ...]  # this response's output items
    chars: int
    expires: float
    owner: str | None  # the caller (gateway key name) that made it; None when authentication is disabled


class ResponseStore:
    def __init__(self, clock: Callable[[], float], *, max_responses: int = MAX_RESPONSES, max_chars: int = MAX_CHARS,
                 ttl: float = TTL, limits: Callable[[], Any] | None = None) -> None:
        """``limits``: returns the current ``ResponsesStoreConfig`` (a reload applies on the next ``put``);
        without it the keyword limits hold."""
        self._clock = clock
        self._limits = limits
        self.max_responses = max_responses
        self.max_chars = max_chars
        self.ttl = ttl
        self._responses: OrderedDict[str, Stored] = OrderedDict()
        self._items: dict[str, tuple[str, dict[str, Any]]] = {}  # item id -> (response id, item)
        self._chars = 0

    def __len__(self) -> int:
        return len(self._responses)

    @property
    def enabled(self) -> bool:
        self._refresh()
        return self.max_responses > 0

    def _refresh(self) -> None:
        if self._limits is not None:
            cfg = self._limits()
            self.max_responses, self.max_chars, self.ttl = cfg.max_responses, int(cfg.max_mb * 1024 * 1024), cfg.ttl

    def put(self, resp_id: str, messages: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]],
            owner: str | None = None) -> bool:
        """Keep one answer; False when it was not kept (the store is off, or the conversation is larger than the
        whole budget)."""
        self._refresh()
        if self.max_responses <= 0:
            while self._responses:
                self._drop(next(iter(self._responses)))
            return False
        chars = len(orjson.dumps(list(messages)))
        if chars > self.max_chars:
            return False
        self._evict_expired()
        while self._responses and (len(self._responses) >= self.max_responses or
                                   self._chars + chars > self.max_chars):
            self._drop(next(iter(self._responses)))
        self._responses[resp_id] = Stored(tuple(messages), tuple(items), chars, self._clock() + self.ttl, owner)
        self._chars += chars
        for item in items:
            if isinstance(item.get("id"), str):
                self._items[item["id"]] = (resp_id, item)
        return True

    def conversation(self, resp_id: str, owner: str | None = None) -> tuple[dict[str, Any], ...] | None:
        s = self._live(resp_id, owner)
        return None if s is None else s.messages

    def item(self, item_id: str, owner: str | None = None) -> dict[str, Any] | None:
        ref = self._items.get(item_id)
        if ref is None or self._live(ref[0], owner) is None:
            return None
        return ref[1]

    def view(self, owner: str | None) -> OwnerView:
        return OwnerView(self, owner)

    def _live(self, resp_id: str, owner: str | None) -> Stored | None:
        s = self._responses.get(resp_id)
        if s is None or s.owner != owner:
            return None
        if s.expires <= self._clock():
            self._drop(resp_id)
            return None
        return s

    def _evict_expired(self) -> None:
        now = self._clock()
        while self._responses:
            oldest = next(iter(self._responses))
            if self._responses[oldest].expires > now:
                return
            self._drop(oldest)

    def _drop(self, resp_id: str) -> None:
        s = self._responses.pop(resp_id)
        self._chars -= s.chars
        for item in s.items:
            ref = self._items.get(item.get("id"))  # type: ignore[arg-type]
            if ref is not None and ref[0] == resp_id:
                del self._items[item["id"]]


@dataclass(frozen=True, slots=True)
class OwnerView:
    """The store as one caller sees it: only the answers that caller stored (what ``responses.to_internal``
    resolves ``previous_response_id`` and ``item_reference`` against)."""

    store: ResponseStore
    owner: str | None

    def conversation(self, resp_id: str) -> tuple[dict[str, Any], ...] | None:
        return self.store.conversation(resp_id, self.owner)

    def item(self, item_id: str) -> dict[str, Any] | None:
        return self.store.item(item_id, self.owner)
