"""The city map's site names at the default zoom, in a real browser, in English and Arabic.

The names are real HTML links laid over the canvas, so the test reads them the way the page
offers them — each link's box as the browser laid it out — and checks that no two site names
cover each other and that every one of them is shown. Reading boxes is not clicking at pixels:
it is what a person sees when the map opens. The seed is the example city (65 sites: HQ, two
data centres and 63 branches) with two devices per site, as after a discovery.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import ARTIFACTS, REPO, require_assets, serve
from sqlmodel import Session, select

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.importer import import_file
from infra_mgr.inventory.models import Device, Site
from infra_mgr.network.models import DevicePoll

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-city-labels-password-1"
EXAMPLE = REPO / "examples" / "jeddah.yaml"
VIEWPORT = {"width": 1366, "height": 900}


def _seed(url: str) -> int:
    with Session(make_engine(url)) as s:
        create_user(s, UserCreate(username="admin", password=PASSWORD, role="admin"))
        import_file(s, EXAMPLE)
        s.flush()
        sites = list(s.exec(select(Site)).all())
        for site in sites:
            for n, status in ((1, "ok"), (2, "timeout" if site.code.endswith("7") else "ok")):
                d = Device(site_id=site.id or 0, hostname=f"{site.code.lower()}-sw{n:02d}", status="active")
                s.add(d)
                s.flush()
                s.add(DevicePoll(device_id=d.id or 0, status=status))
        s.commit()
        return len(sites)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    require_assets("bootstrap", "cytoscape")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e-city")
    url = f"sqlite:///{tmp / 'city.db'}"
    upgrade(url)
    count = _seed(url)
    app = create_app(Settings(data_dir=tmp, database_url=url), engine=make_engine(url))
    with serve(app) as (base, _server):
        yield base, count


def _boxes(page: Any) -> list[dict[str, Any]]:
    """Each site label link's text and box as laid out (visible ones only), read from the page."""
    return page.eval_on_selector_all(
        "#topology .topology-label-site",
        """els => els.map(a => { const r = a.getBoundingClientRect();
             return {text: a.textContent, node: a.dataset.node, hidden: a.hidden || r.width === 0,
                     x1: r.left, y1: r.top, x2: r.right, y2: r.bottom}; })""")


def _overlaps(boxes: list[dict[str, Any]]) -> list[str]:
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a["x1"] < b["x2"] and b["x1"] < a["x2"] and a["y1"] < b["y2"] and b["y1"] < a["y2"]:
                out.append(f"{a['text']!r} × {b['text']!r}")
    return out


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_site_labels_do_not_overlap_at_the_default_zoom(browser: Any, city: tuple[str, int], lang: str) -> None:
    base, count = city
    context = browser.new_context(base_url=base, viewport=VIEWPORT, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"/login?lang={lang}")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.goto("/network")
        page.wait_for_function("() => window.infraTopology && window.infraTopology.ready")
        page.wait_for_function(f"() => document.querySelectorAll('#topology .topology-label-site').length === {count}")
        page.wait_for_timeout(500)  # the labels follow the first render frames
        # a person's way in: at the city's zoom each site is a link named by its code
        assert page.locator("#topology").get_by_role("link", name="JED-B07", exact=True).count() == 1
        boxes = _boxes(page)
        Path(ARTIFACTS).mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"city-map-labels-{lang}.png"))
        assert len(boxes) == count
        hidden = [b["text"] for b in boxes if b["hidden"]]
        assert not hidden, f"site labels not shown: {hidden}"
        frame = page.locator("#topology").bounding_box()
        assert frame is not None
        outside = [b["text"] for b in boxes if b["x1"] < frame["x"] - 1 or b["x2"] > frame["x"] + frame["width"] + 1
                   or b["y1"] < frame["y"] - 1 or b["y2"] > frame["y"] + frame["height"] + 1]
        assert not outside, f"site labels cut off by the map's frame: {outside}"
        overlaps = _overlaps(boxes)
        assert not overlaps, f"{len(overlaps)} overlapping site labels: {overlaps[:10]}"
    finally:
        context.close()
