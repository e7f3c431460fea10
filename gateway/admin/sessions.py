"""Status-page sessions: signed tokens, and server-side revocation (logout).

A token is ``v2.<expiry>.<kid>.<nonce>.<sig>``: ``kid`` is an HMAC of the admin key's sha256 (so the token names no
key and no hash, and dies with the key), ``nonce`` makes every sign-in's token distinct (revoking one revokes no
other), ``sig`` an HMAC of the rest. The signing secret is ``admin.session_secret`` (shared by a
fleet) or random per process (a restart then signs everybody out).

Logout revokes the token on the server: its id (a hash of the whole token, never the token) goes into a
``RevokedSessions`` store until the token's own expiry, so a copied cookie is refused afterwards. The store is an
interface; ``MemoryRevokedSessions`` serves one process (a shared backend, e.g. Redis, serves several).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Protocol

SESSION_TTL = 8 * 3600  # seconds
MAX_TOKEN = 200  # characters; longer cookies are ignored unread
MAX_REVOKED = 100_000  # revoked-but-unexpired tokens remembered by one process (oldest dropped first past it)


class RevokedSessions(Protocol):
    """Revoked session ids until they would have expired anyway. Async so that a network backend fits."""

    async def revoke(self, session_id: str, until: float) -> None:
        """Refuse ``session_id`` until wall-clock time ``until`` (epoch seconds)."""

    async def is_revoked(self, session_id: str) -> bool: ...


class MemoryRevokedSessions:
    """One process's revocations; expired entries are dropped as new ones arrive (bounded by ``MAX_REVOKED``)."""

    def __init__(self, wall: Callable[[], float] = time.time, limit: int = MAX_REVOKED) -> None:
        self.wall = wall
        self.limit = limit
        self._until: dict[str, float] = {}  # insertion order ~ expiry order (one TTL for every token)

    async def revoke(self, session_id: str, until: float) -> None:
        now = self.wall()
        for sid in [s for s, u in self._until.items() if u <= now]:
            del self._until[sid]
        while len(self._until) >= self.limit:
            del self._until[next(iter(self._until))]
        self._until[session_id] = until

    async def is_revoked(self, session_id: str) -> bool:
        until = self._until.get(session_id)
        return until is not None and until > self.wall()


class Sessions:
    """Issue and verify signed session tokens (see the module docstring)."""

    def __init__(self, wall: Callable[[], float] = time.time, secret: str | None = None) -> None:
        # ``admin.session_secret`` (shared by a fleet) or random per process.
        from gateway.state.sessions import session_secret

        self._secret = session_secret(secret) or secrets.token_bytes(32)
        self.wall = wall

    def _mac(self, data: str) -> str:
        return hmac.new(self._secret, data.encode(), hashlib.sha256).hexdigest()

    def _kid(self, digest: str) -> str:
        return self._mac("kid:" + digest)[:32]

    def issue(self, digest: str) -> str:
        payload = f"v2.{int(self.wall()) + SESSION_TTL}.{self._kid(digest)}.{secrets.token_hex(8)}"
        return f"{payload}.{self._mac(payload)}"

    @staticmethod
    def session_id(token: str) -> str:
        """What the revocation store keeps: a hash of the token, useless as a cookie."""
        return hashlib.sha256(token.encode()).hexdigest()[:32]

    @staticmethod
    def expiry(token: str) -> float:
        """The expiry written in a token that ``verify`` accepted."""
        return float(token.split(".")[1])

    def verify(self, token: str, admin_keys: dict[str, str]) -> str | None:
        """The admin key name of a valid, unexpired session whose key is still configured; else None. Revocation is
        checked separately (``RevokedSessions`` may need I/O)."""
        if not token or len(token) > MAX_TOKEN:
            return None
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != "v2":
            return None
        payload = ".".join(parts[:4])
        if not hmac.compare_digest(self._mac(payload), parts[4]):
            return None
        try:
            expiry = int(parts[1])
        except ValueError:
            return None
        if expiry <= self.wall():
            return None
        for digest, name in admin_keys.items():
            if hmac.compare_digest(self._kid(digest), parts[2]):
                return name
        return None
