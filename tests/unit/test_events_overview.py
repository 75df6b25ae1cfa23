"""Events as people read them: sentences in the viewer's language made from kind + data, device
names that link to their pages, and an Overview that opens on problems instead of a screenful of
``device.new``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.common import utcnow
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.events import messages
from infra_mgr.events import views as event_views
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Device, Site
from infra_mgr.network.models import DevicePoll
from infra_mgr.web.i18n import Translator

PASSWORD = "unit-test-password-5"
DISCOVERED = 30


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """A discovery's worth of ``device.new`` (newest of all), one interface down, one device not
    answering, a mains failure at a branch, and an integration's event of its own kind."""
    tmp = tmp_path_factory.mktemp("events")
    url = f"sqlite:///{tmp / 'ev.db'}"
    upgrade(url)
    engine = make_engine(url)
    now = utcnow()
    with Session(engine) as s:
        create_user(s, UserCreate(username="viewer5", password=PASSWORD, role="viewer"))
        b07 = Site(code="JED-B07", name_en="Al-Balad branch", name_ar="فرع البلد", kind="branch")
        s.add(b07)
        s.flush()
        sw = Device(site_id=b07.id or 0, hostname="jed-b07-sw01", status="active")
        lost = Device(site_id=b07.id or 0, hostname="jed-b07-ap01", status="active")
        s.add_all([sw, lost])
        s.flush()
        s.add(DevicePoll(device_id=sw.id or 0, status="ok"))
        s.add(DevicePoll(device_id=lost.id or 0, status="timeout"))
        s.add(Event(time=now - dt.timedelta(minutes=30), kind="power.mains_failed", severity="critical",
                    message="B07 UPS: mains failed", site_id=b07.id, data={"power_device": "B07 UPS"}))
        s.add(Event(time=now - dt.timedelta(minutes=20), kind="interface.down", severity="warning",
                    message="jed-b07-sw01 Gi1/0/24 up → down", device_id=sw.id, site_id=b07.id,
                    data={"interface": "Gi1/0/24", "before": "up", "after": "down"}))
        s.add(Event(time=now - dt.timedelta(minutes=15), kind="backup.custom", message="nightly backup done"))
        for i in range(DISCOVERED):
            d = Device(site_id=b07.id or 0, hostname=f"jed-b07-new{i:02d}", status="active")
            s.add(d)
            s.flush()
            s.add(Event(time=now - dt.timedelta(minutes=10, seconds=-i), kind="device.new",
                        message=f"new device {d.hostname} at 10.7.0.{i}", device_id=d.id,
                        data={"address": f"10.7.0.{i}"}))
        s.commit()
        ids = {"sw": sw.id, "lost": lost.id, "site": b07.id}
    application = create_app(Settings(data_dir=tmp, database_url=url), engine=engine)
    application.state.ids = ids
    yield application
    engine.dispose()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        page = c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        resp = c.post("/login", data={"username": "viewer5", "password": PASSWORD, "csrf": token.group(1)},
                      follow_redirects=False)
        assert resp.status_code == 303
        yield c


def test_sentences_come_from_kind_and_data_in_both_languages() -> None:
    en, ar = Translator("en"), Translator("ar")
    data = {"interface": "Gi1/0/24", "before": "up", "after": "down"}
    assert messages.render(en, "interface.down", data, "stored", "sw1") == "sw1: interface Gi1/0/24 went down"
    assert messages.render(ar, "interface.down", data, "stored", "sw1") == "sw1: توقف المنفذ Gi1/0/24"
    assert messages.render(ar, "power.mains_failed", {"power_device": "UPS-1"}, "x") == "UPS-1: انقطعت الكهرباء العامة"
    gone = {"interface": "xe-0/0/1", "remote": "core1", "port": "ge-0/0/5", "gone": True}
    assert messages.render(en, "neighbor.changed", gone, "x", "sw1") == "sw1 xe-0/0/1: neighbour core1 gone"
    # No template, or a value missing: the stored message, never a sentence with a hole.
    assert messages.render(ar, "backup.custom", {}, "nightly backup done") == "nightly backup done"
    assert messages.render(ar, "interface.down", {}, "sw1 Gi1/0/24 up → down", "sw1") == "sw1 Gi1/0/24 up → down"
    assert messages.render(ar, "device.new", {"address": {"nested": 1}}, "kept", "sw1") == "kept"


def test_every_template_has_both_languages_and_the_same_placeholders() -> None:
    en, ar = Translator("en"), Translator("ar")
    keys = [k for k in en._strings if k.startswith((messages.TEMPLATE_PREFIX, "event.group."))]  # noqa: SLF001
    assert len(keys) > 10
    for key in keys:
        assert key in ar._strings, key  # noqa: SLF001
        assert sorted(messages._fields(en(key))) == sorted(messages._fields(ar(key))), key  # noqa: SLF001


def test_overview_view_groups_routine_events(app: FastAPI) -> None:
    with Session(app.state.engine) as s:
        rows = event_views.overview(s, limit=10)
        assert event_views.alarm_count(s) == 2
    kinds = [r.kind for r in rows]
    assert kinds == ["device.new", "backup.custom", "interface.down", "power.mains_failed"]
    assert rows[0].count == DISCOVERED


@pytest.mark.parametrize(("lang", "discovered", "down", "mains"), [
    ("en", f"{DISCOVERED} devices discovered", "jed-b07-sw01: interface Gi1/0/24 went down",
     "B07 UPS: mains failed"),
    ("ar", f"اكتُشف {DISCOVERED} جهازًا", "jed-b07-sw01: توقف المنفذ Gi1/0/24", "B07 UPS: انقطعت الكهرباء العامة"),
])
def test_overview_page_puts_problems_first(client: TestClient, app: FastAPI, lang: str, discovered: str,
                                           down: str, mains: str) -> None:
    html = client.get(f"/?lang={lang}").text
    problems, events = html.index('id="overview-problems"'), html.index('id="overview-events"')
    assert problems < events
    lost = f'<a href="/devices/{app.state.ids["lost"]}" data-device="jed-b07-ap01">'
    assert problems < html.index(lost) < events
    assert 'data-problem="alarms"' in html
    table = html[events:]
    assert table.count('data-event-kind="device.new"') == 1 and f'data-count="{DISCOVERED}"' in table
    assert discovered in table and down in table and mains in table and "nightly backup done" in table
    # the device an event names links to its page
    assert f'<a href="/devices/{app.state.ids["sw"]}"><bdi dir="ltr">jed-b07-sw01</bdi></a>' in table


# --------------------------------------------------------------------------- plural forms


@pytest.mark.parametrize(("n", "category"), [(0, "zero"), (1, "one"), (2, "two"), (3, "few"), (10, "few"),
                                             (11, "many"), (99, "many"), (100, "other"), (102, "other"),
                                             (103, "few"), (111, "many")])
def test_arabic_plural_categories_follow_cldr(n: int, category: str) -> None:
    from infra_mgr.web.i18n import plural_category

    assert plural_category("ar", n) == category


@pytest.mark.parametrize(("n", "category"), [(0, "other"), (1, "one"), (2, "other"), (11, "other")])
def test_english_plural_categories(n: int, category: str) -> None:
    from infra_mgr.web.i18n import plural_category

    assert plural_category("en", n) == category


@pytest.mark.parametrize(("lang", "n", "text"), [
    ("en", 1, "1 device not answering"), ("en", 2, "2 devices not answering"), ("en", 0, "0 devices not answering"),
    ("ar", 0, "لا أجهزة لا تستجيب"), ("ar", 1, "جهاز واحد لا يستجيب"), ("ar", 2, "جهازان لا يستجيبان"),
    ("ar", 3, "3 أجهزة لا تستجيب"), ("ar", 11, "11 جهازًا لا يستجيب"), ("ar", 100, "100 جهاز لا يستجيب"),
])
def test_count_texts_take_the_plural_form_of_their_count(lang: str, n: int, text: str) -> None:
    from infra_mgr.web.i18n import Translator

    assert Translator(lang)("overview.devices_down", count=n) == text


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_every_plural_text_has_one_form_per_category(lang: str) -> None:
    """A count text has exactly its language's forms, none empty: a missing form would show another's."""
    from infra_mgr.web.i18n import PLURAL_CATEGORIES, PLURAL_SEP, catalog

    plural = {k: v for k, v in catalog(lang).items() if PLURAL_SEP in v}
    assert {"overview.devices_down", "overview.alarms", "event.group.device.new", "jobs.found_devices",
            "jobs.found_links"} <= set(plural)
    for key, value in plural.items():
        forms = value.split(PLURAL_SEP)
        assert len(forms) == len(PLURAL_CATEGORIES[lang]) and all(f.strip() for f in forms), key


# --------------------------------------------------------------------------- poll state events


POLL_DATA = {"address": "10.7.0.9", "before": "ok", "after": "timeout", "reason": "no answer from 10.7.0.9"}


@pytest.mark.parametrize(("kind", "en_text", "ar_text"), [
    ("device.unreachable", "ap1 does not answer SNMP at 10.7.0.9", "ap1 لا يستجيب لـ SNMP على العنوان 10.7.0.9"),
    ("device.auth_failed", "ap1: no working SNMP credential at 10.7.0.9",
     "ap1: لا توجد بيانات اعتماد SNMP صالحة على العنوان 10.7.0.9"),
    ("device.poll_error", "ap1: unusable SNMP answers from 10.7.0.9", "ap1: إجابات SNMP غير صالحة من العنوان 10.7.0.9"),
])
def test_poll_state_events_speak_the_reader_s_language(kind: str, en_text: str, ar_text: str) -> None:
    """The data the poller records with a poll state's event is enough for both languages."""
    en, ar = Translator("en"), Translator("ar")
    assert messages.render(en, kind, POLL_DATA, "ap1: no answer from 10.7.0.9", "ap1") == en_text
    assert messages.render(ar, kind, POLL_DATA, "ap1: no answer from 10.7.0.9", "ap1") == ar_text


def test_event_column_names_the_kind_in_words(client: TestClient, app: FastAPI) -> None:
    """The Event column says what happened in the reader's language; the raw kind stays as its
    tooltip for engineers. A kind without a label (an integration's own) is shown as is."""
    with Session(app.state.engine) as s:
        ev = Event(kind="device.auth_failed", severity="critical", message="jed-b07-ap01: no working credential",
                   device_id=app.state.ids["lost"], site_id=app.state.ids["site"], data=POLL_DATA)
        s.add(ev)
        s.commit()
        event_id = ev.id
    try:
        ar = client.get("/alerts?lang=ar").text
        en = client.get("/alerts?lang=en").text
    finally:
        with Session(app.state.engine) as s:
            s.delete(s.get(Event, event_id))
            s.commit()
    cell = re.compile(r'data-event-kind="device.auth_failed".*?<td class="event-kind">(.*?)</td>.*?'
                      r'<td class="event-message"><bdi>(.*?)</bdi>', re.S)
    m_ar, m_en = cell.search(ar), cell.search(en)
    assert m_ar and m_en
    assert m_ar.group(1) == '<span title="device.auth_failed">فشل بيانات الاعتماد</span>'
    assert m_en.group(1) == '<span title="device.auth_failed">Credential failed</span>'
    assert m_ar.group(2) == "jed-b07-ap01: لا توجد بيانات اعتماد SNMP صالحة على العنوان 10.7.0.9"
