"""What every provider module offers, and the values that cross the provider boundary.

A provider module is *pure*: it translates and classifies, and never opens sockets, sleeps, retries, logs or
reads globals. Each module has the same anatomy, in this order: constants -> request translation
(``build_request``) -> response parsing (``parse_response``) -> stream decoding (a ``StreamDecoder``) ->
error classification (``classify_error``). The upstream client does the I/O; the failover engine decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Target:
    """One configured model on one provider: everything an adapter needs, resolved from config once."""

    name: str  # the gateway's model name (what clients see)
    provider: str  # provider name in config
    kind: str  # wire format
    upstream_model: str  # the vendor's model id
    base_url: str
    vendor: str
    jurisdiction: str
    context_window: int
    supports_tools: bool = True
    prefill: bool = False
    # What the model can do (``gateway.config.model.CAPABILITIES`` names); requests needing more skip it.
    capabilities: frozenset[str] = frozenset({"tools", "json_schema", "n", "logprobs", "vision"})
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)  # kind-specific provider settings
    # providers.<name>.timeouts, only the fields the config set (seconds): they win over the route's and the global
    # values for attempts on this target (see attempt_timeouts in gateway/failover/engine.py).
    timeouts: Mapping[str, float] = field(default_factory=dict)
    dimensions: int | None = None  # an embedding model's vector length; None for a chat model


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    stream: bool = False


class NativeBody(dict):  # type: ignore[type-arg]
    """The internal chat request (a plain dict for every adapter) that also carries the client's original body
    in one vendor's own format (``native_kind``), so an adapter of that kind can send it as is: no lossy double
    translation. An attribute, not a key: it cannot be set from any JSON body, and adapters that copy the dict
    (``dict(body)``, ``{**body}``) drop it. Continuations build plain dicts, so they are translated."""

    __slots__ = ("native", "native_headers", "native_kind", "untranslatable")

    def __init__(self, body: Mapping[str, Any], native_kind: str, native: Mapping[str, Any],
                 native_headers: Mapping[str, str] | None = None,
                 untranslatable: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(body)
        self.native_kind = native_kind
        self.native = native
        self.native_headers = native_headers or {}  # vendor request headers that go with the native body
        # (param, what) of the parts only ``native_kind`` models can take; other adapters refuse the request.
        self.untranslatable = tuple(untranslatable)

    def rebased(self, body: Mapping[str, Any], drop_native: Sequence[str] = ()) -> NativeBody:
        """``body`` (a changed copy of this request) carrying this native original, less the ``drop_native``
        fields."""
        native = {k: v for k, v in self.native.items() if k not in drop_native}
        return NativeBody(body, self.native_kind, native, self.native_headers, self.untranslatable)


def native_body(body: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The vendor-native original carried by ``body`` for adapters of ``kind``, else None."""
    if isinstance(body, NativeBody) and body.native_kind == kind:
        return body.native
    return None


class StreamDecoder(Protocol):
    """Sans-IO: raw upstream bytes in, OpenAI ``chat.completion.chunk`` dicts out. One instance per attempt.

    ``feed`` raises ``UpstreamError`` for an in-band error event. ``close`` is called at end of input and
    raises ``UpstreamError(transient)`` when the stream ended before it was complete. ``malformed`` counts
    events that could not be decoded and were skipped.
    """

    malformed: int

    def feed(self, data: bytes) -> list[dict[str, Any]]: ...

    def close(self) -> list[dict[str, Any]]: ...


class Adapter(Protocol):
    """One provider wire format bound to one ``Target``. Built once per config snapshot; stateless after."""

    target: Target

    def build_request(self, body: Mapping[str, Any], stream: bool) -> UpstreamRequest:
        """Translate an OpenAI chat request (never mutated) into this provider's request."""
        ...

    def parse_response(self, body: bytes) -> dict[str, Any]:
        """A 2xx body -> an OpenAI ``chat.completion`` dict. Raises ``UpstreamError(transient)`` if malformed."""
        ...

    def stream_decoder(self, body: Mapping[str, Any]) -> StreamDecoder: ...

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Any:
        """A non-2xx answer -> ``UpstreamError`` (returned, not raised, so it can be tested as a table)."""
        ...
