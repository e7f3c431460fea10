"""Embedding wire formats: the internal embeddings request -> each vendor's embeddings call -> vectors.

Pure like every provider module: translation and validation only. Each embedder wraps the model's chat adapter,
from which it takes the address, auth headers (and, for Bedrock, the SigV4 signer) and ``classify_error``: a
vendor's error envelope is the same on its embeddings endpoint as on its chat endpoint.

Wire formats (literal bodies in tests/providers/test_embeddings.py):

* ``openai`` / ``azure-openai``: ``POST {base}/embeddings`` (Azure: ``.../deployments/{d}/embeddings?api-version=``
  or ``/openai/v1/embeddings``) ``{"model", "input": [...], "encoding_format": "float"}`` ->
  ``{"data": [{"index", "embedding": [...]}], "usage": {"prompt_tokens"}}``.
* ``gemini``: ``POST {base}/{version}/models/{m}:batchEmbedContents`` (what google-genai sends)
  ``{"requests": [{"model": "models/{m}", "content": {"parts": [{"text"}]}, "outputDimensionality"?}]}`` ->
  ``{"embeddings": [{"values": [...]}]}`` (no token counts: usage is 0).
* ``bedrock``: ``InvokeModel`` ``POST /model/{id}/invoke``. Amazon Titan Text Embeddings (``amazon.titan-embed-*``):
  one text per call ``{"inputText", "dimensions"?}`` -> ``{"embedding": [...], "inputTextTokenCount"}``. Cohere Embed
  (``cohere.embed-*``): ``{"texts": [...], "input_type": "search_document", "output_dimension"?}`` ->
  ``{"embeddings": [[...]]}`` or ``{"embeddings": {"float": [[...]]}}``.

``max_batch`` is how many inputs one upstream call may carry; the endpoint splits longer lists.
``dimensions`` is sent upstream only when the model is configured with ``send_dimensions`` (models that shorten
their vectors on request); otherwise the model's own vector length must equal its declared ``dimensions``.
Every answer is checked: one vector per input, each of the declared length, every value a finite number; anything
else is a transient failure (another model can do better).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from gateway.errors import ConfigError, ErrorKind, UpstreamError
from gateway.providers.base import UpstreamRequest
from gateway.providers.common import excerpt, load_json

EMBEDDING_KINDS = frozenset({"openai", "azure-openai", "gemini", "bedrock"})
BEDROCK_FAMILIES = ("amazon.titan-embed", "cohere.embed")
COHERE_INPUT_TYPE = "search_document"
_NUMBER_TYPES = frozenset({float, int})


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """What the caller asked for, validated (gateway.api.embeddings)."""

    inputs: tuple[str, ...]
    dimensions: int | None = None  # the caller's required vector length (selects models; never forwarded as is)
    user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # unknown fields, passed to OpenAI-format upstreams


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int = 0


def _malformed(target: Any, why: str, body: bytes = b"") -> UpstreamError:
    detail = f": {excerpt(body, 120)}" if body else ""
    return UpstreamError(ErrorKind.TRANSIENT, f"malformed embeddings response from {target.name} ({why}){detail}")


def check_vectors(target: Any, vectors: Any, count: int) -> list[list[float]]:
    """One vector per input, each exactly ``target.dimensions`` finite numbers; else ``UpstreamError(transient)``."""
    if not isinstance(vectors, list) or len(vectors) != count:
        got = len(vectors) if isinstance(vectors, list) else type(vectors).__name__
        raise _malformed(target, f"{got} vectors for {count} inputs")
    dims = target.dimensions
    for v in vectors:
        if not isinstance(v, list):
            raise _malformed(target, "a vector is not an array")
        if len(v) != dims:
            raise UpstreamError(ErrorKind.TRANSIENT, f"{target.name} returned {len(v)}-dimension vectors; it is "
                                                     f"declared with dimensions: {dims}", code="dimensions_mismatch")
        # C-level passes (~10x faster than a per-value isinstance loop on 2048 x 1536 values): every value's
        # type is float or int (bool is not: type() is exact), and the sum is finite (an inf or nan anywhere
        # makes it inf or nan).
        if not set(map(type, v)) <= _NUMBER_TYPES or not math.isfinite(sum(v)):
            raise _malformed(target, "a vector holds a value that is not a finite number")
    return vectors


def _tokens(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class _Embedder:
    max_batch = 2048  # OpenAI's limit of inputs per request

    def __init__(self, chat: Any, send_dimensions: bool = False) -> None:
        self.chat = chat
        self.target = chat.target
        self.send_dimensions = send_dimensions

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        err: UpstreamError = self.chat.classify_error(status, headers, body)
        return err


class OpenAIEmbedder(_Embedder):
    """OpenAI, OpenAI-compatible servers and Azure OpenAI (same body; the address and auth come from the chat
    adapter, whose URL ends in ``/chat/completions``)."""

    def __init__(self, chat: Any, send_dimensions: bool = False) -> None:
        super().__init__(chat, send_dimensions)
        self._url = chat._url.replace("/chat/completions", "/embeddings", 1)
        self._headers = chat._headers

    def build_request(self, req: EmbeddingRequest) -> UpstreamRequest:
        return UpstreamRequest("POST", self._url, self._headers, orjson.dumps(openai_body(self.target, req,
                                                                                           self.send_dimensions)))

    def parse_response(self, body: bytes, count: int) -> Embeddings:
        return parse_openai(self.target, body, count)


def openai_body(target: Any, req: EmbeddingRequest, send_dimensions: bool) -> dict[str, Any]:
    out: dict[str, Any] = dict(req.extra)
    out.update(model=target.upstream_model, input=list(req.inputs), encoding_format="float")
    if send_dimensions:
        out["dimensions"] = target.dimensions
    if req.user is not None:
        out["user"] = req.user
    return out


def parse_openai(target: Any, body: bytes, count: int) -> Embeddings:
    data = load_json(body)
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        raise _malformed(target, "no data array", body)
    try:
        ordered = sorted(items, key=lambda d: d["index"])
    except (KeyError, TypeError):
        ordered = items  # no (or unorderable) index: the array order is the input order
    vectors = check_vectors(target, [d.get("embedding") for d in ordered], count)
    usage = data.get("usage")
    return Embeddings(vectors, _tokens(usage.get("prompt_tokens")) if isinstance(usage, dict) else 0)


class GeminiEmbedder(_Embedder):
    max_batch = 100  # batchEmbedContents' limit on requests per call

    def __init__(self, chat: Any, send_dimensions: bool = False) -> None:
        super().__init__(chat, send_dimensions)
        version = str(self.target.options.get("api_version") or "v1beta")
        self._url = f"{self.target.base_url}/{version}/models/{quote(self.target.upstream_model, safe='')}" \
                    ":batchEmbedContents"
        self._headers = chat._headers

    def build_request(self, req: EmbeddingRequest) -> UpstreamRequest:
        return UpstreamRequest("POST", self._url, self._headers, orjson.dumps(gemini_body(self.target, req,
                                                                                           self.send_dimensions)))

    def parse_response(self, body: bytes, count: int) -> Embeddings:
        return parse_gemini(self.target, body, count)


def gemini_body(target: Any, req: EmbeddingRequest, send_dimensions: bool) -> dict[str, Any]:
    model = "models/" + target.upstream_model
    requests = []
    for text in req.inputs:
        one: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if send_dimensions:
            one["outputDimensionality"] = target.dimensions
        requests.append(one)
    return {"requests": requests}


def parse_gemini(target: Any, body: bytes, count: int) -> Embeddings:
    data = load_json(body)
    items = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise _malformed(target, "no embeddings array", body)
    return Embeddings(check_vectors(target, [e.get("values") for e in items], count))


class BedrockEmbedder(_Embedder):
    """Bedrock InvokeModel for the Titan and Cohere embedding families (the body is the model family's own)."""

    def __init__(self, chat: Any, send_dimensions: bool = False) -> None:
        super().__init__(chat, send_dimensions)
        model_id = self.target.upstream_model
        self.family = bedrock_family(model_id)
        if self.family is None:
            raise ConfigError([f"models.{self.target.name}.model: Bedrock embedding model {model_id!r} is not of a "
                               f"supported family ({', '.join(f + '-*' for f in BEDROCK_FAMILIES)})"])
        self.max_batch = 1 if self.family == "titan" else 96  # Titan embeds one text per call; Cohere up to 96
        from gateway.providers.bedrock import _wire_url

        self._url = _wire_url(f"{self.target.base_url.rstrip('/')}/model/{quote(model_id, safe='')}/invoke")

    def build_request(self, req: EmbeddingRequest) -> UpstreamRequest:
        payload = orjson.dumps(bedrock_body(self.family or "", self.target, req, self.send_dimensions))
        chat = self.chat
        headers = chat._headers
        if chat._signer is not None:
            headers = chat._signer(self._url, headers, payload, chat.clock())
        return UpstreamRequest("POST", self._url, headers, payload)

    def parse_response(self, body: bytes, count: int) -> Embeddings:
        return parse_bedrock(self.family or "", self.target, body, count)


def bedrock_family(model_id: str) -> str | None:
    """``titan`` | ``cohere`` | None, from the model id (cross-region profiles prefix it: ``us.cohere.embed-...``)."""
    if "amazon.titan-embed" in model_id:
        return "titan"
    if "cohere.embed" in model_id:
        return "cohere"
    return None


def bedrock_body(family: str, target: Any, req: EmbeddingRequest, send_dimensions: bool) -> dict[str, Any]:
    if family == "titan":
        if len(req.inputs) != 1:
            raise ValueError("Titan embeds one text per call")  # the endpoint splits by max_batch
        out: dict[str, Any] = {"inputText": req.inputs[0]}
        if send_dimensions:
            out["dimensions"] = target.dimensions
        return out
    out = {"texts": list(req.inputs), "input_type": COHERE_INPUT_TYPE}
    if send_dimensions:
        out["output_dimension"] = target.dimensions
    return out


def parse_bedrock(family: str, target: Any, body: bytes, count: int) -> Embeddings:
    data = load_json(body)
    if not isinstance(data, dict):
        raise _malformed(target, "not a JSON object", body)
    if family == "titan":
        vector = data.get("embedding")
        return Embeddings(check_vectors(target, [vector] if vector is not None else [], count),
                          _tokens(data.get("inputTextTokenCount")))
    vectors = data.get("embeddings")
    if isinstance(vectors, dict):  # embedding_types requested (or a newer model): {"float": [[...]]}
        vectors = vectors.get("float")
    return Embeddings(check_vectors(target, vectors, count))


_EMBEDDERS: dict[str, type[_Embedder]] = {
    "openai": OpenAIEmbedder,
    "azure-openai": OpenAIEmbedder,
    "gemini": GeminiEmbedder,
    "bedrock": BedrockEmbedder,
}


def embedder_for(chat_adapter: Any, send_dimensions: bool = False) -> Any:
    """The embedder for an embedding model, built from its chat adapter (``ConfigError`` for a kind without an
    embeddings API, e.g. anthropic)."""
    target = chat_adapter.target
    cls = _EMBEDDERS.get(target.kind)
    if cls is None:
        raise ConfigError([f"models.{target.name}: provider kind {target.kind} has no embeddings API "
                           f"(embedding models: {', '.join(sorted(EMBEDDING_KINDS))})"])
    return cls(chat_adapter, send_dimensions)


def batches(inputs: Sequence[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(inputs[i:i + size]) for i in range(0, len(inputs), size)]
