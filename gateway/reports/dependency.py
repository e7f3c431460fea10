"""``gateway audit``: which routes depend on which vendors, which have no real fallback, and how traffic was
actually served (from the audit log over a window)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.reports.common import ctx, failover_reason, hop, md_table, pct, served_model, table
from gateway.runtime import Runtime

FLAG_TEXT = {
    "no_fallback": "no fallback at all",
    "single_vendor": "every fallback is the primary's vendor",
    "single_jurisdiction": "every fallback is in the primary's jurisdiction",
}


def route_flags(chain: list[dict[str, Any]]) -> list[str]:
    if len(chain) < 2:
        return ["no_fallback"]
    primary, rest = chain[0], chain[1:]
    flags = []
    if all(h["vendor"] == primary["vendor"] for h in rest):
        flags.append("single_vendor")
    if all(h["jurisdiction"] == primary["jurisdiction"] for h in rest):
        flags.append("single_jurisdiction")
    return flags


def traffic(rows: Iterable[Mapping[str, Any]], runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Per route: requests, ok/failed, served by model and vendor, failovers by reason, refusals by action,
    policy denials by policy."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        t = out.setdefault(row["route"], {"requests": 0, "ok": 0, "failed": 0, "by_model": Counter(),
                                          "by_vendor": Counter(), "failovers": Counter(), "refusals": Counter(),
                                          "denials": Counter(), "served_by_fallback": 0})
        t["requests"] += 1
        served = served_model(row)
        attempts = row.get("attempts") or []
        if served:
            t["ok"] += 1
            t["by_model"][served] += 1
            vendor = next((a["vendor"] for a in attempts if a["model"] == served and a["outcome"] == "ok"), None)
            if vendor is None and served in runtime.targets:
                vendor = runtime.targets[served].vendor
            t["by_vendor"][vendor or "unknown"] += 1
            chain = row.get("chain") or []
            if chain and served != chain[0]:
                t["served_by_fallback"] += 1
        else:
            t["failed"] += 1
        prev = None
        for i, a in enumerate(attempts):
            outcome = a["outcome"]
            if outcome == "policy_blocked":
                moved = i + 1 < len(attempts) and attempts[i + 1]["model"] != a["model"]
                t["refusals"]["failover" if moved else "return"] += 1
            elif outcome.startswith("denied:"):
                t["denials"][outcome[len("denied:"):]] += 1
            if prev is not None and prev["model"] != a["model"] and prev["outcome"] != "ok":
                t["failovers"][failover_reason(prev["outcome"])] += 1
            prev = a
    for t in out.values():
        for k in ("by_model", "by_vendor", "failovers", "refusals", "denials"):
            t[k] = dict(t[k].most_common())
    return out


def build(runtime: Runtime, rows: list[dict[str, Any]] | None, window: float, db: str | None = None,
          now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    usage = traffic(rows or [], runtime)
    total = sum(t["requests"] for t in usage.values())
    routes = []
    for name, r in runtime.routes.items():
        chain = [hop(runtime, m) for m in r.models]
        waiver = runtime.config.routes[name].single_vendor_ok if name in runtime.config.routes else None
        entry: dict[str, Any] = {
            "route": name, "aliases": list(r.aliases), "description": r.description, "chain": chain,
            "vendors": list(dict.fromkeys(h["vendor"] for h in chain)),
            "jurisdictions": list(dict.fromkeys(h["jurisdiction"] for h in chain)),
            "flags": route_flags(chain),
            "single_vendor_ok": waiver.model_dump() if waiver is not None else None,
            "traffic": usage.get(name),
        }
        if entry["traffic"] is not None:
            entry["traffic"]["share_of_all"] = entry["traffic"]["requests"] / total if total else 0.0
        routes.append(entry)
    other = {k: v for k, v in usage.items() if k not in runtime.routes}
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "config_version": runtime.version,
        "window_days": round(window / 86400, 2),
        "audit_log": db if rows is not None else None,
        "requests": total,
        "routes": routes,
        "other_routes": other,  # traffic to routes no longer in the config, or rejected before routing ("none")
    }


def _summary_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for r in report["routes"]:
        t = r["traffic"] or {}
        served_primary = None
        if t.get("ok"):
            served_primary = pct(t["by_model"].get(r["chain"][0]["model"], 0), t["ok"])
        flags = ", ".join(r["flags"]) or "-"
        if r["flags"] and r["single_vendor_ok"]:
            flags += f" (accepted by {r['single_vendor_ok']['owner']})"
        rows.append([r["route"], r["chain"][0]["model"], len(r["chain"]) - 1, len(r["vendors"]),
                     len(r["jurisdictions"]), flags, t.get("requests", 0),
                     pct(t.get("requests", 0), report["requests"]), served_primary or "-"])
    return rows


_SUMMARY_HEAD = ["route", "primary", "fallbacks", "vendors", "jurisdictions", "flags", "requests", "share",
                 "served by primary"]
_CHAIN_HEAD = ["#", "model", "provider", "vendor", "jurisdiction", "context", "tools", "prefill"]


def _chain_rows(r: dict[str, Any]) -> list[list[Any]]:
    return [[i, h["model"], h["provider"], h["vendor"], h["jurisdiction"], ctx(h["context_window"]),
             "yes" if h["supports_tools"] else "no", "yes" if h["prefill"] else "no"]
            for i, h in enumerate(r["chain"])]


def _shares(counts: Mapping[str, int], whole: int) -> str:
    return ", ".join(f"{k} {pct(v, whole)} ({v})" for k, v in counts.items()) or "-"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _traffic_lines(r: dict[str, Any], days: float) -> list[str]:
    t = r["traffic"]
    if not t:
        return [f"traffic ({days:g}d): none recorded"]
    return [
        (f"traffic ({days:g}d): {t['requests']} requests ({pct(t['share_of_all'], 1)} of all), {t['ok']} ok, "
         f"{t['failed']} failed, {t['served_by_fallback']} served by a fallback"),
        f"served by model: {_shares(t['by_model'], t['ok'])}",
        f"served by vendor: {_shares(t['by_vendor'], t['ok'])}",
        f"failovers by reason: {_counts(t['failovers'])}",
        f"refusals: {_counts(t['refusals'])}",
        f"policy denials: {_counts(t['denials'])}",
    ]


def render(report: dict[str, Any], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(report, indent=2)
    days = report["window_days"]
    src = report["audit_log"] or "no audit log found (config only)"
    head = (f"Dependency report: config {report['config_version']}, generated {report['generated_at']}\n"
            f"Traffic window: last {days:g} days, {report['requests']} requests (audit log: {src})")
    md = fmt == "markdown"
    out = [("# " if md else "") + head.replace("\n", "\n\n" if md else "\n"), ""]
    out.append(md_table(_SUMMARY_HEAD, _summary_rows(report)) if md else table(_SUMMARY_HEAD, _summary_rows(report)))
    for r in report["routes"]:
        out.append("")
        aliases = f" (aliases: {', '.join(r['aliases'])})" if r["aliases"] else ""
        out.append(f"## Route `{r['route']}`{aliases}" if md else f"Route {r['route']}{aliases}")
        if md:
            out += ["", md_table(_CHAIN_HEAD, _chain_rows(r)), ""]
        else:
            out.append(table(_CHAIN_HEAD, _chain_rows(r), indent="  "))
        lines = [(f"vendors: {len(r['vendors'])} ({', '.join(r['vendors'])}); jurisdictions: "
                  f"{len(r['jurisdictions'])} ({', '.join(r['jurisdictions'])})")]
        flags = "; ".join(FLAG_TEXT[f] for f in r["flags"]) or "none"
        if r["flags"] and r["single_vendor_ok"]:
            w = r["single_vendor_ok"]
            flags += f" -- accepted by {w['owner']}: {w['reason']}"
        lines.append(f"flags: {flags}")
        lines += _traffic_lines(r, days)
        out += [("- " if md else "  ") + line for line in lines]
    if report["other_routes"]:
        out += ["", "Traffic to routes not in this config:"]
        for name, t in report["other_routes"].items():
            out.append(("- " if md else "  ") + f"{name}: {t['requests']} requests, {t['ok']} ok, {t['failed']} failed")
    return "\n".join(out) + "\n"
