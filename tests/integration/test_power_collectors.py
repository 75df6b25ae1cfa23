"""The power collectors against the lab's real peers: NUT's upsd (dummy-ups), pymodbus simulators of
a DSE genset controller, a DRUPS and two meters, and snmpsim UPS agents (APC, RFC 1628), all
following one physical outage scenario (``outage`` fixture) — and ``power probe`` as a user runs it.

Timing: the whole file stays well under a minute. The stale-NUT case needs upsd's MAXAGE (15 s) to
pass with a frozen driver; its private upsd is started, and its driver frozen, by the first test,
so the wait overlaps the others instead of adding to them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from peers import start_peer

from infra_mgr.lab.peers import SnmpAgent
from infra_mgr.lab.power_peers import ModbusEndpoint, NutEndpoint, OutageControl, SnmpUpsAgents, nut_spec
from infra_mgr.lab.supervisor import Lab, free_port, process_tree
from infra_mgr.power.collectors.modbus import read_modbus
from infra_mgr.power.collectors.nut import NutClient, read_nut
from infra_mgr.power.collectors.nut import NutEndpoint as NutTarget
from infra_mgr.power.collectors.snmp_ups import power_facts_for_snmp, read_snmp_ups
from infra_mgr.power.probe import probe, read_url
from infra_mgr.power.readings import PowerReadings
from infra_mgr.snmp.engine import SnmpEngine
from infra_mgr.snmp.target import SnmpTarget

pytestmark = pytest.mark.timeout(90)
TOP_LEVEL_KEYS = {"source", "kind", "vendor", "model", "readings", "errors"}
UPSD_MAXAGE_S = 15.0  # the lab's upsd.conf


# --- helpers ---------------------------------------------------------------------------------------


def nut_url(ep: NutEndpoint, *, ups: str | None = None, login: bool = True) -> str:
    auth = f"{ep.user}:{ep.password}@" if login else ""
    return f"nut://{auth}{ep.host}:{ep.port}/{ep.ups if ups is None else ups}"


def snmp_url(agent: SnmpAgent, community: str | None = None) -> str:
    return f"snmp://{community or agent.community}@{agent.host}:{agent.port}"


def modbus_url(ep: ModbusEndpoint, map_name: str, unit: int | None = None) -> str:
    return f"modbus://{ep.host}:{ep.port}/{ep.unit if unit is None else unit}?map={map_name}"


def read(url: str) -> PowerReadings:
    return asyncio.run(probe(url))


def read_many(urls: dict[str, str]) -> dict[str, PowerReadings]:
    """Read several devices at once, as the power service's scheduler does."""

    async def gather() -> list[PowerReadings]:
        return await asyncio.gather(*(probe(u) for u in urls.values()))

    return dict(zip(urls, asyncio.run(gather()), strict=True))


def until(what: str, check: Callable[[], tuple[bool, Any]], deadline_s: float, every_s: float = 0.25) -> Any:
    """Poll ``check`` (→ (done, value)) until done; fail with the last value after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while True:
        done, value = check()
        if done:
            return value
        if time.monotonic() > end:
            pytest.fail(f"{what}: not reached within {deadline_s:g} s; last: {summary(value)}")
        time.sleep(every_s)


SUMMARY = ("ups.status", "output.source", "drups.mode", "engine.state", "meter.power")


def summary(value: Any) -> Any:
    """What a failed wait shows: the telling readings and the problems of each device."""
    if isinstance(value, dict):
        return {k: summary(v) for k, v in value.items()}
    if isinstance(value, PowerReadings):
        return {**{n: value.readings[n] for n in SUMMARY if n in value.readings},
                "errors": [f"{e.kind}: {e.message}" for e in value.errors]}
    return value


def status(r: PowerReadings) -> set[str]:
    return set(str(r.readings.get("ups.status") or "").split())


def expected_problems_only(r: PowerReadings) -> bool:
    """The only problem the lab's devices have in normal operation: the DSE's broken oil-temperature
    sender (register 1026 reads "over range")."""
    return all(e.kind == "sentinel" and "1026" in e.message for e in r.errors)


# --- the frozen NUT driver (stale data) -------------------------------------------------------------


@dataclass
class FrozenNut:
    endpoint: NutEndpoint
    frozen_at: float


@pytest.fixture(scope="module")
def frozen_nut(peer_lab: Lab, outage: OutageControl) -> Iterator[FrozenNut]:
    """A private upsd whose dummy-ups driver is stopped (SIGSTOP): a hung driver, which upsd reports
    as ``ERR DATA-STALE`` once MAXAGE has passed. Private, so the shared ``nut_server`` stays healthy."""
    record = start_peer(peer_lab, lambda lab_dir: nut_spec(lab_dir, name="nut-frozen"))
    drivers = [p for p in process_tree(record.pid) if b"dummy-ups" in Path(f"/proc/{p}/cmdline").read_bytes()]
    if not drivers:
        peer_lab.stop(record.name)
        pytest.fail("the NUT peer runs no dummy-ups driver")
    os.kill(drivers[0], signal.SIGSTOP)
    try:
        yield FrozenNut(NutEndpoint.from_record(record), time.monotonic())
    finally:
        os.kill(drivers[0], signal.SIGCONT)
        peer_lab.stop(record.name)


# --- every collector through one outage -------------------------------------------------------------


def test_collectors_follow_the_outage(nut_server: NutEndpoint, snmp_ups: SnmpUpsAgents, modbus_dse: ModbusEndpoint,
                                      modbus_drups: ModbusEndpoint, modbus_meter: ModbusEndpoint,
                                      outage: OutageControl, frozen_nut: FrozenNut) -> None:
    urls = {
        "nut": nut_url(nut_server),
        "apc": snmp_url(snmp_ups.apc),
        "rfc1628": snmp_url(snmp_ups.rfc1628),
        "dse": modbus_url(modbus_dse, "dse-gencomm"),
        "drups": modbus_url(modbus_drups, "drups-eurodiesel"),
        "facility": modbus_url(modbus_meter, "power-meter"),
    }
    upses = ("nut", "apc", "rfc1628")
    outage.reset()
    try:
        # before: everything on mains (the NUT pusher may need half a second after the reset)
        def before() -> tuple[bool, dict[str, PowerReadings]]:
            rs = read_many(urls)
            return all("OL" in status(rs[u]) and "OB" not in status(rs[u]) for u in upses), rs

        rs = until("all UPSs on line before the outage", before, 5)
        for name, r in rs.items():
            assert expected_problems_only(r), (name, r.errors)
            assert "pass" not in r.source and "@" not in r.source.replace(f"{nut_server.user}@", ""), r.source
        assert {rs[u].readings["output.source"] for u in upses} == {"normal"}
        assert rs["drups"].readings["drups.mode"] == "mains" and rs["drups"].readings["mains.status"] == "ok"
        assert rs["dse"].readings["engine.state"] == "stopped" and rs["dse"].readings["engine.rpm"] == 0
        assert rs["facility"].readings["meter.power"] > 100  # type: ignore[operator]

        # during: UPSs on battery until the genset takes the panel (t0 + 8 s), DRUPS on its rotor
        outage.start()

        def during() -> tuple[bool, dict[str, PowerReadings]]:
            rs = read_many(urls)
            ok = (all({"OB", "DISCHRG"} <= status(rs[u]) for u in upses)
                  and all(rs[u].readings["output.source"] == "battery" for u in upses)
                  and rs["drups"].readings.get("drups.mode") in ("kinetic", "diesel")
                  and rs["dse"].readings.get("engine.state") not in (None, "stopped")
                  and rs["facility"].readings.get("meter.power") == 0)
            return ok, rs

        until("on battery / kinetic / engine starting during the outage", during, 6.5)
        apc = read(urls["apc"])
        assert apc.readings["battery.runtime"] > 0 and apc.readings["battery.charge"] <= 100  # type: ignore[operator]
        assert apc.readings["input.transfer.reason"] == "blackout"

        # after: mains back; DRUPS retransfers after its 5 s wait, UPSs on line (charging)
        outage.stop()

        def after() -> tuple[bool, dict[str, PowerReadings]]:
            rs = read_many(urls)
            ok = (all("OL" in status(rs[u]) and "OB" not in status(rs[u]) for u in upses)
                  and rs["drups"].readings.get("drups.mode") == "mains"
                  and (rs["facility"].readings.get("meter.power") or 0) > 0)
            return ok, rs

        rs = until("back on mains after the outage", after, 12)
        assert all(expected_problems_only(r) for r in rs.values())
        assert rs["drups"].readings["transfer.count"] >= 1  # type: ignore[operator]
    finally:
        outage.reset()


# --- Modbus ---------------------------------------------------------------------------------------------


def test_modbus_sentinel_register_and_identity(modbus_dse: ModbusEndpoint) -> None:
    r = asyncio.run(read_modbus(modbus_dse.host, modbus_dse.port, modbus_dse.unit, register_map="dse-gencomm"))
    assert (r.kind, r.vendor, r.model) == ("genset", "DeepSea", "DSE8610 MKII")
    assert r.readings["engine.oil.temperature"] is None
    [problem] = r.errors
    assert problem.kind == "sentinel" and "1026" in problem.message and "over_range" in problem.message
    assert isinstance(r.readings["engine.coolant.temperature"], int)
    assert r.readings["generator.frequency"] is not None and r.readings["engine.starts"] is not None


def test_modbus_meters_behind_one_gateway(modbus_meter: ModbusEndpoint) -> None:
    facility = read(modbus_url(modbus_meter, "power-meter", modbus_meter.units["meter-facility"]))
    it = read(modbus_url(modbus_meter, "power-meter", modbus_meter.units["meter-it"]))
    assert facility.kind == it.kind == "meter" and not facility.errors and not it.errors
    assert facility.readings["meter.power"] > it.readings["meter.power"] > 0  # type: ignore[operator]


def test_modbus_wrong_unit_and_refused(modbus_drups: ModbusEndpoint) -> None:
    r = read(modbus_url(modbus_drups, "drups-eurodiesel", unit=77))
    assert r.readings == {} and len(r.errors) == 1 and "unit 77" in r.errors[0].message
    closed = free_port("127.0.0.1", "tcp")
    r = read(f"modbus://127.0.0.1:{closed}/1?map=drups-eurodiesel&timeout=1")
    assert [e.kind for e in r.errors] == ["refused"] and r.readings == {}


# --- NUT ---------------------------------------------------------------------------------------------------


def test_nut_unknown_ups(nut_server: NutEndpoint) -> None:
    r = read(nut_url(nut_server, ups="no-such-ups"))
    assert r.readings == {} and not r.stale
    [problem] = r.errors
    assert problem.kind == "unknown_ups" and "ERR UNKNOWN-UPS" in problem.message


def test_nut_client_reuses_one_connection(nut_server: NutEndpoint) -> None:
    async def session() -> tuple[dict[str, str], str, PowerReadings, PowerReadings]:
        target = NutTarget(nut_server.host, nut_server.port, nut_server.user, nut_server.password)
        async with NutClient(target, timeout_s=2) as client:
            upses = await client.list_ups()
            status_text = await client.get_var(nut_server.ups, "ups.status")
            first = await client.read(nut_server.ups)
            second = await client.read()  # the only UPS served
        return upses, status_text, first, second

    upses, status_text, first, second = asyncio.run(session())
    assert nut_server.ups in upses
    assert status_text.split()[0] in ("OL", "OB")
    assert first.readings["ups.model"] and isinstance(first.readings["battery.charge"], int | float)
    assert second.source.endswith(f"/{nut_server.ups}") and second.readings.keys() == first.readings.keys()
    assert nut_server.password not in first.source


def test_nut_refused() -> None:
    closed = free_port("127.0.0.1", "tcp")
    r = asyncio.run(read_nut("127.0.0.1", closed, "x", timeout_s=1))
    assert [e.kind for e in r.errors] == ["refused"]


# --- SNMP ---------------------------------------------------------------------------------------------------


def test_snmp_apc_and_rfc1628_tables(snmp_ups: SnmpUpsAgents) -> None:
    apc = read(snmp_url(snmp_ups.apc))
    assert (apc.kind, apc.vendor) == ("ups", "APC") and apc.model and not apc.errors
    assert apc.readings["battery.runtime"] > 60 and apc.readings["ups.serial"]  # type: ignore[operator]
    assert isinstance(apc.readings["ups.load"], float)  # upsHighPrecOutputLoad, tenths of a percent
    rfc = read(snmp_url(snmp_ups.rfc1628))  # net-snmp's sysObjectID: found through the fallback table
    assert rfc.kind == "ups" and rfc.vendor and rfc.model and not rfc.errors
    assert rfc.readings["ups.alarm"] == "" and rfc.readings["output.source"] == "normal"
    assert rfc.source == f"snmp://{snmp_ups.rfc1628.host}:{snmp_ups.rfc1628.port}"


def test_power_facts_for_the_snmp_probe(snmp_ups: SnmpUpsAgents) -> None:
    def target(agent: SnmpAgent) -> SnmpTarget:
        return SnmpTarget(address=agent.host, port=agent.port, community=agent.community, timeout_s=1.0)

    async def run() -> tuple[Any, ...]:
        apc = await power_facts_for_snmp(target(snmp_ups.apc), "1.3.6.1.4.1.318.1.3.27")
        async with SnmpEngine().session(target(snmp_ups.rfc1628)) as walker:
            rfc = await power_facts_for_snmp(walker, "1.3.6.1.4.1.8072.3.2.10")
            requests_before = walker.stats.requests
            switch = await power_facts_for_snmp(walker, "1.3.6.1.4.1.9.1.2571")
            cost = walker.stats.requests - requests_before
        return apc, rfc, switch, cost

    apc, rfc, switch, cost = asyncio.run(run())
    assert apc is not None and apc.vendor == "APC" and apc.readings["ups.status"]
    assert rfc is not None and rfc.readings["output.source"] == "normal"
    assert switch is None and cost == 0  # a Cisco sysObjectID costs no request


def test_snmp_wrong_community_times_out_fast(snmp_ups: SnmpUpsAgents) -> None:
    r = asyncio.run(read_snmp_ups(SnmpTarget(address=snmp_ups.apc.host, port=snmp_ups.apc.port,
                                             community="not-the-community", timeout_s=0.4, retries=1)))
    assert r.readings == {} and [e.kind for e in r.errors] == ["timeout"]


def test_read_url_with_a_stored_credential(nut_server: NutEndpoint, snmp_ups: SnmpUpsAgents) -> None:
    """The poller's entry point: the inventory keeps a URL without secrets and a credential."""
    agent = snmp_ups.apc
    snmp = asyncio.run(read_url(f"snmp://{agent.host}:{agent.port}", timeout_s=1.0,
                                secrets={"kind": "snmp_v2c", "community": agent.community}))
    assert snmp.vendor == "APC" and not snmp.errors
    nut = asyncio.run(read_url(f"nut://{nut_server.host}:{nut_server.port}/{nut_server.ups}", timeout_s=1.0,
                               secrets={"username": nut_server.user, "password": nut_server.password}))
    assert nut.readings["ups.status"] and not nut.errors
    assert nut.source == f"nut://{nut_server.user}@{nut_server.host}:{nut_server.port}/{nut_server.ups}"


# --- the CLI, as a user runs it ---------------------------------------------------------------------------


def _power_command() -> list[str]:
    """``infra-mgr power`` once the lead mounts the app; until then the app on its own."""
    from infra_mgr.cli import app

    if any(group.name == "power" for group in app.registered_groups):
        return [sys.executable, "-m", "infra_mgr", "power"]
    return [sys.executable, "-m", "infra_mgr.power.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_power_command(), *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def test_probe_cli_each_scheme(nut_server: NutEndpoint, snmp_ups: SnmpUpsAgents, modbus_dse: ModbusEndpoint) -> None:
    for url, kind in ((nut_url(nut_server), "ups"), (snmp_url(snmp_ups.apc), "ups"),
                      (snmp_url(snmp_ups.rfc1628), "ups"), (modbus_url(modbus_dse, "dse-gencomm"), "genset")):
        done = cli("probe", url, "--json")
        assert done.returncode == 0, (url, done.stderr)
        doc = json.loads(done.stdout)
        assert set(doc) == TOP_LEVEL_KEYS and doc["kind"] == kind and doc["readings"], url
        assert nut_server.password not in done.stdout and snmp_ups.apc.community + "@" not in done.stdout
    table = cli("probe", nut_url(nut_server))
    assert table.returncode == 0 and "ups.status: " in table.stdout


def test_probe_cli_failures(modbus_dse: ModbusEndpoint) -> None:
    unknown_map = cli("probe", f"modbus://{modbus_dse.host}:{modbus_dse.port}/1?map=nope", "--json")
    assert unknown_map.returncode == 1 and unknown_map.stdout == ""
    assert unknown_map.stderr.strip().startswith("error: unknown register map 'nope'")
    assert len(unknown_map.stderr.strip().splitlines()) == 1
    bad_url = cli("probe", "telnet://ups1", "--json")
    assert bad_url.returncode == 1 and len(bad_url.stderr.strip().splitlines()) == 1
    closed = free_port("127.0.0.1", "tcp")
    down = cli("probe", f"nut://127.0.0.1:{closed}/ups?timeout=1", "--json")
    assert down.returncode == 2, down.stderr
    doc = json.loads(down.stdout)
    assert set(doc) == TOP_LEVEL_KEYS and doc["readings"] == {} and doc["errors"][0]["kind"] == "refused"


# --- last: the frozen driver has had time to go stale -------------------------------------------------------


def test_nut_stale_data(frozen_nut: FrozenNut) -> None:
    ep = frozen_nut.endpoint
    wait = frozen_nut.frozen_at + UPSD_MAXAGE_S - time.monotonic()
    if wait > 0:
        time.sleep(wait)

    def stale() -> tuple[bool, PowerReadings]:
        r = asyncio.run(read_nut(ep.host, ep.port, ep.ups, timeout_s=2))
        return r.stale, r

    r = until("upsd reports the frozen driver's data as stale", stale, 8, every_s=0.5)
    assert r.readings == {}
    [problem] = r.errors
    assert problem.kind == "stale" and "DATA-STALE" in problem.message
    done = cli("probe", nut_url(ep), "--json")
    assert done.returncode == 2 and json.loads(done.stdout)["errors"][0]["kind"] == "stale"


def test_snmp_probe_cli_adds_power_for_a_ups_only(snmp_ups: SnmpUpsAgents, snmpsim_agent) -> None:  # type: ignore[no-untyped-def]
    """`infra-mgr snmp probe` carries a "power" object for a UPS and null for a switch."""
    import json
    import subprocess
    import sys

    def probe_json(host: str, port: int, community: str) -> dict:  # type: ignore[type-arg]
        out = subprocess.run([sys.executable, "-m", "infra_mgr", "snmp", "probe", f"{host}:{port}", "--community",
                              community, "--json"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    ups = probe_json(snmp_ups.apc.host, snmp_ups.apc.port, snmp_ups.apc.community)
    assert ups["power"]["vendor"] and "battery.charge" in ups["power"]["readings"]
    assert ups["power"]["readings"]["ups.status"].split()[0] in ("OL", "OB")
    switch = probe_json(snmpsim_agent.host, snmpsim_agent.port, snmpsim_agent.community)
    assert switch["power"] is None and switch["facts"]["sys_name"]


def _snmp_probe_json(agent: SnmpAgent) -> dict[str, Any]:
    """``infra-mgr snmp probe HOST:PORT --json`` as a user runs it."""
    out = subprocess.run([sys.executable, "-m", "infra_mgr", "snmp", "probe", f"{agent.host}:{agent.port}",
                          "--community", agent.community, "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_snmp_apc_pdu_and_ats(snmp_ups: SnmpUpsAgents) -> None:
    """The APC rack PDU and ATS through ``power probe`` and the poller's ``read_url``."""
    assert snmp_ups.pdu is not None and snmp_ups.ats is not None
    pdu = read(snmp_url(snmp_ups.pdu))
    assert (pdu.kind, pdu.vendor, pdu.model) == ("pdu", "APC", "AP8941") and not pdu.errors, pdu.errors
    assert pdu.readings["input.realpower"] == 3420 and pdu.readings["input.power"] == 3600
    assert pdu.readings["input.current"] == pytest.approx(15.6) and pdu.readings["outlet.count"] == 24
    assert pdu.readings["ups.status"] == "OL"
    agent = snmp_ups.ats
    ats = asyncio.run(read_url(f"snmp://{agent.host}:{agent.port}", timeout_s=1.0,
                               secrets={"kind": "snmp_v2c", "community": agent.community}))
    assert (ats.kind, ats.model) == ("ats", "AP4423") and not ats.errors, ats.errors
    assert ats.readings["input.source"] in ("A", "B") and ats.readings["input.source.preferred"] == "A"
    assert ats.readings["input.2.voltage"] > 200 and ats.readings["output.current"] == pytest.approx(8.8)  # type: ignore[operator]
    assert ats.readings["ats.redundancy"] in ("redundant", "lost") and ats.readings["ups.status"] == "OL"
    done = cli("probe", snmp_url(snmp_ups.pdu), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["kind"] == "pdu", done.stderr


def test_snmp_probe_cli_power_for_pdu_and_ats(snmp_ups: SnmpUpsAgents, snmpsim_agent) -> None:  # type: ignore[no-untyped-def]
    """`infra-mgr snmp probe` carries a "power" object of kind pdu / ats, and null for a switch."""
    assert snmp_ups.pdu is not None and snmp_ups.ats is not None
    pdu = _snmp_probe_json(snmp_ups.pdu)["power"]
    assert pdu["kind"] == "pdu" and pdu["vendor"] == "APC" and pdu["model"] == "AP8941"
    assert pdu["readings"]["input.realpower"] == 3420 and pdu["readings"]["input.voltage"] == 230
    ats = _snmp_probe_json(snmp_ups.ats)["power"]
    assert ats["kind"] == "ats" and ats["readings"]["input.source"] in ("A", "B")
    assert ats["readings"]["output.realpower"] == 1883 and ats["readings"]["input.1.frequency"] > 0
    assert _snmp_probe_json(snmpsim_agent)["power"] is None
