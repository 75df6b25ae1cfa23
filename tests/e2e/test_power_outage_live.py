"""A real outage in the power lab, watched live on the Power page in a real browser.

The lab's peers (NUT, the Modbus DRUPS, generator and meters, the SNMP UPSs) all follow the lab's
outage file; the app runs with its own power poller and live stream, configured for the lab as
``infra-mgr lab configure`` does. The test cuts mains (``OutageControl.start``), and without
reloading checks that the banner, the Outages card and its timeline tell the same story while the
outage lasts, and again after mains returns (``stop``): in English and in Arabic.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from browser_support import REPO, require_assets
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.models import Site
from infra_mgr.lab.power_peers import OutageControl
from infra_mgr.lab.setup import DC_SITE, configure_power
from infra_mgr.lab.supervisor import Lab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PASSWORD = "e2e-outage-password-1"
STRINGS = {lang: json.loads((REPO / "web" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
           for lang in ("en", "ar")}
# What the page shows at one instant: the banner, the Outages card (list and detail) and the timeline.
SNAPSHOT = """() => {
  const banner = document.getElementById('power-outage-open');
  const body = document.getElementById('power-outages-body');
  const detail = document.getElementById('outage-detail');
  const first = document.querySelector('#outage-list tbody tr');
  const kinds = Array.from(document.querySelectorAll('#outage-timeline tbody tr')).map(r => r.dataset.kind);
  const restored = document.querySelector('#outage-phases [data-phase="mains_restored"]');
  return {banner: !banner.hidden, bannerText: banner.textContent.trim(), open: body.dataset.open,
          detail: detail ? detail.dataset.status : null, detailId: detail ? detail.dataset.outage : null,
          first: first ? first.dataset.status : null, firstId: first ? first.dataset.outage : null,
          card: body.textContent, kinds: kinds, restored: restored ? restored.className : null,
          marker: window.__sameDocument === true, dir: document.documentElement.dir,
          sentences: Array.from(document.querySelectorAll(
            '#power-events li div, #outage-timeline tbody td:nth-child(5)')).map(c => c.textContent.trim()),
          names: Object.values(window.infraPower.devices).map(d => d.name)};
}"""


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    """The app under uvicorn with its lifespan (so its power poller and live hub run)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def lab_app(tmp_path_factory: pytest.TempPathFactory, peer_lab: Lab, outage: OutageControl, nut_server: Any,
            modbus_dse: Any, modbus_drups: Any, modbus_meter: Any, snmp_ups: Any) -> Iterator[str]:
    require_assets("bootstrap")
    from infra_mgr.api.app import create_app

    outage.reset()
    tmp: Path = tmp_path_factory.mktemp("e2e-outage")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    settings = Settings(data_dir=tmp, database_url=url, power_poller=True)
    engine = make_engine(url)
    with Session(engine) as s:
        create_user(s, UserCreate(username="facilities", password=PASSWORD, role="viewer"))
        s.add(Site(code=DC_SITE, name_en="Jeddah data centre", name_ar="مركز بيانات جدة", kind="datacenter"))
        s.flush()
        configure_power(s, settings.secret(), peer_lab)
        s.commit()
    app = create_app(settings, engine=engine)
    try:
        with _serve(app) as base:
            yield base
    finally:
        outage.reset()
        engine.dispose()


def _agree_during(snap: dict[str, Any]) -> bool:
    return (snap["banner"] and snap["open"] != "" and snap["detail"] == "open" and snap["first"] == "open"
            and snap["detailId"] == snap["open"] == snap["firstId"] and "power.mains_failed" in snap["kinds"])


def _agree_after(snap: dict[str, Any], oid: str) -> bool:
    return (not snap["banner"] and snap["open"] == "" and snap["detailId"] == oid and snap["detail"] == "closed"
            and snap["first"] == "closed" and "power.mains_restored" in snap["kinds"]
            and "done" in (snap["restored"] or ""))


def _english_left(snap: dict[str, Any]) -> list[str]:
    """The event sentences of the events card and the timeline that still hold English words once
    the names they quote (devices, the site's code) are taken out."""
    left = []
    for text in snap["sentences"]:
        bare = text
        for name in sorted([*snap["names"], DC_SITE], key=len, reverse=True):
            bare = bare.replace(name, "")
        if re.search(r"[A-Za-z]{2,}", bare):
            left.append(text)
    return left


def _wait(page: Any, check: Any, what: str, deadline_s: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    snap: dict[str, Any] = {}
    while time.monotonic() < end:
        snap = page.evaluate(SNAPSHOT)
        if check(snap):
            return snap
        time.sleep(0.25)
    raise AssertionError(f"not reached: {what}: {snap}")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_banner_outages_card_and_timeline_agree_live(browser: Any, lab_app: str, outage: OutageControl,
                                                     lang: str) -> None:
    t = STRINGS[lang]
    context = browser.new_context(base_url=lab_app, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"/login?next=/power&lang={lang}")
        page.get_by_label(t["login.username"]).fill("facilities")
        page.get_by_label(t["login.password"]).fill(PASSWORD)
        page.get_by_role("button", name=t["login.submit"]).click()
        page.wait_for_url("**/power")
        page.wait_for_function("() => window.infraPower && window.infraPower.live === 'on'")
        page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
        # every device of the lab read and on mains before the cut
        page.wait_for_function("() => Object.values(window.infraPower.devices).every(d => d.live && "
                               "['mains', 'standby'].includes(d.state))", timeout=60_000)

        outage.start()
        during = _wait(page, _agree_during, "banner, card and timeline show the outage")
        assert during["marker"] and during["dir"] == ("rtl" if lang == "ar" else "ltr")
        assert t["power.ongoing"] in during["card"] and t["power.outages_empty"] not in during["card"]
        assert page.get_by_role("alert").filter(has_text=t["power.outage_open"].split("{")[0].strip()).is_visible()
        if lang == "ar":  # the events card and the timeline say each event in Arabic, live
            during = _wait(page, lambda s: _agree_during(s) and len(s["sentences"]) >= 2 and not _english_left(s),
                           "every event sentence in Arabic during the outage", 20.0)
            assert any(t["event.msg.power.mains_failed"].split(": ")[1] in x for x in during["sentences"])

        outage.stop()
        after = _wait(page, lambda s: _agree_after(s, during["open"]), "the card and timeline show mains back")
        assert after["marker"], "the page was reloaded"
        assert t["power.ongoing"] not in after["card"] and t["power.phase_skipped"] not in after["card"].split(
            t["power.timeline"])[0].split(t["phase.mains_restored"])[1][:40]
        if lang == "ar":
            after = _wait(page, lambda s: _agree_after(s, during["open"]) and not _english_left(s),
                          "every event sentence in Arabic after the outage", 20.0)
            assert any(t["event.msg.power.outage_ended"] in x for x in after["sentences"])
        assert errors == []
    finally:
        context.close()
        outage.reset()
