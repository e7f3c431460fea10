"""``gateway audit --diff old.yaml new.yaml``: which routes gain or lose vendors, jurisdictions and models."""

from __future__ import annotations

import json
from typing import Any

from gateway.reports.common import hop, md_table, table
from gateway.reports.dependency import route_flags
from gateway.runtime import Runtime


def _route(rt: Runtime, name: str) -> dict[str, Any]:
    chain = [hop(rt, m) for m in rt.routes[name].models]
    return {"models": [h["model"] for h in chain], "vendors": list(dict.fromkeys(h["vendor"] for h in chain)),
            "jurisdictions": list(dict.fromkeys(h["jurisdiction"] for h in chain)), "flags": route_flags(chain)}


def _delta(old: list[str], new: list[str]) -> dict[str, list[str]]:
    return {"gained": [x for x in new if x not in old], "lost": [x for x in old if x not in new]}


def diff(old: Runtime, new: Runtime) -> dict[str, Any]:
    routes = []
    for name in list(old.routes) + [n for n in new.routes if n not in old.routes]:
        if name not in new.routes:
            routes.append({"route": name, "change": "removed", "old": _route(old, name)})
            continue
        if name not in old.routes:
            routes.append({"route": name, "change": "added", "new": _route(new, name)})
            continue
        a, b = _route(old, name), _route(new, name)
        if a == b:
            routes.append({"route": name, "change": "unchanged"})
            continue
        routes.append({"route": name, "change": "changed", "old": a, "new": b,
                       "primary": None if a["models"][0] == b["models"][0] else [a["models"][0], b["models"][0]],
                       "models": _delta(a["models"], b["models"]), "vendors": _delta(a["vendors"], b["vendors"]),
                       "jurisdictions": _delta(a["jurisdictions"], b["jurisdictions"]),
                       "flags": _delta(a["flags"], b["flags"])})
    return {"old_version": old.version, "new_version": new.version, "routes": routes,
            "loses_diversity": [r["route"] for r in routes if r["change"] == "changed"
                                and (r["vendors"]["lost"] or r["jurisdictions"]["lost"] or r["flags"]["gained"])]}


def _fmt(d: dict[str, list[str]]) -> str:
    parts = [f"+{x}" for x in d["gained"]] + [f"-{x}" for x in d["lost"]]
    return " ".join(parts) or "-"


def render(res: dict[str, Any], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(res, indent=2)
    head = ["route", "change", "primary", "models", "vendors", "jurisdictions", "new flags"]
    rows = []
    for r in res["routes"]:
        if r["change"] == "changed":
            primary = " -> ".join(r["primary"]) if r["primary"] else "-"
            rows.append([r["route"], "changed", primary, _fmt(r["models"]), _fmt(r["vendors"]),
                         _fmt(r["jurisdictions"]), ", ".join(r["flags"]["gained"]) or "-"])
        elif r["change"] in ("added", "removed"):
            side = r["new"] if r["change"] == "added" else r["old"]
            sign = "+" if r["change"] == "added" else "-"
            rows.append([r["route"], r["change"], side["models"][0], " ".join(sign + m for m in side["models"]),
                         " ".join(sign + v for v in side["vendors"]),
                         " ".join(sign + j for j in side["jurisdictions"]), ", ".join(side["flags"]) or "-"])
        else:
            rows.append([r["route"], "unchanged", "-", "-", "-", "-", "-"])
    md = fmt == "markdown"
    out = [("# " if md else "") + f"Dependency diff: {res['old_version']} -> {res['new_version']}", "",
           md_table(head, rows) if md else table(head, rows), ""]
    if res["loses_diversity"]:
        out.append(f"routes losing a vendor or jurisdiction: {', '.join(res['loses_diversity'])}")
    else:
        out.append("no route loses a vendor or jurisdiction")
    return "\n".join(out) + "\n"
