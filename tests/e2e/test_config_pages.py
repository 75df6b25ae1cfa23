"""The configuration pages in a real browser (Debian's Chromium via Playwright), in English and Arabic.

What only a browser proves: a person finds a device's backups from the navigation, picks two
versions with the radio buttons and reads the changed line as removed on one side and added on the
other, with the changed word marked and the unchanged lines folded; the unified view is one click
away; a failed backup reads as failed with its reason, not as an old success; Arabic runs right to
left while the configuration text stays left to right; a regex search marks the text that matched;
and the compliance page draws each site's findings and lists the finding with its evidence.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from browser_support import ARTIFACTS, require_assets, serve, watched_page
from sqlalchemy import Engine
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.models import Device, Site
from infra_mgr.network.ssh.models import ComplianceFinding, ConfigBackupState, ConfigVersion

pytestmark = pytest.mark.e2e

USER = "configs-e2e"
PASSWORD = "e2e-configs-password-1"
NETOPS = "configs-e2e-netops"
ROUTER = "jed-b01-rtr01"


def _config(ntp: str, extra: list[str]) -> str:
    """A router's masked configuration: a long run of unchanged lines around the NTP line, so the
    diff has something to fold."""
    lines = ["hostname jed-b01-rtr01", "!", "snmp-server community <masked> RO", "snmp-server community public RO"]
    lines += [f"interface GigabitEthernet0/{i}\n description access port {i}\n no shutdown\n!" for i in range(12)]
    lines += [f"ntp server {ntp}", *extra, "line vty 0 4", " transport input ssh", "end"]
    return "\n".join(lines) + "\n"


VERSIONS = [
    _config("10.10.0.1", []),
    _config("10.10.0.2", ["logging host 10.10.0.50"]),
    _config("10.10.0.2", ["logging host 10.10.0.50", "banner motd ^Authorised use only^"]),
]


@dataclass
class Seeded:
    devices: dict[str, int] = field(default_factory=dict)


def seed(engine: Engine) -> Seeded:
    """One branch with a router backed up three times (one finding), a switch whose last backup
    failed after an earlier success, and an access point never tried."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out = Seeded()
    with Session(engine) as s:
        create_user(s, UserCreate(username=USER, password=PASSWORD, role="viewer"))
        create_user(s, UserCreate(username=NETOPS, password=PASSWORD, role="netops"))
        site = Site(code="JED-B01", name_en="Al-Rawdah branch", name_ar="فرع الروضة", kind="branch")
        s.add(site)
        s.flush()
        rtr = Device(site_id=site.id or 0, hostname=ROUTER, management_address="127.20.1.1", platform="ios-xe")
        sw = Device(site_id=site.id or 0, hostname="jed-b01-sw01", management_address="127.20.1.2",
                    platform="junos")
        ap = Device(site_id=site.id or 0, hostname="jed-b01-ap01", management_address="127.20.1.3")
        s.add_all([rtr, sw, ap])
        s.flush()
        latest = None
        for number, text in enumerate(VERSIONS, start=1):
            latest = ConfigVersion(device_id=rtr.id or 0, number=number, text=text,
                                   sha256=hashlib.sha256(text.encode()).hexdigest(), lines=len(text.splitlines()),
                                   size=len(text), collected_at=now - dt.timedelta(days=3 - number),
                                   trigger="schedule", changed_lines=0 if number == 1 else 2)
            s.add(latest)
            s.flush()
        s.add(ConfigBackupState(device_id=rtr.id or 0, address="127.20.1.1", status="ok", last_attempt=now,
                                last_success=now, last_change=now - dt.timedelta(days=1),
                                latest_version_id=latest.id if latest else None, versions=len(VERSIONS)))
        s.add(ConfigBackupState(device_id=sw.id or 0, address="127.20.1.2", status="failed", reason_kind="auth",
                                reason="the password was refused", last_attempt=now - dt.timedelta(hours=2),
                                last_success=now - dt.timedelta(days=9), since=now - dt.timedelta(days=2)))
        s.add(ComplianceFinding(device_id=rtr.id or 0, rule_id="snmp-default-community", severity="critical",
                                message='SNMP community "public" or "private" is configured',
                                lines=["snmp-server community public RO"], version_id=latest.id if latest else None))
        s.commit()
        out.devices = {d.hostname: d.id or 0 for d in (rtr, sw, ap)}
    return out


class Served:
    def __init__(self, base_url: str, seeded: Seeded) -> None:
        self.base_url, self.seeded = base_url, seeded


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_assets("bootstrap")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e-configs")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    engine = make_engine(url)
    seeded = seed(engine)
    app = create_app(Settings(data_dir=tmp, database_url=url, power_poller=False, link_poller=False), engine=engine)
    try:
        with serve(app, timeout_graceful_shutdown=2) as (base, _server):
            yield Served(base, seeded)
    finally:
        engine.dispose()


@pytest.fixture()
def page(browser: Any, served: Served) -> Iterator[Any]:
    with watched_page(browser, served.base_url) as pg:
        yield pg


def expect(target: Any) -> Any:
    """Playwright's retrying assertions (imported here: the browser fixture has proved it is installed)."""
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


def _login(page: Any, lang: str = "en", user: str = USER) -> None:
    page.goto(f"/login?next=/configs&lang={lang}")
    page.get_by_label(re.compile("Username|اسم المستخدم")).fill(user)
    page.get_by_label(re.compile("Password|كلمة المرور")).fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r".*/configs$"))


def _row(page: Any, table: Any, hostname: str) -> Any:
    return table.get_by_role("row").filter(has=page.get_by_role("link", name=hostname, exact=True))


def test_versions_and_side_by_side_diff(page: Any, served: Served) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto("/")
    page.get_by_label(re.compile("Username")).fill(USER)
    page.get_by_label(re.compile("Password")).fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.get_by_role("link", name="Configs", exact=True).click()
    expect(page).to_have_url(re.compile(r".*/configs$"))
    assert page.get_by_role("link", name="Configs", exact=True).get_attribute("aria-current") == "page"

    table = page.get_by_role("table", name="Devices and their configuration backups")
    # The failed switch says it failed and why, however good its backup of nine days ago was.
    switch = _row(page, table, "jed-b01-sw01")
    expect(switch.get_by_text("Failed", exact=True)).to_be_visible()
    assert "the credential was refused" in switch.inner_text()
    assert re.search(r"tried 2 h \d\d min ago", switch.inner_text())
    assert "Backed up" not in switch.inner_text()
    # Failing since when, and the last good backup, both with their zone; and failures come first.
    assert re.search(r"failing since \u2068?\d{4}-\d\d-\d\d \d\d:\d\d UTC", switch.inner_text())
    assert re.search(r"last good backup \u2068?\d{4}-\d\d-\d\d \d\d:\d\d UTC", switch.inner_text())
    assert table.locator("tbody tr").first.get_attribute("data-device") == "jed-b01-sw01"
    assert table.locator("tbody tr").last.get_attribute("data-status") == "ok"
    expect(_row(page, table, "jed-b01-ap01").get_by_text("Never read")).to_be_visible()
    router = _row(page, table, ROUTER)
    expect(router.get_by_text("Backed up")).to_be_visible()
    expect(router.get_by_text("1 finding")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "configs-list-en.png"), full_page=True)
    # A viewer reads; starting a backup is for those allowed to.
    assert page.get_by_role("button", name="Run backup now").count() == 0

    # The filter by state keeps only the failed device.
    page.get_by_label("State", exact=True).select_option(label="Failed")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r".*status=failed"))
    rows = page.get_by_role("table", name="Devices and their configuration backups").locator("tbody tr")
    assert rows.count() == 1 and "jed-b01-sw01" in rows.inner_text()
    page.get_by_role("link", name="Clear filters").click()

    # A failed device with nothing stored says why its last run failed and when.
    page.get_by_role("link", name="jed-b01-sw01", exact=True).click()
    failure = page.locator("#config-empty-failure")
    assert "the credential was refused" in failure.inner_text() and "UTC" in failure.inner_text()
    assert failure.locator("[lang=en]").inner_text() == "the password was refused"
    page.go_back()

    # One device: by default the latest change (2 → 3), then versions 1 and 2 picked by hand.
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("link", name=ROUTER, exact=True).click()
    # At 1400 px the versions panel fits: no column cut off, the trigger and its actor not broken up.
    fits = page.locator("#config-versions").evaluate(
        "t => t.parentElement.scrollWidth <= t.parentElement.clientWidth + 1")
    assert fits
    expect(page).to_have_url(re.compile(rf".*/configs/{served.seeded.devices[ROUTER]}$"))
    expect(page.get_by_role("heading", name="Changes from version 2 to version 3")).to_be_visible()
    page.get_by_label("Version 1 as A").check()
    page.get_by_label("Version 2 as B").check()
    page.get_by_role("button", name="Compare A and B").click()
    expect(page).to_have_url(re.compile(r"^(?=.*[?&]a=1\b)(?=.*[?&]b=2\b)"))
    expect(page.get_by_role("heading", name="Changes from version 1 to version 2")).to_be_visible()
    expect(page.get_by_text("2 lines added")).to_be_visible()
    expect(page.get_by_text("1 line removed")).to_be_visible()

    side = page.get_by_role("table", name="Side by side")
    changed = side.locator("tr[data-kind=changed]")
    assert changed.count() == 1
    # The old line is shown removed (struck out in red) on one side, the new one added on the other,
    # and only the changed address is marked inside them.
    assert changed.locator("del").inner_text() == "ntp server 10.10.0.1"
    assert changed.locator("ins").inner_text() == "ntp server 10.10.0.2"
    assert changed.locator("del mark").inner_text() == "10.10.0.1"
    assert changed.locator("ins mark").inner_text() == "10.10.0.2"
    added = side.locator("tr[data-kind=added]")
    assert added.count() == 1 and added.locator("ins").inner_text() == "logging host 10.10.0.50"
    removed_bg = changed.locator("td.cfg-left").evaluate("e => getComputedStyle(e).backgroundColor")
    added_bg = changed.locator("td.cfg-right").evaluate("e => getComputedStyle(e).backgroundColor")
    assert removed_bg != added_bg and "rgba(0, 0, 0, 0)" not in (removed_bg, added_bg)
    # The long unchanged run before the change is folded into one line that says how long it is.
    folded = side.locator("tr[data-kind=skipped]")
    assert folded.count() >= 1
    assert re.fullmatch(r"\d+ unchanged lines", folded.first.inner_text().strip())
    # Lines wrap at spaces, never inside a word.
    assert changed.locator("td.cfg-left").evaluate("e => getComputedStyle(e).wordBreak") == "normal"
    page.locator("#config-diff").screenshot(path=str(ARTIFACTS / "config-diff-side-en.png"))

    # The unified view: the same change as - and + lines.
    page.get_by_role("link", name="Unified").click()
    expect(page).to_have_url(re.compile(r".*view=unified"))
    unified = page.locator("#config-unified")
    assert unified.locator(".cfg-u-removed").all_inner_texts() == ["-ntp server 10.10.0.1"]
    assert unified.locator(".cfg-u-added").all_inner_texts() == ["+ntp server 10.10.0.2", "+logging host 10.10.0.50"]
    # Single spacing: each line starts where the one before it ends, no blank line in between.
    gaps = unified.evaluate("""p => { const s = [...p.querySelectorAll('.cfg-u')].map(e => e.getBoundingClientRect());
        return s.slice(1).map((r, i) => r.top - s[i].bottom); }""")
    assert gaps and max(gaps) < 1, gaps
    assert page.get_by_label("Version 1 as A").is_checked() and page.get_by_label("Version 2 as B").is_checked()

    # A version's text with its line numbers.
    page.get_by_role("link", name="Show the text of version 1").click()
    expect(page.get_by_role("heading", name="Text of version 1")).to_be_visible()
    lines = page.get_by_role("table", name="Text of version 1").locator("tr")
    assert lines.count() == len(VERSIONS[0].splitlines())
    assert lines.nth(0).locator("td").all_inner_texts() == ["1", "hostname jed-b01-rtr01"]

    # The device's own page says how its backups go and leads back to them.
    page.get_by_role("link", name="Device page").click()
    backup = page.locator("#device-config-backup")
    assert "Backed up" in backup.inner_text()
    backup.get_by_role("link", name="3 stored versions").click()
    expect(page).to_have_url(re.compile(rf".*/configs/{served.seeded.devices[ROUTER]}$"))


def test_arabic_page_is_rtl_with_config_text_ltr(page: Any, served: Served) -> None:
    _login(page, "ar")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.get_by_role("heading", level=1).inner_text() == "نسخ الإعدادات الاحتياطية"
    table = page.get_by_role("table", name="الأجهزة ونسخ إعداداتها الاحتياطية")
    assert "رُفضت بيانات الدخول" in _row(page, table, "jed-b01-sw01").inner_text()
    page.get_by_role("link", name=ROUTER, exact=True).click()
    page.get_by_label("النسخة 1 على أنها (أ)").check()
    page.get_by_label("النسخة 2 على أنها (ب)").check()
    page.get_by_role("button", name="قارن (أ) و(ب)").click()
    expect(page.get_by_role("heading", name="التغييرات من النسخة 1 إلى النسخة 2")).to_be_visible()
    side = page.get_by_role("table", name="جنبًا إلى جنب")
    assert side.locator("tr[data-kind=changed] del").inner_text() == "ntp server 10.10.0.1"
    # The page reads right to left; the configuration itself stays left to right.
    assert side.evaluate("e => getComputedStyle(e).direction") == "ltr"
    assert page.locator("main").evaluate("e => getComputedStyle(e).direction") == "rtl"
    expect(page.get_by_text("أُضيف سطران")).to_be_visible()
    # A fold row reads as Arabic (the count first), inside the left-to-right table.
    fold = side.locator("tr[data-kind=skipped] td").first
    assert fold.evaluate("e => getComputedStyle(e).direction") == "rtl"
    page.goto("/configs")
    detail = _row(page, table, "jed-b01-sw01").locator(".backup-detail")
    assert (detail.get_attribute("lang"), detail.get_attribute("dir")) == ("en", "ltr")
    assert "UTC" in _row(page, table, ROUTER).inner_text()
    page.screenshot(path=str(ARTIFACTS / "config-diff-ar.png"), full_page=True)


def test_regex_search_marks_the_match(page: Any, served: Served) -> None:
    _login(page)
    page.get_by_label("Search configs (regular expression)").fill(r"^snmp-server community (public|private)")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r".*/configs/search\?q="))
    assert page.get_by_role("status").inner_text().startswith("1 device matched of 1 searched.")
    hit = page.locator("article.search-hit")
    assert hit.count() == 1 and hit.get_by_role("link", name=ROUTER).is_visible()
    assert hit.locator("mark").all_inner_texts() == ["snmp-server community public"]
    # The masked community line does not match and is not shown.
    assert "<masked>" not in hit.inner_text()
    page.screenshot(path=str(ARTIFACTS / "config-search-en.png"), full_page=True)

    # A broken pattern is said so, in the form, not as an error page.
    page.get_by_label("Regular expression").fill("snmp-server (")
    page.get_by_role("button", name="Search", exact=True).click()
    assert page.get_by_role("alert").inner_text().startswith("This pattern cannot be used")


def test_compliance_lists_the_finding_per_site(page: Any, served: Served) -> None:
    _login(page)
    page.get_by_role("link", name="Compliance", exact=True).click()
    expect(page).to_have_url(re.compile(r".*/configs/compliance$"))
    bar = page.get_by_role("img", name=re.compile(r"^JED-B01: 1 finding"))
    expect(bar).to_be_visible()
    assert bar.locator("rect[data-severity=critical]").get_attribute("data-n") == "1"
    site_row = page.locator("#compliance-sites tr[data-site=JED-B01]")
    # The backed-up router has a finding; the switch and the access point were never read.
    assert "0 of 3 (2 not read)" in " ".join(site_row.locator("td").nth(1).inner_text().split())
    findings = page.get_by_role("table", name=re.compile("Findings"))
    row = findings.locator("tbody tr")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "snmp-default-community" and cells[1] == "Critical" and cells[2].startswith(ROUTER)
    assert re.search(r"\b4 snmp-server community public RO", cells[4])  # with its line number
    page.screenshot(path=str(ARTIFACTS / "config-compliance-en.png"), full_page=True)
    page.goto("/configs/compliance?lang=ar")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.get_by_role("heading", level=1).inner_text() == "امتثال الإعدادات"
    expect(page.get_by_role("img", name=re.compile("JED-B01: مخالفة واحدة"))).to_be_visible()


def test_run_backup_now_shows_the_new_state(page: Any, served: Served) -> None:
    """A network engineer starts a backup of the never-read access point from its page; the run
    really happens (the device has no SSH credential), and after the reload the device reads as
    failed with that reason, not as "never read"."""
    _login(page, user=NETOPS)
    page.goto(f"/configs/{served.seeded.devices['jed-b01-ap01']}")
    expect(page.get_by_text("Never read")).to_be_visible()
    page.get_by_role("button", name="Run backup now").click()
    status = page.get_by_role("status").filter(has_text=re.compile("Backup|backup"))
    expect(status).to_contain_text(re.compile(r"(Backup finished|ended with errors): 0 changed, 0 unchanged, 1 failed"),
                                   timeout=60_000)
    status.get_by_role("link", name="Reload the page").click()
    state = page.locator("#config-backup-state")
    expect(state.locator("[data-backup-status]")).to_have_attribute("data-backup-status", "failed")
    assert state.locator("[data-reason-kind]").get_attribute("data-reason-kind")
    assert "tried" in state.inner_text()
