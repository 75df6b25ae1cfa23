"""The Links pages without a browser: the ranked table, its refresh JSON, the map's states, one
uplink's page and chart data, and the management report (HTML and CSV), in both languages.

The estate (tests/link_seed.py) has one branch per story: down, two degraded, unknown and ok;
what the pages must show is what the audit's read view says, in the reader's language.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from link_seed import RANKED, STATES, Seeded, seed
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.network import audit, link_views
from infra_mgr.web.i18n import Translator

USER = "links-viewer"
PASSWORD = "unit-test-password-links-1"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    tmp = tmp_path_factory.mktemp("weblinks")
    url = f"sqlite:///{tmp / 'links.db'}"
    upgrade(url)
    engine = make_engine(url)
    application = create_app(Settings(data_dir=tmp, database_url=url, link_poller=False, power_poller=False),
                             engine=engine)
    application.state.seeded = seed(engine, USER, PASSWORD)
    yield application
    engine.dispose()


@pytest.fixture(scope="module")
def seeded(app: FastAPI) -> Seeded:
    value: Seeded = app.state.seeded
    return value


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        page = c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        resp = c.post("/login", data={"username": USER, "password": PASSWORD, "csrf": token.group(1)},
                      follow_redirects=False)
        assert resp.status_code == 303
        yield c


def _sites(html: str, table_id: str = "links-table") -> list[str]:
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-site="([^"]+)"', table)


def _scripts_are_ours(html: str) -> None:
    """The CSP allows our own files only: every script is a file of ours or a JSON data block."""
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag
    assert " style=" not in html and "<style" not in html


def test_pages_need_a_session(app: FastAPI, seeded: Seeded) -> None:
    with TestClient(app) as anonymous:
        for path in ("/links", "/links/report", "/links/report.csv", f"/links/{seeded.uplinks['JED-B07']}"):
            resp = anonymous.get(path, follow_redirects=False)
            assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next="), path
        for path in ("/links/audit.json", "/links/topology.json", f"/links/{seeded.uplinks['JED-B01']}/series.json"):
            resp = anonymous.get(path)
            assert resp.status_code == 401 and resp.json() == {"detail": "login required"}, path


def test_links_page_ranks_branches_with_reasons(client: TestClient, seeded: Seeded) -> None:
    resp = client.get("/links?lang=en")
    assert resp.status_code == 200
    html = resp.text
    assert "\u2068Gi0/1\u2069" in html, "names keep their own direction inside a sentence"
    html = html.replace("\u2068", "").replace("\u2069", "")
    _scripts_are_ours(html)
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    assert _sites(html) == RANKED
    for code, state in STATES.items():
        assert f'<tr data-site="{code}" data-state="{state}"' in html
    # The navbar has the page, between Network and Power.
    nav = re.findall(r'data-section="([a-z]+)"', html)
    assert nav[nav.index("network") + 1] == "links" and nav[nav.index("links") + 1] == "power"
    assert 'aria-current="page">Links<' in html
    # Reasons are sentences linking to their uplink; the branch links to its site.
    b07 = seeded.uplinks["JED-B07"]
    assert re.search(rf'<a href="/links/{b07}"><bdi>uplink Gi0/1 down since \d\d:\d\d UTC '
                     r'\(3 flaps in 24 h\)</bdi></a>', html)
    assert f'href="/links/{seeded.uplinks["JED-B12"]}"><bdi>Gi1/0/24: running at 100 Mb/s, expected 1 Gb/s' in html
    assert 'href="/sites/JED-B12"' in html and "Al-Rawdah branch" in html
    # Counts per state at the top, the report links, the map fed by the audit's states.
    counts = dict(re.findall(r'data-state="([a-z]+)">\s*<a[^>]*>.*?<strong[^>]*data-count>(\d+)<', html, re.S))
    assert counts == {"down": "1", "degraded": "2", "unknown": "1", "ok": "1"}
    assert 'href="/links/report?lang=en"' in html and 'href="/links/report.csv?lang=en"' in html
    assert 'data-src="/links/topology.json?lang=en"' in html and 'id="links-strings"' in html
    assert "<th scope=\"col\">Reasons</th>" in html and "<caption" in html


def test_links_page_in_arabic(client: TestClient, app: FastAPI) -> None:
    html = client.get("/links?lang=ar").text
    assert "\u2068100 ميجابت/ث\u2069" in html, "a speed keeps its own direction inside an Arabic sentence"
    html = html.replace("\u2068", "").replace("\u2069", "")
    assert '<html lang="ar" dir="rtl">' in html
    assert _sites(html) == RANKED
    assert "فرع البلد" in html and "وصلات الفروع" in html
    t = Translator("ar")
    with Session(app.state.engine) as s:
        audits = {a.site_code: a for a in link_views.audit_branches(s)}
    sentence = audit.reason_text(audits["JED-B12"].reasons[0], t)
    assert re.search(r"[\u0600-\u06FF]", sentence)
    assert sentence.replace("100 Mb/s", "100 ميجابت/ث").replace("1 Gb/s", "1 جيجابت/ث") in html
    assert "running at" not in html and "Mb/s" not in html  # no English sentence or unit for an Arabic reader


def test_filter_keeps_one_state_and_ignores_nonsense(client: TestClient) -> None:
    html = client.get("/links?state=degraded&lang=en").text
    assert _sites(html) == ["JED-B12", "JED-B30"]
    assert '<option value="degraded" selected>' in html
    assert _sites(client.get("/links?state=bogus").text) == RANKED
    empty = client.get("/links?state=ok&lang=en").text
    assert _sites(empty) == ["JED-B01"]


def test_refresh_json_is_the_table_for_the_filter(client: TestClient) -> None:
    resp = client.get("/links/audit.json?state=degraded&lang=en")
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    data = resp.json()
    assert data["state"] == "degraded" and data["shown"] == 2 and data["total"] == 5
    assert [r["site_code"] for r in data["ranked"]] == ["JED-B12", "JED-B30"]
    assert data["counts"] == {"down": 1, "degraded": 2, "unknown": 1, "ok": 1}
    assert _sites(data["table_html"]) == ["JED-B12", "JED-B30"]
    assert "<html" not in data["table_html"]
    every = client.get("/links/audit.json").json()
    assert [r["site_code"] for r in every["ranked"]] == RANKED
    assert [r["score"] for r in every["ranked"]] == sorted(r["score"] for r in every["ranked"])


def test_map_is_coloured_by_the_audit(client: TestClient) -> None:
    data = client.get("/links/topology.json").json()
    sites = {s["code"]: s for s in data["sites"]}
    assert {code: sites[code]["state"] for code in STATES} == STATES
    assert sites["JED-HQ"]["state"] == "none" and sites["JED-DC1"]["state"] == "none"
    assert sites["JED-B07"]["problems"] == [{"hostname": "jed-b07-rtr01", "reason": "audit.link_down"}]
    assert sites["JED-B01"]["problems"] == []
    assert len(data["devices"]) == 7  # the network page's graph, devices included


def test_uplink_page_shows_facts_and_its_own_findings(client: TestClient, seeded: Seeded) -> None:
    b12 = seeded.uplinks["JED-B12"]
    html = client.get(f"/links/{b12}?lang=en&range=7d").text
    _scripts_are_ours(html)
    assert 'id="uplink-name">jed-b12-sw01 Gi1/0/24</bdi>' in html
    facts = html.split('id="uplink-facts"', 1)[1].split("</table>", 1)[0]
    assert "jed-b13-sw01" in facts and "jed-dc1-dist01" in facts and "differs" in facts
    assert "100 Mb/s" in facts and "1 Gb/s" in facts and "slower than expected" in facts
    findings = html.split('id="uplink-reasons"', 1)[1].split("</ul>", 1)[0]
    assert re.findall(r'data-code="([a-z_]+)"', findings) == ["speed", "neighbor"]
    assert '<option value="7d" selected>' in html and f'data-src="/links/{b12}/series.json"' in html
    # A healthy uplink says so; an unknown range falls back to 24 h.
    ok = client.get(f"/links/{seeded.uplinks['JED-B01']}?range=1y&lang=en").text
    assert 'id="uplink-no-reasons"' in ok and '<option value="24h" selected>' in ok
    arabic = client.get(f"/links/{b12}?lang=ar").text
    assert 'dir="rtl"' in arabic and "مختلف" in arabic


def test_uplink_page_not_found(client: TestClient, seeded: Seeded) -> None:
    for raw in ("999999", "abc", "0", "-1"):
        resp = client.get(f"/links/{raw}")
        assert resp.status_code == 404 and "text/html" in resp.headers["content-type"], raw
    assert client.get("/links/999999/series.json").status_code == 404


def test_series_json_by_range(client: TestClient, seeded: Seeded) -> None:
    b01, b07 = seeded.uplinks["JED-B01"], seeded.uplinks["JED-B07"]
    hour = client.get(f"/links/{b01}/series.json?range=1h").json()
    assert hour["range"] == "1h" and hour["resolution_s"] == 0
    assert set(hour["series"]) == {"in_bps", "out_bps", "errors_ps", "discards_ps"}
    assert 58 <= len(hour["series"]["in_bps"]["points"]) <= 60 and hour["series"]["in_bps"]["unit"] == "bit/s"
    assert hour["end_ms"] - hour["start_ms"] == 3600_000 and hour["speed_bps"] == 1_000_000_000
    day = client.get(f"/links/{b01}/series.json?range=24h").json()
    assert day["resolution_s"] == 300 and 280 <= len(day["series"]["in_bps"]["points"]) <= 290
    month = client.get(f"/links/{b01}/series.json?range=30d").json()
    assert month["resolution_s"] == 3600
    flaps = client.get(f"/links/{b07}/series.json?range=24h").json()
    assert [(c["previous"], c["status"]) for c in flaps["changes"]] == [("up", "down"), ("down", "up"), ("up", "down")]
    assert [c["at_ms"] for c in flaps["changes"]] == sorted(c["at_ms"] for c in flaps["changes"])
    assert flaps["series"] == {} and flaps["oper_status"] == "down" and flaps["last_ok_ms"] is not None
    assert len(client.get(f"/links/{b07}/series.json?range=1h").json()["changes"]) == 1


def test_report_prints_the_ranked_rows_without_navigation(client: TestClient) -> None:
    for lang, title, generated in (("en", "Branch link audit", "Generated "), ("ar", "تدقيق وصلات الفروع", "أُنشئ ")):
        resp = client.get(f"/links/report?lang={lang}")
        assert resp.status_code == 200
        html = resp.text
        assert "<nav" not in html and "navbar" not in html and "<script" not in html
        assert f'<html lang="{lang}"' in html and title in html
        line = re.search(r'id="report-generated">([^<]+)<', html)
        assert line and line.group(1).startswith(generated) and USER in line.group(1)
        assert _sites(html, "report-table") == RANKED
        assert re.findall(r'<td data-state="([a-z]+)">(\d+)</td>', html) == [
            ("down", "1"), ("degraded", "2"), ("unknown", "1"), ("ok", "1"), ("total", "5")]
    assert "فرع الروضة" in html and "running at" not in html


def test_report_csv_has_a_bom_and_speaks_arabic(client: TestClient) -> None:
    resp = client.get("/links/report.csv?lang=ar")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"].startswith('attachment; filename="link-audit-')
    assert resp.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == RANKED
    assert re.search(r"[\u0600-\u06FF]", rows[0][1])  # the header in Arabic
    assert "فرع البلد" in rows[1] and re.search(r"[\u0600-\u06FF]", rows[1][-1])
    english = client.get("/links/report.csv?lang=en").content.decode("utf-8-sig")
    assert "running at 100 Mb/s, expected 1 Gb/s" in english and english.count("\ufeff") == 0


def _plain(text: str) -> str:
    return text.replace("\u2068", "").replace("\u2069", "")


def test_speed_reasons_say_what_the_facts_say_in_both_languages(client: TestClient, seeded: Seeded) -> None:
    b12 = seeded.uplinks["JED-B12"]
    for lang, speed, expected in (("en", "100 Mb/s", "1 Gb/s"), ("ar", "100 ميجابت/ث", "1 جيجابت/ث")):
        html = client.get(f"/links/{b12}?lang={lang}").text
        facts = _plain(html.split('id="uplink-facts"', 1)[1].split("</table>", 1)[0])
        assert speed in facts and expected in facts
        findings = _plain(html.split('id="uplink-reasons"', 1)[1].split("</ul>", 1)[0])
        reason = re.search(r'data-code="speed"[^>]*><bdi>([^<]+)</bdi>', findings)
        assert reason and speed in reason.group(1) and expected in reason.group(1), reason
        report = _plain(client.get(f"/links/report?lang={lang}").text)
        assert speed in report and expected in report
    arabic_report = client.get("/links/report?lang=ar").text
    assert "Mb/s" not in arabic_report and "Gb/s" not in arabic_report
    assert "\u2068100 ميجابت/ث\u2069" in arabic_report  # isolated inside the Arabic sentence


UTC_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_every_date_is_isolated_left_to_right(client: TestClient, seeded: Seeded, lang: str) -> None:
    """A date inside an Arabic sentence must not be reordered ("منذ 20-11-2026 UTC 22:56")."""
    html = client.get(f"/links/{seeded.uplinks['JED-B07']}?lang={lang}").text
    status = html.split('data-fact="status"', 1)[1].split("</tr>", 1)[0]
    assert re.search(rf"\u2068{UTC_TIME}\u2069", status), status
    last_poll = html.split('data-fact="last_poll"', 1)[1].split("</tr>", 1)[0]
    assert re.search(rf'<bdi dir="ltr">{UTC_TIME}</bdi>', last_poll), last_poll
    updated = client.get(f"/links?lang={lang}").text.split('id="links-status"', 1)[1].split("</p>", 1)[0]
    assert re.search(rf"\u2068{UTC_TIME}\u2069", updated), updated
    generated = client.get(f"/links/report?lang={lang}").text.split('id="report-generated"', 1)[1]
    assert re.search(rf"^[^<]*\u2068{UTC_TIME}\u2069", generated.split(">", 1)[1]), generated[:200]


def test_series_json_says_since_when_the_uplink_has_data(client: TestClient, seeded: Seeded) -> None:
    """The status timeline starts at the first stored sample, not at the start of the range."""
    b01 = client.get(f"/links/{seeded.uplinks['JED-B01']}/series.json?range=24h").json()
    firsts = [s["points"][0][0] for s in b01["series"].values() if s["points"]]
    assert firsts and b01["first_sample_ms"] == min(firsts)
    assert abs(b01["first_sample_ms"] - b01["start_ms"]) <= 600_000  # 26 h of data: all the range
    # No series, only the flap history: its first change is where the data starts (20 h ago).
    b07 = client.get(f"/links/{seeded.uplinks['JED-B07']}/series.json?range=24h").json()
    assert b07["series"] == {} and b07["first_sample_ms"] == b07["changes"][0]["at_ms"]
    assert b07["first_sample_ms"] - b07["start_ms"] > 3 * 3600_000
    # Nothing stored in the range at all: null, not the start of the range.
    b12 = client.get(f"/links/{seeded.uplinks['JED-B12']}/series.json?range=24h").json()
    assert b12["first_sample_ms"] is None and b12["changes"] == []


def test_cli_speaks_the_language_asked(app: FastAPI, seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console
    from typer.testing import CliRunner

    from infra_mgr.network import link_cli

    monkeypatch.setattr(link_cli, "_engine", lambda: app.state.engine)
    monkeypatch.setattr(link_cli, "console", Console(width=220))
    runner = CliRunner()
    ar = runner.invoke(link_cli.audit_app, ["links", "--lang", "ar"])
    assert ar.exit_code == 0, ar.output
    for header in ("الموقع", "الاسم", "الحالة", "الدرجة", "الوصلات الصاعدة", "الأسباب"):
        assert header in ar.output
    assert "5 فروع: متوقف 1، متدهور 2، غير معروف 1، سليم 1" in ar.output
    assert "branches" not in ar.output and "reasons" not in ar.output
    one = runner.invoke(link_cli.audit_app, ["links", "--site", "JED-B01"])
    assert one.exit_code == 0, one.output
    assert "1 branch: Down 0, Degraded 0, Unknown 0, OK 1" in one.output and "1 branches" not in one.output
    assert "Reasons" in one.output and "Site" in one.output
    done = runner.invoke(link_cli.uplinks_app, ["set", "jed-b01-rtr01", "GigabitEthernet0/0", "--expected-speed", "1G"])
    assert done.exit_code == 0, done.output
    assert "expected speed 1 Gb/s" in done.output and "bit/s" not in done.output
