"""Embedding endpoints of the emulator, on the same scripted core as the chat wires (auth, errors, 429, withdrawn,
hangs, resets; stream-only faults answer normally: embeddings never stream).

* OpenAI ``POST /v1/embeddings`` (``encoding_format`` float or base64: little-endian float32, as the API sends it)
* Azure OpenAI ``POST /openai/deployments/{deployment}/embeddings?api-version=`` and ``/openai/v1/embeddings``
* Gemini ``POST /{v1beta|v1}/models/{model}:embedContent`` and ``:batchEmbedContents`` (google-genai uses the latter)
* Bedrock ``POST /model/{model_id}/invoke`` for Amazon Titan Text Embeddings and Cohere Embed bodies

Vectors are deterministic (seeded by model and text) and unit length. Their length: the behaviour's ``dimensions``
parameter when set (a model that ignores what it is asked), else the request's own dimensions field, else the
model family's native length (``NATIVE``).
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import math
import random
import struct
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from gateway.emulator import gemini_wire
from gateway.emulator.azure_wire import AzureWire
from gateway.emulator.bedrock_wire import BedrockWire
from gateway.emulator.content import Reply
from gateway.emulator.core import JSON, ErrorResponse, ParsedRequest, register_wire
from gateway.emulator.openai_wire import OpenAIWire
from gateway.emulator.state import EmulatorState

NATIVE = {"openai": 1536, "gemini": 3072, "titan": 1024, "cohere": 1024}
MAX_DIMENSIONS = 65536
# The request being answered: the core hands ``completion`` the chat view only, and an embeddings answer needs the
# texts and the asked size (set in ``parse``; each aiohttp request runs in its own task, so in its own context).
_REQUEST: contextvars.ContextVar[ParsedRequest] = contextvars.ContextVar("embeddings_request")


def vector(model: str, text: str, dims: int) -> list[float]:
    """A deterministic unit vector of ``dims`` numbers for (model, text)."""
    rnd = random.Random(hashlib.sha256(f"{model}\0{text}".encode()).digest())
    v = [rnd.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [round(x / norm, 7) for x in v]


def encode_base64(vec: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()


def _texts(value: Any) -> list[str] | None:
    """OpenAI ``input``: a string, strings, a token array or token arrays (tokens embedded as their digits)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(x, str) for x in value):
            return list(value)
        if all(isinstance(x, int) for x in value):
            return [" ".join(map(str, value))]
        if all(isinstance(x, list) and all(isinstance(t, int) for t in x) for x in value):
            return [" ".join(map(str, x)) for x in value]
    return None


def _dims(params: Mapping[str, Any], asked: Any, family: str) -> int:
    for v in (params.get("dimensions"), asked):
        if isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_DIMENSIONS:
            return v
    return NATIVE[family]


def _neutral(req: ParsedRequest, texts: list[str] | None) -> ParsedRequest:
    """Fill the core's neutral fields: the texts as one user message (so context_window and token counts work)."""
    if texts is None:
        req.chat = {}
        if req.error is None:
            req.error = "missing_messages"
        return req
    req.chat = {"messages": [{"role": "user", "content": " ".join(texts)}]}
    req.extra["texts"] = texts
    _REQUEST.set(req)
    return req


def _words(texts: list[str]) -> int:
    return sum(len(t.split()) for t in texts)


# --------------------------------------------------------------------------- OpenAI / Azure
class OpenAIEmbeddingsWire(OpenAIWire):
    name = "openai-embeddings"

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        req = super().parse(request, raw, path_params)  # auth, JSON, model
        if req.error == "missing_messages":
            req.error = None
        body = req.body if isinstance(req.body, dict) else {}
        req.stream = False
        return _neutral(req, _texts(body.get("input")) if req.body is not None else None)

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        if kind == "missing_messages":  # [U] wording by analogy with chat's missing 'messages'
            body = {"error": {"message": "'input' is a required property and must be a string, an array of strings or "
                                         "an array of token arrays.", "type": "invalid_request_error",
                              "param": "input", "code": None}}
            return 400, orjson.dumps(body), {}, JSON
        return super().error(kind, model, params, **extra)

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        req = _REQUEST.get()
        body = req.body or {}
        dims = _dims(params, body.get("dimensions"), "openai")
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(req.extra["texts"]):
            vec = vector(model, text, dims)
            data.append({"object": "embedding", "index": i, "embedding": encode_base64(vec) if b64 else vec})
        tokens = _words(req.extra["texts"])
        payload = {"object": "list", "data": data, "model": model,
                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return orjson.dumps(payload), {}


class AzureEmbeddingsWire(AzureWire):
    name = "azure-embeddings"

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        req = super().parse(request, raw, path_params)
        if req.error == "missing_messages":
            req.error = None
        body = req.body if isinstance(req.body, dict) else {}
        req.stream = False
        return _neutral(req, _texts(body.get("input")) if req.body is not None else None)

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        if kind == "missing_messages":  # Azure relays the OpenAI backend's request errors
            return OpenAIEmbeddingsWire.error(self, kind, model, params, **extra)  # type: ignore[arg-type]
        return super().error(kind, model, params, **extra)

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        answer = OpenAIEmbeddingsWire.completion  # the Azure body is OpenAI's
        body, _ = answer(self, reply, model, prompt_tokens, filtered, params)  # type: ignore[arg-type]
        return body, {}


# --------------------------------------------------------------------------- Gemini
class GeminiEmbeddingsWire(gemini_wire.GeminiWire):
    name = "gemini-embeddings"

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        model = path_params.get("model") or None
        method = request.path.rpartition(":")[2]
        version = request.path.split("/")[1]
        gemini_wire._CURRENT.set({"version": version, "method": method})
        token = request.headers.get("x-goog-api-key") or request.query.get("key") or None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        req = ParsedRequest(model=model, token=token, auth=token is not None,
                            body=body if isinstance(body, dict) else None, extra={"method": method})
        if not isinstance(body, dict):
            req.error = "bad_json"
            req.chat = {}
            return req
        if method == "batchEmbedContents":
            items = body.get("requests")
            if not isinstance(items, list) or not items or not all(isinstance(r, dict) for r in items):
                return _neutral(req, None)
        else:
            items = [body]
        texts = [_content_text(r.get("content")) for r in items]
        if any(t is None for t in texts):
            return _neutral(req, None)
        req.extra["asked"] = [r.get("outputDimensionality") for r in items]
        return _neutral(req, texts)  # type: ignore[arg-type]

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        if kind == "missing_messages":
            body = {"error": {"code": 400, "message": "* BatchEmbedContentsRequest.requests[0].content: contents is "
                              "not specified\n", "status": "INVALID_ARGUMENT"}}  # [U] by analogy with generateContent
            return 400, orjson.dumps(body), {}, JSON
        return super().error(kind, model, params, **extra)

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        req = _REQUEST.get()
        out = [{"values": vector(model, text, _dims(params, asked, "gemini"))}
               for text, asked in zip(req.extra["texts"], req.extra["asked"])]
        if req.extra["method"] == "embedContent":
            return orjson.dumps({"embedding": out[0]}), {}
        return orjson.dumps({"embeddings": out}), {}


def _content_text(content: Any) -> str | None:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return None
    texts = [p.get("text") for p in content["parts"] if isinstance(p, dict)]
    if not texts or not all(isinstance(t, str) for t in texts):
        return None
    return " ".join(texts)


# --------------------------------------------------------------------------- Bedrock InvokeModel
def bedrock_family(model_id: str) -> str | None:
    """The body family of a Bedrock model id. The emulator keeps its own copy: it imports nothing from the gateway
    it tests, so a mistake in the gateway cannot be mirrored here."""
    if "amazon.titan-embed" in model_id:
        return "titan"
    if "cohere.embed" in model_id:
        return "cohere"
    return None


class BedrockEmbeddingsWire(BedrockWire):
    name = "bedrock-embeddings"

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        req = super().parse(request, raw, path_params)  # auth, JSON
        req.stream = False
        if req.error == "missing_messages":
            req.error = None
        body = req.body if isinstance(req.body, dict) else None
        family = bedrock_family(req.model or "")
        req.extra["family"] = family
        if body is None:
            req.chat = {}
            return req
        if family is None:
            req.error = "missing_model"  # "The provided model identifier is invalid."
            req.chat = {}
            return req
        if family == "titan":
            text = body.get("inputText")
            req.extra["asked"] = body.get("dimensions")
            return _neutral(req, [text] if isinstance(text, str) and text else None)
        texts = body.get("texts")
        ok = isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)
        req.extra["asked"] = body.get("output_dimension")
        req.extra["types"] = body.get("embedding_types")
        return _neutral(req, list(texts) if ok else None)

    def completion(self, reply: Reply, model: str, prompt_tokens: int, filtered: bool,
                   params: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        req = _REQUEST.get()
        family = req.extra["family"]
        texts = req.extra["texts"]
        dims = _dims(params, req.extra.get("asked"), family)
        headers = {"x-amzn-RequestId": "emu-" + hashlib.sha256(model.encode()).hexdigest()[:24],
                   "X-Amzn-Bedrock-Input-Token-Count": str(_words(texts))}
        if family == "titan":
            vec = vector(model, texts[0], dims)
            payload: dict[str, Any] = {"embedding": vec, "inputTextTokenCount": _words(texts),
                                       "embeddingsByType": {"float": vec}}
        else:
            vectors = [vector(model, t, dims) for t in texts]
            if isinstance(req.extra.get("types"), list):
                payload = {"id": "emu-embed", "embeddings": {"float": vectors}, "response_type": "embeddings_by_type",
                           "texts": texts}
            else:
                payload = {"id": "emu-embed", "embeddings": vectors, "response_type": "embeddings_floats",
                           "texts": texts}
        return orjson.dumps(payload), headers


def register(app: web.Application, state: EmulatorState) -> None:
    """Wire hook; must run before gemini_wire's (its ``{model_and_method}`` route would take these paths)."""
    register_wire(app, state, OpenAIEmbeddingsWire(), [("POST", "/v1/embeddings"), ("POST", "/embeddings")])
    register_wire(app, state, AzureEmbeddingsWire(), [("POST", "/openai/deployments/{deployment}/embeddings"),
                                                      ("POST", "/openai/v1/embeddings")])
    register_wire(app, state, GeminiEmbeddingsWire(), [
        ("POST", "/" + version + "/models/{model:[^/:]+}:" + method)
        for version in ("v1beta", "v1") for method in ("embedContent", "batchEmbedContents")])
    register_wire(app, state, BedrockEmbeddingsWire(), [("POST", "/model/{model_id}/invoke")])
