"""The application factory: mounts each domain's router and the conventions they share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import validation_error_definition, validation_error_response_definition
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute

from infra_mgr import __version__
from infra_mgr.api.audit import AuditMiddleware, BodyLimitMiddleware
from infra_mgr.config import Settings, get_settings
from infra_mgr.db import get_engine
from infra_mgr.errors import ServiceError

log = logging.getLogger("infra_mgr.api")
API = "/api/v1"
RETRY_AFTER_S = "1"  # seconds a client should wait after a 503 for a busy database or pool
_VALUE_ERR = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*): (.+)$", re.DOTALL)
_KIND = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
         422: "value_error", 503: "unavailable"}


class ErrorItem(BaseModel):
    """One problem: where (``["body", "code"]``, ``["query", "site"]``), what, and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Body of every 4xx/5xx answer except 422: a sentence, and the fields concerned (if any)."""

    detail: str
    errors: list[ErrorItem] = []


def _err(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": errors or []}, status_code=status)


def _retry_later(detail: str) -> JSONResponse:
    """A 503 that tells the client when to come back: the database or its pool is busy, not broken."""
    resp = _err(503, detail)
    resp.headers["Retry-After"] = RETRY_AFTER_S
    return resp


def _invalid(items: list[dict[str, Any]]) -> JSONResponse:
    """A 422 in FastAPI's declared shape (``{"detail": [{loc, msg, type}]}``), nothing else in it."""
    return JSONResponse({"detail": items}, status_code=422)


def _where(request: Request, field: str) -> str:
    """Which part of the request a service's field name refers to (for ``loc``)."""
    if field in request.path_params:
        return "path"
    if field in request.query_params or field in _query_names(request):
        return "query"
    return "body"


def _query_names(request: Request) -> set[str]:
    """The query parameters the matched route declares: a 409 about ``?cascade`` is about the query
    even when the parameter was left out (its default was what got refused)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    return set(_declared_query(dependant)) if isinstance(dependant, Dependant) else set()


def _service_items(request: Request, exc: ServiceError) -> list[dict[str, Any]]:
    kind = _KIND.get(exc.status_code, "error")
    items = []
    for e in exc.errors:
        field = str(e.get("field") or "")
        loc = [_where(request, field), *field.split(".")] if field else ["body"]
        items.append({"loc": loc, "msg": str(e.get("msg") or exc.message), "type": kind})
    return items


def _validation_item(e: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's item without ``input``/``ctx`` (they may echo secrets or hold exceptions); a body that
    is not JSON at all is the body's fault, not a field at some byte offset."""
    loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
    msg, kind = str(e.get("msg", "invalid")), str(e.get("type", "value_error"))
    if kind == "json_invalid":
        reason = (e.get("ctx") or {}).get("error")
        return {"loc": ["body"], "msg": f"malformed JSON{f' ({reason})' if reason else ''}", "type": kind}
    m = _VALUE_ERR.match(msg)
    if m and len(loc) <= 1:
        loc, msg = [*(loc or ["body"]), m.group(1)], m.group(2)
    elif msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    return {"loc": loc or ["body"], "msg": msg, "type": kind}


def _allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method ``path`` answers to: Starlette's 405 names only the first route that matched
    the path (e.g. GET of a list), not its siblings (POST)."""
    from starlette.routing import compile_path

    allowed: set[str] = set()
    for full, route in _route_paths(app):
        methods = getattr(route, "methods", None)
        if methods and full and compile_path(full)[0].match(path):
            allowed |= set(methods)
    return allowed


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid([_validation_item(dict(e)) for e in exc.errors()])

    @app.exception_handler(ServiceError)
    async def _service(req: Request, exc: ServiceError) -> JSONResponse:
        items = _service_items(req, exc)
        if exc.status_code == 422:
            return _invalid(items or [{"loc": ["body"], "msg": exc.message, "type": "value_error"}])
        resp = _err(exc.status_code, exc.message, items)
        if exc.status_code == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> Response:
        from infra_mgr.web.routes import html_error_response

        if exc.status_code == 400 and req.url.path.startswith("/api/"):  # a body FastAPI could not even decode
            return _invalid([{"loc": ["body"], "msg": f"malformed JSON ({exc.detail})", "type": "json_invalid"}])
        resp = html_error_response(req, exc.status_code) or _err(exc.status_code, str(exc.detail))
        if exc.headers:
            resp.headers.update(exc.headers)
        if exc.status_code == 405:
            resp.headers["Allow"] = ", ".join(sorted(_allowed_methods(req.app, req.url.path)))
        return resp

    @app.exception_handler(IntegrityError)
    async def _integrity(_req: Request, exc: IntegrityError) -> JSONResponse:
        return _err(409, f"conflicts with existing data: {str(exc.orig).splitlines()[0]}")

    @app.exception_handler(DataError)
    async def _data(_req: Request, exc: DataError) -> JSONResponse:
        return _invalid([{"loc": ["body"], "msg": f"value rejected by the database: {str(exc.orig).splitlines()[0]}",
                          "type": "value_error"}])

    @app.exception_handler(OperationalError)
    async def _busy(_req: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return _retry_later("database busy or unavailable, retry")

    @app.exception_handler(PoolTimeoutError)
    async def _pool_exhausted(_req: Request, exc: PoolTimeoutError) -> JSONResponse:
        # Every pooled connection stayed busy for the pool's whole (short) wait: say so at once and
        # when to come back, rather than a 500 or a request hanging on the pool.
        log.warning("database connection pool exhausted: %s", exc)
        return _retry_later("server busy: no database connection free, retry shortly")


# --------------------------------------------------------------------------- unknown query parameters

def _declared_query(dependant: Dependant) -> set[str]:
    """Every query parameter a route declares, its dependencies' included."""
    names = {f.alias for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared_query(sub)
    return names


_KNOWN_QUERY: dict[int, frozenset[str]] = {}


def reject_unknown_query(request: Request) -> None:
    """A misspelt filter must not quietly answer with the whole table: any query parameter the API
    route does not declare is a 422 naming it. Applied once to the app, so every route is covered."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.url.path.startswith("/api/"):
        return
    known = _KNOWN_QUERY.get(id(route))
    if known is None:
        known = _KNOWN_QUERY[id(route)] = frozenset(_declared_query(route.dependant))
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise RequestValidationError([
            {"loc": ("query", name), "msg": f"unknown query parameter (this operation takes: {allowed})",
             "type": "extra_forbidden"} for name in unknown])


# --------------------------------------------------------------------------- OpenAPI: the error answers

def _needs_principal(dependant: Dependant) -> bool:
    from infra_mgr.api.deps import get_principal

    return dependant.call is get_principal or any(_needs_principal(d) for d in dependant.dependencies)


def _error_responses(route: APIRoute) -> dict[str, tuple[str, str]]:
    """The error statuses a route can answer with: status -> (body schema, description)."""
    out: dict[str, tuple[str, str]] = {"401": ("ErrorResponse", "No valid bearer token or session, or a failed login")}
    if _needs_principal(route.dependant):
        out["403"] = ("ErrorResponse", "The role lacks the permission, or a cookie write lacks its CSRF header")
    if route.dependant.path_params:
        out["404"] = ("ErrorResponse", "No such object")
    if (route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
        out["409"] = ("ErrorResponse", "Conflicts with existing data: a unique value taken, an object still referenced")
    if route.body_field is not None:  # BodyLimitMiddleware's answer to an oversize body
        out["413"] = ("ErrorResponse", "Request body larger than the server accepts")
    out["422"] = ("HTTPValidationError", "Invalid parameter or body, or an unknown query parameter; `loc` names it")
    out["503"] = ("ErrorResponse", "Database busy or unavailable; retry")
    return out


def _route_paths(app: FastAPI) -> list[tuple[str, BaseRoute]]:
    """(full path template, route) of every route, through included routers."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers kept their own route objects
        return [(getattr(r, "path_format", ""), r) for r in app.routes]
    return [(ctx.path_format or "", ctx.original_route) for ctx in iter_route_contexts(app.routes)]


def _api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """(full path template, route) of every documented API route, through included routers."""
    pairs = _route_paths(app)
    return [(path, route) for path, route in pairs
            if isinstance(route, APIRoute) and path.startswith(API) and route.include_in_schema]


def _document_errors(app: FastAPI) -> None:
    """Declare in the OpenAPI document every error answer each route gives, with the body's shape."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = generate()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        ref = "#/components/schemas/{model}"
        for error_model in (ErrorItem, ErrorResponse):
            schema = error_model.model_json_schema(ref_template=ref)
            schema.pop("$defs", None)
            schemas[error_model.__name__] = schema
        schemas.setdefault("ValidationError", validation_error_definition)
        schemas.setdefault("HTTPValidationError", validation_error_response_definition)
        for path, route in _api_routes(app):
            for method in route.methods or ():
                op = doc["paths"].get(path, {}).get(method.lower())
                if op is None:
                    continue
                responses = op.setdefault("responses", {})
                for status, (model, what) in _error_responses(route).items():
                    responses.setdefault(status, {"description": what})["content"] = {"application/json": {
                        "schema": {"$ref": ref.format(model=model)}}}
                for status, response in responses.items():  # a route's own error answers (e.g. 404 by a
                    if status[:1] in "45" and "content" not in response:  # query id, 429) share the shape
                        response["content"] = {"application/json": {"schema": {"$ref": ref.format(
                            model="ErrorResponse")}}}
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document


def _install_docs(app: FastAPI) -> None:
    """Swagger UI at ``/api/docs`` from the npm package installed at set-up (``web/node_modules``),
    never a CDN: the municipality's network may not reach one, and a blank page helps nobody."""
    from infra_mgr.web.assets import vendor_dir

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if vendor_dir("swagger-ui-dist") is None:
            return HTMLResponse("<!doctype html><title>infra-mgr API</title><p>The interactive API docs need the "
                                "front-end packages: run <code>npm ci --prefix web</code> (part of "
                                "<code>make setup</code>). The OpenAPI document is at "
                                f'<a href="{API}/openapi.json">{API}/openapi.json</a>.', status_code=503)
        base = "/static/vendor/swagger-ui"
        return get_swagger_ui_html(openapi_url=f"{API}/openapi.json", title="infra-mgr API",
                                   swagger_js_url=f"{base}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{base}/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")


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
    """Background work of a serving process: the power poller (live dashboards read its hub), the
    link poller (branch uplinks and reachability) and the scheduled configuration backup."""
    settings: Settings = app.state.settings
    tasks: list[asyncio.Task[None]] = []
    poller = None
    if settings.power_poller:
        from infra_mgr.power.poller import LiveHub, PowerPoller

        app.state.power_hub = LiveHub()
        poller = PowerPoller(app.state.engine, app.state.master_key, hub=app.state.power_hub)
        tasks.append(asyncio.create_task(poller.run()))
    link_poller = None
    if settings.link_poller:
        from infra_mgr.network.link_poller import LinkPoller

        link_poller = LinkPoller.from_settings(app.state.engine, app.state.master_key, settings)
        tasks.append(asyncio.create_task(link_poller.run()))
    backups = None
    if settings.backup_schedule:
        from infra_mgr.network.ssh.schedule import BackupSchedule

        backups = BackupSchedule(app.state.engine, app.state.master_key, settings.backup_interval_s)
        tasks.append(asyncio.create_task(backups.run()))
    try:
        yield
    finally:
        if poller is not None:
            poller.stop()
        if link_poller is not None:
            link_poller.stop()
        if backups is not None:
            backups.stop()
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
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.master_key = settings.secret()

    from infra_mgr.auth.api import router as auth_router
    from infra_mgr.events.api import router as events_router
    from infra_mgr.inventory.api import router as inventory_router
    from infra_mgr.network.api import router as network_router
    from infra_mgr.network.link_api import router as links_router
    from infra_mgr.network.ssh.api import router as config_router
    from infra_mgr.power.api import router as power_router
    from infra_mgr.web.routes import mount_web

    for router in (auth_router, links_router, config_router, inventory_router, network_router, power_router,
                   events_router):
        app.include_router(router, prefix=API)
    mount_web(app)
    _install_docs(app)

    _install_error_handlers(app)
    _document_errors(app)
    _install_metrics(app, engine)
    app.add_middleware(BodyLimitMiddleware)  # inside the audit: a refused oversize write is audited
    app.add_middleware(AuditMiddleware, engine=engine)
    app.add_middleware(SessionMiddleware, secret_key=app.state.master_key.decode(), session_cookie="infra_mgr",
                       max_age=settings.session_max_age_s, same_site="lax", https_only=settings.secure_cookies)
    return app
