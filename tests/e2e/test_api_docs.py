"""The interactive API docs (/api/docs) work with no internet: Swagger UI comes from our own server
(the npm package installed at set-up), and a person sees the operations listed and can open one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import require_assets, serve

from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_assets("swagger-ui-dist")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("apidocs")
    url = f"sqlite:///{tmp / 'docs.db'}"
    upgrade(url)
    app = create_app(Settings(data_dir=tmp, database_url=url, power_poller=False), engine=make_engine(url))
    with serve(app) as (base, _server):
        yield base


def test_api_docs_list_the_operations_without_any_cdn(browser: Any, base_url: str) -> None:
    context = browser.new_context(base_url=base_url, locale="en-US")
    outside: list[str] = []
    failed: list[str] = []

    def _only_ours(route: Any) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:  # a CDN (or anything off this server) is refused, as on the municipality's network
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", _only_ours)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("pageerror", lambda exc: failed.append(str(exc)))
    try:
        page.goto("/api/docs")
        page.get_by_role("heading", name=re.compile("infra-mgr")).first.wait_for()
        operation = page.get_by_text("List sites", exact=True).first
        operation.wait_for()
        assert page.get_by_text("/api/v1/devices", exact=True).first.is_visible()
        operation.click()  # expands: the parameters, the filters among them, are listed
        page.get_by_text("cursor", exact=True).first.wait_for()
    finally:
        context.close()
    assert outside == [] and failed == [], (outside, failed)
