"""The dashboard mounted on the app: its routers, its templates and the static files.

What each page shows comes from the domains' read views; the modules here only route, check the
session, pick the language and format (see :mod:`infra_mgr.web.pages`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

from infra_mgr.api.deps import DbSession
from infra_mgr.auth.service import Principal
from infra_mgr.network import views as network_views
from infra_mgr.web import auth_pages, config_pages, link_pages, network_pages, power_pages
from infra_mgr.web.assets import vendor_dir, web_dir
from infra_mgr.web.pages import User_, WebState, empty_state, html_error_response, html_router, render

__all__ = ["html_error_response", "mount_web"]

log = logging.getLogger("infra_mgr.web")
router = html_router()


@router.get("/cloud")
def cloud(request: Request, user: Principal = User_) -> Response:
    return empty_state(request, user, "cloud")


JOB_RUNS_SHOWN = 50
_RUN_BADGE = {"running": "info", "ok": "success", "failed": "danger"}


@router.get("/jobs")
def jobs(request: Request, session: DbSession, user: Principal = User_) -> Response:
    """The jobs that ran, newest first: today the discovery runs, each with the devices it could
    not read and why (the same view as ``GET /api/v1/discovery/runs``)."""
    runs = network_views.discovery_runs(session, limit=JOB_RUNS_SHOWN)
    if not runs:
        return empty_state(request, user, "jobs")
    return render(request, "jobs.html", {"runs": runs, "run_badge": _RUN_BADGE}, section="jobs", user=user)


# What /api/docs loads from the swagger-ui-dist package. The package's own index.html (a demo
# pointing at a public sample API), its initializer and package.json are not served.
SWAGGER_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


class OnlyFiles(StaticFiles):
    """Static files limited to a named few: a vendor package folder holds more than a page needs."""

    def __init__(self, names: frozenset[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = names

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in self.names:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def mount_web(app: FastAPI) -> None:
    """Add the dashboard's pages and static files to the app (called by ``create_app``)."""
    bootstrap = vendor_dir("bootstrap")
    graph = vendor_dir("cytoscape")
    templates = Jinja2Templates(directory=str(web_dir("templates")))
    app.state.web = WebState(templates=templates, bootstrap=bootstrap is not None, graph=graph is not None)
    # The vendor mounts must come before /static, which would otherwise swallow their paths.
    if bootstrap is not None:
        app.mount("/static/vendor/bootstrap", StaticFiles(directory=bootstrap), name="vendor-bootstrap")
    if graph is not None:
        app.mount("/static/vendor/cytoscape", StaticFiles(directory=graph), name="vendor-cytoscape")
    if (swagger := vendor_dir("swagger-ui-dist")) is not None:  # the API's interactive docs (/api/docs)
        app.mount("/static/vendor/swagger-ui", OnlyFiles(SWAGGER_ASSETS, directory=swagger), name="vendor-swagger-ui")
    static = web_dir("static")
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    else:
        log.warning("dashboard static folder %s is missing: pages will render without our stylesheet", static)
    for r in (auth_pages.router, network_pages.router, link_pages.router, power_pages.router, config_pages.router,
              router):
        app.include_router(r)
