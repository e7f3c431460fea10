"""Admin-key authentication, shared by the admin API (``/admin/``) and the status page (``/status``).

Admin keys are configured as sha256 digests (``admin_keys:``); the key itself is hashed on arrival and compared by
its digest, never stored or echoed. A client key is refused here with a 403, as an admin key is refused on ``/v1/``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.runtime import Runtime


def key_digest(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def bearer(headers: Mapping[str, str]) -> str | None:
    """The bearer token, None without an Authorization header; a 401 for another scheme or an empty token."""
    auth = headers.get("authorization")
    if auth is None:
        return None
    if auth[:7].lower() != "bearer " or not auth[7:].strip():
        raise GatewayError(401, "Malformed Authorization header: send 'Authorization: Bearer <admin key>'.",
                           code="missing_admin_key")
    return auth[7:].strip()


def check_admin_key(rt: Runtime, key: str, surface: str = "the admin API") -> tuple[str, str]:
    """(admin key name, sha256) for an admin key, else a 401/403 (a client key is a 403). ``surface`` names the
    endpoint family in the error messages."""
    digest = key_digest(key)
    name = rt.admin_keys.get(digest)
    if name is not None:
        return name, digest
    if rt.keys is not None and digest in rt.keys:
        raise GatewayError(403, f"This is a client key; {surface} accepts only admin keys (admin_keys:).",
                           type="permission_error", code="not_an_admin_key")
    if not rt.admin_keys:
        raise GatewayError(403, f"{surface[0].upper()}{surface[1:]} is disabled: no admin_keys are configured.",
                           type="permission_error", code="admin_api_disabled")
    raise GatewayError(401, "Incorrect admin key provided.", code="invalid_admin_key")
