"""Audit storage. ``AuditStore`` is the interface (rows are plain dicts, see ``record_to_row``); ``SQLiteAuditStore``
is the default backend (WAL). A PostgreSQL backend implements the same six methods over the same columns
(``attempts``/``served``/``chain``/``usage``/``caller`` as JSONB).

Prompt and completion text are never part of a row; ``prompt_hash`` is set only when the config opts in.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from gateway.observability.record import RequestRecord

COLUMNS = ("request_id", "time", "key_name", "route", "route_reason", "stream", "status", "latency", "served",
           "chain", "usage", "caller", "error", "prompt_hash", "attempts", "dialect")
_JSON_COLUMNS = ("served", "chain", "usage", "caller", "attempts")
MESSAGE_LIMIT = 300  # attempt messages (upstream error text, policy reasons) are truncated and redacted


class AuditStore(Protocol):
    def open(self) -> None:
        """Create the schema if needed. Called once, off the event loop."""

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append rows atomically (one transaction per batch). Called on the event loop, so it must be quick and
        local (SQLite with checkpoints off: ~10 us a row); a backend whose write can block on a network (PostgreSQL)
        hands it to its own thread or connection pool."""

    def checkpoint(self) -> None:
        """Flush the write-ahead log to the main store (called from a worker thread, occasionally)."""

    def prune(self, before: float) -> int:
        """Delete rows older than ``before`` (epoch seconds); return how many."""

    def rows(self, since: float, until: float | None = None, route: str | None = None) -> Iterator[dict[str, Any]]:
        """Rows with ``since <= time < until``, oldest first, JSON columns decoded."""

    def newest(self, since: float, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` rows with ``time >= since``, newest first, JSON columns decoded (a row whose JSON
        cannot be decoded is left out). For the status page: bounded, whatever the store holds."""

    def close(self) -> None: ...


def record_to_row(r: RequestRecord, redact: Callable[[str], str] = lambda s: s,
                  keep_prompt_hash: bool = False) -> dict[str, Any]:
    """A ``RequestRecord`` as an audit row. Attempt messages are redacted and truncated; nothing else in a record
    can carry a secret (the key *name* only, never the key)."""
    attempts = []
    for a in r.attempts:
        d: dict[str, Any] = {"model": a.model, "provider": a.provider, "vendor": a.vendor, "outcome": a.outcome,
                             "status": a.status, "latency": round(a.latency, 6)}
        if a.message:
            d["message"] = redact(a.message[:MESSAGE_LIMIT])
        if a.retry_after is not None:
            d["retry_after"] = a.retry_after
        attempts.append(d)
    return {
        "request_id": r.request_id, "time": r.time, "key_name": r.key_name, "route": r.route,
        "route_reason": r.route_reason, "stream": bool(r.stream), "status": r.status, "latency": r.latency,
        "served": list(r.served), "chain": list(r.chain), "usage": r.usage, "caller": dict(r.caller),
        "error": r.error, "prompt_hash": r.prompt_hash if keep_prompt_hash else None, "attempts": attempts,
        "dialect": r.dialect,
    }


def rows_query(columns: Sequence[str], mark: str, since: float, until: float | None,
               route: str | None) -> tuple[str, list[Any]]:
    """The ``rows()`` SELECT for either store: ``mark`` is the driver's placeholder (``?`` or ``%s``)."""
    sql = f"SELECT {', '.join(columns)} FROM requests WHERE time >= {mark}"
    args: list[Any] = [since]
    if until is not None:
        sql += f" AND time < {mark}"
        args.append(until)
    if route is not None:
        sql += f" AND route = {mark}"
        args.append(route)
    return sql + " ORDER BY time, id", args


class SQLiteAuditStore:
    """One connection guarded by a lock (the writer calls it from worker threads). ``readonly`` for reports."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._columns: tuple[str, ...] = COLUMNS  # what the file has (an older file may lack later columns)

    def open(self) -> None:
        if self._conn is not None:
            return
        if self.readonly:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                         timeout=10)
            self._columns = _present(self._conn)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints (the fsync) are run by ``checkpoint`` from a worker thread, never inside a write on the loop.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("""CREATE TABLE IF NOT EXISTS requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, time REAL NOT NULL, key_name TEXT,
            route TEXT NOT NULL, route_reason TEXT, stream INTEGER NOT NULL, status INTEGER NOT NULL,
            latency REAL NOT NULL, served TEXT, chain TEXT, usage TEXT, caller TEXT, error TEXT, prompt_hash TEXT,
            attempts TEXT)""")
        if "dialect" not in _present(conn):  # added with the inbound dialects; older files get the column
            conn.execute("ALTER TABLE requests ADD COLUMN dialect TEXT")
        conn.execute("CREATE INDEX IF NOT EXISTS requests_time ON requests (time)")
        conn.execute("CREATE INDEX IF NOT EXISTS requests_route_time ON requests (route, time)")
        conn.commit()
        self._conn = conn

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        return self._conn

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        # orjson, not json: this runs for every request (json.dumps cost ~15 us a row here).
        values = [tuple(orjson.dumps(row[c]).decode() if c in _JSON_COLUMNS else
                        (int(row[c]) if c == "stream" else row[c]) for c in COLUMNS) for row in rows]
        sql = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        with self._lock:
            conn = self._c()
            with conn:
                conn.executemany(sql, values)

    def checkpoint(self) -> None:
        """Move the WAL into the database file. Its own connection: writers on the main one are not held up."""
        if self.readonly or not self.path.exists():
            return
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def prune(self, before: float) -> int:
        with self._lock:
            conn = self._c()
            with conn:
                return conn.execute("DELETE FROM requests WHERE time < ?", (before,)).rowcount

    def count(self) -> int:
        with self._lock:
            return self._c().execute("SELECT count(*) FROM requests").fetchone()[0]

    def rows(self, since: float, until: float | None = None, route: str | None = None) -> Iterator[dict[str, Any]]:
        self._c()
        columns = self._columns
        sql, args = rows_query(columns, "?", since, until, route)
        with self._lock:
            fetched = self._c().execute(sql, args).fetchall()
        for values in fetched:
            row = dict.fromkeys(COLUMNS)
            row.update(zip(columns, values, strict=True))
            for c in _JSON_COLUMNS:
                row[c] = json.loads(row[c]) if row[c] is not None else None
            row["stream"] = bool(row["stream"])
            yield row

    def newest(self, since: float, limit: int) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM requests WHERE time >= ? ORDER BY time DESC, id DESC LIMIT ?"
        with self._lock:
            fetched = self._c().execute(sql, (since, limit)).fetchall()
        out = []
        for values in fetched:
            row = dict(zip(COLUMNS, values, strict=True))
            try:
                for c in _JSON_COLUMNS:
                    row[c] = orjson.loads(row[c]) if row[c] is not None else None
            except orjson.JSONDecodeError:
                continue
            row["stream"] = bool(row["stream"])
            out.append(row)
        return out

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _present(conn: sqlite3.Connection) -> tuple[str, ...]:
    have = {r[1] for r in conn.execute("PRAGMA table_info(requests)")}
    return tuple(c for c in COLUMNS if c in have) if have else COLUMNS


def open_store(path: str | Path, readonly: bool = False) -> AuditStore:
    """The backend for a configured location: a file path (SQLite) or a ``postgresql://`` URL."""
    text = str(path)
    if text.startswith(("postgres://", "postgresql://")):
        from gateway.audit.postgres import PostgresAuditStore

        return PostgresAuditStore(text, readonly=readonly)
    return SQLiteAuditStore(path, readonly=readonly)
