"""Recent failovers and refusals for the status page, read from the audit store (``AuditStore.newest``).

Reads run off the event loop (``asyncio.to_thread``) on a read-only store of their own, and are cached for a
second so several open pages cost one query; nothing is added to the request path.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

from gateway.admin.view import iso
from gateway.audit.store import SQLiteAuditStore, open_store
from gateway.reports.common import failover_reason

log = logging.getLogger("gateway.admin.status")

RECENT_DEFAULT, RECENT_MAX = 20, 200  # rows of failovers and of refusals shown
RECENT_WINDOW = 24 * 3600.0  # seconds of audit history looked at
RECENT_SCAN = 2000  # newest audit rows scanned for failovers/refusals
RECENT_CACHE = 1.0  # seconds


def _attempts(row_attempts: Any) -> list[dict[str, Any]]:
    out = []
    for a in row_attempts or []:
        if isinstance(a, dict):
            out.append({"model": str(a.get("model", "")), "outcome": str(a.get("outcome", "")),
                        "status": a.get("status")})
    return out


def classify(row: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(failover, refusal) summaries of one audit row; either may be None."""
    attempts = _attempts(row.get("attempts"))
    reasons: list[str] = []
    refusals: list[dict[str, str]] = []
    for i, a in enumerate(attempts):
        if i and attempts[i - 1]["model"] != a["model"] and attempts[i - 1]["outcome"] != "ok":
            reasons.append(failover_reason(attempts[i - 1]["outcome"]))
        if a["outcome"] == "policy_blocked":
            moved = i + 1 < len(attempts) and attempts[i + 1]["model"] != a["model"]
            refusals.append({"model": a["model"], "action": "failover" if moved else "return"})
    served = row.get("served") or []
    status = row.get("status")
    base = {"time": iso(row.get("time")), "request_id": row.get("request_id"), "route": row.get("route"),
            "key_name": row.get("key_name"), "status": status,
            "served": served[-1] if served and isinstance(status, int) and status < 400 else None,
            "attempts": attempts}
    failover = {**base, "reasons": reasons} if reasons else None
    refusal = {**base, "refusals": refusals} if refusals else None
    return failover, refusal


def summarise(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The newest ``limit`` failovers and refusals among ``rows`` (newest first)."""
    out: dict[str, Any] = {"enabled": True, "window_s": RECENT_WINDOW, "failovers": [], "refusals": [],
                           "error": None}
    for row in rows:
        if len(out["failovers"]) >= limit and len(out["refusals"]) >= limit:
            break
        failover, refusal = classify(row)
        if failover is not None and len(out["failovers"]) < limit:
            out["failovers"].append(failover)
        if refusal is not None and len(out["refusals"]) < limit:
            out["refusals"].append(refusal)
    return out


class RecentActivity:
    """``await recent(limit)``: the status page's ``recent`` block, cached for ``RECENT_CACHE`` seconds."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._store: SQLiteAuditStore | None = None
        self._lock = threading.Lock()  # reads of several pages may overlap in worker threads
        self._cache: dict[str, Any] = {"at": -1e18, "limit": None, "data": None}

    def _read(self, limit: int, now: float) -> dict[str, Any]:
        """Blocking: runs in a worker thread."""
        assert self.path is not None
        if not self.path.exists():
            return summarise([], limit)
        with self._lock:
            try:
                if self._store is None:
                    self._store = open_store(self.path, readonly=True)
                rows = self._store.newest(now - RECENT_WINDOW, RECENT_SCAN)
            except Exception as e:  # sqlite3.Error, or a file that is not a database
                log.warning("status page: cannot read the audit store: %s", e)
                self.close()
                rows = None
        if rows is None:
            out = summarise([], limit)
            out["error"] = "the audit store could not be read; see the gateway log"
            return out
        return summarise(rows, limit)

    async def __call__(self, limit: int) -> dict[str, Any]:
        if self.path is None:
            return {"enabled": False, "window_s": RECENT_WINDOW, "failovers": [], "refusals": [], "error": None}
        wall = time.time()
        cache = self._cache
        if cache["limit"] == limit and wall - cache["at"] < RECENT_CACHE:
            return cache["data"]
        data = await asyncio.to_thread(self._read, limit, wall)
        cache.update(at=wall, limit=limit, data=data)
        return data

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
