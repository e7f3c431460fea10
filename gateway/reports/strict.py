"""``gateway check --strict``: besides validation, every route needs a fallback from a different vendor and one
from a different jurisdiction than its primary, unless it declares ``single_vendor_ok: {owner, reason}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.model import GatewayConfig


@dataclass(frozen=True, slots=True)
class Finding:
    route: str
    problem: str
    waived_by: str | None = None  # "owner: reason" when the route accepts the risk


def _where(config: GatewayConfig, model: str) -> tuple[str, str]:
    p: Any = config.providers[config.models[model].provider]
    get = p.get if isinstance(p, dict) else lambda k, d=None: getattr(p, k, d)
    return get("vendor", "unknown") or "unknown", get("jurisdiction", "unknown") or "unknown"


def findings(config: GatewayConfig) -> list[Finding]:
    out = []
    for name, r in config.routes.items():
        primary_vendor, primary_jur = _where(config, r.models[0])
        rest = [_where(config, m) for m in r.models[1:]]
        problems = []
        if not rest:
            problems.append("no fallback at all")
        else:
            if not any(v != primary_vendor and v != "unknown" for v, _ in rest):
                problems.append(f"no fallback from a different vendor (all {primary_vendor})")
            if not any(j != primary_jur and j != "unknown" for _, j in rest):
                problems.append(f"no fallback from a different jurisdiction (all {primary_jur})")
        if primary_vendor == "unknown" and rest:
            problems.append(f"vendor of primary {r.models[0]!r} is unknown (set providers.*.vendor)")
        waiver = r.single_vendor_ok
        for p in problems:
            out.append(Finding(name, p, f"{waiver.owner}: {waiver.reason}" if waiver else None))
    return out


def report(config: GatewayConfig, source: str) -> tuple[bool, str]:
    """(passed, text). Waived findings are listed but do not fail."""
    fs = findings(config)
    lines = []
    failed = [f for f in fs if f.waived_by is None]
    for f in fs:
        if f.waived_by is None:
            lines.append(f"{source}: routes.{f.route}: {f.problem}; add a fallback or declare "
                         f"single_vendor_ok: {{owner: ..., reason: ...}}")
        else:
            lines.append(f"{source}: routes.{f.route}: {f.problem} (accepted by {f.waived_by})")
    n = len(config.routes)
    if failed:
        lines.append(f"{source}: strict check FAILED: {len({f.route for f in failed})} of {n} routes lack vendor or "
                     "jurisdiction diversity")
    else:
        lines.append(f"{source}: strict check OK: every route has a fallback from another vendor and another "
                     f"jurisdiction ({n} routes{', some by declared exception' if fs else ''})")
    return not failed, "\n".join(lines)
