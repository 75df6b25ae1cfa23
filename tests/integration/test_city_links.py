"""The lab city's links over real SNMP: traffic with a daily shape, 32-bit wrap, the deliberate link
conditions (saturated, wrong speed, wrong neighbour, lossy agents), run-time changes that keep the
counters continuous, and the design file / expected audit that the link audit is checked against.

Reads go through gufo-snmp (the poll engine's library) against the session's ``city`` fixture;
every run-time change is made inside ``LinkControl.changed``, which restores the city as it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import yaml
from gufo.snmp import SnmpVersion
from gufo.snmp.aio import SnmpSession
from typer.testing import CliRunner

from infra_mgr.lab.city import RunningCity
from infra_mgr.lab.city_links import (
    ANCHOR_LEAD_S,
    Counter,
    counter_value,
    day_integral,
    day_shape,
    interface_counters,
)
from infra_mgr.lab.city_model import LINK_AUDIT, LOSS_PCT, branch_uplink, build_city
from infra_mgr.lab.cli import lab_app
from infra_mgr.lab.supervisor import Lab

IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
LLDP_REM_SYSNAME = "1.0.8802.1.1.2.1.4.1.1.9"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
RIYADH = dt.timezone(dt.timedelta(hours=3))
T = TypeVar("T")


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())


def session(city: RunningCity, host: str, timeout: float = 1.0) -> SnmpSession:
    return SnmpSession(city.device(host)["address"], city.port, community="public", version=SnmpVersion.v2c,
                       timeout=timeout)


def get(city: RunningCity, host: str, oids: list[str]) -> tuple[float, dict[str, Any]]:
    """One GET of several OIDs: (the unix time of the answer, values)."""

    async def go() -> dict[str, Any]:
        return dict(await session(city, host).get_many(oids))

    values = run(go)
    return time.time(), values


def lldp_names(city: RunningCity, host: str) -> dict[int, str]:
    """lldpRemSysName by local port (ifIndex)."""

    async def go() -> dict[int, str]:
        out = {}
        async for oid, value in session(city, host).fetch(LLDP_REM_SYSNAME):
            out[int(oid.split(".")[-2])] = value.decode() if isinstance(value, bytes) else str(value)
        return out

    return dict(run(go))


def wan(city: RunningCity, host: str) -> dict[str, Any]:
    """The cabled WAN port of a branch router (from expected.json's links)."""
    for link in city.links:
        for end, other in ((link["a"], link["b"]), (link["b"], link["a"])):
            if end.startswith(f"{host}:") and link["kind"] == "branch-wan":
                name = end.split(":", 1)[1]
                return {**city.interface(host, name), "peer": other}
    raise LookupError(host)


def rate(city: RunningCity, host: str, index: int, column: str = f"{IFX_ENTRY}.6", gap: float = 2.0) -> float:
    """Counter increase per second over about ``gap`` seconds, timed by the agent's sysUpTime read in
    the same request (as a poller does: the client's clock would add the answer's delay)."""
    oid = f"{column}.{index}"
    _, v1 = get(city, host, [oid, SYS_UPTIME])
    time.sleep(gap)
    _, v2 = get(city, host, [oid, SYS_UPTIME])
    return (int(v2[oid]) - int(v1[oid])) / ((int(v2[SYS_UPTIME]) - int(v1[SYS_UPTIME])) / 100)


# --- the curve itself (no peer) ------------------------------------------------------------------


def test_the_day_is_busy_at_midday_and_quiet_at_night() -> None:
    day = dt.datetime(2026, 3, 10, tzinfo=RIYADH)
    at = {h: day_shape((day + dt.timedelta(hours=h)).timestamp()) for h in range(24)}
    assert max(at, key=lambda h: at[h]) in (11, 12)
    assert all(at[h] > 0.7 for h in range(9, 15)), at
    assert all(at[h] < 0.3 for h in (0, 1, 2, 3, 22, 23)), at
    # the closed form is the integral of the shape (checked against a midpoint sum over 26 hours)
    t0 = day.timestamp() + 1234.5
    steps = 26 * 60
    numeric = sum(day_shape(t0 + (k + 0.5) * 60) * 60 for k in range(steps))
    assert day_integral(t0, t0 + steps * 60) == pytest.approx(numeric, rel=1e-6)
    counter = Counter(1000, t0, 10.0)
    values = [counter_value(counter, t0 + k * 997.0) for k in range(200)]
    assert values == sorted(values) and values[0] == 1000


# --- traffic over SNMP ---------------------------------------------------------------------------


def test_counters_advance_at_the_rate_of_the_curve(city: RunningCity) -> None:
    model = build_city()
    for host in ("jed-b01-rtr", "jed-b02-rtr", "jed-b06-rtr"):
        port = wan(city, host)
        iface = next(i for i in model.device(host).interfaces if i.name == port["name"])
        expected = interface_counters(iface)["in_octets"].rate * day_shape(time.time())
        got = rate(city, host, port["index"])
        assert got == pytest.approx(expected, rel=0.05), host
        assert 0 < got < 0.6 * port["speed_mbps"] * 125_000, "healthy uplinks stay well under 60 % of speed"
        # the other end of the cable sends what this end receives
        peer_host, peer_name = port["peer"].split(":", 1)
        peer_out = rate(city, peer_host, city.interface(peer_host, peer_name)["index"], f"{IFX_ENTRY}.10")
        assert peer_out == pytest.approx(got, rel=0.05), host


def test_a_32_bit_counter_wraps_where_the_64_bit_one_goes_on(city: RunningCity) -> None:
    model = build_city()
    now = time.time()
    candidates = []
    for device in model.devices:
        if device.served_by != "snmpsim" or device.community != "public":
            continue
        for iface in device.interfaces:
            octets_per_s = interface_counters(iface)["in_octets"].rate * day_shape(now)
            if iface.peer is not None and iface.oper == "up" and iface.shape == "day" and octets_per_s > 0:
                candidates.append((2**32 / octets_per_s, device.hostname, iface.if_index))
    period, host, index = min(c for c in candidates if c[0] > 2.0)
    assert period < 40, "some backbone link wraps its 32-bit counter within seconds"
    c32, c64 = f"{IF_ENTRY}.10.{index}", f"{IFX_ENTRY}.6.{index}"
    reads = []
    deadline = time.monotonic() + period + 5
    while time.monotonic() < deadline:
        reads.append(get(city, host, [c32, c64]))
        if len(reads) > 1 and int(reads[-1][1][c32]) < int(reads[-2][1][c32]):
            break
        time.sleep(min(0.5, period / 6))
    (_, before), (_, after) = reads[-2], reads[-1]
    assert int(after[c32]) < int(before[c32]), "the 32-bit counter wrapped"
    assert int(after[c64]) > int(before[c64]) >= 2**32, "the 64-bit counter went on"
    wrapped_delta = (int(after[c32]) - int(before[c32])) % 2**32
    assert wrapped_delta == pytest.approx(int(after[c64]) - int(before[c64]), rel=0.02, abs=2e6)
    for _, values in reads:  # one count, two widths (read in the same request, a few ms apart at most)
        apart = (int(values[c64]) - int(values[c32])) % 2**32
        assert min(apart, 2**32 - apart) <= 0.05 * 2**32 / period + 1e6


def test_saturated_links_run_at_ninety_percent_of_their_speed_or_more(city: RunningCity) -> None:
    for host in ("jed-b05-rtr", "jed-b38-rtr"):
        port = wan(city, host)
        _, values = get(city, host, [f"{IFX_ENTRY}.15.{port['index']}"])
        speed_octets = int(values[f"{IFX_ENTRY}.15.{port['index']}"]) * 125_000
        assert rate(city, host, port["index"]) >= 0.9 * speed_octets, host


def test_the_errored_port_counts_about_two_percent_errors(city: RunningCity) -> None:
    port = wan(city, "jed-b07-rtr")
    i = port["index"]
    oids = [f"{IF_ENTRY}.14.{i}", f"{IF_ENTRY}.20.{i}", f"{IFX_ENTRY}.7.{i}", f"{IFX_ENTRY}.11.{i}"]
    _, first = get(city, "jed-b07-rtr", oids)
    time.sleep(3)
    _, second = get(city, "jed-b07-rtr", oids)
    delta = {oid: int(second[oid]) - int(first[oid]) for oid in oids}
    errors, packets = delta[oids[0]] + delta[oids[1]], delta[oids[2]] + delta[oids[3]]
    assert packets > 0 and 0.01 <= errors / packets <= 0.03, (errors, packets)


def test_the_wrong_speed_link_runs_at_100_megabit_on_a_gigabit_class_port(city: RunningCity) -> None:
    port = wan(city, "jed-b28-rtr")
    assert port["name"].startswith(("Gi", "ge-", "ether", "eth")), port["name"]
    for host, index in (("jed-b28-rtr", port["index"]),
                        (port["peer"].split(":")[0], city.interface(*port["peer"].split(":", 1))["index"])):
        _, values = get(city, host, [f"{IF_ENTRY}.5.{index}", f"{IFX_ENTRY}.15.{index}"])
        assert int(values[f"{IF_ENTRY}.5.{index}"]) == 100_000_000, host
        assert int(values[f"{IFX_ENTRY}.15.{index}"]) == 100, host
    healthy = wan(city, "jed-b04-rtr")  # same model, as designed
    _, values = get(city, "jed-b04-rtr", [f"{IFX_ENTRY}.15.{healthy['index']}"])
    assert int(values[f"{IFX_ENTRY}.15.{healthy['index']}"]) == healthy["speed_mbps"] > 100


def test_the_wrong_neighbour_shows_in_lldp_on_both_ends(city: RunningCity) -> None:
    port = wan(city, "jed-b31-rtr")
    designed = branch_uplink(31)
    actual = lldp_names(city, "jed-b31-rtr")[port["index"]]
    assert actual != designed and actual.startswith("jed-hq-dist")
    assert "jed-b31-rtr" in lldp_names(city, actual).values()
    assert "jed-b31-rtr" not in lldp_names(city, designed).values()


def _lost(city: RunningCity, host: str, count: int) -> int:
    """Single GETs of sysUpTime, no retry: how many went unanswered."""

    async def go() -> int:
        lost = 0
        probe = session(city, host, timeout=0.4)
        for _ in range(count):
            try:
                await probe.get(SYS_UPTIME)
            except TimeoutError:
                lost += 1
        return lost

    return int(run(go))


def test_the_lossy_branch_loses_some_single_gets_and_a_healthy_one_none(city: RunningCity) -> None:
    assert LOSS_PCT == 25
    lost = _lost(city, "jed-b41-rtr", 60) + _lost(city, "jed-b41-sw", 60)
    assert 0.05 * 120 <= lost <= 0.30 * 120, lost
    assert _lost(city, "jed-b01-rtr", 60) == 0


# --- run-time changes ----------------------------------------------------------------------------


def test_a_link_taken_down_and_restored_shows_at_once_and_its_counters_never_go_back(city: RunningCity) -> None:
    control = city.link_control()
    host = "jed-b03-rtr"
    port = wan(city, host)
    peer_host, peer_name = port["peer"].split(":", 1)
    i, pi = port["index"], city.interface(peer_host, peer_name)["index"]
    octets, oper, peer_oper = f"{IFX_ENTRY}.6.{i}", f"{IF_ENTRY}.8.{i}", f"{IF_ENTRY}.8.{pi}"
    seen: list[int] = []

    def read() -> dict[str, Any]:
        values = get(city, host, [octets, oper])[1]
        seen.append(int(values[octets]))
        return values

    def wait_for(status: int) -> None:
        deadline = time.monotonic() + 4
        while int(read()[oper]) != status:
            assert time.monotonic() < deadline, f"oper status not {status} within 4 s"
            time.sleep(0.2)

    read()
    with control.changed(f"{host}:{port['name']}", "down"):
        wait_for(2)
        assert int(get(city, peer_host, [peer_oper])[1][peer_oper]) == 2, "both ends of the cable"
        assert i not in lldp_names(city, host)
        frozen = int(read()[octets])
        time.sleep(1.2)
        assert int(read()[octets]) == frozen, "no traffic on a link that is down"
    wait_for(1)
    time.sleep(ANCHOR_LEAD_S + 1.0)  # a change's counters start from a moment just ahead of it
    read()
    assert seen == sorted(seen), "the counter never goes back"
    assert seen[-1] > frozen, "traffic again after the restore"
    assert lldp_names(city, host).get(i) == peer_host


def test_a_speed_change_acts_on_both_ends_and_is_undone(city: RunningCity) -> None:
    control = city.link_control()
    host = "jed-b09-rtr"
    port = wan(city, host)
    peer_host, peer_name = port["peer"].split(":", 1)
    ends = [(host, port["index"]), (peer_host, city.interface(peer_host, peer_name)["index"])]

    def speeds() -> list[int]:
        return [int(get(city, h, [f"{IFX_ENTRY}.15.{x}"])[1][f"{IFX_ENTRY}.15.{x}"]) for h, x in ends]

    def wait_for(value: list[int]) -> None:
        deadline = time.monotonic() + 4
        while speeds() != value:
            assert time.monotonic() < deadline, f"speeds not {value} within 4 s"
            time.sleep(0.2)

    with control.changed(f"{host}:{port['name']}", "speed=100M"):
        wait_for([100, 100])
        assert any(r["target"].startswith(host) and "speed=100M" in r["conditions"] for r in control.listing())
    wait_for([port["speed_mbps"]] * 2)


def test_loss_can_be_switched_off_at_run_time(city: RunningCity) -> None:
    control = city.link_control()
    with control.changed("jed-b41-rtr", loss=0):
        time.sleep(1.5)  # the workers re-read the loss file at most twice a second
        assert _lost(city, "jed-b41-rtr", 40) == 0
    time.sleep(1.5)
    assert _lost(city, "jed-b41-rtr", 60) > 0


# --- the design file and the expected audit ------------------------------------------------------


def test_design_file_and_expected_audit_cover_every_branch(city: RunningCity) -> None:
    branches = {d["site"] for d in city.devices if d["role"] in ("wan-router", "access-switch")}
    assert len(branches) == 63
    design = yaml.safe_load((city.root / "uplinks.yaml").read_text(encoding="utf-8"))["uplinks"]
    by_device = {row["device"]: row for row in design}
    for site in branches:
        n = int(site.rsplit("B", 1)[1])
        router, switch = by_device[f"jed-b{n:02d}-rtr"], by_device[f"jed-b{n:02d}-sw"]
        assert router["expected_neighbor"] == branch_uplink(n)
        assert switch["expected_neighbor"] == router["device"]
        assert router["interface"] == wan(city, router["device"])["name"]
        for row in (router, switch):
            assert row["expected_speed"][-1] in "MG" and city.interface(row["device"], row["interface"])
    assert by_device["jed-b28-rtr"]["expected_speed"] != "100M"

    audit = city.expected["link_audit"]
    assert set(audit) == branches
    severity = {"link_down": "down", "unreachable": "down", "no_data": "unknown", "flapping": "degraded",
                "errors": "degraded", "speed": "degraded", "neighbor": "degraded", "utilisation": "degraded",
                "no_snmp": "degraded", "loss": "degraded", "no_uplink": "unknown"}
    order = ["ok", "unknown", "degraded", "down"]
    for site, entry in audit.items():
        worst = max((severity[r] for r in entry["reasons"]), key=order.index, default="ok")
        assert entry["state"] == worst, site
        for alternative in [entry.get("alternative")] if entry.get("alternative") else []:
            worst = max((severity[r] for r in alternative["reasons"]), key=order.index, default="ok")
            assert alternative["state"] == worst, site
    assert {s for s, e in audit.items() if e["state"] != "ok"} == set(LINK_AUDIT)
    assert audit["JED-B12"] == {"state": "down", "reasons": ["link_down"], "note": LINK_AUDIT["JED-B12"][2]}


def test_the_lab_link_command_lists_changes_and_refuses_nonsense(city: RunningCity, peer_lab: Lab) -> None:
    runner = CliRunner()
    lab_dir = ["--lab-dir", str(peer_lab.lab_dir)]
    listed = runner.invoke(lab_app, ["link", "--list", *lab_dir])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert any(line.startswith("jed-b05-rtr:") and "saturated" in line and "(as built)" in line for line in lines)
    assert any(line.startswith("jed-b31-rtr:") and "wrong_neighbor" in line for line in lines)
    assert any(line.startswith("jed-b41-sw ") and "loss=25%" in line for line in lines)

    bad = runner.invoke(lab_app, ["link", "jed-b05-rtr:Gi0/0/0", "--set", "sideways", *lab_dir])
    assert bad.exit_code == 1 and "error:" in bad.output
    nowhere = runner.invoke(lab_app, ["link", "jed-b05-rtr:Gi9/9/9", "--set", "down", *lab_dir])
    assert nowhere.exit_code == 1 and "not a cabled port" in nowhere.output

    try:
        changed = runner.invoke(lab_app, ["link", "jed-b06-rtr", "--loss", "20", *lab_dir])
        assert changed.exit_code == 0, changed.output
        assert "jed-b06-rtr  loss=20%  (changed)" in runner.invoke(lab_app, ["link", "--list", *lab_dir]).stdout
    finally:
        runner.invoke(lab_app, ["link", "--reset", "jed-b06-rtr", *lab_dir])
    assert "jed-b06-rtr" not in runner.invoke(lab_app, ["link", "--list", *lab_dir]).stdout
