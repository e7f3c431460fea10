"""The admin API under ``/admin/``: withdrawals (kill switch), drills, state, reload.

Authenticated only with ``admin_keys`` (sha256 in the config); client keys are refused here, as admin keys are
refused on ``/v1/``. Errors are OpenAI-shaped; every bad input is a 4xx naming the field. Secrets (gateway,
admin and provider keys) never appear in answers or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.config.durations import parse_duration
from gateway.errors import ConfigError, GatewayError
from gateway.failover.withdrawals import TARGET_KINDS, Entry

if TYPE_CHECKING:
    from gateway.app import Gateway

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


def build_admin_router(gw: Gateway) -> APIRouter:
    def admin(request: Request) -> str:
        """The admin key's name, or a 401/403."""
        rt = gw.runtime
        auth = request.headers.get("authorization")
        if not auth or auth[:7].lower() != "bearer ":
            raise GatewayError(401, "Missing admin key: send 'Authorization: Bearer <admin key>'.",
                               code="missing_admin_key")
        digest = hashlib.sha256(auth[7:].strip().encode()).hexdigest()
        name = rt.admin_keys.get(digest)
        if name is not None:
            return name
        if rt.keys is not None and digest in rt.keys:
            raise GatewayError(403, "This is a client key; the admin API accepts only admin keys (admin_keys:).",
                               type="permission_error", code="not_an_admin_key")
        if not rt.admin_keys:
            raise GatewayError(403, "The admin API is disabled: no admin_keys are configured.",
                               type="permission_error", code="admin_api_disabled")
        raise GatewayError(401, "Incorrect admin key provided.", code="invalid_admin_key")

    router = APIRouter(prefix="/admin", dependencies=[Depends(admin)])

    def check_name(target: str, name: str) -> list[str]:
        models = gw.withdrawals.matching(target, name)
        if not models:
            known = sorted({getattr(t, {"model": "name"}.get(target, target)) for t in gw.runtime.targets.values()})
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
        if gw.fleet is not None:
            answer["propagation"] = await gw.fleet.propagate(change)
        return answer

    async def tidy() -> None:
        for e in gw.withdrawals.expire():
            log.warning("DRILL ended: %s %s is back in traffic (drill by %s)", e.target, e.name, e.actor)
            gw.lifecycle("drill_ended", target=e.target, name=e.name, actor=e.actor)
            if gw.withdrawals_db is not None:
                await asyncio.to_thread(gw.withdrawals_db.delete_drill, e, "drill-ended")

    @router.get("/state")
    async def state(key: str = Depends(admin)) -> dict[str, Any]:
        await tidy()
        out = gw.describe(admin_key=key)
        if gw.fleet is not None:
            out["fleet"] = await gw.fleet.describe()
        return out

    @router.get("/withdrawals")
    async def list_withdrawals() -> dict[str, Any]:
        await tidy()
        now = gw.clock()
        events = await asyncio.to_thread(gw.withdrawals_db.events) if gw.withdrawals_db else []
        return {"withdrawals": [e.public(now) for e in gw.withdrawals.withdrawals.values()],
                "drills": [e.public(now) for e in gw.withdrawals.drills.values()], "events": events}

    @router.post("/withdrawals", status_code=201)
    async def withdraw(body: WithdrawBody, key: str = Depends(admin)) -> dict[str, Any]:
        models = check_name(body.target, body.name)
        e = Entry("withdrawal", body.target, body.name, body.reason, body.reference, body.actor or key, key,
                  body.contact)
        e = gw.withdrawals.add(e)
        if gw.withdrawals_db is not None:
            gw.withdrawals.pending += 1
            try:
                await asyncio.to_thread(gw.withdrawals_db.put, e)
            except Exception as exc:  # keep it in force in memory; say loudly that it will not survive a restart
                log.error("WITHDRAWAL NOT PERSISTED (in force until restart): %s %s: %s", e.target, e.name, exc)
                where = "in force"
                if gw.fleet is not None:  # still take it out of the whole fleet's traffic now
                    p = await gw.fleet.propagate("withdrawal")
                    where = (f"in force on {len(p['applied'])} of {len(p['workers'])} workers"
                             + (f" (not confirmed: {', '.join(p['not_applied'])})" if p["not_applied"] else ""))
                raise GatewayError(500, f"The withdrawal is {where} but could not be persisted; see the gateway "
                                        "log.", code="not_persisted") from None
            finally:
                gw.withdrawals.pending -= 1
                gw.withdrawals.generation += 1
        log.warning("WITHDRAWN %s %s (models: %s) by %s (admin key %s), contact=%s: %s [%s]", e.target, e.name,
                    ", ".join(models), e.actor, key, e.contact, e.reason, e.reference)
        gw.lifecycle("withdrawal", target=e.target, name=e.name, models=models, actor=e.actor, admin_key_name=key,
                     contact=e.contact, reason=e.reason, reference=e.reference)
        return await propagated("withdrawal", {"withdrawal": e.public(gw.clock()), "models": models})

    @router.delete("/withdrawals/{target}/{name}")
    async def reinstate(target: str, name: str, actor: str | None = None,
                        key: str = Depends(admin)) -> dict[str, Any]:
        check_target(target)
        e = gw.withdrawals.remove("withdrawal", target, name)
        models = gw.withdrawals.matching(target, name)
        if e is None:
            # No operator withdrawal, but an upstream verdict (access_denied, withdrawn, breaker) may be what
            # the operator sees in /admin/state: reinstating clears it rather than answering 404.
            marked = [m for m in models if gw.state.describe(m)["state"] != "ok"]
            if not marked:
                raise GatewayError(404, f"no withdrawal of {target} {name!r} and no model of it marked unavailable",
                                   param="name", code="not_withdrawn")
            for m in marked:
                gw.state.reinstate(m)
            log.warning("REINSTATED %s %s: cleared upstream state of %s by %s (admin key %s)", target, name,
                        ", ".join(marked), actor or key, key)
            gw.lifecycle("reinstatement", target=target, name=name, models=marked, actor=actor or key,
                         admin_key_name=key, cleared="upstream_state")
            return {"reinstated": None, "cleared": marked, "models": models}
        for m in models:
            gw.state.reinstate(m)
        if gw.withdrawals_db is not None:
            gw.withdrawals.pending += 1
            try:
                await asyncio.to_thread(gw.withdrawals_db.delete, e, actor or key, key)
            finally:
                gw.withdrawals.pending -= 1
                gw.withdrawals.generation += 1
        log.warning("REINSTATED %s %s (models: %s) by %s (admin key %s)", target, name, ", ".join(models),
                    actor or key, key)
        gw.lifecycle("reinstatement", target=target, name=name, models=models, actor=actor or key, admin_key_name=key)
        return await propagated("reinstatement", {"reinstated": e.public(gw.clock()), "models": models})

    @router.post("/drills", status_code=201)
    async def drill(body: DrillBody, key: str = Depends(admin)) -> dict[str, Any]:
        await tidy()
        models = check_name(body.target, body.name)
        e = gw.withdrawals.add(Entry("drill", body.target, body.name, body.reason, "", body.actor or key, key),
                               duration=body.duration)
        if gw.withdrawals_db is not None:
            gw.withdrawals.pending += 1
            try:
                await asyncio.to_thread(gw.withdrawals_db.put_drill, e, f"duration={body.duration:g}s")
            finally:
                gw.withdrawals.pending -= 1
                gw.withdrawals.generation += 1
        log.warning("DRILL started: %s %s (models: %s) out of traffic for %gs by %s: %s", e.target, e.name,
                    ", ".join(models), body.duration, e.actor, e.reason)
        gw.lifecycle("drill_started", target=e.target, name=e.name, models=models, duration_s=body.duration,
                     actor=e.actor, reason=e.reason)
        return await propagated("drill", {"drill": e.public(gw.clock()), "models": models})

    @router.delete("/drills/{target}/{name}")
    async def end_drill(target: str, name: str, key: str = Depends(admin)) -> dict[str, Any]:
        check_target(target)
        await tidy()
        e = gw.withdrawals.remove("drill", target, name)
        if e is None:
            raise GatewayError(404, f"no drill running on {target} {name!r}", param="name", code="no_drill")
        if gw.withdrawals_db is not None:
            gw.withdrawals.pending += 1
            try:
                await asyncio.to_thread(gw.withdrawals_db.delete_drill, e, "drill-stopped")
            finally:
                gw.withdrawals.pending -= 1
                gw.withdrawals.generation += 1
        log.warning("DRILL stopped early: %s %s by admin key %s", target, name, key)
        gw.lifecycle("drill_stopped", target=target, name=name, admin_key_name=key)
        return await propagated("drill_stopped", {"ended": e.public(gw.clock())})

    @router.post("/explain")
    async def explain_request(body: ExplainBody) -> dict[str, Any]:
        """``gateway explain`` over the live state: the route and why, and per candidate tried now or skipped."""
        from gateway.reports.explain import explain

        headers = {"x-gateway-route": body.route_header} if body.route_header else None
        if "messages" in body.request:  # malformed messages must be a 400 naming the field, as on /v1/, not a 500
            from gateway.api.validate import validate_chat

            try:
                validate_chat(body.request)
            except GatewayError as e:
                raise GatewayError(400, e.message, param=f"request.{e.param}" if e.param else "request",
                                   code=e.code) from None
        try:
            return explain(gw.runtime, body.request, key_name=body.key_name, headers=headers,
                           state=gw.describe()["models"])
        except ValueError as e:
            raise GatewayError(400, str(e), param="key_name", code="unknown_key") from None

    @router.post("/reload")
    async def reload(key: str = Depends(admin)) -> JSONResponse:
        try:
            res = await gw.reloader.reload(f"POST /admin/reload by {key}")
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
