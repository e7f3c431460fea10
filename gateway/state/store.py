"""The shared live-state store: the async interface (``SharedStore``) and its Redis backend.

What lives here is live, not durable: marks (breaker open, cooling, upstream-detected withdrawn/access-denied)
with their end time on the wall clock, the one half-open probe token per model, worker heartbeats, per-key
rate-limit buckets, and the event channel every worker subscribes to. Durable records (withdrawals, drills, the
audit log) live in the durable store (SQLite or PostgreSQL); Redis only carries the news of a change.

Every call may raise (``StoreUnavailable``) when the store is unreachable; callers (``Fleet``) degrade to local
state. Nothing here is called on the request path except ``take_token`` for keys that have a rate limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson


class StoreUnavailable(Exception):
    """The shared store could not be reached (connection refused, timeout, reset)."""


class SharedStore(Protocol):
    """The complete interface a fleet backend implements (all async; all may raise ``StoreUnavailable``)."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, message: dict[str, Any]) -> None: ...

    def listen(self) -> AsyncIterator[dict[str, Any] | None]:
        """Messages on the event channel (ours included), and None at least every second while idle, until the
        connection is lost (then raises)."""
        ...

    async def put_mark(self, model: str, mark: dict[str, Any], message: dict[str, Any]) -> None:
        """Store a model's mark and publish ``message`` in one round trip."""
        ...

    async def clear_mark(self, model: str, message: dict[str, Any]) -> None: ...

    async def marks(self) -> dict[str, dict[str, Any]]: ...

    async def put_withdrawals(self, snapshot: dict[str, Any], message: dict[str, Any]) -> None:
        """Keep the fleet's latest withdrawals and drills (``{"at": wall time of the change, "entries": [...]}``)
        for workers that were away, and publish ``message``, in one round trip."""
        ...

    async def get_withdrawals(self) -> dict[str, Any] | None: ...

    async def acquire_probe(self, token: str, owner: str, ttl: float) -> bool:
        """Take a half-open probe token (``<model>:<opening>``) for ``ttl`` seconds; False when another worker
        holds it."""
        ...

    async def release_probe(self, token: str, owner: str) -> None: ...

    async def extend_probe(self, token: str, owner: str, ttl: float) -> None:
        """The probe has started: keep the token for ``ttl`` (the longest the probe request may take)."""
        ...

    async def heartbeat(self, worker: str, info: dict[str, Any]) -> None: ...

    async def workers(self) -> dict[str, dict[str, Any]]:
        """Every worker that sent a heartbeat (``info`` as sent, with ``seen``: the store's clock, seconds)."""
        ...

    async def leave(self, worker: str) -> None: ...

    async def take_token(self, key: str, per_minute: int) -> float:
        """Take one request from the key's fleet-wide bucket: 0.0 when allowed, else seconds until one is."""
        ...

    async def revoke_session(self, session_id: str, until: float) -> None:
        """Refuse a status-page session everywhere until ``until`` (epoch seconds: the token's own expiry)."""
        ...

    async def session_revoked(self, session_id: str) -> bool: ...


# A token bucket per key, on the server's clock (replicas' clocks may differ). Returns the wait as a string
# (Lua numbers become integers in replies).
_TAKE_TOKEN = """
local cap = tonumber(ARGV[1])
local rate = cap / 60.0
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return tostring(wait)
"""

_RELEASE_PROBE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_EXTEND_PROBE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_HEARTBEAT = """
local t = redis.call('TIME')
local info = cjson.decode(ARGV[2])
info['seen'] = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(info))
return 1
"""

_WORKERS = """
local t = redis.call('TIME')
return {tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000), redis.call('HGETALL', KEYS[1])}
"""


class RedisStore:
    """``SharedStore`` on Redis (``redis`` package, asyncio). Keys under ``prefix``: ``marks`` (hash),
    ``probe:<model>:<opening>`` (string with a TTL), ``workers`` (hash), ``rl:<key>`` (hash), channel ``events``."""

    STALE_AFTER = 30.0  # heartbeats older than this are removed from the workers hash

    def __init__(self, url: str, prefix: str = "gateway:", *, connect_timeout: float = 0.5,
                 timeout: float = 1.0) -> None:
        import redis.asyncio as aioredis

        self._redis_mod = aioredis
        self.url = url
        self.prefix = prefix
        self.channel = prefix + "events"
        self._k_marks = prefix + "marks"
        self._k_workers = prefix + "workers"
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        # One immediate retry on a connection error: after Redis restarts, the pool's idle connections are dead and
        # the first command on each would fail (an acknowledgement lost for nothing); a real outage still fails fast.
        self._r = aioredis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=timeout,
                                    retry_on_timeout=False, health_check_interval=0, decode_responses=False,
                                    retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError])
        self._take = self._r.register_script(_TAKE_TOKEN)
        self._release = self._r.register_script(_RELEASE_PROBE)
        self._beat = self._r.register_script(_HEARTBEAT)
        self._extend = self._r.register_script(_EXTEND_PROBE)
        self._workers_script = self._r.register_script(_WORKERS)

    def _errors(self) -> tuple[type[BaseException], ...]:
        import redis.exceptions as rex

        return (rex.ConnectionError, rex.TimeoutError, OSError, TimeoutError)

    @contextlib.asynccontextmanager
    async def _call(self) -> AsyncIterator[None]:
        try:
            yield
        except self._errors() as e:
            raise StoreUnavailable(_describe(e)) from None

    async def connect(self) -> None:
        async with self._call():
            await self._r.ping()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._r.aclose()

    async def publish(self, message: dict[str, Any]) -> None:
        async with self._call():
            await self._r.publish(self.channel, orjson.dumps(message))

    async def listen(self) -> AsyncIterator[dict[str, Any] | None]:
        pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        try:
            async with self._call():
                await pubsub.subscribe(self.channel)
            while True:
                async with self._call():
                    # A bounded wait, so that a dead connection is noticed by the reader too (PING keeps it warm).
                    msg = await pubsub.get_message(timeout=0.5)
                    if msg is None:
                        await pubsub.ping()
                if msg is None:
                    yield None
                    continue
                if msg.get("type") != "message":
                    continue
                try:
                    data = orjson.loads(msg["data"])
                except orjson.JSONDecodeError:
                    continue
                if isinstance(data, dict):
                    yield data
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def put_mark(self, model: str, mark: dict[str, Any], message: dict[str, Any]) -> None:
        async with self._call():
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(self._k_marks, model, orjson.dumps(mark))
            pipe.publish(self.channel, orjson.dumps(message))
            await pipe.execute()

    async def clear_mark(self, model: str, message: dict[str, Any]) -> None:
        async with self._call():
            pipe = self._r.pipeline(transaction=True)
            pipe.hdel(self._k_marks, model)
            pipe.publish(self.channel, orjson.dumps(message))
            await pipe.execute()

    async def marks(self) -> dict[str, dict[str, Any]]:
        async with self._call():
            raw = await self._r.hgetall(self._k_marks)
        out = {}
        for k, v in raw.items():
            with contextlib.suppress(ValueError):
                out[k.decode()] = orjson.loads(v)
        return out

    async def put_withdrawals(self, snapshot: dict[str, Any], message: dict[str, Any]) -> None:
        async with self._call():
            pipe = self._r.pipeline(transaction=True)
            pipe.set(self.prefix + "withdrawals", orjson.dumps(snapshot))
            pipe.publish(self.channel, orjson.dumps(message))
            await pipe.execute()

    async def get_withdrawals(self) -> dict[str, Any] | None:
        async with self._call():
            raw = await self._r.get(self.prefix + "withdrawals")
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    async def acquire_probe(self, token: str, owner: str, ttl: float) -> bool:
        async with self._call():
            return bool(await self._r.set(self.prefix + "probe:" + token, owner, nx=True,
                                          px=max(1, int(ttl * 1000))))

    async def release_probe(self, token: str, owner: str) -> None:
        async with self._call():
            await self._release(keys=[self.prefix + "probe:" + token], args=[owner])

    async def extend_probe(self, token: str, owner: str, ttl: float) -> None:
        async with self._call():
            await self._extend(keys=[self.prefix + "probe:" + token], args=[owner, max(1, int(ttl * 1000))])

    async def heartbeat(self, worker: str, info: dict[str, Any]) -> None:
        async with self._call():
            await self._beat(keys=[self._k_workers], args=[worker, orjson.dumps(info)])

    async def workers(self) -> dict[str, dict[str, Any]]:
        async with self._call():
            now_raw, flat = await self._workers_script(keys=[self._k_workers])
        now = float(now_raw)
        out: dict[str, dict[str, Any]] = {}
        stale = []
        for i in range(0, len(flat), 2):
            name = flat[i].decode()
            try:
                info = orjson.loads(flat[i + 1])
            except orjson.JSONDecodeError:
                continue
            age = now - float(info.get("seen", 0))
            if age > self.STALE_AFTER:
                stale.append(name)
                continue
            info["age_s"] = round(age, 3)
            out[name] = info
        if stale:
            with contextlib.suppress(Exception):
                await self._r.hdel(self._k_workers, *stale)
        return out

    async def leave(self, worker: str) -> None:
        async with self._call():
            await self._r.hdel(self._k_workers, worker)

    async def take_token(self, key: str, per_minute: int) -> float:
        async with self._call():
            return float(await self._take(keys=[self.prefix + "rl:" + key], args=[per_minute]))

    async def revoke_session(self, session_id: str, until: float) -> None:
        async with self._call():
            await self._r.set(self.prefix + "revoked:" + session_id, b"1", exat=max(1, int(until) + 1))

    async def session_revoked(self, session_id: str) -> bool:
        async with self._call():
            return bool(await self._r.exists(self.prefix + "revoked:" + session_id))


def _describe(e: BaseException) -> str:
    """The error without the URL's password (redis-py messages may include host and port, never the password)."""
    return f"{type(e).__name__}: {e}"[:300]
