"""The power lab: its outage scenario and register encoding on their own, then the real peers (NUT
upsd, pymodbus simulators, snmpsim UPS agents) following one outage. The peers are read with plain
clients of each protocol (a socket for NUT, pymodbus's client for Modbus, net-snmp's ``snmpget`` for
SNMP) and addresses from DOMAIN.md, never through the lab's own maps."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from peers import peer_unavailable
from typer.testing import CliRunner

from infra_mgr.lab.modbus_sim import Register, device_units, load_register_map, register_values
from infra_mgr.lab.peers import SnmpAgent
from infra_mgr.lab.power_cli import outage_app
from infra_mgr.lab.power_peers import ModbusEndpoint, NutEndpoint, OutageControl, SnmpUpsAgents
from infra_mgr.lab.power_scenario import (
    Outage,
    device_readings,
    fold_totals,
    load_outage,
    phase,
    start_outage,
    stop_outage,
)

APC = "1.3.6.1.4.1.318.1.1.1"
UPS_MIB = "1.3.6.1.2.1.33.1"

# --- clients -------------------------------------------------------------------------------------


def nut_vars(nut: NutEndpoint) -> dict[str, str]:
    """``LIST VAR`` over a raw socket, logged in as the monitor user."""
    with socket.create_connection((nut.host, nut.port), timeout=3) as sock:
        stream = sock.makefile("rwb")
        for line in (f"USERNAME {nut.user}", f"PASSWORD {nut.password}", f"LIST VAR {nut.ups}"):
            stream.write(line.encode() + b"\n")
        stream.flush()
        assert stream.readline() == b"OK\n"
        assert stream.readline() == b"OK\n"
        assert stream.readline().decode().strip() == f"BEGIN LIST VAR {nut.ups}"
        found = {}
        while (line := stream.readline().decode().strip()) != f"END LIST VAR {nut.ups}":
            assert line.startswith(f"VAR {nut.ups} "), line
            _, _, name, value = line.split(" ", 3)
            found[name] = value.strip('"')
        return found


def nut_command(nut: NutEndpoint, line: str) -> list[str]:
    """One command's answer lines (a LIST up to its END line)."""
    with socket.create_connection((nut.host, nut.port), timeout=3) as sock:
        stream = sock.makefile("rwb")
        stream.write(line.encode() + b"\n")
        stream.flush()
        answer = [stream.readline().decode().strip()]
        while answer[0].startswith("BEGIN ") and not answer[-1].startswith("END "):
            answer.append(stream.readline().decode().strip())
        return answer


def registers(peer: ModbusEndpoint, address: int, count: int, unit: int | None = None) -> list[int]:
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient(peer.host, port=peer.port, timeout=3)
    assert client.connect()
    try:
        answer = client.read_holding_registers(address, count=count, device_id=unit or peer.unit)
        assert not answer.isError(), answer
        return list(answer.registers)
    finally:
        client.close()


def u32(words: list[int]) -> int:
    from pymodbus.client import ModbusTcpClient

    return int(ModbusTcpClient.convert_from_registers(words, ModbusTcpClient.DATATYPE.UINT32))


def s32(words: list[int]) -> int:
    from pymodbus.client import ModbusTcpClient

    return int(ModbusTcpClient.convert_from_registers(words, ModbusTcpClient.DATATYPE.INT32))


def snmpget(agent: SnmpAgent, *oids: str) -> list[str]:
    """Values (numbers as printed by net-snmp with -Oqvte) of ``oids``."""
    if shutil.which("snmpget") is None:
        peer_unavailable("net-snmp's snmpget is not installed (apt-get install snmp)")
    target = f"{agent.host}:{agent.port}"
    argv = ["snmpget", "-v2c", "-c", agent.community, "-On", "-Oqvte", "-t", "2", "-r", "1", target, *oids]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    assert result.returncode == 0, result.stderr
    return [line.strip().strip('"') for line in result.stdout.splitlines()]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return time.monotonic()


# --- the scenario, pure ------------------------------------------------------------------------------


def test_scenario_is_deterministic_and_tells_the_story() -> None:
    outage = Outage(started_at=1_000.0, ended_at=1_020.0, fuel_scale=1.0)

    assert device_readings("drups", outage, 1_004.0) == device_readings("drups", outage, 1_004.0)
    before, kinetic, diesel = (device_readings("drups", outage, t) for t in (999.0, 1_001.0, 1_004.0))
    assert (before["drups.mode"], kinetic["drups.mode"], diesel["drups.mode"]) == ("mains", "kinetic", "diesel")
    assert kinetic["kinetic.level"] < 100 and diesel["clutch.state"] == "engaged"
    assert diesel["engine.rpm"] == 1800 and diesel["fuel.day.level"] < before["fuel.day.level"]
    assert device_readings("ups:dc-ups1", outage, 1_004.0)["ups.status"] == "OB DISCHRG"
    assert device_readings("ups:dc-ups1", outage, 1_009.0)["ups.status"] == "OL CHRG"  # generator on load
    assert device_readings("meter-facility", outage, 1_004.0)["meter.power"] == 0
    assert device_readings("drups", outage, 1_026.0)["drups.mode"] == "mains"  # retransfer after 5 s
    assert phase(outage, 1_100.0) == "normal" and device_readings("drups", outage, 1_100.0)["engine.rpm"] == 0


def test_counters_carry_over_to_the_next_outage(tmp_path: Path) -> None:
    first = start_outage(tmp_path, now=1_000.0, fuel_scale=10)
    stop_outage(tmp_path, now=1_030.0)
    after_first = device_readings("drups", load_outage(tmp_path), 2_000.0)
    second = start_outage(tmp_path, now=3_000.0)

    assert second.totals == fold_totals(Outage(1_000.0, 1_030.0, first.fuel_scale))
    at_second = device_readings("drups", second, 3_000.0)
    assert at_second["engine.starts"] == after_first["engine.starts"]
    assert at_second["fuel.day.level"] == pytest.approx(after_first["fuel.day.level"])
    assert at_second["engine.runtime"] == pytest.approx(after_first["engine.runtime"])


def test_register_encoding_is_twos_complement_high_word_first() -> None:
    s32_reg = Register("output.power", 0, "s32", scale=0.1, sentinels={0x7FFFFFFF: "unimplemented"})
    u16_reg = Register("engine.rpm", 0, "u16", sentinels={0xFFFF: "unimplemented", 0xFFFE: "over_range"})

    assert s32_reg.encode(s32_reg.raw(-12.5)) == [0xFFFF, 0xFF83]  # -125
    assert s32_reg.encode(s32_reg.raw(7_000_000.0)) == [0x042C, 0x1D80]  # 70,000,000
    assert u16_reg.raw(None) == 0xFFFF and u16_reg.raw(70_000) == 0xFFFE  # unimplemented, over range


@pytest.mark.parametrize("device", ["dse", "drups", "meter"])
def test_the_scenario_feeds_every_register_of_the_maps(device: str) -> None:
    for sim in device_units(device):
        readings = device_readings(sim.scenario_device, Outage(started_at=0.0), 5.0)
        regmap = load_register_map(sim.map_name)
        missing = [r.name for r in regmap.registers if r.name not in readings and r.name not in sim.forced]
        assert missing == [], f"{sim.map_name}: served as 'unimplemented' by accident"
        values = register_values(sim, regmap, readings)
        assert all(0 <= v <= 0xFFFF for v in values.values())


def test_outage_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    started = runner.invoke(outage_app, ["start", "--lab-dir", str(tmp_path), "--fuel-scale", "60", "--json"])
    status = runner.invoke(outage_app, ["status", "--lab-dir", str(tmp_path)])
    stopped = runner.invoke(outage_app, ["stop", "--lab-dir", str(tmp_path)])

    assert started.exit_code == 0 and '"mains": "failed"' in started.output
    assert "mains: failed" in status.output and "fuel_scale: 60" in status.output
    assert stopped.exit_code == 0 and "mains: ok" in stopped.output
    assert load_outage(tmp_path).ended_at is not None


# --- the real peers ----------------------------------------------------------------------------------


def test_dse_identity_32_bit_values_and_sentinels(modbus_dse: ModbusEndpoint) -> None:
    identity = registers(modbus_dse, 768, 5)
    page4 = registers(modbus_dse, 1024, 33)
    page7 = registers(modbus_dse, 1798, 12)

    assert identity[0] == 1 and identity[1] == 32832  # DeepSea, 8610 MKII
    assert u32(identity[2:4]) == (identity[2] << 16) | identity[3] == 1_862_004_417  # serial, high word first
    assert identity[4] == 1  # auto mode
    assert page4[2] == 0x7FFE  # 1026 oil temperature: "over range" (s16 sentinel)
    assert page4[4] == 0xFFFF  # 1028: not implemented by this controller
    runtime = u32(page7[0:2])
    assert page7[0] > 0 and runtime >= 873 * 3600  # run time needs both words
    assert u32(page7[10:12]) >= 158  # 1808 number of starts


def test_dse_answers_out_of_map_with_an_exception(modbus_dse: ModbusEndpoint) -> None:
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient(modbus_dse.host, port=modbus_dse.port, timeout=3)
    assert client.connect()
    try:
        assert client.read_holding_registers(2100, count=1, device_id=modbus_dse.unit).isError()
        assert client.write_register(1030, 1, device_id=modbus_dse.unit).isError()  # read-only
    finally:
        client.close()


def test_meters_give_a_plausible_pue(modbus_meter: ModbusEndpoint) -> None:
    facility = registers(modbus_meter, 0, 6, unit=modbus_meter.units["meter-facility"])
    it = registers(modbus_meter, 0, 6, unit=modbus_meter.units["meter-it"])

    facility_kw, it_kw = s32(facility[2:4]) / 100, s32(it[2:4]) / 100
    assert facility[0] == it[0] == 2300  # 230.0 V
    assert 250 < it_kw < facility_kw and 1.3 < facility_kw / it_kw < 1.8
    assert u32(facility[4:6]) > u32(it[4:6]) > 0  # kWh ×10 counters


def test_nut_protocol(nut_server: NutEndpoint) -> None:
    listed = nut_command(nut_server, "LIST UPS")
    found = nut_vars(nut_server)

    assert listed[0] == "BEGIN LIST UPS" and listed[-1] == "END LIST UPS"
    assert any(line.startswith(f"UPS {nut_server.ups} ") for line in listed)

    assert found["ups.mfr"] == "Eaton" and found["device.type"] == "ups"
    assert found["driver.name"] == "dummy-ups"
    assert nut_command(nut_server, "GET VAR no-such-ups ups.status") == ["ERR UNKNOWN-UPS"]


def test_snmp_ups_identity(snmp_ups: SnmpUpsAgents) -> None:
    apc = snmpget(snmp_ups.apc, "1.3.6.1.2.1.1.2.0", f"{APC}.1.1.1.0")
    generic = snmpget(snmp_ups.rfc1628, "1.3.6.1.2.1.1.2.0", f"{UPS_MIB}.1.1.0", f"{UPS_MIB}.1.2.0")

    assert apc == [".1.3.6.1.4.1.318.1.3.27", "Smart-UPS SRT 10000"]
    assert generic == [".1.3.6.1.4.1.8072.3.2.10", "PowerGuard", "PG-20K RT"]


def test_every_peer_follows_an_outage(
    outage: OutageControl,
    nut_server: NutEndpoint,
    modbus_dse: ModbusEndpoint,
    modbus_drups: ModbusEndpoint,
    modbus_meter: ModbusEndpoint,
    snmp_ups: SnmpUpsAgents,
) -> None:
    outage.reset()
    facility = modbus_meter.units["meter-facility"]

    def drups() -> list[int]:
        return registers(modbus_drups, 0, 26)

    def snmp_sources() -> tuple[str, str]:
        return snmpget(snmp_ups.apc, f"{APC}.4.1.1.0")[0], snmpget(snmp_ups.rfc1628, f"{UPS_MIB}.4.1.0")[0]

    # before: mains, engines stopped, UPSs on line
    before = drups()
    assert before[0] == 0 and before[1] == 0 and before[11] == 0  # mode mains, mains ok, 0 rpm
    assert registers(modbus_dse, 1408, 1) == [0] and registers(modbus_dse, 1030, 1) == [0]
    assert nut_vars(nut_server)["ups.status"] == "OL"
    assert snmp_sources() == ("2", "3")  # APC onLine, UPS-MIB normal
    assert s32(registers(modbus_meter, 2, 2, unit=facility)) > 0

    started = time.monotonic()
    outage.start(fuel_scale=120)
    time.sleep(max(0.0, started + 3.3 - time.monotonic()))

    # during (>= 3 s after mains failed): DRUPS on diesel, generator at speed, static UPSs on battery
    during = drups()
    assert during[0] == 1 and during[1] == 1 and during[9] == 1  # diesel, mains failed, clutch engaged
    assert during[11] > 1000 and during[10] == 4  # rpm, engine on load
    assert during[2] == 0 and during[8] < 1000  # mains 0.0 V, kinetic store below 100.0 %
    assert 2500 < s32(during[6:8]) < 3500  # output power 300 kW ×10: the IT load never dropped
    assert registers(modbus_dse, 1030, 1)[0] > 1000 and registers(modbus_dse, 1408, 1) == [2]  # warming up
    ups = nut_vars(nut_server)
    assert ups["ups.status"] == "OB DISCHRG" and float(ups["input.voltage"]) == 0
    assert snmp_sources() == ("3", "5")  # APC onBattery, UPS-MIB battery
    assert int(snmpget(snmp_ups.rfc1628, f"{UPS_MIB}.2.2.0")[0]) >= 2  # seconds on battery
    assert snmpget(snmp_ups.apc, f"{APC}.3.2.1.0") == ["0"]  # input voltage
    assert s32(registers(modbus_meter, 2, 2, unit=facility)) == 0  # nothing drawn from the utility

    # fuel falls while the diesel carries the load
    fuel_before = drups()[16]
    time.sleep(1.5)
    fuel_after = drups()[16]
    assert fuel_after < fuel_before, (fuel_before, fuel_after)
    assert u32(drups()[20:22]) > u32(before[20:22])  # run time counts

    outage.stop()

    # after: UPSs back on line at once (mains feeds the panel), DRUPS retransfers after its wait
    assert drups()[0] == 1  # still on diesel during the retransfer wait
    assert snmp_sources() == ("2", "3")
    wait_until(lambda: nut_vars(nut_server)["ups.status"].startswith("OL"), 4, "NUT back on line")
    wait_until(lambda: drups()[0] == 0, 8, "DRUPS retransfer to mains")
    after = drups()
    assert after[1] == 0 and after[9] == 0 and after[10] == 5  # mains ok, clutch open, engine cooling down
    assert u32(after[22:24]) == u32(before[22:24]) + 1  # one more start
    assert s32(registers(modbus_meter, 2, 2, unit=facility)) > 0
    outage.reset()
