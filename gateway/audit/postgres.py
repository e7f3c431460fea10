"""PostgreSQL for a fleet's durable records (``store: {backend: postgres, url}``): the audit log
(``PostgresAuditStore``, the ``AuditStore`` interface) and the operator withdrawals, drills and their event log
(``PostgresWithdrawalDB``, the ``WithdrawalDB`` interface and SQL). Same tables and columns as SQLite, so one
database serves every replica; the audit's JSON columns are JSONB.

Everything here blocks (psycopg, synchronous): callers run it in a worker thread, never on the event loop.
Connection errors surface as exceptions; the audit writer buffers and counts, the withdrawal paths report them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from gateway.audit.store import _JSON_COLUMNS, COLUMNS, rows_query
from gateway.failover.withdrawals import Entry, WithdrawalDB

CONNECT_TIMEOUT = 3  # seconds


def connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, application_name="llm-gateway")


def redacted(url: str) -> str:
    """The URL without its password (for logs, /admin/state and error messages), in every form libpq accepts:
    ``user:pass@`` (also with an empty user or an unencoded ``@`` in the password: the host follows the last
    ``@``), a ``password=`` query parameter, and a ``key=value`` connection string."""
    import re

    m = re.match(r"([A-Za-z][\w+.-]*://)([^?#]*)(.*)$", url, re.S)
    if m is None:  # a key=value connection string
        return re.sub(r"(?i)\b(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    scheme, rest, query = m.groups()
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = userinfo.split(":", 1)[0] + ":***@" + host
    return scheme + rest + re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", query)


def _schema(conn: Any, statements: Sequence[str]) -> None:
    """Create tables once, even when every worker of a fleet starts at the same moment (an advisory lock makes
    concurrent ``CREATE TABLE IF NOT EXISTS`` safe)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7226510301)")
        for s in statements:
            conn.execute(s)


AUDIT_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS requests (
        id BIGSERIAL PRIMARY KEY, request_id TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, key_name TEXT,
        route TEXT NOT NULL, route_reason TEXT, stream BOOLEAN NOT NULL, status INTEGER NOT NULL,
        latency DOUBLE PRECISION NOT NULL, served JSONB, chain JSONB, usage JSONB, caller JSONB, error TEXT,
        prompt_hash TEXT, attempts JSONB, dialect TEXT)""",
    "ALTER TABLE requests ADD COLUMN IF NOT EXISTS dialect TEXT",  # tables made before the inbound dialects
    "CREATE INDEX IF NOT EXISTS requests_time ON requests (time)",
    "CREATE INDEX IF NOT EXISTS requests_route_time ON requests (route, time)",
)


class PostgresAuditStore:
    """``AuditStore`` on PostgreSQL: one connection, guarded by a lock, re-opened after a failure."""

    buffers_when_unavailable = True  # a failed write is retried later (records stay queued up to queue_size)

    def __init__(self, url: str, readonly: bool = False) -> None:
        self.url = url
        self.readonly = readonly
        self.path = redacted(url)  # what reports print as "the database"
        self._conn: Any = None
        self._lock = threading.Lock()

    def _c(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url)
            if not self.readonly:
                _schema(self._conn, AUDIT_SCHEMA)
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001, S110 - already broken
                pass
        self._conn = None

    def open(self) -> None:
        with self._lock:
            try:
                self._c()
            except Exception:
                self._reset()
                raise

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        values = [tuple(orjson.dumps(row[c]).decode() if c in _JSON_COLUMNS else
                        (bool(row[c]) if c == "stream" else row[c]) for c in COLUMNS) for row in rows]
        marks = ", ".join("%s::jsonb" if c in _JSON_COLUMNS else "%s" for c in COLUMNS)
        sql = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({marks})"
        with self._lock:
            try:
                conn = self._c()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(sql, values)
            except Exception:
                self._reset()
                raise

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself."""

    def prune(self, before: float) -> int:
        with self._lock:
            try:
                conn = self._c()
                with conn.transaction():
                    return int(conn.execute("DELETE FROM requests WHERE time < %s", (before,)).rowcount)
            except Exception:
                self._reset()
                raise

    def count(self) -> int:
        with self._lock:
            conn = self._c()
            with conn.transaction():
                return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])

    def rows(self, since: float, until: float | None = None, route: str | None = None) -> Iterator[dict[str, Any]]:
        sql, args = rows_query(COLUMNS, "%s", since, until, route)
        yield from self._select(sql, args)

    def newest(self, since: float, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` rows with ``time >= since``, newest first (the status page's recent activity)."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM requests WHERE time >= %s ORDER BY time DESC, id DESC LIMIT %s"
        return list(self._select(sql, [since, limit]))

    def _select(self, sql: str, args: Sequence[Any]) -> Iterator[dict[str, Any]]:
        with self._lock:
            conn = self._c()
            with conn.transaction():
                fetched = conn.execute(sql, args).fetchall()
        for values in fetched:
            row = dict(zip(COLUMNS, values, strict=True))
            for c in _JSON_COLUMNS:
                if isinstance(row[c], str):  # JSONB comes back decoded; text does not
                    row[c] = json.loads(row[c])
            row["stream"] = bool(row["stream"])
            yield row

    def close(self) -> None:
        with self._lock:
            self._reset()


WITHDRAWAL_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS withdrawals (
        target TEXT NOT NULL, name TEXT NOT NULL, reason TEXT, reference TEXT, actor TEXT, admin_key TEXT,
        contact TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (target, name))""",
    """CREATE TABLE IF NOT EXISTS drills (
        target TEXT NOT NULL, name TEXT NOT NULL, reason TEXT, actor TEXT, admin_key TEXT,
        created_at DOUBLE PRECISION NOT NULL, until_wall DOUBLE PRECISION NOT NULL, PRIMARY KEY (target, name))""",
    """CREATE TABLE IF NOT EXISTS events (
        id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, action TEXT NOT NULL, target TEXT, name TEXT,
        actor TEXT, admin_key TEXT, reason TEXT, reference TEXT, detail TEXT)""",
)

_UPSERT = {
    "INSERT OR REPLACE INTO withdrawals VALUES (?,?,?,?,?,?,?,?)":
        "INSERT INTO withdrawals VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (target, name) DO UPDATE SET "
        "reason=EXCLUDED.reason, reference=EXCLUDED.reference, actor=EXCLUDED.actor, admin_key=EXCLUDED.admin_key, "
        "contact=EXCLUDED.contact, created_at=EXCLUDED.created_at",
    "INSERT OR REPLACE INTO drills VALUES (?,?,?,?,?,?,?)":
        "INSERT INTO drills VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (target, name) DO UPDATE SET "
        "reason=EXCLUDED.reason, actor=EXCLUDED.actor, admin_key=EXCLUDED.admin_key, "
        "created_at=EXCLUDED.created_at, until_wall=EXCLUDED.until_wall",
}


class _PgConn:
    """A psycopg connection that runs ``WithdrawalDB``'s SQLite statements (``?`` placeholders, ``INSERT OR
    REPLACE``): one set of queries for both databases. ``with`` commits (or rolls back) and closes."""

    def __init__(self, url: str) -> None:
        self._conn = connect(url)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql == "BEGIN":
            return None  # psycopg opens the transaction by itself
        return self._conn.execute(_UPSERT.get(sql) or sql.replace("?", "%s"), tuple(params))

    def rollback(self) -> None:
        self._conn.rollback()

    def __enter__(self) -> _PgConn:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            if exc_type is None:
                self._conn.commit()
            else:
                self._conn.rollback()
        finally:
            self._conn.close()


class PostgresWithdrawalDB(WithdrawalDB):
    """``WithdrawalDB`` on PostgreSQL (shared by every replica). Call it via ``asyncio.to_thread``."""

    def __init__(self, url: str) -> None:
        super().__init__(redacted(url))
        self.path = redacted(url)  # type: ignore[assignment]  # shown by /admin/state as "state_db"
        self.url = url

    def _connect(self) -> Any:  # type: ignore[override]
        return _PgConn(self.url)

    def init(self) -> list[Entry]:
        conn = connect(self.url)
        try:
            _schema(conn, WITHDRAWAL_SCHEMA)
        finally:
            conn.close()
        with self._lock, self._connect() as c:
            return self._entries(c)  # type: ignore[arg-type]
