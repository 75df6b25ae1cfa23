"""What every browser test needs: Debian's Chromium, the app served on a free loopback port, and
the rule for a missing prerequisite (skip on a developer machine, fail in CI)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from infra_mgr.web.assets import vendor_dir

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def missing(reason: str) -> None:
    """Skip on a developer machine without the browser or assets; in CI that is a broken set-up."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"e2e prerequisite missing in CI: {reason}")
    pytest.skip(reason)


def require_assets(*packages: str) -> None:
    for package in packages:
        if vendor_dir(package) is None:
            missing(f"npm package {package} missing: run `npm ci --prefix web --no-audit --no-fund`")


@contextmanager
def serve(app: Any, **config: Any) -> Iterator[tuple[str, Any]]:
    """The app under uvicorn in a thread on a free 127.0.0.1 port: yields (base URL, server)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def watched_page(browser: Any, base_url: str, **context: Any) -> Iterator[Any]:
    """A page as a person in Jeddah sees it, whose console errors, uncaught exceptions and failed
    sub-requests fail the test when it ends (a chart that broke quietly is still broken)."""
    ctx = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 1000}, locale="en-US",
                              timezone_id="Asia/Riyadh", **context)
    pg = ctx.new_page()
    pg.set_default_timeout(10_000)
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}")
          if r.request.resource_type != "document" and r.status >= 400 else None)
    yield pg
    ctx.close()
    assert errors == []
