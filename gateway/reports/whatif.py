"""``gateway whatif``: withdraw vendors / models / providers / jurisdictions on paper and see, per route, what
still serves, what it loses against today's primary, what breaks, and how much recent traffic would have moved
or failed. Caller policy (``policies:``) is applied for ``--for-caller attr=value`` or ``--key NAME``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.reports.common import ctx, hop, md_table, pct, served_model, table
from gateway.runtime import Runtime

KINDS = {"vendor": "vendor", "model": "model", "provider": "provider", "jurisdiction": "jurisdiction"}


def parse_specs(items: Sequence[str], what: str = "--withdraw") -> list[tuple[str, str]]:
    out = []
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k or not v:
            raise ValueError(f"{what} expects KIND=NAME, got {item!r}")
        out.append((k.strip(), v.strip()))
    return out


def _withdrawn(runtime: Runtime, specs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Model -> why it is gone."""
    gone: dict[str, str] = {}
    for kind, value in specs:
        if kind not in KINDS:
            raise ValueError(f"unknown withdraw kind {kind!r} (use vendor=, model=, provider= or jurisdiction=)")
        hit = [m for m, h in ((m, hop(runtime, m)) for m in runtime.targets) if h[KINDS[kind]] == value]
        if not hit:
            raise ValueError(f"{kind}={value} matches no configured model")
        for m in hit:
            gone.setdefault(m, f"{kind}={value} withdrawn")
    return gone


def caller_denials(runtime: Runtime, attributes: Mapping[str, str] | None, key_name: str | None) -> dict[str, str]:
    """Model -> 'policy NAME: reason' for this caller. Tolerates configs (and code) without policies."""
    if key_name is not None:
        callers = [c for c in (runtime.keys or {}).values() if c.name == key_name]
        if not callers:
            raise ValueError(f"no key named {key_name!r} in the config")
        return {m: f"policy {d.policy}: {d.reason}" for m, d in callers[0].denials.items()}
    if attributes is None:
        return {}
    policies = getattr(runtime, "policies", ()) or ()
    if not policies:
        return {}
    from gateway.routing.policy import denials_for

    return {m: f"policy {d.policy}: {d.reason}" for m, d in denials_for(attributes, policies).items()}


def simulate(runtime: Runtime, specs: Sequence[tuple[str, str]], rows: list[dict[str, Any]] | None = None,
             caller: Mapping[str, str] | None = None, key_name: str | None = None) -> dict[str, Any]:
    gone = _withdrawn(runtime, specs)
    denied = caller_denials(runtime, caller, key_name)
    by_route: dict[str, list[dict[str, Any]]] = {}
    for row in rows or []:
        by_route.setdefault(row["route"], []).append(row)
    total_rows = sum(len(v) for k, v in by_route.items() if k in runtime.routes)
    routes = []
    for name, r in runtime.routes.items():
        removed = {m: gone.get(m) or denied[m] for m in r.models if m in gone or m in denied}
        remaining = [m for m in r.models if m not in removed]
        primary = hop(runtime, r.models[0])
        entry: dict[str, Any] = {"route": name, "chain": list(r.models), "removed": removed,
                                 "remaining": remaining, "losses": [], "warnings": []}
        if not remaining:
            entry["status"] = "breaks"
            entry["served_by"] = None
        else:
            new = hop(runtime, remaining[0])
            entry["served_by"] = remaining[0]
            entry["status"] = "unchanged" if remaining[0] == r.models[0] else "moves"
            if new["context_window"] < primary["context_window"]:
                entry["losses"].append(f"context window {ctx(primary['context_window'])} -> "
                                       f"{ctx(new['context_window'])}")
            if primary["supports_tools"] and not new["supports_tools"]:
                entry["losses"].append("no tool calling")
            if primary["prefill"] and not new["prefill"]:
                entry["losses"].append("no prefill (a cut stream is continued by instruction, not prefill)")
            if len(remaining) == 1:
                entry["warnings"].append("no fallback left")
            elif len({hop(runtime, m)["vendor"] for m in remaining}) == 1:
                entry["warnings"].append(f"single vendor left ({new['vendor']})")
        rrows = by_route.get(name, [])
        moved = failed = 0
        for row in rrows:
            s = served_model(row)
            if s is not None and s in removed:
                if remaining:
                    moved += 1
                else:
                    failed += 1
        entry["traffic"] = {"requests": len(rrows), "would_move": moved, "would_fail": failed}
        routes.append(entry)
    broken = [e["route"] for e in routes if e["status"] == "breaks"]
    return {
        "withdraw": [f"{k}={v}" for k, v in specs],
        "caller": dict(caller) if caller else ({"key": key_name} if key_name else None),
        "withdrawn_models": gone,
        "denied_models": denied,
        "routes": routes,
        "broken_routes": broken,
        "traffic": {"requests": total_rows,
                    "would_move": sum(e["traffic"]["would_move"] for e in routes),
                    "would_fail": sum(e["traffic"]["would_fail"] for e in routes),
                    "audit_log": rows is not None},
    }


_HEAD = ["route", "result", "served by", "loses", "removed from chain", "traffic moved", "traffic failed"]


def render(res: dict[str, Any], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(res, indent=2)
    md = fmt == "markdown"
    rows = []
    for e in res["routes"]:
        t = e["traffic"]
        result = {"breaks": "BREAKS", "moves": "moves", "unchanged": "unchanged"}[e["status"]]
        loses = "; ".join(e["losses"] + e["warnings"]) or "-"
        rows.append([e["route"], result, e["served_by"] or "-", loses, ", ".join(e["removed"]) or "-",
                     f"{pct(t['would_move'], t['requests'])} ({t['would_move']}/{t['requests']})" if t["requests"]
                     else "-",
                     f"{pct(t['would_fail'], t['requests'])} ({t['would_fail']}/{t['requests']})" if t["requests"]
                     else "-"])
    who = ""
    if res["caller"]:
        who = " for caller " + ", ".join(f"{k}={v}" for k, v in res["caller"].items())
    out = [("# " if md else "") + f"What if {', '.join(res['withdraw'])} were withdrawn{who}", ""]
    if res["withdrawn_models"]:
        out.append(f"withdrawn models: {', '.join(res['withdrawn_models'])}")
    if res["denied_models"]:
        out.append("denied to this caller: " + "; ".join(f"{m} ({why})" for m, why in res["denied_models"].items()))
    out.append("")
    out.append(md_table(_HEAD, rows) if md else table(_HEAD, rows))
    out.append("")
    t = res["traffic"]
    if t["audit_log"]:
        out.append(f"recent traffic: {t['requests']} requests; {t['would_move']} ({pct(t['would_move'], t['requests'])})"
                   f" would have moved to another model, {t['would_fail']} ({pct(t['would_fail'], t['requests'])})"
                   " would have failed")
    else:
        out.append("recent traffic: no audit log found (config only)")
    if res["broken_routes"]:
        out.append(f"BROKEN: {', '.join(res['broken_routes'])} would have no model left")
    else:
        out.append("every route would still be served")
    return "\n".join(out) + "\n"
