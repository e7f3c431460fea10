"""The admin API under ``/admin/``: withdrawals (kill switch), drills, state, reload.

Authenticated only with ``admin_keys`` (sha256 in the config); client keys are refused here, as admin keys are
refused on ``/v1/``. Errors are OpenAI-shaped; every bad input is a 4xx naming the field. Secrets (gateway,
admin and provider keys) never appear in answers or logs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.admin.auth import AdminAuth, admin_from_request
from gateway.config.durations import parse_duration
from gateway.errors import ConfigError, GatewayError
from gateway.failover.withdrawals import TARGET_KINDS, Entry

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.admin.reload import ConfigReloader
    from gateway.failover.state import StateStore
    from gateway.services import Lifecycle, WithdrawalLedger
    from gateway.state.fleet import Fleet

log = logging.getLogger("gateway.admin")

MAX_DRILL = 7 * 86400.0
Target = Literal["model", "provider", "vendor"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WithdrawBody(_Body):
    target: Target
    name: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    reference: str = Field(default="", max_length=2000)  # e.g. the legal document
    actor: str | None = Field(default=None, max_length=200)  # who; default: the admin key's name
    contact: Literal["never", "recheck"] = "never"


class ExplainBody(_Body):
    request: dict[str, Any]  # an OpenAI chat request, as a client would send it
    key_name: str | None = None  # evaluate as this caller (its attributes and policies)
    route_header: str | None = None  # as if sent with x-gateway-route


class DrillBody(_Body):
    target: Target
    name: str = Field(min_length=1, max_length=200)
    duration: float  # seconds, or "10m", "1h"...
    reason: str = Field(default="failover drill", max_length=2000)
    actor: str | None = Field(default=None, max_length=200)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        seconds = parse_duration(v)
        if not 0 < seconds <= MAX_DRILL:
            raise ValueError(f"duration must be more than 0 and at most {MAX_DRILL / 86400:g} days")
        return seconds


def build_admin_router(auth: AdminAuth, *, clock: Callable[[], float], upstream_state: StateStore,
                       ledger: WithdrawalLedger, fleet: Fleet | None, lifecycle: Lifecycle,
                       reloader: ConfigReloader, describe: Callable[..., dict[str, Any]]) -> APIRouter:
    """``ledger``: the withdrawals and drills in force and their durable record; ``upstream_state``: the models'
    upstream state (reinstating clears it); ``fleet``: None for one process, else every change is propagated to
    every worker; ``describe``: the ``GET /admin/state`` view."""
    live = auth.live
    withdrawals = ledger.withdrawals

    def admin(request: Request) -> str:
        """The admin key's name, or a 401/403 (a 429 while the source is locked out by failed attempts)."""
        found = admin_from_request(auth, request)
        if found is None:
            raise GatewayError(401, "Missing admin key: send 'Authorization: Bearer <admin key>'.",
                               code="missing_admin_key")
        return found[0]

    router = APIRouter(prefix="/admin", dependencies=[Depends(admin)])

    def check_name(target: str, name: str) -> list[str]:
        models = withdrawals.matching(target, name)
        if not models:
            known = sorted({getattr(t, {"model": "name"}.get(target, target)) for t in live.runtime.targets.values()})
            raise GatewayError(400, f"unknown {target} {name!r} (known: {', '.join(known)})", param="name",
                               code="unknown_target")
        return models

    def check_target(target: str) -> None:
        if target not in TARGET_KINDS:
            raise GatewayError(400, f"target must be one of {', '.join(TARGET_KINDS)}", param="target",
                               code="invalid_target")

    async def propagated(change: str, answer: dict[str, Any]) -> dict[str, Any]:
        """In a fleet (``state.backend: redis``), return only once every live worker and replica applied the
        change, or after ``state.ack_timeout`` naming those that did not (``propagation``)."""
        if fleet is not None:
            answer["propagation"] = await fleet.propagate(change)
        return answer

    async def tidy() -> None:
        for e in withdrawals.expire():
            log.warning("DRILL ended: %s %s is back in traffic (drill by %s)", e.target, e.name, e.actor)
            lifecycle("drill_ended", target=e.target, name=e.name, actor=e.actor)
            await ledger.record_expired(lambda db, e=e: db.delete_drill(e, "drill-ended"))

    @router.get("/state")
    async def state(key: str = Depends(admin)) -> dict[str, Any]:
        await tidy()
        out = describe(admin_key=key)
        if fleet is not None:
            out["fleet"] = await fleet.describe()
        return out

    @router.get("/withdrawals")
    async def list_withdrawals() -> dict[str, Any]:
        await tidy()
        now = clock()
        events = await ledger.events()
        return {"withdrawals": [e.public(now) for e in withdrawals.withdrawals.values()],
                "drills": [e.public(now) for e in withdrawals.drills.values()], "events": events}

    @router.post("/withdrawals", status_code=201)
    async def withdraw(body: WithdrawBody, key: str = Depends(admin)) -> dict[str, Any]:
        models = check_name(body.target, body.name)
        e = Entry("withdrawal", body.target, body.name, body.reason, body.reference, body.actor or key, key,
                  body.contact)
        e = withdrawals.add(e)
        db = ledger.db
        if db is not None:
            async with ledger.writing():
                try:
                    await asyncio.to_thread(db.put, e)
                except Exception as exc:  # keep it in force in memory; say loudly that it will not survive a restart
                    log.error("WITHDRAWAL NOT PERSISTED (in force until restart): %s %s: %s", e.target, e.name, exc)
                    where = "in force"
                    if fleet is not None:  # still take it out of the whole fleet's traffic now
                        p = await fleet.propagate("withdrawal")
                        where = (f"in force on {len(p['applied'])} of {len(p['workers'])} workers"
                                 + (f" (not confirmed: {', '.join(p['not_applied'])})" if p["not_applied"] else ""))
                    raise GatewayError(500, f"The withdrawal is {where} but could not be persisted; see the "
                                            "gateway log.", code="not_persisted") from None
        log.warning("WITHDRAWN %s %s (models: %s) by %s (admin key %s), contact=%s: %s [%s]", e.target, e.name,
                    ", ".join(models), e.actor, key, e.contact, e.reason, e.reference)
        lifecycle("withdrawal", target=e.target, name=e.name, models=models, actor=e.actor, admin_key_name=key,
                     contact=e.contact, reason=e.reason, reference=e.reference)
        return await propagated("withdrawal", {"withdrawal": e.public(clock()), "models": models})

    @router.delete("/withdrawals/{target}/{name}")
    async def reinstate(target: str, name: str, actor: str | None = None,
                        key: str = Depends(admin)) -> dict[str, Any]:
        check_target(target)
        e = withdrawals.remove("withdrawal", target, name)
        models = withdrawals.matching(target, name)
        if e is None:
            # No operator withdrawal, but an upstream verdict (access_denied, withdrawn, breaker) may be what
            # the operator sees in /admin/state: reinstating clears it rather than answering 404.
            marked = [m for m in models if upstream_state.describe(m)["state"] != "ok"]
            if not marked:
                raise GatewayError(404, f"no withdrawal of {target} {name!r} and no model of it marked unavailable",
                                   param="name", code="not_withdrawn")
            for m in marked:
                upstream_state.reinstate(m)
            log.warning("REINSTATED %s %s: cleared upstream state of %s by %s (admin key %s)", target, name,
                        ", ".join(marked), actor or key, key)
            lifecycle("reinstatement", target=target, name=name, models=marked, actor=actor or key,
                         admin_key_name=key, cleared="upstream_state")
            return {"reinstated": None, "cleared": marked, "models": models}
        for m in models:
            upstream_state.reinstate(m)
        await ledger.write(lambda db: db.delete(e, actor or key, key))
        log.warning("REINSTATED %s %s (models: %s) by %s (admin key %s)", target, name, ", ".join(models),
                    actor or key, key)
        lifecycle("reinstatement", target=target, name=name, models=models, actor=actor or key, admin_key_name=key)
        return await propagated("reinstatement", {"reinstated": e.public(clock()), "models": models})

    @router.post("/drills", status_code=201)
    async def drill(body: DrillBody, key: str = Depends(admin)) -> dict[str, Any]:
        await tidy()
        models = check_name(body.target, body.name)
        e = withdrawals.add(Entry("drill", body.target, body.name, body.reason, "", body.actor or key, key),
                            duration=body.duration)
        await ledger.write(lambda db: db.put_drill(e, f"duration={body.duration:g}s"))
        log.warning("DRILL started: %s %s (models: %s) out of traffic for %gs by %s: %s", e.target, e.name,
                    ", ".join(models), body.duration, e.actor, e.reason)
        lifecycle("drill_started", target=e.target, name=e.name, models=models, duration_s=body.duration,
                     actor=e.actor, reason=e.reason)
        return await propagated("drill", {"drill": e.public(clock()), "models": models})

    @router.delete("/drills/{target}/{name}")
    async def end_drill(target: str, name: str, key: str = Depends(admin)) -> dict[str, Any]:
        check_target(target)
        await tidy()
        ended = withdrawals.remove("drill", target, name)
        if ended is None:
            raise GatewayError(404, f"no drill running on {target} {name!r}", param="name", code="no_drill")
        await ledger.write(lambda db: db.delete_drill(ended, "drill-stopped"))
        log.warning("DRILL stopped early: %s %s by admin key %s", target, name, key)
        lifecycle("drill_stopped", target=target, name=name, admin_key_name=key)
        return await propagated("drill_stopped", {"ended": ended.public(clock())})

    @router.post("/explain")
    async def explain_request(body: ExplainBody) -> dict[str, Any]:
        """``gateway explain`` over the live state: the route and why, and per candidate tried now or skipped."""
        from gateway.reports.explain import explain

        headers = {"x-gateway-route": body.route_header} if body.route_header else None
        model = body.request.get("model")
        if model is not None and not isinstance(model, str):  # looked up by name, with or without messages
            raise GatewayError(400, "request.model must be a string", param="request.model", code="invalid_request")
        if "messages" in body.request:  # malformed messages must be a 400 naming the field, as on /v1/, not a 500
            from gateway.api.validate import validate_chat

            try:
                validate_chat(body.request)
            except GatewayError as e:
                raise GatewayError(400, e.message, param=f"request.{e.param}" if e.param else "request",
                                   code=e.code) from None
        try:
            return explain(live.runtime, body.request, key_name=body.key_name, headers=headers,
                           state=describe()["models"])
        except ValueError as e:
            raise GatewayError(400, str(e), param="key_name", code="unknown_key") from None

    @router.post("/reload")
    async def reload(key: str = Depends(admin)) -> JSONResponse:
        try:
            res = await reloader.reload(f"POST /admin/reload by {key}")
        except ConfigError as e:
            raise GatewayError(409, str(e), code="reload_unavailable") from None
        if res.result == "error":
            msg = (f"The new config was rejected; version {res.version} keeps running. "
                   + " | ".join(res.errors))
            err = GatewayError(422, msg, code="config_invalid")
            body = err.body()
            body["reload"] = res.public()
            return JSONResponse(body, status_code=422)
        return JSONResponse({"reload": res.public()})

    return router
