"""The application factory: mounts each domain's router and the conventions they share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from infra_mgr import __version__
from infra_mgr.api.audit import AuditMiddleware
from infra_mgr.config import Settings, get_settings
from infra_mgr.db import get_engine
from infra_mgr.errors import ServiceError

log = logging.getLogger("infra_mgr.api")
API = "/api/v1"
_VALUE_ERR = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*): (.+)$", re.DOTALL)


def _err(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": errors or []}, status_code=status)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            field, msg = _field_of(tuple(e.get("loc", ()))), str(e.get("msg", "invalid"))
            m = _VALUE_ERR.match(msg)
            if m and not field:
                field, msg = m.group(1), m.group(2)
            errors.append({"field": field or "body", "msg": msg})
        detail = "; ".join(f"{x['field']}: {x['msg']}" for x in errors) or "invalid request"
        return _err(422, detail, errors)

    @app.exception_handler(ServiceError)
    async def _service(_req: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        resp = _err(exc.status_code, exc.message, exc.errors)
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> Response:
        from infra_mgr.web.routes import html_error_response

        return html_error_response(req, exc.status_code) or _err(exc.status_code, str(exc.detail))

    @app.exception_handler(IntegrityError)
    async def _integrity(_req: Request, exc: IntegrityError) -> JSONResponse:
        return _err(409, f"conflicts with existing data: {str(exc.orig).splitlines()[0]}")

    @app.exception_handler(DataError)
    async def _data(_req: Request, exc: DataError) -> JSONResponse:
        return _err(422, f"value rejected by the database: {str(exc.orig).splitlines()[0]}")

    @app.exception_handler(OperationalError)
    async def _busy(_req: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return _err(503, "database busy or unavailable, retry")


def _route_label(request: Request) -> str:
    """The URL template (``/api/v1/sites/{obj_id}``): bounded label values for Prometheus."""
    path = request.url.path
    for name, value in request.path_params.items():
        path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return path


def _install_metrics(app: FastAPI, engine: Engine) -> None:
    registry = CollectorRegistry()
    requests = Counter("infra_mgr_http_requests_total", "HTTP requests", ["method", "route", "status"],
                       registry=registry)
    latency = Histogram("infra_mgr_http_request_seconds", "HTTP request latency", ["method", "route"],
                        registry=registry)
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def _measure(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        response: Response = await call_next(request)
        name = _route_label(request) if request.scope.get("route") is not None else "unmatched"
        latency.labels(request.method, name).observe(time.perf_counter() - start)
        requests.labels(request.method, name, str(response.status_code)).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"], summary="Liveness and database reachability")
    def healthz() -> JSONResponse:
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:  # noqa: BLE001 - health reports, it does not raise
            return JSONResponse({"status": "error", "database": str(exc).splitlines()[0]}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__, "database": engine.dialect.name})


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Background work of a serving process: the power poller (live dashboards read its hub)."""
    settings: Settings = app.state.settings
    tasks: list[asyncio.Task[None]] = []
    poller = None
    if settings.power_poller:
        from infra_mgr.power.poller import LiveHub, PowerPoller

        app.state.power_hub = LiveHub()
        poller = PowerPoller(app.state.engine, app.state.master_key, hub=app.state.power_hub)
        tasks.append(asyncio.create_task(poller.run()))
    try:
        yield
    finally:
        if poller is not None:
            poller.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or get_engine(settings)
    app = FastAPI(
        lifespan=_lifespan,
        title="infra-mgr",
        version=__version__,
        description="Source of truth, discovery, power and private-cloud management for a city's IT estate.",
        openapi_url=f"{API}/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.master_key = settings.secret()

    from infra_mgr.auth.api import router as auth_router
    from infra_mgr.events.api import router as events_router
    from infra_mgr.inventory.api import router as inventory_router
    from infra_mgr.network.api import router as network_router
    from infra_mgr.power.api import router as power_router
    from infra_mgr.web.routes import mount_web

    for router in (auth_router, inventory_router, network_router, power_router, events_router):
        app.include_router(router, prefix=API)
    mount_web(app)

    _install_error_handlers(app)
    _install_metrics(app, engine)
    app.add_middleware(AuditMiddleware, engine=engine)
    app.add_middleware(SessionMiddleware, secret_key=app.state.master_key.decode(), session_cookie="infra_mgr",
                       max_age=settings.session_max_age_s, same_site="lax", https_only=settings.secure_cookies)
    return app
