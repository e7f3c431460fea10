"""Status-page sessions for a fleet: the signing secret from ``admin.session_secret`` (a session issued by one
replica is valid on every other and survives a restart) and logout revocations shared through the fleet's store.

``FleetRevokedSessions`` implements the ``RevokedSessions`` interface (``revoke``/``is_revoked``, async) of the
admin sessions module: a revocation goes to Redis (until the token's own expiry) and to this process's memory; a
check asks Redis, and this process's memory while Redis is unreachable (a revocation made during an outage then
holds where it was made, and everywhere once it was written).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from gateway.state.store import SharedStore, StoreUnavailable


def session_secret(secret: str | None) -> bytes | None:
    """The HMAC key derived from ``admin.session_secret`` (None: each process picks a random one)."""
    if not secret:
        return None
    return hashlib.sha256(b"gateway-status-session:" + secret.encode()).digest()


class FleetRevokedSessions:
    def __init__(self, store: SharedStore, up: Callable[[], bool], wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self._up = up
        self._wall = wall
        self._local: dict[str, float] = {}

    async def revoke(self, session_id: str, until: float) -> None:
        now = self._wall()
        for sid in [s for s, u in self._local.items() if u <= now]:
            del self._local[sid]
        self._local[session_id] = until
        if self._up():
            try:
                await self._store.revoke_session(session_id, until)
            except StoreUnavailable:
                pass  # held here; the log of the store going down already says the fleet is not shared now

    async def is_revoked(self, session_id: str) -> bool:
        until = self._local.get(session_id)
        if until is not None and until > self._wall():
            return True
        if self._up():
            try:
                return await self._store.session_revoked(session_id)
            except StoreUnavailable:
                return False
        return False
