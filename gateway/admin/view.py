"""The live state as the admin surfaces show it: one view of every model, shared by ``GET /admin/state``
(``Gateway.describe``) and the status page's ``GET /status/data``. From memory only (no I/O); names, states and
reasons, never a secret."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.audit.wiring import model_usable

if TYPE_CHECKING:
    from gateway.admin.reload import ConfigReloader
    from gateway.failover.state import StateStore
    from gateway.failover.withdrawals import Withdrawals
    from gateway.services import LiveRuntime


def iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class StateView:
    """Read-only: the runtime in force, the models' live state, the withdrawals and drills in force, the reloads."""

    __slots__ = ("live", "clock", "state", "withdrawals", "reloader")

    def __init__(self, live: LiveRuntime, clock: Callable[[], float], state: StateStore, withdrawals: Withdrawals,
                 reloader: ConfigReloader) -> None:
        self.live = live
        self.clock = clock
        self.state = state
        self.withdrawals = withdrawals
        self.reloader = reloader

    def model_states(self) -> dict[str, dict[str, Any]]:
        """Every configured model: provider, vendor, jurisdiction, failover state (cooling, breaker, withdrawn by
        the vendor...) and, overriding the state, an operator withdrawal or drill in force."""
        rt = self.live.runtime
        now = self.clock()
        models: dict[str, dict[str, Any]] = {}
        for name, t in rt.targets.items():
            info: dict[str, Any] = {"provider": t.provider, "vendor": t.vendor, "jurisdiction": t.jurisdiction}
            info.update(self.state.describe(name))
            e = self.withdrawals.check(name)
            if e is not None:
                info["state"] = "drill" if e.kind == "drill" else "withdrawn_by_operator"
                info[e.kind] = e.public(now)
            models[name] = info
        return models

    def config_state(self) -> dict[str, Any]:
        """The running config's version and load time, and the last reload with its outcome counts."""
        rt = self.live.runtime
        r = self.reloader
        return {"version": rt.version, "loaded_at": iso(rt.loaded_at),
                "last_reload": r.last.public() if r.last else None, "reloads": dict(r.counts)}

    def usable(self, model: str) -> bool:
        return model_usable(self.state, self.withdrawals, model)
