"""``gateway explain`` (and, for the lead to expose, ``POST /admin/explain``): for one request and one caller,
the route and why, the candidate chain, and per candidate whether it would be tried now or skipped and why.

Pure: ``explain(runtime, request, key_name=..., state=...)`` reads only its arguments. ``state`` is a model ->
dict snapshot in the shape of ``Gateway.describe()["models"]`` (``state``: ok | cooling | breaker_open |
withdrawn | access_denied | withdrawn_by_operator | drill, ``until_in_s``, ``reason``, ``withdrawal`` /
``drill`` entries). The CLI builds it from the persisted withdrawals (``withdrawals_state``) or a live gateway's
``/admin/state``; the admin endpoint would pass ``gw.describe()["models"]``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError
from gateway.reports.common import ctx, hop
from gateway.runtime import Runtime

CHARS_PER_TOKEN = 4  # a rough estimate; the upstream decides (a context_too_long error skips to larger windows)


def estimate_tokens(request: Mapping[str, Any]) -> int:
    n = 0
    for m in request.get("messages") or []:
        c = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(c, str):
            n += len(c)
        elif isinstance(c, list):
            n += sum(len(p.get("text", "")) for p in c if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    if request.get("tools"):
        n += len(json.dumps(request["tools"]))
    return n // CHARS_PER_TOKEN + 1


def _caller(runtime: Runtime, key_name: str | None) -> tuple[Any, str]:
    if key_name is None:
        note = ("no --key-name: evaluated as a caller without attributes" if runtime.keys is not None
                else "authentication disabled: anonymous caller")
        return runtime.anonymous, note
    for c in (runtime.keys or {}).values():
        if c.name == key_name:
            attrs = ", ".join(f"{k}={v}" for k, v in c.attributes.items()) or "no attributes"
            return c, f"key {key_name!r} ({attrs})"
    raise ValueError(f"no key named {key_name!r} in the config")


_ROUTE_WHY = {"header": "the x-gateway-route header names it", "name": "`model` is the route's name",
              "alias": "`model` is one of the route's aliases",
              "model": "`model` is a configured model: that model first, then its route's later fallbacks",
              "default": "no route name/alias/model given and no match rule hit: default_route"}


def _skip_reason(model: str, st: Mapping[str, Any] | None) -> str | None:
    if not st:
        return None
    state = st.get("state", "ok")
    left = st.get("until_in_s")
    if state == "withdrawn_by_operator":
        w = st.get("withdrawal") or {}
        ref = f" [{w['reference']}]" if w.get("reference") else ""
        return (f"withdrawn by {w.get('actor') or 'an operator'} at {w.get('created_at', '?')}: "
                f"{w.get('reason', '')}{ref} (contact={w.get('contact', 'never')})")
    if state == "drill":
        d = st.get("drill") or {}
        return f"drill by {d.get('actor') or 'an operator'} until {d.get('until', '?')}: {d.get('reason', '')}"
    if state in ("withdrawn", "access_denied"):
        why = f": {st['reason']}" if st.get("reason") else ""
        return f"{state} (detected upstream{why}); rechecked in {left:.0f}s" if left is not None else f"{state}{why}"
    if state == "cooling":
        return f"cooling for the provider's Retry-After ({left:.1f}s left)" if left is not None else "cooling"
    if state == "breaker_open":
        return (f"circuit breaker open (half-open probe in {left:.1f}s)" if left is not None
                else "circuit breaker open")
    return None


def explain(runtime: Runtime, request: Mapping[str, Any], *, key_name: str | None = None,
            headers: Mapping[str, str] | None = None, state: Mapping[str, Mapping[str, Any]] | None = None,
            ) -> dict[str, Any]:
    from gateway.routing.select import select_route

    caller, caller_note = _caller(runtime, key_name)
    messages = request.get("messages") or []
    header = (headers or {}).get("x-gateway-route")
    out: dict[str, Any] = {"caller": caller_note, "config_version": runtime.version,
                           "state": "live" if state else "config only"}
    try:
        choice = select_route(runtime, request.get("model"), header, messages)
    except GatewayError as e:
        out.update(route=None, error={"status": e.status, "code": e.code, "message": e.message})
        return out
    reason = choice.reason
    why = _ROUTE_WHY.get(reason, reason)
    if reason.startswith("match:"):
        i = int(reason.split(":")[1])
        why = f"match rule {i} of the route ({choice.route.patterns[i].pattern!r}) hit the last user message"
    if choice.verdict is not None:
        from gateway.routing.classify.text import request_parts

        v = choice.verdict
        user, system = request_parts(messages)
        out["classifier"] = runtime.classifier.explain(user, system=system)
        why = (f"no match rule hit; the task classifier ({v.engine}) placed it: score {v.score:.3f} >= threshold "
               f"{v.threshold:.2f}" if v.route is not None else
               f"no match rule hit and the task classifier ({v.engine}) placed it on no route ("
               + (f"nearest {v.candidate!r} scored {v.score:.3f} < threshold {v.threshold:.2f}" if v.candidate
                  else f"nearest examples belong to no classifying route, score {v.score:.3f}") + "): default_route")
    out.update(route=choice.route.name, route_reason=reason, why=why, chain=list(choice.chain))
    if caller.routes is not None and choice.route.name not in caller.routes:
        out["error"] = {"status": 403, "code": "route_not_allowed",
                        "message": f"the key may not use route {choice.route.name!r}"}
    tokens = estimate_tokens(request)
    out["prompt_tokens_estimate"] = tokens
    wants_tools = bool(request.get("tools"))
    candidates = []
    first = True
    for m in choice.chain:
        h = hop(runtime, m)
        c: dict[str, Any] = {**h, "notes": []}
        d = caller.denials.get(m)
        skip = f"denied by policy '{d.policy}': {d.reason}" if d is not None else _skip_reason(m, (state or {}).get(m))
        if skip is not None:
            c["verdict"], c["why"] = "skipped", skip
        else:
            c["verdict"] = "tried first" if first else "tried if the ones before fail"
            first = False
            if tokens > h["context_window"]:
                c["notes"].append(f"prompt ~{tokens} tokens > context window {ctx(h['context_window'])}: likely "
                                  "context_too_long, then only larger models are tried")
            if wants_tools and not h["supports_tools"]:
                c["notes"].append("request uses tools; this model has no tool calling")
        candidates.append(c)
    out["candidates"] = candidates
    if first and "error" not in out:
        out["outcome"] = "no candidate would be tried: the request fails (403 if all denied by policy, else 503)"
    return out


def withdrawals_state(runtime: Runtime, db: str | Path) -> dict[str, dict[str, Any]]:
    """Model -> state from the persisted operator withdrawals (read-only; drills and breaker/cooling state live
    only in the running gateway: use ``--url`` for those)."""
    if str(db).startswith(("postgres://", "postgresql://")):
        from gateway.audit.postgres import PostgresWithdrawalDB

        rows = [(e.target, e.name, e.reason, e.reference, e.actor, e.contact, e.created_at)
                for e in PostgresWithdrawalDB(str(db)).current() if e.kind == "withdrawal"]
    else:
        path = Path(db)
        if not path.exists():
            return {}
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT target, name, reason, reference, actor, contact, created_at FROM withdrawals"
                                ).fetchall()
        except sqlite3.Error:
            return {}
        finally:
            conn.close()
    import time

    attr = {"model": "model", "provider": "provider", "vendor": "vendor"}
    out: dict[str, dict[str, Any]] = {}
    for target, name, reason, reference, actor, contact, created in rows:
        for m in runtime.targets:
            if target in attr and hop(runtime, m)[attr[target]] == name and m not in out:
                out[m] = {"state": "withdrawn_by_operator", "withdrawal": {
                    "target": target, "name": name, "reason": reason, "reference": reference, "actor": actor,
                    "contact": contact, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))}}
    return out


def render(res: dict[str, Any], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(res, indent=2)
    out = [f"caller: {res['caller']}", f"config: {res['config_version']} (state: {res['state']})"]
    if res.get("route") is None:
        e = res["error"]
        out.append(f"no route: {e['status']} {e['code']}: {e['message']}")
        return "\n".join(out) + "\n"
    out.append(f"route: {res['route']} ({res['route_reason']}): {res['why']}")
    out.append(f"prompt: ~{res['prompt_tokens_estimate']} tokens (estimate)")
    c = res.get("classifier")
    if c:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in c["scores"].items())
        limits = ", ".join(f"{k} {v:.2f}" for k, v in c["thresholds"].items())
        out.append(f"classifier: {c['engine']} engine, outcome {c['outcome']}; scores: {scores}; thresholds: {limits}")
        out.append("  nearest examples:")
        out += [f"    {n['similarity']:.3f}  {n['route'] or '(no route)'}: {n['example']}" for n in c["nearest"]]
    if res.get("error"):
        e = res["error"]
        out.append(f"REFUSED: {e['status']} {e['code']}: {e['message']}")
    out.append("candidates:")
    for i, c in enumerate(res["candidates"]):
        line = (f"  {i}. {c['model']:<14} {c['vendor']}/{c['jurisdiction']}, {ctx(c['context_window'])} ctx  -> "
                f"{c['verdict']}")
        if c.get("why"):
            line += f": {c['why']}"
        out.append(line)
        out += [f"       note: {n}" for n in c["notes"]]
    if res.get("outcome"):
        out.append(res["outcome"])
    return "\n".join(out) + "\n"
