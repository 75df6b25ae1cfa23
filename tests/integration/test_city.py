"""The simulated city against its own expected.json: every device on its own address, real
topology in LLDP/CDP, moving counters and each deliberate fault.

The city is started once per session by the ``city`` fixture (tests/peers.py): a ``serve``
supervisor and one snmpsim worker per CPU (at least two), each with one SNMP engine and a
round-robin share of the devices' endpoints, reads answered from an in-memory copy of each
recording (see ``infra_mgr/lab/city.py``, "snmpsim with per-endpoint recordings"). One engine per
device instead was measured at 20–41 s to start in one process and 13–27 s over two.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from infra_mgr.lab.city import RunningCity, _udp_inodes, city_counters, city_pids, city_spec
from infra_mgr.lab.city_model import EXAMPLE_YAML, FAULTS, FLAP_PERIOD_S, WRONG_COMMUNITY, build_city
from infra_mgr.lab.city_records import write_city
from infra_mgr.lab.city_snmpsim import _Recording
from infra_mgr.lab.peers import SYS_LOCATION, SYS_NAME, snmp_get
from infra_mgr.lab.supervisor import Lab, group_members, pid_running

LLDP_REM = "1.0.8802.1.1.2.1.4.1.1"
LLDP_REM_MAN_ADDR = "1.0.8802.1.1.2.1.4.2.1"
CDP_CACHE = "1.3.6.1.4.1.9.9.23.1.2.1.1"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"


def walk(host: str, port: int, community: str, base: str, limit: int = 2000) -> dict[str, object]:
    """A GETNEXT walk of one subtree (small and dependency-free; enough for these tables)."""
    found: dict[str, object] = {}
    oid = base
    for _ in range(limit):
        try:
            oid, value = snmp_get(host, port, community, oid, next_=True)
        except LookupError:  # endOfMibView
            break
        if not oid.startswith(base + "."):
            break
        found[oid] = value
    return found


def column(rows: dict[str, object], base: str, col: int) -> dict[str, object]:
    """The cells of one column: index suffix -> value."""
    prefix = f"{base}.{col}."
    return {oid[len(prefix) :]: value for oid, value in rows.items() if oid.startswith(prefix)}


def get(city: RunningCity, hostname: str, oid: str) -> object:
    device = city.device(hostname)
    return snmp_get(device["address"], city.port, device["snmp"]["community"], oid)[1]


# --- identity and addressing ---------------------------------------------------------------------


def test_every_device_answers_as_itself_on_its_own_address(city: RunningCity) -> None:
    agents = city.v2c_agents()
    assert len(city.devices) == 134 and len(agents) == 131  # minus unreachable, liar, v3-only

    answers = {address: snmp_get(address, city.port, community, SYS_NAME)[1] for _, address, community in agents}

    assert answers == {address: hostname.encode() for hostname, address, _ in agents}


def test_a_device_is_not_reachable_through_another_devices_address(city: RunningCity) -> None:
    odd = city.with_fault("wrong_community")
    other = city.device("jed-b01-rtr")

    # the wrong-community device's recording is bound to its endpoint only …
    with pytest.raises(TimeoutError):
        snmp_get(other["address"], city.port, WRONG_COMMUNITY, SYS_NAME, timeout=0.5)
    # … and the net-snmp client sees two different devices on two addresses
    if shutil.which("snmpget") is None:
        pytest.skip("net-snmp's snmpget is not installed")
    names = [
        subprocess.run(
            ["snmpget", "-v2c", "-c", community, "-Oqv", "-t", "2", "-r", "1", f"{address}:{city.port}", SYS_NAME],
            capture_output=True, text=True, timeout=20,
        ).stdout.strip().strip('"')
        for address, community in ((odd["address"], WRONG_COMMUNITY), (other["address"], "public"))
    ]
    assert names == [odd["hostname"], "jed-b01-rtr"]


def test_identity_is_unique_and_platforms_are_mixed(city: RunningCity) -> None:
    devices = city.devices
    for key in ("hostname", "address", "serial", "chassis_id"):
        assert len({d[key] for d in devices}) == len(devices), key
    assert {d["platform"] for d in devices} >= {"ios-xe", "ios", "junos", "routeros", "arubaos-switch", "linux"}
    prefixes = {
        "Cisco": "1.3.6.1.4.1.9.1.",
        "Juniper": "1.3.6.1.4.1.2636.1.1.1.2.",
        "MikroTik": "1.3.6.1.4.1.14988.1",
        "HPE": "1.3.6.1.4.1.11.2.3.7.11.",
        "net-snmp": "1.3.6.1.4.1.8072.3.2.10",
    }
    for device in devices:
        if device["vendor"] in prefixes:
            assert device["sys_object_id"].startswith(prefixes[device["vendor"]]), device["hostname"]

    juniper = city.device("jed-b02-rtr")
    assert get(city, "jed-b02-rtr", "1.3.6.1.2.1.47.1.1.1.1.11.1") == juniper["serial"].encode()
    assert b"JUNOS 21.4R3-S5.4" in get(city, "jed-b02-rtr", "1.3.6.1.2.1.1.1.0")  # type: ignore[operator]
    if shutil.which("snmpget") is not None:  # (peers.snmp_get does not decode OID values)
        oid = subprocess.run(
            ["snmpget", "-v2c", "-c", "public", "-Onqv", f"{juniper['address']}:{city.port}", "1.3.6.1.2.1.1.2.0"],
            capture_output=True, text=True, timeout=20,
        ).stdout.strip()
        assert oid == "." + juniper["sys_object_id"]


def test_sys_location_is_the_exact_arabic_of_the_yaml(city: RunningCity) -> None:
    sites = {s["code"]: s for s in yaml.safe_load(EXAMPLE_YAML.read_text(encoding="utf-8"))["sites"]}

    for hostname in ("jed-hq-core1", "jed-dc-sw1", "jed-b01-rtr", "jed-b44-sw"):
        site = sites[city.device(hostname)["site"]]
        assert get(city, hostname, SYS_LOCATION) == f"أمانة جدة - {site['name_ar']}".encode()
    wan = city.interface("jed-b01-rtr", "Gi0/0/0")
    assert get(city, "jed-b01-rtr", f"{IFX_ENTRY}.18.{wan['index']}") == "وصلة إلى المبنى الرئيسي".encode()


def _sockets_of(pid: int) -> set[str]:
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return held


def test_city_is_served_by_several_processes_each_device_as_itself(city: RunningCity, peer_lab: Lab) -> None:
    record = peer_lab.record("city")
    assert record is not None
    workers = [pid for pid in city_pids(record) if pid != record.pid]
    agents = city.v2c_agents()
    served = {d["address"] for d in city.devices if d["served_by"] == "snmpsim"}
    inodes = _udp_inodes({(address, city.port) for address in served})

    # at least two snmpsim workers, in the supervisor's process group, owning disjoint endpoints
    assert len(workers) >= 2 and record.info["workers"] == len(workers)
    assert set(workers) <= set(group_members(record.pgid))
    owned = {
        pid: {address for (address, _), inode in inodes.items() if f"socket:[{inode}]" in _sockets_of(pid)}
        for pid in workers
    }
    assert all(owned.values()), owned
    assert sum(len(addresses) for addresses in owned.values()) == len(served)
    assert set().union(*owned.values()) == served
    # … and every address, whichever worker holds it, answers with its own device's sysName
    answers = {address: snmp_get(address, city.port, community, SYS_NAME)[1] for _, address, community in agents}
    assert answers == {address: hostname.encode() for hostname, address, _ in agents}
    # the workers count what they answer (the benchmark divides their CPU by it)
    counters = city_counters(record)
    assert counters["workers"] == len(workers) and counters["varbinds"] >= len(agents)


def test_stopping_the_lab_leaves_no_city_process(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab")
    record = lab.start(city_spec(lab.lab_dir, prefer_standard_port=False, workers=2))
    pids = city_pids(record)
    assert len(pids) == 3  # the serve supervisor and two snmpsim workers
    probe = RunningCity.from_record(record).device("jed-hq-core2")
    assert snmp_get(probe["address"], record.info["port"], "public", SYS_NAME)[1] == b"jed-hq-core2"

    lab.stop_all()

    assert not [pid for pid in pids if pid_running(pid)]
    assert not group_members(record.pgid)


def test_workers_die_with_their_supervisor(tmp_path: Path) -> None:
    """Even a SIGKILLed ``serve`` (no chance to stop its workers) leaves no snmpsim behind."""
    lab = Lab(tmp_path / "lab")
    record = lab.start(city_spec(lab.lab_dir, prefer_standard_port=False, workers=2))
    workers = [pid for pid in city_pids(record) if pid != record.pid]
    try:
        os.kill(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while [pid for pid in workers if pid_running(pid)] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if pid_running(pid)]
    finally:
        lab.stop_all()


def test_in_memory_recording_answers_as_snmpsims_own_index(tmp_path: Path) -> None:
    """The serve hook's table against snmpsim's DataFile on the same recordings: every OID by GET
    and GETNEXT, OIDs between and past the records, the end of the MIB view."""
    from pyasn1.type import base, univ
    from snmpsim import confdir, datafile, variation

    out = tmp_path / "city"
    write_city(out)
    confdir.cache = str(tmp_path / "cache")
    os.makedirs(confdir.cache)
    modules = variation.load_variation_modules(confdir.variation, {})
    variation.initialize_variation_modules(modules, mode="variating")
    parser = variation.RECORD_TYPES["snmprec"]
    recordings = sorted((out / "data").rglob("1.3.6.1.6.1.1.*.snmprec"))
    for path in (recordings[0], recordings[len(recordings) // 2]):  # a core switch and a branch device
        stock = datafile.DataFile(str(path), parser, modules).index_text()
        ours = _Recording(str(path), parser, modules)
        asked = [tuple(key) for key in ours.keys]
        asked += [key[:-1] + (key[-1] + 1,) + (0,) for key in asked[::7]]  # absent: between records
        asked += [(1, 3, 6, 1, 2, 1, 2, 2), (1, 3), (1, 3, 6, 1, 9, 9), (2, 0)]  # subtree roots, past the end
        varied = {tuple(oid) for oid, tag, _ in ours.entries if ":" in tag}
        for key in asked:
            oid = univ.ObjectIdentifier(key)
            for next_flag in (False, True):
                context = {"nextFlag": next_flag, "setFlag": False}
                ((want_oid, want),) = stock.process_var_binds([(oid, univ.Null(""))], **context)
                got_oid, got = ours.answer(oid, univ.Null(""), next_flag, context)
                assert (tuple(got_oid), type(got)) == (tuple(want_oid), type(want)), (path.name, key, next_flag)
                if tuple(want_oid) not in varied and isinstance(want, base.SimpleAsn1Type):  # moving values move
                    assert got == want, (path.name, key, next_flag)
        stock.close()


# --- topology ------------------------------------------------------------------------------------


def test_branch_router_lldp_names_its_switch_and_its_distribution_uplink(city: RunningCity) -> None:
    router = city.device("jed-b01-rtr")
    rows = walk(router["address"], city.port, "public", LLDP_REM)
    man = walk(router["address"], city.port, "public", f"{LLDP_REM_MAN_ADDR}.3")  # lldpRemManAddrIfSubtype

    names = column(rows, LLDP_REM, 9)
    ports = column(rows, LLDP_REM, 7)
    assert sorted(names.values()) == [b"jed-b01-sw", b"jed-hq-dist1"]  # type: ignore[type-var]
    wan = city.interface("jed-b01-rtr", "Gi0/0/0")
    uplink = next(i for i, name in names.items() if name == b"jed-hq-dist1")
    assert uplink.split(".")[1] == str(wan["index"])  # lldpRemLocalPortNum is the router's WAN port
    assert ports[uplink] == b"Gi1/0/1"
    # the management addresses a crawler follows are the neighbours' own loopback addresses
    addresses = {".".join(oid.rsplit(".", 4)[1:]) for oid in man}
    assert addresses == {city.device("jed-hq-dist1")["address"], city.device("jed-b01-sw")["address"]}
    link = {"jed-b01-rtr:Gi0/0/0", "jed-hq-dist1:Gi1/0/1"}
    assert any({lk["a"], lk["b"]} == link for lk in city.links)


def test_cisco_pairs_have_a_cdp_cache(city: RunningCity) -> None:
    router = city.device("jed-b01-rtr")
    rows = walk(router["address"], city.port, "public", CDP_CACHE)

    assert sorted(column(rows, CDP_CACHE, 6).values()) == [b"jed-b01-sw", b"jed-hq-dist1"]  # type: ignore[type-var]
    assert b"cisco C9200-24P" in column(rows, CDP_CACHE, 8).values()


def test_every_designed_link_ends_on_real_interfaces(city: RunningCity) -> None:
    interfaces = {(d["hostname"], i["name"]) for d in city.devices for i in d["interfaces"]}
    for link in city.links:
        for end in (link["a"], link["b"]):
            host, _, port = end.partition(":")
            assert (host, port) in interfaces, end
    assert len(city.links) == 14 + 2 * 63


# --- moving values and faults --------------------------------------------------------------------


def test_counters_advance_between_two_reads(city: RunningCity) -> None:
    wan = city.interface("jed-b01-rtr", "Gi0/0/0")
    oids = (f"{IFX_ENTRY}.6.{wan['index']}", f"{IF_ENTRY}.10.{wan['index']}", "1.3.6.1.2.1.1.3.0")
    first = [get(city, "jed-b01-rtr", oid) for oid in oids]
    time.sleep(1.2)
    second = [get(city, "jed-b01-rtr", oid) for oid in oids]

    assert second[0] > first[0]  # type: ignore[operator]  ifHCInOctets
    assert second[1] != first[1]  # ifInOctets (32-bit: may wrap)
    assert second[2] > first[2]  # type: ignore[operator]  sysUpTime


def test_errored_interface_errors_and_discards_rise(city: RunningCity) -> None:
    host = city.with_fault("errors")["hostname"]
    index = next(i["index"] for i in city.device(host)["interfaces"] if i["alias"] == "وصلة إلى المبنى الرئيسي")
    before = [get(city, host, f"{IF_ENTRY}.{col}.{index}") for col in (14, 13)]
    time.sleep(1.1)
    after = [get(city, host, f"{IF_ENTRY}.{col}.{index}") for col in (14, 13)]
    assert all(a > b for a, b in zip(after, before, strict=True))  # type: ignore[operator]


def test_down_uplink_is_oper_down_and_absent_from_lldp(city: RunningCity) -> None:
    link = next(lk for lk in city.links if lk["state"] == "down")
    host, _, port = link["a"].partition(":")
    assert city.device(host)["fault"] == "uplink_down"
    index = city.interface(host, port)["index"]

    assert get(city, host, f"{IF_ENTRY}.7.{index}") == 1  # admin up
    assert get(city, host, f"{IF_ENTRY}.8.{index}") == 2  # oper down
    rows = walk(city.device(host)["address"], city.port, "public", LLDP_REM)
    assert all(suffix.split(".")[1] != str(index) for suffix in column(rows, LLDP_REM, 9))


def test_flapping_link_alternates_oper_status(city: RunningCity) -> None:
    link = next(lk for lk in city.links if lk["state"] == "flapping")
    host, _, port = link["b"].partition(":")
    index = city.interface(host, port)["index"]
    seen: set[object] = set()
    deadline = time.monotonic() + FLAP_PERIOD_S + 2
    while seen != {1, 2} and time.monotonic() < deadline:
        seen.add(get(city, host, f"{IF_ENTRY}.8.{index}"))
        time.sleep(0.25)
    assert seen == {1, 2}


def test_wrong_community_device_ignores_public(city: RunningCity) -> None:
    device = city.with_fault("wrong_community")

    with pytest.raises(TimeoutError):
        snmp_get(device["address"], city.port, "public", SYS_NAME, timeout=0.5)
    assert snmp_get(device["address"], city.port, WRONG_COMMUNITY, SYS_NAME)[1] == device["hostname"].encode()


def test_v3_only_device_answers_authpriv_and_ignores_v2c(city: RunningCity) -> None:
    device = city.with_fault("v3_only")
    v3 = device["snmp"]
    with pytest.raises(TimeoutError):
        snmp_get(device["address"], city.port, "public", SYS_NAME, timeout=0.5)
    if shutil.which("snmpget") is None:
        pytest.skip("net-snmp's snmpget is not installed")

    result = subprocess.run(
        ["snmpget", "-v3", "-l", "authPriv", "-u", v3["user"], "-a", v3["auth_proto"], "-A", v3["auth_key"],
         "-x", v3["priv_proto"], "-X", v3["priv_key"], "-Oqv", "-t", "2", "-r", "1",
         f"{device['address']}:{city.port}", SYS_NAME],
        capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().strip('"') == device["hostname"]


def test_unreachable_device_times_out(city: RunningCity) -> None:
    device = city.with_fault("unreachable")
    assert device["served_by"] is None
    with pytest.raises(TimeoutError):
        snmp_get(device["address"], city.port, "public", SYS_NAME, timeout=0.5)
    # … yet its router's LLDP still names it, so a crawler learns of it
    router = city.device(device["hostname"].replace("-sw", "-rtr"))
    rows = walk(router["address"], city.port, router["snmp"]["community"], LLDP_REM)
    assert device["hostname"].encode() in column(rows, LLDP_REM, 9).values()


def test_broken_walks_device_is_served_by_the_liar(city: RunningCity) -> None:
    device = city.with_fault("broken_walks")
    assert device["served_by"] == "liar" and device["snmp"]["community"] == "loop"
    if not city.liar_running:
        pytest.skip("infra_mgr.lab.liar is not installed")
    oid, _ = snmp_get(device["address"], city.port, "loop", "1.3.6.1.2.1.1.1.0", next_=True)
    assert oid == "1.3.6.1.2.1.1.1.0"  # GETNEXT answered with the same OID: a walk would never end


# --- the generator -------------------------------------------------------------------------------


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    write_city(first)
    write_city(second)

    def tree(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    one, two = tree(first), tree(second)
    assert one == two
    assert len([name for name in one if name.endswith(".snmprec")]) == 132 + 2  # served devices + 2 stubs


def test_fault_table_names_real_devices() -> None:
    city = build_city()
    hosts = {d.hostname: d for d in city.devices}
    assert {f.host for f in FAULTS} <= set(hosts)
    assert {f.name for f in FAULTS} == {
        "errors", "uplink_down", "flapping", "unreachable", "wrong_community", "v3_only", "broken_walks",
    }
