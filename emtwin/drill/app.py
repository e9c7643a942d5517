"""The drill's web application (FastAPI on uvicorn): the page, the HTTP API and a websocket.

Endpoints
---------
``GET /``
    The page (``?token=...`` in the address carries the token to the page's script).
``GET /api/state``
    ``time_s``, ``running``, ``speed`` and the headline figures, as JSON.
``GET /api/frame``
    The map's moving parts now (roads, water, shelters, units, calls).
``POST /api/actions``
    A decision: an action as in a scenario's timeline without ``at``, e.g.
    ``{"close_road": "bridge-east"}``; carried out at the current simulated time,
    answered ``{"time_s": T}``; a bad action gets 422 with the reason.
``POST /api/control``
    ``{"command": "pause" | "resume" | "stop", "speed": N, "time_s": T}`` (control only;
    ``time_s`` jumps: forward by playing, back from a checkpoint).
``POST /api/inject``
    ``{"to": ..., "message": ..., "action": {...}}``: an inject released now (control only).
``POST /api/whatif``
    ``{"plan": FILE | null, "hours": H}``: fork the current state (control only).
``POST /api/forecast``
    ``{"members": N, "horizon": "2h"}``: the ensemble forecast from now (control only),
    answered ``{"id": ..., "state": "running", ...}``; 409 while another one runs.
``GET /api/forecast/{id}``
    Its state, then its products: per-gauge quantiles, fan charts and the map of the
    probability that the depth exceeds 0.3 m (see :mod:`emtwin.drill.forecast`);
    ``GET /api/forecast/{id}/report.html``: its forecast page.
``WS /ws?token=...``
    Pushes ``{"type": "state", ...}`` messages whenever the run moves on.

Every POST needs ``Authorization: Bearer TOKEN``: the control token or the players'
token; without one, or with another, it answers 401; a players' token on a
control endpoint gets 403.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Literal

from fastapi import Body, FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from emtwin.drill.forecast import MAX_MEMBERS, DrillForecasts, ForecastError
from emtwin.drill.session import ActionError, DrillSession

__all__ = ["create_app", "new_token"]


def new_token() -> str:
    """A fresh random token (URL-safe, 128 bits)."""
    return secrets.token_urlsafe(16)


class Control(BaseModel):
    """The body of ``POST /api/control``."""

    model_config = ConfigDict(extra="forbid")
    command: Literal["pause", "resume", "stop"] | None = None
    speed: float | None = Field(None, gt=0, description="simulated s per wall s")
    time_s: float | None = Field(None, ge=0, description="jump to this simulated time, s")


class InjectNow(BaseModel):
    """The body of ``POST /api/inject``."""

    model_config = ConfigDict(extra="forbid")
    to: str = "players"
    message: str
    action: dict[str, Any] | None = None


class WhatIf(BaseModel):
    """The body of ``POST /api/whatif``."""

    model_config = ConfigDict(extra="forbid")
    plan: str | None = Field(None, description="a plan file; None: no further action")
    hours: float = Field(2.0, gt=0, le=48)


class ForecastAsk(BaseModel):
    """The body of ``POST /api/forecast``."""

    model_config = ConfigDict(extra="forbid")
    members: int = Field(8, ge=2, le=MAX_MEMBERS, description="ensemble size")
    horizon: float = Field(2 * 3600.0, gt=0, description="s, or a duration such as 2h")

    @field_validator("horizon", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        from emtwin.scenarios._types import parse_duration

        return parse_duration(v)


def create_app(session: DrillSession, *, token: str, player_token: str | None = None,
               poll_s: float = 0.05, forecast_workers: int = 1) -> FastAPI:  # fmt: skip
    """The web application of *session*.

    Parameters
    ----------
    session
        The drill.
    token
        The control token (sees everything; may pause, jump, inject and fork).
    player_token
        The players' token (may decide); a fresh one when None.
    poll_s
        How often the websocket looks for a change, wall s.
    forecast_workers
        Worker processes of a forecast's members (0: a thread of this process).
    """
    player_token = player_token or new_token()
    tokens = {token: "control", player_token: "player"}
    app = FastAPI(title="emtwin drill", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.session = session
    app.state.tokens = tokens
    forecasts = app.state.forecasts = DrillForecasts(session, workers=forecast_workers)
    cache: dict[str, Any] = {}

    def role_of(value: str | None) -> str | None:
        if not value:
            return None
        for tok, role in tokens.items():
            if secrets.compare_digest(value.encode(), tok.encode()):
                return role
        return None

    def bearer(request: Request) -> str:
        head = request.headers.get("authorization", "")
        scheme, _, value = head.partition(" ")
        role = role_of(value.strip()) if scheme.lower() == "bearer" else None
        if role is None:
            raise HTTPException(401, "a valid token is needed: Authorization: Bearer TOKEN",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return role

    def control_only(request: Request) -> str:
        role = bearer(request)
        if role != "control":
            raise HTTPException(403, "only exercise control may do this")
        return role

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        from emtwin.drill.page import build_page

        if "page" not in cache:
            cache["page"] = build_page(session)
        return HTMLResponse(cache["page"])

    @app.get("/deck.js")
    def deck_js() -> Response:
        from emtwin.viz.map import _bundle

        if "deck" not in cache:
            cache["deck"] = _bundle()
        return Response(cache["deck"], media_type="text/javascript",
                        headers={"Cache-Control": "max-age=86400"})  # fmt: skip

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/api/state")
    def state(request: Request) -> dict[str, Any]:
        out = session.status()
        head = request.headers.get("authorization", "")
        role = role_of(head.partition(" ")[2].strip()) or "player"
        out["messages"] = session.messages(role)
        return out

    @app.get("/api/frame")
    def frame() -> dict[str, Any]:
        return session.frame()

    @app.post("/api/actions")
    def actions(request: Request, body: Any = Body(...)) -> dict[str, Any]:  # noqa: B008
        role = bearer(request)
        try:
            t = session.act(body, role)
        except ActionError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"time_s": t}

    @app.post("/api/control")
    def control(request: Request, body: Control) -> dict[str, Any]:
        role = control_only(request)
        try:
            if body.time_s is not None:
                session.jump(body.time_s, role)
            return session.control(body.command, speed=body.speed, role=role)
        except ActionError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.post("/api/inject")
    def inject(request: Request, body: InjectNow) -> dict[str, Any]:
        role = control_only(request)
        try:
            t = session.inject_now(body.to, body.message, body.action, role=role)
        except ActionError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"time_s": t}

    @app.post("/api/whatif")
    def whatif(request: Request, body: WhatIf) -> dict[str, Any]:
        role = control_only(request)
        if body.plan is not None:
            from pathlib import Path

            if not Path(body.plan).is_file():
                raise HTTPException(422, f"plan: {body.plan}: no such file")
        return session.fork(body.plan, hours=body.hours, role=role)

    @app.get("/api/whatif")
    def whatif_result() -> JSONResponse:
        return JSONResponse(session.whatif)

    @app.post("/api/forecast")
    def forecast(request: Request, body: ForecastAsk) -> dict[str, Any]:
        role = control_only(request)
        busy = forecasts.running()
        if busy is not None:
            raise HTTPException(409, f"forecast {busy} is still running; wait for it")
        try:
            return forecasts.start(body.members, body.horizon, role=role)
        except ForecastError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/forecast")
    def forecast_list() -> dict[str, Any]:
        return {"jobs": [forecasts.brief(k) for k in forecasts.jobs]}

    @app.get("/api/forecast/{fid}")
    def forecast_result(fid: str) -> dict[str, Any]:
        job = forecasts.get(fid)
        if job is None:
            raise HTTPException(404, f"no forecast {fid}")
        return job

    @app.get("/api/forecast/{fid}/report.html")
    def forecast_report(fid: str) -> Response:
        path = forecasts.report(fid)
        if path is None:
            raise HTTPException(404, f"no forecast page for {fid} (not finished?)")
        return HTMLResponse(path.read_text(encoding="utf-8"))

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        role = role_of(socket.query_params.get("token"))
        if role is None:
            await socket.close(code=1008)
            return
        await socket.accept()
        seen, water_t = -1, None
        try:
            while True:
                v = session.version
                if v != seen:
                    seen = v
                    msg = await run_in_threadpool(_message, session, role, water_t)
                    msg["forecast"] = forecasts.brief()
                    if msg["frame"]["water"]:
                        water_t = msg["frame"]["water_t"]
                    await socket.send_json(msg)
                await asyncio.sleep(poll_s)
        except (WebSocketDisconnect, RuntimeError):
            return

    return app


def _message(session: DrillSession, role: str, water_t: float | None) -> dict[str, Any]:
    """One websocket message: the state, the map frame (water only when it moved on)."""
    with session.locked():
        frame = session.frame()
        status = session.status()
    if frame["water_t"] == water_t:
        frame["water"] = ""
    return {"type": "state", "role": role, "state": status, "frame": frame,
            "messages": session.messages(role), "whatif": session.whatif,
            "decisions": session.decisions_seen(role)}  # fmt: skip
