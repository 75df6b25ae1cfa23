"""Where the dashboard's files are: templates, our static files, UI strings and npm vendor assets.

A built wheel carries ``web/templates``, ``web/static`` and ``web/i18n`` inside the package
(``infra_mgr/web/...``, see pyproject's force-include); an editable install runs from the repository,
where they sit in the top-level ``web/`` folder. Looking in the package first and the repository
second lets both layouts work without configuration.

Vendor assets (Bootstrap) come from an npm install into ``web/node_modules`` instead of a CDN: the
municipality's network may not reach the internet, and we never want a third party in the page.
When they are missing the dashboard must still work (unstyled), so callers get ``None`` and a
warning is logged once per process rather than an exception.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("infra_mgr.web")

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_WEB_DIR = PACKAGE_DIR.parents[1] / "web"

# npm package -> the folder of it we serve. Only what the pages use.
VENDOR_PACKAGES: dict[str, str] = {"bootstrap": "dist", "cytoscape": "dist", "swagger-ui-dist": "."}

_warned: set[str] = set()


def web_dir(kind: str) -> Path:
    """The folder for ``kind`` ("templates", "static" or "i18n"): the package's copy, else the repository's."""
    packaged = PACKAGE_DIR / kind
    if packaged.is_dir():
        return packaged
    return REPO_WEB_DIR / kind


def vendor_dir(package: str) -> Path | None:
    """The served folder of an npm package, or ``None`` (warned once) if ``npm ci`` has not run."""
    sub = VENDOR_PACKAGES[package]
    for root in (PACKAGE_DIR / "node_modules", REPO_WEB_DIR / "node_modules"):
        candidate = root / package / sub
        if candidate.is_dir():
            return candidate
    if package not in _warned:
        _warned.add(package)
        log.warning("front-end package %r not found under %s: the dashboard will render unstyled; "
                    "run `npm ci --prefix web` to install it", package, REPO_WEB_DIR / "node_modules")
    return None
