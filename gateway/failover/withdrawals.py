"""Operator withdrawals (the kill switch) and drills: state with who/when/why.

A withdrawal names a target (``model``, ``provider`` or ``vendor``) and takes every configured model it covers
out of all traffic at once. ``contact: never`` (the default) means the gateway sends those models no request
at all (no probes, no half-open tries) until an operator reinstates them; ``contact: recheck`` lets them back
into rotation after the config's ``failover.withdrawn_recheck`` time, where the usual upstream detection takes
over. Withdrawals persist in SQLite (``WithdrawalDB``); drills (rehearsals) live in memory, end by themselves
and are recorded in the same database's event log.

The hot path never touches the database: it reads ``Withdrawals.blocks`` (model -> entry), a dict rebuilt
whenever withdrawals change or the config is swapped. Blocking DB calls run in a worker thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("gateway.withdrawals")

TARGET_KINDS = ("model", "provider", "vendor")
_TARGET_ATTR = {"model": "name", "provider": "provider", "vendor": "vendor"}  # -> providers.base.Target field


@dataclass(slots=True)
class Entry:
    kind: str  # "withdrawal" | "drill"
    target: str  # model | provider | vendor
    name: str
    reason: str = ""
    reference: str = ""
    actor: str = ""
    admin_key: str = ""
    contact: str = "never"  # never | recheck (withdrawals); drills always skip without contact
    created_at: float = 0.0  # wall clock (for people)
    until: float | None = None  # gateway clock; None = until reinstated
    until_wall: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.name)

    @property
    def outcome(self) -> str:
        return "skipped:drill" if self.kind == "drill" else "skipped:withdrawn_by_operator"

    def public(self, now: float) -> dict[str, Any]:
        d = asdict(self)
        d.pop("until")
        d["created_at"] = _iso(self.created_at)
        d["until"] = _iso(self.until_wall) if self.until_wall else None
        d["remaining_s"] = None if self.until is None else round(max(0.0, self.until - now), 3)
        return d


def _lasts(e: Entry) -> float:
    return float("inf") if e.until is None else e.until


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class WithdrawalDB:
    """SQLite (WAL) persistence: current withdrawals plus an append-only event log. Each call opens its own
    short-lived connection, so it is safe from any thread; call it via ``asyncio.to_thread``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def init(self) -> list[Entry]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self._connect() as conn:
            conn.execute("""CREATE TABLE IF NOT EXISTS withdrawals (
                target TEXT NOT NULL, name TEXT NOT NULL, reason TEXT, reference TEXT, actor TEXT, admin_key TEXT,
                contact TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (target, name))""")
            conn.execute("""CREATE TABLE IF NOT EXISTS drills (
                target TEXT NOT NULL, name TEXT NOT NULL, reason TEXT, actor TEXT, admin_key TEXT,
                created_at REAL NOT NULL, until_wall REAL NOT NULL, PRIMARY KEY (target, name))""")
            conn.execute("""CREATE TABLE IF NOT EXISTS events (
                id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, action TEXT NOT NULL, target TEXT,
                name TEXT, actor TEXT, admin_key TEXT, reason TEXT, reference TEXT, detail TEXT)""")
            return self._entries(conn)

    @staticmethod
    def _entries(conn: sqlite3.Connection) -> list[Entry]:
        """Withdrawals and running drills (shared by the workers and replicas of one ``state_dir``)."""
        rows = conn.execute("SELECT target, name, reason, reference, actor, admin_key, contact, created_at "
                            "FROM withdrawals").fetchall()
        out = [Entry("withdrawal", *r) for r in rows]
        for t, n, reason, actor, admin_key, created_at, until_wall in conn.execute(
                "SELECT target, name, reason, actor, admin_key, created_at, until_wall FROM drills").fetchall():
            out.append(Entry("drill", t, n, reason or "", "", actor or "", admin_key or "", "never", created_at,
                             None, until_wall))
        return out

    def put_drill(self, e: Entry, detail: str) -> None:
        with self._lock, self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO drills VALUES (?,?,?,?,?,?,?)",
                         (e.target, e.name, e.reason, e.actor, e.admin_key, e.created_at, e.until_wall))
            self._event(conn, "drill-started", e, detail=detail)

    def delete_drill(self, e: Entry, action: str) -> None:
        """``action``: drill-stopped (by an operator) or drill-ended (its time was up)."""
        with self._lock, self._connect() as conn:
            gone = conn.execute("DELETE FROM drills WHERE target=? AND name=?", (e.target, e.name)).rowcount
            if gone or action == "drill-stopped":  # several workers may notice the same end: log it once
                self._event(conn, action, e)

    def put(self, e: Entry) -> None:
        with self._lock, self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO withdrawals VALUES (?,?,?,?,?,?,?,?)",
                         (e.target, e.name, e.reason, e.reference, e.actor, e.admin_key, e.contact, e.created_at))
            self._event(conn, "withdraw", e)

    def delete(self, e: Entry, actor: str, admin_key: str) -> None:
        with self._lock, self._connect() as conn:
            conn.execute("DELETE FROM withdrawals WHERE target=? AND name=?", (e.target, e.name))
            self._event(conn, "reinstate", e, actor=actor, admin_key=admin_key)

    def event(self, action: str, e: Entry, detail: str = "") -> None:
        with self._lock, self._connect() as conn:
            self._event(conn, action, e, detail=detail)

    def version(self) -> int:
        """Grows with every change (the event log's last id): cheap to poll."""
        with self._lock, self._connect() as conn:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def mirror(self, entries: list[Entry]) -> bool:
        """Make the current withdrawals and drills exactly ``entries`` (the fleet's set, adopted from a replica that
        does not share this database), so that the gateway's poll of this database and a restart keep them.
        Logged once as a ``fleet-sync`` event; no change, no write. True when it wrote."""
        def key(e: Entry) -> tuple:
            return (e.kind, e.target, e.name, e.reason, e.reference, e.actor, e.contact, e.created_at,
                    e.until_wall if e.kind == "drill" else None)

        with self._lock, self._connect() as conn:
            if sorted(map(key, self._entries(conn))) == sorted(map(key, entries)):
                return False
            conn.execute("DELETE FROM withdrawals")
            conn.execute("DELETE FROM drills")
            for e in entries:
                if e.kind == "drill":
                    conn.execute("INSERT OR REPLACE INTO drills VALUES (?,?,?,?,?,?,?)",
                                 (e.target, e.name, e.reason, e.actor, e.admin_key, e.created_at, e.until_wall))
                else:
                    conn.execute("INSERT OR REPLACE INTO withdrawals VALUES (?,?,?,?,?,?,?,?)",
                                 (e.target, e.name, e.reason, e.reference, e.actor, e.admin_key, e.contact,
                                  e.created_at))
            conn.execute("INSERT INTO events (at, action, detail) VALUES (?,?,?)",
                         (time.time(), "fleet-sync", f"{len(entries)} withdrawal(s)/drill(s) from the fleet"))
        return True

    def last_change(self) -> float:
        """Wall-clock time of the last recorded change (0.0 when none): a fleet's shared copy of the withdrawals
        that is newer than this holds changes made through replicas that do not share this database."""
        with self._lock, self._connect() as conn:
            return float(conn.execute("SELECT coalesce(max(at), 0) FROM events").fetchone()[0])

    def current(self) -> list[Entry]:
        with self._lock, self._connect() as conn:
            return self._entries(conn)

    def snapshot(self) -> tuple[int, list[Entry]]:
        """``version()`` and ``current()`` from one read transaction (consistent with each other)."""
        with self._lock, self._connect() as conn:
            conn.execute("BEGIN")
            try:
                version = int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
                entries = self._entries(conn)
            finally:
                conn.rollback()
        return version, entries

    def events(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock, self._connect() as conn:
            rows = conn.execute("SELECT at, action, target, name, actor, admin_key, reason, reference, detail "
                                "FROM events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        cols = ("at", "action", "target", "name", "actor", "admin_key", "reason", "reference", "detail")
        return [dict(zip(cols, (_iso(r[0]), *r[1:]), strict=True)) for r in rows]

    @staticmethod
    def _event(conn: sqlite3.Connection, action: str, e: Entry, *, actor: str | None = None,
               admin_key: str | None = None, detail: str = "") -> None:
        conn.execute("INSERT INTO events (at, action, target, name, actor, admin_key, reason, reference, detail) "
                     "VALUES (?,?,?,?,?,?,?,?,?)",
                     (time.time(), action, e.target, e.name, actor if actor is not None else e.actor,
                      admin_key if admin_key is not None else e.admin_key, e.reason, e.reference, detail))


class Withdrawals:
    """The in-memory view. Mutated only on the event loop (admin API, startup); read by the hot path."""

    def __init__(self, clock: Callable[[], float], wall: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.wall = wall
        self.withdrawals: dict[tuple[str, str], Entry] = {}
        self.drills: dict[tuple[str, str], Entry] = {}
        self.blocks: dict[str, Entry] = {}  # model -> the entry that takes it out of traffic (hot path reads this)
        self._targets: Mapping[str, Any] = {}
        self._recheck = 900.0
        # For the cross-worker sync: ``generation`` grows with every local change (and when its DB write is done),
        # ``pending`` counts local DB writes in flight. A DB read that overlapped either is stale: not adopted.
        self.generation = 0
        self.pending = 0

    # -- queries -----------------------------------------------------------------------------------------
    def check(self, model: str) -> Entry | None:
        """The hot-path lookup: the entry that blocks this model now, or None."""
        e = self.blocks.get(model)
        if e is None:
            return None
        if e.until is not None and self.clock() >= e.until:
            return None  # a drill or recheck window that has ended; ``expire`` tidies up
        return e

    def covers(self, e: Entry, target: Any) -> bool:
        return getattr(target, _TARGET_ATTR[e.target]) == e.name

    def matching(self, target_kind: str, name: str) -> list[str]:
        attr = _TARGET_ATTR[target_kind]
        return sorted(m for m, t in self._targets.items() if getattr(t, attr) == name)

    # -- changes -----------------------------------------------------------------------------------------
    def configure(self, targets: Mapping[str, Any], recheck: float) -> None:
        """A (new) config snapshot: re-resolve targets; withdrawals of names that vanished stay listed."""
        self._targets = targets
        self._recheck = recheck
        self._rebuild()

    def load(self, entries: list[Entry]) -> None:
        now_wall, now = self.wall(), self.clock()
        for e in entries:
            if e.kind == "drill":
                if e.until_wall is not None and e.until_wall > now_wall:  # an ended drill is not revived
                    e.until = now + (e.until_wall - now_wall)
                    self.drills[e.key] = e
                continue
            if e.contact == "recheck":
                e.until_wall = e.created_at + self._recheck
                e.until = now + (e.until_wall - now_wall)
            self.withdrawals[e.key] = e
        self._rebuild()

    def replace(self, entries: list[Entry]) -> None:
        """Adopt the withdrawals and drills another process (worker or replica sharing ``state_dir``) wrote."""
        self.withdrawals = {}
        self.drills = {}
        self.load(entries)

    def add(self, e: Entry, duration: float | None = None) -> Entry:
        e.created_at = self.wall()
        if e.kind == "drill":
            assert duration is not None
            e.until, e.until_wall = self.clock() + duration, e.created_at + duration
            self.drills[e.key] = e
        else:
            if e.contact == "recheck":
                e.until, e.until_wall = self.clock() + self._recheck, e.created_at + self._recheck
            self.withdrawals[e.key] = e
        self.generation += 1
        self._rebuild()
        return e

    def remove(self, kind: str, target: str, name: str) -> Entry | None:
        table = self.drills if kind == "drill" else self.withdrawals
        e = table.pop((target, name), None)
        self.generation += 1
        self._rebuild()
        return e

    def expire(self) -> list[Entry]:
        """Drop drills whose time is up (they end by themselves); return them for logging."""
        now = self.clock()
        ended = [e for e in self.drills.values() if e.until is not None and now >= e.until]
        for e in ended:
            del self.drills[e.key]
        if ended:
            self._rebuild()
        return ended

    def _rebuild(self) -> None:
        blocks: dict[str, Entry] = {}
        # Per model, the entry that lasts longest (``check`` ignores an entry whose time is up, so a short one must
        # not hide a longer one: an expired recheck window must not lift a ``contact: never`` vendor withdrawal).
        # Withdrawals first, so on a tie a drill on an already withdrawn model does not hide the real withdrawal.
        for table in (self.withdrawals, self.drills):
            for e in table.values():
                for m, t in self._targets.items():
                    if self.covers(e, t):
                        cur = blocks.get(m)
                        if cur is None or _lasts(e) > _lasts(cur):
                            blocks[m] = e
        self.blocks = blocks  # swapped whole: a concurrent reader sees the old or the new dict

    def model_state(self, model: str) -> Entry | None:
        return self.check(model)
