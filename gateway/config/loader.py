"""YAML -> validated ``GatewayConfig``, in stages, every error naming ``<file>: <dotted.path>: <reason>``.

Stages: parse (YAML, duplicate keys rejected) -> secrets (``${ENV}`` references resolved; a missing variable
is an error) -> shape (pydantic, unknown fields rejected) -> provider kinds -> references (routes name models,
models name providers, aliases do not collide). ``gateway check`` runs exactly this.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.config.model import PROVIDER_CONFIGS, GatewayConfig, ProviderBase
from gateway.errors import ConfigError
from gateway.providers.embeddings import EMBEDDING_KINDS, bedrock_family
from gateway.routing.patterns import check as check_pattern

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def dotted(loc: tuple | list) -> str:
    """``('routes', 'sec', 'models', 1)`` -> ``routes.sec.models[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def _pydantic_errors(exc: ValidationError, prefix: tuple = ()) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(err["loc"])
        msg = _MESSAGES.get(err["type"], err["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append((dotted(loc), msg))
    return out


def _substitute_env(node: Any, path: tuple, env: Mapping[str, str], errors: list[tuple[str, str]]) -> Any:
    if isinstance(node, dict):
        return {k: _substitute_env(v, path + (k,), env, errors) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_env(v, path + (i,), env, errors) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def repl(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            errors.append((dotted(path), f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(repl, node)
    return node


def parse_config(data: Any, source: str = "<config>", env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Validate an already-parsed YAML document. Raises ``ConfigError``."""
    env = os.environ if env is None else env
    errors: list[tuple[str, str]] = []
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: (top level): expected a mapping with providers, models and routes"])
    data = _substitute_env(data, (), env, errors)
    providers = _validate_providers(data.get("providers"), errors)
    try:
        cfg = GatewayConfig.model_validate(data)
    except ValidationError as e:
        errors.extend(_pydantic_errors(e))
        raise ConfigError([f"{source}: {p}: {m}" for p, m in errors]) from None
    _check_references(cfg, errors)
    _check_policies(cfg, providers, errors)
    cfg = _load_classifier(cfg, source, errors)
    if errors:
        raise ConfigError([f"{source}: {p}: {m}" for p, m in errors])
    return cfg.model_copy(update={"providers": providers})


def _load_classifier(cfg: GatewayConfig, source: str, errors: list[tuple[str, str]]) -> GatewayConfig:
    """Read every route's ``classify.examples_file`` (relative to the config file; re-read on each load, so
    examples reload with the config) and check the embedding engine's files and hashes. Returns the config with
    the file examples attached and the embedding paths made absolute."""
    from gateway.routing.classify.corpus import read_examples_file
    from gateway.routing.classify.engines import DEFAULT_MODEL, DEFAULT_TOKENIZER, EngineError, resolve_file

    src = Path(source)
    base = src.resolve().parent if src.is_file() else None
    tasks: dict[str, str] = {}
    classifying = False
    for rname, route in cfg.routes.items():
        c = route.classify
        if c is None:
            continue
        if route.kind != "chat":
            errors.append((f"routes.{rname}.classify", "only for chat routes (embeddings requests name their route)"))
            continue
        classifying = True
        if c.builtin is not None:
            if c.builtin in tasks:
                errors.append((f"routes.{rname}.classify.builtin",
                               f"builtin task {c.builtin!r} is already used by routes.{tasks[c.builtin]}"))
            tasks[c.builtin] = rname
        if c.examples_file:
            p = Path(c.examples_file)
            if not p.is_absolute() and base is not None:
                p = base / p
            try:
                c._file_examples = tuple(read_examples_file(p))
            except ValueError as e:
                errors.append((f"routes.{rname}.classify.examples_file", f"{p}: {e}"))
    emb = cfg.classifier.embedding
    if not classifying or cfg.classifier.engine != "embedding":
        return cfg
    resolved = {}
    for field, sha_field, default in (("model", "model_sha256", DEFAULT_MODEL),
                                      ("tokenizer", "tokenizer_sha256", DEFAULT_TOKENIZER)):
        try:
            path, sha = resolve_file(field, getattr(emb, field), getattr(emb, sha_field), default, base)
            resolved[field], resolved[sha_field] = str(path), sha
        except EngineError as e:
            errors.append((f"classifier.embedding.{field}", str(e)))
    if len(resolved) < 4:
        return cfg
    emb = emb.model_copy(update=resolved)
    return cfg.model_copy(update={"classifier": cfg.classifier.model_copy(update={"embedding": emb})})


def _validate_providers(raw_providers: Any, errors: list[tuple[str, str]]) -> dict[str, ProviderBase]:
    providers: dict[str, ProviderBase] = {}
    if not isinstance(raw_providers, dict):
        return providers  # the shape stage reports it
    for name, raw in raw_providers.items():
        if not isinstance(raw, dict):
            errors.append((f"providers.{name}", "expected a mapping"))
            continue
        kind = raw.get("kind")
        cls = PROVIDER_CONFIGS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            known = ", ".join(sorted(PROVIDER_CONFIGS))
            errors.append((f"providers.{name}.kind", f"unknown provider kind {kind!r} (known: {known})"))
            continue
        try:
            providers[name] = cls.model_validate(raw)
        except ValidationError as e:
            errors.extend(_pydantic_errors(e, ("providers", name)))
    return providers


def _check_references(cfg: GatewayConfig, errors: list[tuple[str, str]]) -> None:
    for name, model in cfg.models.items():
        if model.provider not in cfg.providers:
            errors.append((f"models.{name}.provider", f"unknown provider {model.provider!r}"))
        elif model.kind == "embeddings":
            _check_embedding_model(name, model, cfg.providers[model.provider], errors)

    names: dict[str, str] = {}
    for rname, route in cfg.routes.items():
        if rname in cfg.models:
            errors.append((f"routes.{rname}", f"route name {rname!r} is also a model name; rename one"))
        names[rname] = f"routes.{rname}"
        seen: set[str] = set()
        for i, m in enumerate(route.models):
            if m not in cfg.models:
                errors.append((f"routes.{rname}.models[{i}]", f"unknown model {m!r}"))
            if m in seen:
                errors.append((f"routes.{rname}.models[{i}]", f"model {m!r} is listed twice"))
            seen.add(m)
        _check_route_kind(cfg, rname, route, errors)
        for i, pattern in enumerate(route.match):
            problem = check_pattern(pattern)
            if problem is not None:
                errors.append((f"routes.{rname}.match[{i}]", problem))
    for rname, route in cfg.routes.items():
        for i, alias in enumerate(route.aliases):
            path = f"routes.{rname}.aliases[{i}]"
            if alias in names:
                errors.append((path, f"alias {alias!r} is already used by {names[alias]}"))
            elif alias in cfg.models:
                errors.append((path, f"alias {alias!r} is also a model name"))
            elif alias == "auto":
                errors.append((path, "'auto' is reserved"))
            names[alias] = path
    if cfg.default_route is not None and cfg.default_route not in cfg.routes:
        errors.append(("default_route", f"unknown route {cfg.default_route!r}"))
    for rname, route in cfg.routes.items():
        if route.refusal_fallbacks and route.on_refusal != "failover":
            errors.append((f"routes.{rname}.refusal_fallbacks", "only used with on_refusal: failover"))
        for i, m in enumerate(route.refusal_fallbacks):
            if m not in cfg.models:
                errors.append((f"routes.{rname}.refusal_fallbacks[{i}]", f"unknown model {m!r}"))
    client_hashes = _check_unique_keys(cfg.keys or [], "keys", "key", errors)
    if cfg.keys:
        for i, key in enumerate(cfg.keys):
            for j, r in enumerate(key.routes or ()):
                if r not in names:
                    errors.append((f"keys[{i}].routes[{j}]", f"unknown route or alias {r!r}"))
            for j, m in enumerate(key.models or ()):
                if m not in cfg.models:
                    errors.append((f"keys[{i}].models[{j}]", f"unknown model {m!r}"))
    _check_unique_keys(cfg.admin_keys, "admin_keys", "admin key", errors)
    for i, key in enumerate(cfg.admin_keys):
        if key.sha256 in client_hashes:
            errors.append((f"admin_keys[{i}].sha256", "an admin key must not also be a client key"))
    if not cfg.auth.enabled and cfg.keys is not None:
        errors.append(("auth.enabled", "false turns client authentication off, but keys are configured: "
                                       "remove one or the other"))
    if not cfg.auth.admin and cfg.admin_keys:
        errors.append(("auth.admin", "false turns the admin API off, but admin_keys are configured: "
                                     "remove one or the other"))


def _check_embedding_model(name: str, model: Any, provider: Any, errors: list[tuple[str, str]]) -> None:
    kind = provider.kind if isinstance(provider, ProviderBase) else provider.get("kind") if isinstance(provider, dict) \
        else None
    if kind not in PROVIDER_CONFIGS:
        return  # the provider's own errors are reported
    if kind not in EMBEDDING_KINDS:
        errors.append((f"models.{name}.kind", f"provider kind {kind} has no embeddings API (embedding models need "
                                              f"one of: {', '.join(sorted(EMBEDDING_KINDS))})"))
    elif kind == "bedrock" and bedrock_family(model.model) is None:
        errors.append((f"models.{name}.model", f"{model.model!r} is not a supported Bedrock embedding model "
                                               "(amazon.titan-embed-* or cohere.embed-*)"))


def _check_route_kind(cfg: GatewayConfig, rname: str, route: Any, errors: list[tuple[str, str]]) -> None:
    """A chat route lists chat models and an embeddings route embedding models; a mix can never be served."""
    for field in ("models", "refusal_fallbacks"):
        for i, m in enumerate(getattr(route, field)):
            model = cfg.models.get(m)
            if model is not None and model.kind != route.kind:
                what = "an embedding" if model.kind == "embeddings" else "a chat"
                errors.append((f"routes.{rname}.{field}[{i}]",
                               f"{m!r} is {what} model but this route has kind: {route.kind}"))
    if route.kind == "embeddings":
        if route.match:
            errors.append((f"routes.{rname}.match", "only for chat routes (embeddings requests name their route)"))
        if cfg.default_route == rname:
            errors.append(("default_route", f"{rname!r} is an embeddings route; the default route must be a chat "
                                            "route"))


def _check_policies(cfg: GatewayConfig, providers: dict[str, ProviderBase], errors: list[tuple[str, str]]) -> None:
    """Every name a policy denies must exist: a typo would otherwise silently deny nothing."""
    known = {
        "models": set(cfg.models),
        "providers": set(cfg.providers),
        "vendors": {p.vendor for p in providers.values()},
        "jurisdictions": {p.jurisdiction for p in providers.values()},
    }
    seen: set[str] = set()
    for i, pol in enumerate(cfg.policies):
        if pol.name in seen:
            errors.append((f"policies[{i}].name", f"duplicate policy name {pol.name!r}"))
        seen.add(pol.name)
        for field, known_names in known.items():
            singular = field[:-1]
            for j, value in enumerate(getattr(pol.deny, field)):
                if value not in known_names:
                    listing = ", ".join(sorted(known_names)) or "none"
                    errors.append((f"policies[{i}].deny.{field}[{j}]",
                                   f"unknown {singular} {value!r} (known: {listing})"))


def _check_unique_keys(keys: list[Any], path: str, what: str, errors: list[tuple[str, str]]) -> set[str]:
    """Names and secrets (by hash) are unique within one key list; returns the hashes seen."""
    names: set[str] = set()
    hashes: set[str] = set()
    for i, key in enumerate(keys):
        if key.name in names:
            errors.append((f"{path}[{i}].name", f"duplicate {what} name {key.name!r}"))
        names.add(key.name)
        if key.sha256 in hashes:
            errors.append((f"{path}[{i}].sha256", f"the same {what} is listed twice"))
        hashes.add(key.sha256)
    return hashes


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate a YAML file. Raises ``ConfigError`` (never a bare YAML or OS error)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{source}: cannot read: {e.strerror or e}"]) from None
    return load_config_text(text, source, env)


def load_config_text(text: str | bytes, source: str = "<config>",
                     env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Parse and validate YAML text (a reload reads the file once and keeps the bytes for the version)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError([f"{source}: not UTF-8 text: {e}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([f"{source}: {where}invalid YAML: {problem}"]) from None
    return parse_config(data, source, env)
