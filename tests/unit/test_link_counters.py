"""Rates and status transitions from two counter readings (infra_mgr/network/counters.py), case by case."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from infra_mgr.network.counters import rates, rebooted, transitions
from infra_mgr.network.linkfacts import COUNTERS, CounterSnapshot, NoRate

G = 1_000_000_000
M = 1_000_000
W = 2**32


def snap(ts_s: float, uptime_cs: int | None, *, hc: bool = True, **counters: int | None) -> CounterSnapshot:
    values: dict[str, int | None] = dict.fromkeys(COUNTERS, 0)
    values.update(counters)
    return CounterSnapshot(ts_ms=int(ts_s * 1000), uptime_cs=uptime_cs, hc=hc, counters=values)


@dataclass
class Case:
    name: str
    prev: CounterSnapshot | None
    cur: CounterSnapshot
    speed: int | None
    note: NoRate | None = None
    interval_s: float | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    util_pct: float | None = None
    errors_ps: float | None = None
    error_pct: float | None = None
    wrapped: list[str] = field(default_factory=list)


U0 = 360_000_000  # an agent up for 41 days, in TimeTicks

CASES = [
    Case("first reading", None, snap(0, U0), G, note=NoRate.first),
    Case("64-bit, agent time", snap(0, U0, in_octets=10, out_octets=20),
         snap(60, U0 + 6000, in_octets=10 + 750 * M, out_octets=20 + 375 * M), G,
         interval_s=60, in_bps=100 * M, out_bps=50 * M, util_pct=10.0),
    Case("agent time wins over our late poll", snap(0, U0), snap(63, U0 + 6000, in_octets=750 * M), G,
         interval_s=60, in_bps=100 * M, util_pct=10.0),
    Case("no sysUpTime: wall time", snap(0, None), snap(50, None, in_octets=625 * M), G,
         interval_s=50, in_bps=100 * M),
    Case("busier direction sets utilisation", snap(0, U0), snap(60, U0 + 6000, in_octets=75 * M, out_octets=6000 * M),
         G, in_bps=10 * M, out_bps=800 * M, util_pct=80.0),
    Case("32-bit wrap on a 100 Mb/s port", snap(0, U0, hc=False, in_octets=W - 1000, in_pkts=W - 10),
         snap(60, U0 + 6000, hc=False, in_octets=500, in_pkts=5), 100 * M,
         in_bps=1500 * 8 / 60, wrapped=["in_octets", "in_pkts"]),
    Case("32-bit back, wrap would exceed the speed: reset", snap(0, U0, hc=False, in_octets=1 * G),
         snap(60, U0 + 6000, hc=False, in_octets=10), 100 * M, note=NoRate.reset),
    Case("32-bit back, speed unknown, small wrap: wrap", snap(0, U0, hc=False, in_octets=3 * G),
         snap(60, U0 + 6000, hc=False, in_octets=10), None, in_bps=(W - 3 * G + 10) * 8 / 60, wrapped=["in_octets"]),
    Case("32-bit back, speed unknown, implausible wrap: reset", snap(0, U0, hc=False, in_octets=1 * G),
         snap(60, U0 + 6000, hc=False, in_octets=10), None, note=NoRate.reset),
    Case("32-bit on 10 Gb/s over 60 s: a second wrap cannot be ruled out", snap(0, U0, hc=False),
         snap(60, U0 + 6000, hc=False, in_octets=1000), 10 * G, note=NoRate.gap),
    Case("32-bit on 1 Gb/s over 30 s: at most one wrap, rate given", snap(0, U0, hc=False, in_octets=W - 100),
         snap(30, U0 + 3000, hc=False, in_octets=3 * G), G, in_bps=(3 * G + 100) * 8 / 30, util_pct=80.0000026666,
         wrapped=["in_octets"]),
    Case("64-bit back: reset, never a wrap", snap(0, U0, in_octets=5 * G), snap(60, U0 + 6000, in_octets=10), G,
         note=NoRate.reset),
    Case("an error counter reset voids the sample", snap(0, U0, in_errors=500), snap(60, U0 + 6000, in_octets=10), G,
         note=NoRate.reset),
    Case("sysUpTime back: reboot", snap(0, U0, in_octets=5 * G), snap(60, 5000, in_octets=10), G, note=NoRate.reboot),
    Case("agent up for less than the time since the last poll: reboot", snap(0, 50_000, in_octets=10),
         snap(600, 55_000, in_octets=9 * G), G, note=NoRate.reboot),
    Case("sysUpTime wraps at 2^32 ticks: wrap, not reboot", snap(0, W - 3000, in_octets=10),
         snap(60, 3000, in_octets=10 + 750 * M), G, interval_s=60, in_bps=100 * M, util_pct=10.0),
    Case("sysUpTime near the wrap but our clock disagrees: reboot", snap(0, W - 3000), snap(900, 3000), G,
         note=NoRate.reboot),
    Case("same agent time: no interval", snap(0, U0), snap(1, U0), G, note=NoRate.same_time),
    Case("same wall time without sysUpTime", snap(5, None), snap(5, None), G, note=NoRate.same_time),
    Case("an hour since the last reading: gap", snap(0, U0), snap(3600, U0 + 360_000, in_octets=10), G,
         note=NoRate.gap, interval_s=3600),
    Case("counters missing now", snap(0, U0), snap(60, U0 + 6000, in_octets=None, out_octets=None), G,
         note=NoRate.missing),
    Case("counters missing before", snap(0, U0, in_octets=None, out_octets=None), snap(60, U0 + 6000), G,
         note=NoRate.missing),
    Case("agent switched from 32- to 64-bit counters: reset", snap(0, U0, hc=False), snap(60, U0 + 6000), G,
         note=NoRate.reset),
    Case("errors as a share of packets", snap(0, U0), snap(60, U0 + 6000, in_pkts=60_000, out_pkts=39_500,
                                                          in_errors=400, out_errors=100), G,
         in_bps=0.0, util_pct=0.0, errors_ps=500 / 60, error_pct=0.5),
    Case("no traffic, no errors: 0 %, not unknown", snap(0, U0), snap(60, U0 + 6000), G,
         in_bps=0.0, out_bps=0.0, util_pct=0.0, errors_ps=0.0, error_pct=0.0),
    Case("one direction missing: the other still counts", snap(0, U0, out_octets=None),
         snap(60, U0 + 6000, in_octets=750 * M, out_octets=None), G, in_bps=100 * M, util_pct=10.0),
    Case("speed unknown: rates but no utilisation", snap(0, U0), snap(60, U0 + 6000, in_octets=750 * M), None,
         in_bps=100 * M),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rates(case: Case) -> None:
    got = rates(case.prev, case.cur, case.speed)
    assert got.note == case.note
    if case.note is not None:
        # a marked sample carries no rate at all: never a spike, never a zero
        assert (got.in_bps, got.out_bps, got.util_pct, got.errors_ps, got.discards_ps, got.error_pct) == (None,) * 6
        if case.interval_s is not None:
            assert got.interval_s == pytest.approx(case.interval_s)
        return
    if case.interval_s is not None:
        assert got.interval_s == pytest.approx(case.interval_s)
    for name in ("in_bps", "out_bps", "util_pct", "errors_ps", "error_pct"):
        want = getattr(case, name)
        if want is not None:
            assert getattr(got, name) == pytest.approx(want, rel=1e-6), name
    assert sorted(got.wrapped) == sorted(case.wrapped)


def test_missing_speed_gives_no_utilisation() -> None:
    got = rates(snap(0, U0), snap(60, U0 + 6000, in_octets=750 * M), None)
    assert got.in_bps == pytest.approx(100 * M) and got.util_pct is None


def test_discards_per_second() -> None:
    got = rates(snap(0, U0, in_discards=10), snap(60, U0 + 6000, in_discards=70, out_discards=60), G)
    assert got.discards_ps == pytest.approx(2.0)


def test_max_gap_is_a_parameter() -> None:
    prev, cur = snap(0, U0), snap(600, U0 + 60_000, in_octets=1)
    assert rates(prev, cur, G).note is None
    assert rates(prev, cur, G, max_gap_s=300).note == NoRate.gap


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (("up", 100, "up", 100, U0, U0 + 6000), 0),
        ((None, None, "up", 100, None, U0), 0),
        (("up", 100, "down", 5000, U0, U0 + 6000), 1),
        (("down", 100, "up", 5000, U0, U0 + 6000), 1),
        (("up", 100, "up", U0 + 3000, U0, U0 + 6000), 2),  # went down and came back between polls
        (("up", U0 - 10, "up", 900, U0, 1000), 0),  # restart resets ifLastChange: not a flap
        (("up", U0 - 10, "down", 900, U0, 1000), 1),  # a status that differs across a restart counts
        (("up", W - 9000, "up", 2000, W - 6000, 3000), 2),  # sysUpTime wrapped, ifLastChange moved
        (("up", None, "up", 500, U0, U0 + 6000), 0),  # no earlier ifLastChange to compare
    ],
)
def test_transitions(args: tuple[str | None, int | None, str | None, int | None, int | None, int | None],
                     want: int) -> None:
    assert transitions(*args) == want


def test_rebooted_tells_wrap_from_restart() -> None:
    assert not rebooted(W - 3000, 3000)
    assert rebooted(U0, 3000)
    assert not rebooted(U0, U0 + 1)
    assert not rebooted(None, 5)


def test_counters_yaml_loads_and_a_bad_entry_names_its_key() -> None:
    import yaml

    from infra_mgr.network.snmp.ifpoll import CountersFileError, counters_file, parse_counters

    spec = counters_file()
    assert spec.hc.in_octets == ["1.3.6.1.2.1.31.1.1.1.6"] and spec.oper_status[1] == "up"
    assert any(t.sys_object_id == "1.3.6.1.4.1.2636" for t in spec.optics.dom)
    data = yaml.safe_load(yaml.safe_dump(spec.model_dump()))
    data["legacy"]["out_octets"] = ["1.3.6.one"]
    with pytest.raises(CountersFileError, match=r"counters.yaml: legacy.out_octets.0: .*numeric OID"):
        parse_counters(data)
    data = yaml.safe_load(yaml.safe_dump(spec.model_dump()))
    data["status"]["oper"] = "1.3.6.1.2.1.2.2.1.8"
    with pytest.raises(CountersFileError, match=r"status.oper: "):
        parse_counters(data)


def test_packets_per_second() -> None:
    got = rates(snap(0, U0, in_pkts=1000), snap(60, U0 + 6000, in_pkts=61_000, out_pkts=39_500, in_errors=400), G)
    assert got.pkts_ps == pytest.approx((60_000 + 39_500) / 60)
    assert rates(snap(0, U0, in_pkts=None, out_pkts=None), snap(60, U0 + 6000, in_pkts=None, out_pkts=None),
                 G).pkts_ps is None
    assert rates(snap(0, U0, in_octets=5 * G), snap(60, 5000), G).pkts_ps is None  # a marked sample: no rate


# (prev uptime, cur uptime, prev wall s, cur wall s): the same readings judged by rates() and transitions()
REBOOT_TABLE = [
    ("agent time as wall time", U0, U0 + 6000, 0, 60, False),
    ("sysUpTime back", U0, 3000, 0, 60, True),
    ("restarted and counted past its old sysUpTime", 50_000, 55_000, 0, 600, True),
    ("our poll late by 3 s", U0, U0 + 6000, 0, 63, False),
    ("sysUpTime wrapped, clocks agree", W - 3000, 3000, 0, 60, False),
    ("sysUpTime near the wrap, clocks disagree", W - 3000, 3000, 0, 900, True),
]


@pytest.mark.parametrize(("name", "up0", "up1", "t0", "t1", "restart"), REBOOT_TABLE, ids=[r[0] for r in REBOOT_TABLE])
def test_one_reboot_rule_for_rates_and_transitions(name: str, up0: int, up1: int, t0: float, t1: float,
                                                   restart: bool) -> None:
    prev, cur = snap(t0, up0), snap(t1, up1, in_octets=1000)
    assert (rates(prev, cur, G).note == NoRate.reboot) is restart
    assert rebooted(up0, up1, prev.ts_ms, cur.ts_ms) is restart
    # same status, ifLastChange moved: a flap between the polls, unless the agent restarted (which
    # resets ifLastChange) — and only a status that differs across a restart counts
    assert transitions("up", 100, "up", 900, up0, up1, prev.ts_ms, cur.ts_ms) == (0 if restart else 2)
    assert transitions("up", 100, "down", 900, up0, up1, prev.ts_ms, cur.ts_ms) == 1
