"""``Fleet``: this worker's membership of a fleet that shares live state through a ``SharedStore`` (Redis).

Built once at start-up from explicit parts (the store, this worker's ``FleetState``, the operator ``Withdrawals``
view and a function that re-reads the durable withdrawals). It owns three background tasks:

- the subscriber: applies marks, clears and kill-switch changes other workers publish, and acknowledges each
  kill-switch change once it is in force here;
- the heartbeat: announces this worker every ``HEARTBEAT`` seconds (the admin call waits for the workers seen in
  the last ``LIVE_WITHIN`` seconds);
- the publisher: sends what ``FleetState`` queued (marks, clears, probe requests), in order, off the request path.

When the store is unreachable every worker goes on with local state: ``up`` turns False (``gateway_state_store_up``
0), one log line per transition, no request fails because of it; remote marks hold until they end, withdrawals
stay enforced from the last known set and the durable store (polled by the gateway). On reconnect, state
resyncs: marks are read back, this worker's own marks re-shared, withdrawals re-read from the durable store.

Kill switch: ``propagate`` publishes a change (already written to the durable store and applied here) and returns
when every live worker acknowledged that it applied it, or after ``ack_timeout`` naming those that did not. A worker
seen live in the last ``STALE_AFTER`` seconds that stopped heartbeating without leaving is not waited for but is
named as not having applied it (the call never claims "complete" for a worker it could not hear from).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.state.live import CLAIM_TTL, FleetState
from gateway.state.store import RedisStore, SharedStore, StoreUnavailable

log = logging.getLogger("gateway.fleet")

HEARTBEAT = 0.5  # seconds between heartbeats
LIVE_WITHIN = 2.0  # a worker whose last heartbeat is older is not waited for
RECONNECT_MAX = 2.0  # seconds, the longest wait between reconnection attempts
SETTLE = 0.02  # seconds between applying a kill-switch change and acknowledging it (see _on_message)
OUTBOX_LIMIT = 10000  # queued messages while the store is slow; beyond it, the oldest are dropped


def worker_identity() -> tuple[str, str]:
    """(replica, worker): the replica is ``$GATEWAY_REPLICA`` (a pod name) or the host name; the worker adds the pid."""
    replica = os.environ.get("GATEWAY_REPLICA") or os.environ.get("HOSTNAME") or socket.gethostname()
    return replica, f"{replica}/{os.getpid()}"


class Fleet:
    def __init__(self, store: SharedStore, state: FleetState, withdrawals: Any,
                 reread: Callable[[], Awaitable[list[Any] | None]], *, replica: str, worker: str,
                 last_change: Callable[[], Awaitable[float]] | None = None,
                 mirror: Callable[[list[Any]], Awaitable[Any]] | None = None,
                 ack_timeout: float = 2.0, lifecycle: Callable[..., None] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.state = state
        self.withdrawals = withdrawals
        self.reread = reread  # -> the durable store's withdrawals and drills (None when there is none)
        self.replica = replica
        self.worker = worker
        self.ack_timeout = ack_timeout
        self._lifecycle = lifecycle
        self.wall = wall
        self.up = False
        self.transitions = 0
        self.started_at = wall()
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._acks: dict[str, tuple[set[str], asyncio.Event, set[str]]] = {}  # change id -> (acked, done, expect)
        self._probe_pending: set[str] = set()
        # Workers seen live (worker -> wall time): one that stops heartbeating without leaving (frozen, partitioned,
        # or not yet back after a Redis restart that lost the workers hash) is named as not having applied a change
        # for STALE_AFTER, instead of silently dropping out of the set the admin call answers for.
        self._known: dict[str, float] = {}
        self._unpublished = False  # a kill-switch change made here while the store was down: announce on resync
        self.last_change = last_change  # -> wall time of the durable store's last change
        self.known_at = 0.0  # wall time of the change the withdrawals in force here reflect
        # A durable store this replica does not share with the fleet (SQLite in state_dir): kept equal to the
        # fleet's set, so that the gateway's poll of it and a restart do not undo a change made elsewhere.
        self.mirror = mirror
        state.outbox = self._queue
        state.request_probe = self._want_probe

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._outbox = asyncio.Queue()
        loop = asyncio.get_running_loop()
        if self.last_change is not None:
            with contextlib.suppress(Exception):
                self.known_at = await self.last_change()
        try:
            await self.store.connect()
            await self._resync()
            self._set_up(True, "connected")
        except StoreUnavailable as e:
            self._set_up(False, str(e))
        self._tasks = [loop.create_task(self._subscriber(), name="fleet-subscriber"),
                       loop.create_task(self._heartbeats(), name="fleet-heartbeat"),
                       loop.create_task(self._publisher(), name="fleet-publisher")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.store.leave(self.worker), 1.0)
            await asyncio.wait_for(self.store.publish({"t": "leave", "o": self.worker}), 1.0)
        await self.store.close()

    def _set_up(self, up: bool, why: str) -> None:
        if up == self.up and self.transitions:
            return
        self.up = up
        self.state.shared = up
        self.transitions += 1
        # One line per transition: the JSON lifecycle event when the gateway gave us its log, else a plain line.
        if self._lifecycle is not None:
            self._lifecycle("state_store_up" if up else "state_store_down", worker=self.worker, reason=why)
        elif up:
            log.warning("state store up: live state is shared with the fleet (%s)", self.worker)
        else:
            log.warning("state store DOWN: this worker goes on with local state (%s): %s", self.worker, why)

    # -- outgoing --------------------------------------------------------------------------------------------
    def _queue(self, msg: dict[str, Any]) -> None:
        """Called synchronously by ``FleetState`` (on the event loop): never blocks, never raises."""
        q = self._outbox
        if q is None:
            return
        if q.qsize() >= OUTBOX_LIMIT:
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
        q.put_nowait(msg)

    def _want_probe(self, model: str, epoch: str) -> None:
        if model not in self._probe_pending and self.up:
            self._probe_pending.add(model)
            self._queue({"t": "probe", "m": model, "e": epoch})

    async def _publisher(self) -> None:
        assert self._outbox is not None
        while True:
            msg = await self._outbox.get()
            try:
                await self._send(msg)
            except StoreUnavailable as e:
                self._set_up(False, str(e))
                if msg["t"] == "probe":
                    self._probe_pending.discard(msg["m"])
            except Exception:
                log.exception("fleet publisher error")

    async def _send(self, msg: dict[str, Any]) -> None:
        t, model = msg["t"], msg.get("m", "")
        if t == "mark":
            body = {"k": msg["k"], "u": msg["u"], "msg": msg.get("msg", ""), "o": self.worker, "n": msg.get("n", 0)}
            await self.store.put_mark(model, body, {**msg, "o": self.worker})
        elif t == "clear":
            await self.store.clear_mark(model, {"t": "clear", "m": model, "o": self.worker})
        elif t == "release":
            await self.store.release_probe(f"{model}:{msg['e']}", self.worker)
        elif t == "extend":
            await self.store.extend_probe(f"{model}:{msg['e']}", self.worker, self.state.probe_ttl)
        elif t == "probe":
            try:
                # One token per opening of the breaker (epoch: its end time as published): a worker that has not
                # yet heard of a re-opening asks for the old opening's token, which the failed probe still holds.
                if await self.store.acquire_probe(f"{model}:{msg['e']}", self.worker, CLAIM_TTL):
                    self.state.grant_probe(model, msg['e'])
            finally:
                self._probe_pending.discard(model)

    # -- incoming --------------------------------------------------------------------------------------------
    async def _subscriber(self) -> None:
        """The one loop that brings the store back: (re)subscribe, resync, then apply messages. A failure seen by
        the publisher or the heartbeat marks the store down; the next message or idle tick here resyncs."""
        delay = 0.05
        while True:
            # Resync after every (re)subscription, also the first: a change announced between the last read of the
            # fleet's state (start, or the outage) and the subscription is in the store's copy, not in pub/sub.
            fresh = True
            try:
                async for msg in self.store.listen():
                    delay = 0.05
                    if fresh or not self.up:
                        fresh = False
                        await self._resync()
                        self._set_up(True, "reconnected")
                    if msg is not None:
                        await self._on_message(msg)
            except StoreUnavailable as e:
                self._set_up(False, str(e))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fleet subscriber error")
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MAX, delay * 2)

    async def _on_message(self, msg: dict[str, Any]) -> None:
        t = msg.get("t")
        origin = msg.get("o")
        if t == "ack":
            w = self._acks.get(str(msg.get("id")))
            if w is not None:
                acked, done, expect = w
                acked.add(str(msg.get("w")))
                if expect <= acked:
                    done.set()
            return
        if origin == self.worker:
            return
        if t == "leave":  # a graceful stop: not a silent worker
            self._known.pop(str(origin), None)
            return
        model = str(msg.get("m", ""))
        if t == "mark":
            with contextlib.suppress(TypeError, ValueError, KeyError):
                self.state.apply_mark(model, str(msg["k"]), float(msg["u"]), str(msg.get("msg", "")), str(origin),
                                      int(msg.get("n", 0)))
        elif t == "clear":
            self.state.apply_clear(model)
        elif t == "withdrawals":
            with contextlib.suppress(TypeError, ValueError):
                self.known_at = max(self.known_at, float(msg.get("at", 0)))
            await self._adopt_withdrawals(msg.get("entries"))
            # In force for every candidate chosen from now on. An attempt chosen just before may be between its
            # check and its first byte (opening a connection): let it get its bytes out before saying "applied",
            # so that "no contact after the admin call returned" holds at the upstream too.
            await asyncio.sleep(SETTLE)
            with contextlib.suppress(StoreUnavailable):
                await self.store.publish({"t": "ack", "id": msg.get("id"), "w": self.worker})

    async def _adopt_withdrawals(self, published: Any) -> None:
        """Adopt the set the origin published: its view right after it wrote the change to the durable store
        (which this worker may not be able to read just now). Concurrent changes made on two workers at once are
        reconciled by the gateway's poll of the durable store. Without a usable set, re-read the durable store."""
        from gateway.failover.withdrawals import Entry

        entries: list[Any] | None = None
        if isinstance(published, list):
            entries = []
            for d in published:
                with contextlib.suppress(TypeError, KeyError):
                    entries.append(Entry(**{k: d[k] for k in _ENTRY_FIELDS}))
        if entries is None:
            try:
                entries = await self.reread()
            except Exception as e:  # noqa: BLE001
                log.warning("could not re-read withdrawals from the durable store: %s", e)
        if entries is None:
            return
        w = self.withdrawals
        w.replace(entries)
        w.generation += 1  # a poll of the durable store that overlapped this is stale: it is not adopted
        if self.mirror is not None:
            w.pending += 1
            try:
                await self.mirror(entries)
            except Exception as e:  # noqa: BLE001 - in force in memory; the log says it will not survive a restart
                log.error("fleet withdrawals not written to the local durable store (in force until restart): %s",
                          e)
            finally:
                w.pending -= 1
                w.generation += 1

    async def _resync(self) -> None:
        for model, m in (await self.store.marks()).items():
            with contextlib.suppress(TypeError, ValueError, KeyError):
                if m.get("o") != self.worker:
                    self.state.apply_mark(model, str(m["k"]), float(m["u"]), str(m.get("msg", "")), str(m.get("o")),
                                          int(m.get("n", 0)))
        for model, r in self.state.own_marks():
            body = {"k": r.kind, "u": self.state.to_wall(r.until), "msg": r.message, "o": self.worker,
                    "n": r.openings}
            await self.store.put_mark(model, body, {"t": "mark", "m": model, **body})
        # Withdrawals: the newer of the fleet's copy and ours wins. A change made here during an outage reaches the
        # replicas that do not share our durable store; one made elsewhere (or before we started) reaches us.
        shared = await self.store.get_withdrawals()
        shared_at = float(shared.get("at", 0)) if shared else 0.0
        if shared is not None and shared_at > self.known_at and shared.get("o") != self.worker:
            self.known_at = shared_at
            await self._adopt_withdrawals(shared.get("entries"))
        elif self._unpublished or (shared is None and self.known_at > 0):
            # Ours is newer, or the store lost its copy (a Redis restarted without its data): a replica that joins
            # later with its own durable store reads the fleet's set from there.
            await self._put_withdrawals("resync")
        self._unpublished = False
        await self.store.heartbeat(self.worker, self._info())

    async def _put_withdrawals(self, cid: str) -> None:
        snapshot = {"at": self.known_at, "o": self.worker, "entries": self._entries()}
        await self.store.put_withdrawals(snapshot, {"t": "withdrawals", "id": cid, **snapshot})

    # -- heartbeats ------------------------------------------------------------------------------------------
    def _info(self) -> dict[str, Any]:
        return {"replica": self.replica, "pid": os.getpid(), "started": self.started_at}

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            if not self.up:
                continue
            try:
                await self.store.heartbeat(self.worker, self._info())
                await self.live_workers()  # keeps the set of known workers fresh for ``propagate``
            except StoreUnavailable as e:
                self._set_up(False, str(e))

    async def live_workers(self) -> dict[str, dict[str, Any]]:
        live = {w: i for w, i in (await self.store.workers()).items() if i.get("age_s", 1e9) <= LIVE_WITHIN}
        now = self.wall()
        for w in live:
            self._known[w] = now
        return live

    def _silent(self, live: dict[str, Any]) -> set[str]:
        """Workers seen live within ``STALE_AFTER`` that are not live now (and did not leave)."""
        now = self.wall()
        for w in [w for w, t in self._known.items() if now - t > RedisStore.STALE_AFTER]:
            del self._known[w]
        return set(self._known) - set(live) - {self.worker}

    # -- the kill switch -------------------------------------------------------------------------------------
    async def propagate(self, change: str) -> dict[str, Any]:
        """Announce a kill-switch change (withdrawal, reinstatement, drill) already written to the durable store
        and in force here; wait until every live worker applied it, at most ``ack_timeout``."""
        started = time.monotonic()
        out: dict[str, Any] = {"change": change, "state_store": "up" if self.up else "down"}
        try:
            live = await self.live_workers()
        except StoreUnavailable as e:
            self._set_up(False, str(e))
            live = {}
        self.known_at = max(self.wall(), self.known_at)
        expect = set(live) - {self.worker}
        silent = self._silent(live)
        cid = uuid.uuid4().hex
        acked: set[str] = set()
        done = asyncio.Event()
        if not expect:
            done.set()
        self._acks[cid] = (acked, done, expect)
        try:
            if self.up:
                try:
                    await self._put_withdrawals(cid)
                except StoreUnavailable as e:
                    self._set_up(False, str(e))
            if not self.up:
                self._unpublished = True
            if self.up:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done.wait(), self.ack_timeout)
        finally:
            self._acks.pop(cid, None)
        missing = sorted((expect - acked) | silent)
        if not self.up:
            # Nobody could be told now: the others pick the change up from the durable store when they poll it.
            missing = sorted(expect | silent) if expect | silent else ["(unknown: the state store is down)"]
        out.update(workers=sorted({self.worker, *live, *silent}), applied=sorted({self.worker} | (acked & expect)),
                   not_applied=missing, complete=not missing,
                   seconds=round(time.monotonic() - started, 4))
        if missing:
            log.error("kill switch %s: NOT confirmed by %s within %gs", change, ", ".join(missing), self.ack_timeout)
        return out

    def _entries(self) -> list[dict[str, Any]]:
        w = self.withdrawals
        return [_entry_dict(e) for e in (*w.withdrawals.values(), *w.drills.values())]

    async def describe(self) -> dict[str, Any]:
        """The fleet's view for /admin/state and /status: the store, the live workers, by replica."""
        view: dict[str, Any] = {"state_store": "up" if self.up else "down", "this_worker": self.worker,
                                "this_replica": self.replica}
        if self.up:
            try:
                workers = await self.store.workers()
            except StoreUnavailable:
                workers = {}
            replicas: dict[str, list[dict[str, Any]]] = {}
            for w, info in sorted(workers.items()):
                replicas.setdefault(str(info.get("replica", "?")), []).append(
                    {"worker": w, "pid": info.get("pid"), "last_seen_s": info.get("age_s"),
                     "live": info.get("age_s", 1e9) <= LIVE_WITHIN})
            view["replicas"] = replicas
        view["remote_marks"] = {m: {"state": r.kind, "until_in_s": round(r.until - self.state._clock(), 3),
                                    "by": r.origin} for m, r in self.state.remote.items()}
        return view


_ENTRY_FIELDS = ("kind", "target", "name", "reason", "reference", "actor", "admin_key", "contact", "created_at",
                 "until_wall")


def _entry_dict(e: Any) -> dict[str, Any]:
    return {k: getattr(e, k) for k in _ENTRY_FIELDS}
