"""Caller policy: who may be served by which model. Pure: no I/O, no state, no clock.

Policies depend only on the caller's attributes (from its key in config) and on the configured models, both
fixed for one config snapshot. So the whole evaluation happens once, when the runtime is built: every caller
gets a ``denials`` dict (model name -> ``Denial``), and the hot path does one dict lookup per candidate
(``caller.denials.get(model)``), for the primary and for every fallback, before any upstream call.

Semantics of one rule::

    - name: export-control-2026-06
      deny: {models: [...], providers: [...], vendors: [...], jurisdictions: [...]}   # union of all four
      when:   {site: [berlin, paris]}      # optional: applies only to callers matching ALL listed attributes
      unless: {jurisdiction: [US]}         # optional: never applies to callers matching ALL listed attributes
      reason: "Commerce Department directive of 2026-06-12"

An attribute matches when the caller has it and its value is one of the listed values. A caller that lacks an
attribute does not match it: with ``unless: {jurisdiction: [US]}``, a key without a jurisdiction is denied
(fail closed). The first rule (in file order) that denies a model is the one reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.config.model import KeyConfig, PolicyConfig
from gateway.errors import GatewayError

KEY_MODELS_POLICY = "key-models"  # the pseudo-policy for a key's own ``models:`` restriction
KEY_ROUTES_POLICY = "key-routes"


@dataclass(frozen=True, slots=True)
class Denial:
    policy: str
    reason: str

    @property
    def outcome(self) -> str:
        return f"denied:{self.policy}"


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    name: str
    reason: str
    models: frozenset[str]  # the configured models this rule denies (resolved from models/providers/vendors/...)
    when: tuple[tuple[str, frozenset[str]], ...] | None
    unless: tuple[tuple[str, frozenset[str]], ...] | None
    source: PolicyConfig

    def applies_to(self, attributes: Mapping[str, str]) -> bool:
        if self.when is not None and not _matches(self.when, attributes):
            return False
        return not (self.unless is not None and _matches(self.unless, attributes))

    def describe(self) -> dict[str, Any]:
        d = self.source.model_dump(exclude_none=True)
        d["deny"] = {k: v for k, v in d["deny"].items() if v}
        d["denied_models"] = sorted(self.models)
        return d


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller: its key's name and attributes, and everything precomputed for it."""

    name: str | None  # None when authentication is disabled
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    routes: frozenset[str] | None = None  # canonical route names; None = all
    rate_limit: int | None = None  # requests per minute
    denials: Mapping[str, Denial] = field(default_factory=lambda: MappingProxyType({}))


def _matches(cond: tuple[tuple[str, frozenset[str]], ...], attributes: Mapping[str, str]) -> bool:
    for attr, values in cond:
        v = attributes.get(attr)
        if v is None or v not in values:
            return False
    return True


def _cond(c: Mapping[str, list[str]] | None) -> tuple[tuple[str, frozenset[str]], ...] | None:
    return None if c is None else tuple((k, frozenset(v)) for k, v in c.items())


def compile_policies(policies: Iterable[PolicyConfig], targets: Mapping[str, Any]) -> tuple[CompiledPolicy, ...]:
    """Resolve each rule's deny lists to model names. ``targets``: model name -> Target (provider/vendor/...)."""
    out = []
    for p in policies:
        d = p.deny
        models = frozenset(
            name for name, t in targets.items()
            if name in d.models or t.provider in d.providers or t.vendor in d.vendors
            or t.jurisdiction in d.jurisdictions
        )
        out.append(CompiledPolicy(p.name, p.reason, models, _cond(p.when), _cond(p.unless), p))
    return tuple(out)


def denials_for(attributes: Mapping[str, str], policies: Iterable[CompiledPolicy],
                allowed_models: Iterable[str] | None = None, all_models: Iterable[str] = (),
                key_name: str | None = None) -> dict[str, Denial]:
    """Model -> the first rule that denies it to a caller with these attributes."""
    out: dict[str, Denial] = {}
    for p in policies:
        if p.applies_to(attributes):
            for m in p.models:
                out.setdefault(m, Denial(p.name, p.reason))
    if allowed_models is not None:
        allowed = set(allowed_models)
        reason = f"key {key_name!r} may only use models {sorted(allowed)}"
        for m in all_models:
            if m not in allowed:
                out.setdefault(m, Denial(KEY_MODELS_POLICY, reason))
    return out


def build_caller(key: KeyConfig | None, policies: tuple[CompiledPolicy, ...], names: Mapping[str, Any],
                 all_models: Iterable[str]) -> Caller:
    """``names``: route names and aliases -> Route (a key may list either; stored as canonical names)."""
    if key is None:
        return Caller(None, denials=MappingProxyType(denials_for({}, policies)))
    routes = None if key.routes is None else frozenset(names[r].name for r in key.routes)
    denials = denials_for(key.attributes, policies, key.models, all_models, key.name)
    return Caller(key.name, MappingProxyType(dict(key.attributes)), routes, key.rate_limit,
                  MappingProxyType(denials))


def check_route(caller: Caller, route: str) -> None:
    """403 when the caller's key may not use this route."""
    if caller.routes is not None and route not in caller.routes:
        raise GatewayError(403, f"The key {caller.name!r} may not use route {route!r} "
                                f"(allowed: {', '.join(sorted(caller.routes)) or 'none'}).",
                           type="permission_error", code="route_not_allowed", param="model")


def denied_error(route: str, denials: Iterable[tuple[str, str, str]]) -> GatewayError:
    """Every candidate was denied by policy: a 403 naming each policy and its reason.
    ``denials``: (model, policy, reason)."""
    by_policy: dict[tuple[str, str], list[str]] = {}
    for model, policy, reason in denials:
        by_policy.setdefault((policy, reason), []).append(model)
    parts = [f"policy '{p}' ({r}) denies {', '.join(ms)}" for (p, r), ms in by_policy.items()]
    msg = f"No model on route '{route}' may serve this caller: " + "; ".join(parts) + "."
    return GatewayError(403, msg, type="permission_error", code="policy_denied")
