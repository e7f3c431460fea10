"""The live state as the admin surfaces show it: one view of every model, shared by ``GET /admin/state``
(``Gateway.describe``) and the status page's ``GET /status/data``. From memory only (no I/O); names, states and
reasons, never a secret."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.app import Gateway


def iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def model_states(gw: Gateway) -> dict[str, dict[str, Any]]:
    """Every configured model: provider, vendor, jurisdiction, failover state (cooling, breaker, withdrawn by the
    vendor...) and, overriding the state, an operator withdrawal or drill in force."""
    rt = gw.runtime
    now = gw.clock()
    models: dict[str, dict[str, Any]] = {}
    for name, t in rt.targets.items():
        info: dict[str, Any] = {"provider": t.provider, "vendor": t.vendor, "jurisdiction": t.jurisdiction}
        info.update(gw.state.describe(name))
        e = gw.withdrawals.check(name)
        if e is not None:
            info["state"] = "drill" if e.kind == "drill" else "withdrawn_by_operator"
            info[e.kind] = e.public(now)
        models[name] = info
    return models


def config_state(gw: Gateway) -> dict[str, Any]:
    """The running config's version and load time, and the last reload with its outcome counts."""
    rt = gw.runtime
    r = gw.reloader
    return {"version": rt.version, "loaded_at": iso(rt.loaded_at),
            "last_reload": r.last.public() if r.last else None, "reloads": dict(r.counts)}
