"""The runtime snapshot: everything derived from one validated config, built once and never mutated.

A reload builds a new ``Runtime`` and swaps it whole; a request keeps the snapshot it started with.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.config.model import GatewayConfig, Timeouts
from gateway.providers import adapter_class
from gateway.providers.base import Target
from gateway.providers.embeddings import embedder_for
from gateway.routing.patterns import compile_pattern
from gateway.routing.policy import Caller, CompiledPolicy, build_caller, compile_policies

# Whether a provider kind accepts an assistant message as the last turn (used for stream continuation).
PREFILL_DEFAULTS = {"openai": False, "anthropic": True, "bedrock": True, "gemini": False, "azure-openai": False}

# What each provider kind can do unless a model says otherwise (``models.<name>.supports``). Anthropic enforces
# a JSON schema with a forced tool and Gemini with its response schema; neither returns n > 1 choices through
# the gateway (Gemini does: candidateCount) nor logprobs. Bedrock Converse has no schema enforcement, n or logprobs.
CAPABILITY_DEFAULTS: dict[str, dict[str, bool]] = {
    "openai": {"tools": True, "json_schema": True, "n": True, "logprobs": True, "vision": True},
    "azure-openai": {"tools": True, "json_schema": True, "n": True, "logprobs": True, "vision": True},
    "anthropic": {"tools": True, "json_schema": True, "n": False, "logprobs": False, "vision": True},
    "gemini": {"tools": True, "json_schema": True, "n": True, "logprobs": False, "vision": True},
    "bedrock": {"tools": True, "json_schema": False, "n": False, "logprobs": False, "vision": True},
}


def capabilities_of(kind: str, supports: Any) -> frozenset[str]:
    """The declared capabilities (``ModelSupports``) over the kind's defaults; prefill included."""
    defaults = {**CAPABILITY_DEFAULTS.get(kind, CAPABILITY_DEFAULTS["openai"]),
                "prefill": PREFILL_DEFAULTS.get(kind, False)}
    declared = supports.model_dump(exclude_none=True)
    return frozenset(k for k, v in {**defaults, **declared}.items() if v)


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    models: tuple[str, ...]
    aliases: tuple[str, ...]
    patterns: tuple[Any, ...]  # linear-time (RE2) patterns: .search(text), .pattern
    description: str = ""
    on_refusal: str = "return"  # return | failover
    refusal_fallbacks: tuple[str, ...] = ()
    on_stream_cut: str = "continue"  # continue | error
    timeouts: Timeouts | None = None  # failover.timeouts with this route's overrides applied
    kind: str = "chat"  # chat | embeddings


@dataclass(frozen=True, slots=True)
class Runtime:
    config: GatewayConfig
    targets: dict[str, Target]
    adapters: dict[str, Any]
    routes: dict[str, Route]
    names: dict[str, Route]  # route names and aliases -> route
    primary_of: dict[str, Route]  # model name -> the route whose primary it is (first such route)
    keys: dict[str, Caller] | None  # sha256 hex -> caller; None = authentication disabled
    version: str
    loaded_at: float = field(default_factory=time.time)
    policies: tuple[CompiledPolicy, ...] = ()
    # Embedding models -> their embedding adapter (gateway.providers.embeddings); chat adapters stay in ``adapters``.
    embedders: dict[str, Any] = field(default_factory=dict)
    anonymous: Caller = Caller(None)  # the caller when authentication is disabled
    admin_keys: dict[str, str] = field(default_factory=dict)  # sha256 hex -> admin key name
    # Provider keys and extra header values, longest first: masked wherever text may reach a client or a log.
    secrets: tuple[str, ...] = ()
    classifier: Any = None  # gateway.routing.classify.Classifier when a route has `classify`, else None

    @property
    def default_route(self) -> Route | None:
        name = self.config.default_route
        return self.routes[name] if name else None


def build_runtime(config: GatewayConfig, source_text: str | bytes = b"") -> Runtime:
    targets: dict[str, Target] = {}
    adapters: dict[str, Any] = {}
    embedders: dict[str, Any] = {}
    for name, m in config.models.items():
        p = config.providers[m.provider]
        options = {k: v for k, v in p.model_dump().items() if k not in _COMMON_PROVIDER_FIELDS}
        caps = capabilities_of(p.kind, m.supports)
        target = Target(
            name=name,
            provider=m.provider,
            kind=p.kind,
            upstream_model=m.model,
            base_url=p.base_url,
            vendor=p.vendor,
            jurisdiction=p.jurisdiction,
            context_window=m.context_window,
            supports_tools="tools" in caps,
            prefill="prefill" in caps,
            capabilities=caps,
            api_key=p.api_key,
            headers=dict(p.headers),
            options=options,
            timeouts=p.timeouts.model_dump(exclude_unset=True) if p.timeouts is not None else {},
            dimensions=m.dimensions,
        )
        targets[name] = target
        adapters[name] = adapter_class(p.kind)(target)
        if m.kind == "embeddings":
            embedders[name] = embedder_for(adapters[name], m.send_dimensions)
    routes: dict[str, Route] = {}
    names: dict[str, Route] = {}
    primary_of: dict[str, Route] = {}
    for rname, r in config.routes.items():
        timeouts = config.failover.timeouts
        if r.timeouts is not None:
            timeouts = timeouts.model_copy(update=r.timeouts.model_dump(exclude_none=True))
        route = Route(rname, tuple(r.models), tuple(r.aliases), tuple(compile_pattern(x) for x in r.match), r.description,
                      r.on_refusal, tuple(r.refusal_fallbacks), r.on_stream_cut, timeouts, r.kind)
        routes[rname] = route
        names[rname] = route
        for alias in r.aliases:
            names[alias] = route
        primary_of.setdefault(r.models[0], route)
    policies = compile_policies(config.policies, targets)
    keys = None if config.keys is None else {
        k.sha256: build_caller(k, policies, names, targets) for k in config.keys}
    anonymous = build_caller(None, policies, names, targets)
    admin_keys = {k.sha256: k.name for k in config.admin_keys}
    if isinstance(source_text, str):
        source_text = source_text.encode()
    digest = hashlib.sha256(source_text or config.model_dump_json().encode())
    for r in config.routes.values():  # examples files are part of the config: an edit makes a new version
        if r.classify is not None and r.classify._file_examples:
            digest.update("\0".join(r.classify._file_examples).encode())
    version = digest.hexdigest()[:12]
    classifier = _classifier(config)
    secrets = {t.api_key for t in targets.values() if t.api_key}
    secrets.update(v for t in targets.values() for v in t.headers.values() if v)
    secrets.update(fleet_secrets(config))
    return Runtime(config, targets, adapters, routes, names, primary_of, keys, version, policies=policies,
                   embedders=embedders,
                   anonymous=anonymous, admin_keys=admin_keys, classifier=classifier,
                   secrets=tuple(sorted((x for x in secrets if len(x) >= 4), key=len, reverse=True)))


def changed_upstreams(old: Runtime, new: Runtime) -> list[str]:
    """Models kept by a reload whose upstream changed: another key, header, URL, vendor model id or provider.
    What the old upstream said about them (access denied, withdrawn, a breaker) no longer applies."""
    def identity(t: Target) -> tuple[Any, ...]:
        return (t.provider, t.kind, t.base_url, t.upstream_model, t.api_key, dict(t.headers), dict(t.options))

    return sorted(name for name, t in new.targets.items()
                  if name in old.targets and identity(old.targets[name]) != identity(t))


def _classifier(config: GatewayConfig) -> Any:
    if not any(r.classify is not None for r in config.routes.values()):
        return None  # nothing imported: the classifier's libraries load only for configs that use it
    from gateway.errors import ConfigError
    from gateway.routing.classify import build_classifier

    try:
        return build_classifier(config)
    except ValueError as e:  # EngineError included
        raise ConfigError([f"classifier: {e}"]) from None


_COMMON_PROVIDER_FIELDS = {"kind", "base_url", "api_key", "vendor", "jurisdiction", "headers", "timeouts"}


def fleet_secrets(config: GatewayConfig) -> set[str]:
    """Passwords in the state/store URLs and the session secret: masked like provider keys wherever text leaves."""
    from urllib.parse import urlsplit

    out = set()
    for url in (config.state.url, config.store.url):
        if url:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                out.add(password)
    if config.admin.session_secret:
        out.add(config.admin.session_secret)
    return out
