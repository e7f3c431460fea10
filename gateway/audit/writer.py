"""The audit writer: ``submit`` puts a record on a bounded in-memory queue and returns at once (it never blocks,
never raises, never does I/O); a background task writes batches of up to ``batch_size`` records, every ``linger``
seconds, as one SQLite transaction. The insert runs on the event loop, not in a worker thread: measured at 32
connections, handing each batch to a thread cost ~80 us of CPU per request (thread switches and GIL contention)
against ~10 us inline, and a batch of a few hundred rows takes about a millisecond. What could take longer, the
WAL checkpoint (the only fsync with ``synchronous=NORMAL``), runs in a thread on its own connection
(``checkpoint_every``), as do opening, pruning and closing. When the queue is
full the record is dropped and counted (``gateway_audit_dropped_total``; an alert fires on it). ``aclose`` writes
everything still queued, so a graceful shutdown (SIGTERM: uvicorn finishes in-flight requests, then the lifespan
shutdown calls ``aclose``) loses nothing that was answered.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.audit.store import AuditStore, record_to_row

log = logging.getLogger("gateway.audit")

PRUNE_EVERY = 3600.0  # seconds between retention passes
RETRY_UNAVAILABLE = 1.0  # seconds between write attempts while a network audit store is unavailable


class _Unavailable(Exception):
    """The batch went back on the queue: the store is away."""


class AuditWriter:
    def __init__(self, store: AuditStore, *, queue_size: int = 10000, batch_size: int = 500, linger: float = 0.05,
                 retention: float | None = None, metrics: Any = None, redact: Callable[[str], str] | None = None,
                 keep_prompt_hash: bool = False, wall: Callable[[], float] = time.time,
                 checkpoint_every: int = 5000) -> None:
        self.store = store
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.linger = linger
        self.checkpoint_every = checkpoint_every  # rows between WAL checkpoints (in a thread)
        self._since_checkpoint = 0
        self.retention = retention
        self.metrics = metrics
        self.redact = redact or (lambda s: s)
        self.keep_prompt_hash = keep_prompt_hash
        self.wall = wall
        self._queue: collections.deque[Any] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._last_prune = 0.0
        self.written = 0
        self.dropped = 0
        self.batches = 0
        self.unavailable = False  # a network store (PostgreSQL) is away; records are buffered
        if metrics is not None:
            metrics.audit_queue_depth.set_function(lambda: len(self._queue))

    # -- request path --------------------------------------------------------------------------------------
    def submit(self, record: Any) -> bool:
        """Queue one ``RequestRecord``. False (and counted as dropped) when the queue is full or closed."""
        try:
            if self._closed or len(self._queue) >= self.queue_size:
                self._drop(1, "queue full" if not self._closed else "writer closed")
                return False
            self._queue.append(record)
            if self._wake is not None and not self._wake.is_set():
                self._wake.set()
            return True
        except Exception:
            with contextlib.suppress(Exception):
                log.exception("audit submit failed")
            return False

    @property
    def depth(self) -> int:
        return len(self._queue)

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        await asyncio.to_thread(self.store.open)
        await self._prune()
        self._wake = asyncio.Event()
        if self._queue:
            self._wake.set()
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def flush(self) -> None:
        """Write everything queued so far (tests, and ``aclose``)."""
        while self._queue:
            await self._write_batch()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closing = True
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        else:
            await asyncio.to_thread(self.store.open)
        await self.flush()  # anything submitted while the task was finishing, or when it never started
        self._closed = True
        await asyncio.to_thread(self.store.close)
        if self.dropped:
            log.warning("audit writer closed: %d written, %d dropped", self.written, self.dropped)

    # -- background ----------------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.linger and not self._closing and len(self._queue) < self.batch_size:
                await asyncio.sleep(self.linger)  # let a burst gather into one transaction
            try:
                await self._write_batch()
                if self.retention and self.wall() - self._last_prune > PRUNE_EVERY:
                    await self._prune()
            except asyncio.CancelledError:
                raise
            except _Unavailable:
                # Wait for the database (or for shutdown, which writes or drops what is left).
                for _ in range(10):
                    if self._closing:
                        break
                    await asyncio.sleep(RETRY_UNAVAILABLE / 10)
            except Exception:
                log.exception("audit writer loop error")

    async def _store_write(self, rows: list[dict[str, Any]]) -> None:
        """Every batch is written from a worker thread, never on the event loop: neither a slow database nor
        another worker's lock on a shared SQLite file (busy timeout 10 s) nor a prune can stall requests."""
        await asyncio.to_thread(self.store.write, rows)

    def _requeue(self, records: list[Any]) -> None:
        """The database is away: keep the batch (ahead of newer records) up to ``queue_size``; the rest is dropped
        and counted. Nothing blocks a request meanwhile: ``submit`` drops when the queue is full."""
        room = self.queue_size - len(self._queue)
        keep = records[:max(0, room)]
        self._queue.extendleft(reversed(keep))
        if len(records) > len(keep):
            self._drop(len(records) - len(keep), "database unavailable, queue full")

    async def _write_batch(self) -> None:
        n = min(len(self._queue), self.batch_size)
        records = [self._queue.popleft() for _ in range(n)]
        if not records:
            return
        rows = []
        kept = []
        for r in records:
            try:
                rows.append(record_to_row(r, self.redact, self.keep_prompt_hash))
                kept.append(r)
            except Exception:
                log.exception("audit record could not be converted")
                self._drop(1, "bad record")
        for attempt in range(3):
            try:
                await self._store_write(rows)
                if self.unavailable:
                    self.unavailable = False
                    log.warning("audit store reachable again: writing the %d buffered record(s)", len(self._queue))
                break
            except Exception as e:  # noqa: BLE001
                if attempt == 2:
                    if getattr(self.store, "buffers_when_unavailable", False) and not self._closing:
                        if not self.unavailable:
                            self.unavailable = True
                            log.error("audit store unavailable, buffering up to %d records: %s", self.queue_size, e)
                        self._requeue(kept)
                        raise _Unavailable from None
                    log.error("audit write failed, %d records lost: %s", len(rows), e)
                    self._drop(len(rows), "write failed")
                    return
                await asyncio.sleep(0.2 * (attempt + 1))
        self.written += len(rows)
        self.batches += 1
        self._since_checkpoint += len(rows)
        if self._since_checkpoint >= self.checkpoint_every:
            self._since_checkpoint = 0
            try:  # the rows are committed: a failed checkpoint must not send them round the write retries
                await asyncio.to_thread(self.store.checkpoint)
            except Exception as e:  # noqa: BLE001
                log.warning("audit WAL checkpoint failed (retried after the next %d rows): %s",
                            self.checkpoint_every, e)

    async def _prune(self) -> None:
        if not self.retention:
            return
        self._last_prune = self.wall()
        try:
            n = await asyncio.to_thread(self.store.prune, self.wall() - self.retention)
            if n:
                log.info("audit retention: removed %d records older than %.0fs", n, self.retention)
        except Exception:
            log.exception("audit retention pass failed")

    def _drop(self, n: int, why: str) -> None:
        self.dropped += n
        if self.metrics is not None:
            self.metrics.audit_dropped.inc(n)
        if self.dropped == n or self.dropped % 1000 < n:  # the first drop, then every ~1000
            log.warning("audit: dropped %d record(s) (%s); %d dropped so far", n, why, self.dropped)
