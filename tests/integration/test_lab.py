"""The lab harness against real peers: snmpsim, PostgreSQL and throwaway Python processes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers import start_peer
from typer.testing import CliRunner

from infra_mgr.lab.cli import lab_app
from infra_mgr.lab.peers import (
    IF_ENTRY,
    IFX_ENTRY,
    JED_HQ_CORE1,
    SYS_LOCATION,
    SYS_NAME,
    SnmpAgent,
    SnmpsimDevice,
    SwitchProfile,
    cisco_ios_switch_records,
    postgres_spec,
    snmp_agents,
    snmp_get,
    snmpsim_spec,
)
from infra_mgr.lab.snmprec import SnmpRecord, SnmpType, read_snmprec, write_snmprec
from infra_mgr.lab.supervisor import Lab, LabError, PeerSpec, free_port, group_members, pid_running, process_tree

ARABIC_LOCATION = "أمانة جدة - المبنى الرئيسي"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A private lab; whatever a failing test left running in it is stopped."""
    lab = Lab(tmp_path / "lab")
    yield lab
    lab.stop_all()


def _pids_with(marker: bytes) -> list[int]:
    """Processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def python_peer(name: str, code: str, ready: bool = True, **kwargs: object) -> PeerSpec:
    """A peer that is just a Python snippet: fast stand-in for supervisor behaviour."""
    return PeerSpec(name=name, argv=[sys.executable, "-c", code], ready=lambda pid: ready, **kwargs)  # type: ignore[arg-type]


# --- snmprec -----------------------------------------------------------------------------------


def test_snmprec_sorts_oids_numerically(tmp_path: Path) -> None:
    oids = ["1.3.6.1.2.1.2.2.1.10.1", "1.3.6.1.2.1.2.2.1.9.2", "1.3.6.1.2.1.2.2.1.9.10", "1.3.6.1.2.1.1.5.0"]
    path = write_snmprec(tmp_path / "d.snmprec", [SnmpRecord(o, SnmpType.COUNTER32, 1) for o in oids])

    written = [line.split("|")[0] for line in path.read_text().splitlines()]

    assert written == [
        "1.3.6.1.2.1.1.5.0",
        "1.3.6.1.2.1.2.2.1.9.2",
        "1.3.6.1.2.1.2.2.1.9.10",
        "1.3.6.1.2.1.2.2.1.10.1",
    ]
    assert written != sorted(oids)  # a string sort would put .10 before .9


def test_snmprec_round_trips_arabic_and_binary_via_hex(tmp_path: Path) -> None:
    mac = bytes.fromhex("00a3d1ff0001")
    records = [
        SnmpRecord("1.3.6.1.2.1.1.6.0", SnmpType.OCTET_STRING, ARABIC_LOCATION),
        SnmpRecord("1.3.6.1.2.1.1.5.0", SnmpType.OCTET_STRING, "jed-hq-core1"),
        SnmpRecord("1.3.6.1.2.1.2.2.1.6.1", SnmpType.OCTET_STRING, mac),
        SnmpRecord("1.3.6.1.2.1.1.4.0", SnmpType.OCTET_STRING, " padded "),
    ]
    path = write_snmprec(tmp_path / "d.snmprec", records)

    text = path.read_text(encoding="ascii")  # hex keeps the file pure ASCII
    assert f"1.3.6.1.2.1.1.6.0|4x|{ARABIC_LOCATION.encode().hex()}" in text
    assert "1.3.6.1.2.1.1.5.0|4|jed-hq-core1" in text
    back = {r.oid: r.octets for r in read_snmprec(path)}
    assert back["1.3.6.1.2.1.1.6.0"].decode("utf-8") == ARABIC_LOCATION
    assert back["1.3.6.1.2.1.2.2.1.6.1"] == mac
    assert back["1.3.6.1.2.1.1.4.0"] == b" padded "


def test_snmprec_rejects_bad_records() -> None:
    with pytest.raises(ValueError, match="out of range"):
        SnmpRecord("1.3.6.1.2.1.2.2.1.10.1", SnmpType.COUNTER32, 2**32)
    with pytest.raises(ValueError, match="numeric OID"):
        SnmpRecord("ifInOctets.1", SnmpType.COUNTER32, 1)
    with pytest.raises(ValueError, match="duplicate"):
        write_snmprec("/nonexistent/x.snmprec", [SnmpRecord("1.3.6", SnmpType.INTEGER, 1)] * 2)


# --- snmpsim -----------------------------------------------------------------------------------


def test_snmpsim_serves_the_hq_core_switch_with_exact_arabic(snmpsim_agent: SnmpAgent) -> None:
    host, port, community = snmpsim_agent.host, snmpsim_agent.port, snmpsim_agent.community

    assert snmp_get(host, port, community, SYS_NAME)[1] == b"jed-hq-core1"
    assert snmp_get(host, port, community, SYS_LOCATION)[1].decode("utf-8") == ARABIC_LOCATION  # type: ignore[union-attr]
    alias = snmp_get(host, port, community, f"{IFX_ENTRY}.18.1")[1]
    assert alias == JED_HQ_CORE1.aliases[1].encode("utf-8")
    assert snmp_get(host, port, community, "1.3.6.1.2.1.47.1.1.1.1.11.1")[1] == JED_HQ_CORE1.serial.encode()
    # the agent walks the file in line order: after the last ifLastChange comes ifInOctets.1
    last = JED_HQ_CORE1.ports + 1
    assert snmp_get(host, port, community, f"{IF_ENTRY}.9.{last}", next_=True)[0] == f"{IF_ENTRY}.10.1"


def test_snmpsim_gives_each_device_its_own_loopback_address(lab: Lab) -> None:
    devices = [
        SnmpsimDevice(p.name, cisco_ios_switch_records(p), host=host)
        for p, host in [
            (JED_HQ_CORE1, "127.0.0.1"),
            (SwitchProfile(name="jed-balad-sw1", location="بلدية البلد"), "127.0.1.2"),
        ]
    ]
    record = start_peer(lab, lambda d: snmpsim_spec(d, devices))

    agents = {a.name: a for a in snmp_agents(record)}
    balad = agents["jed-balad-sw1"]
    assert (balad.host, balad.community) == ("127.0.1.2", "public")
    assert snmp_get(balad.host, balad.port, "public", SYS_NAME)[1] == b"jed-balad-sw1"
    hq = agents["jed-hq-core1"]
    assert snmp_get(hq.host, hq.port, "public", SYS_NAME)[1] == b"jed-hq-core1"


# --- postgres ----------------------------------------------------------------------------------


def test_postgres_accepts_connections(postgres_url: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as conn:
        assert conn.execute("select 1, current_database()").fetchone() == (1, "infra_mgr")


def test_cli_up_status_down_leaves_no_postgres_process(lab: Lab) -> None:
    runner = CliRunner()
    lab_dir = ["--lab-dir", str(lab.lab_dir)]
    result = runner.invoke(lab_app, ["up", "--only", "postgres", *lab_dir])
    if result.exit_code != 0 and "no server" in result.stderr:
        pytest.skip(result.stderr)
    assert result.exit_code == 0, result.stderr
    assert "postgresql+psycopg://infra_mgr@127.0.0.1:" in result.stdout

    peers = json.loads(runner.invoke(lab_app, ["status", "--json", *lab_dir]).stdout)["peers"]
    assert peers["postgres"]["running"] is True
    members = process_tree(peers["postgres"]["pid"])
    assert len(members) > 3  # postmaster + checkpointer, walwriter, … (each in a session of its own)

    again = runner.invoke(lab_app, ["up", "--only", "postgres", *lab_dir])
    assert again.stdout.startswith(f"running postgres pid {peers['postgres']['pid']}")

    assert runner.invoke(lab_app, ["down", *lab_dir]).stdout.strip() == "stopped postgres"
    assert [pid for pid in members if pid_running(pid)] == []
    assert json.loads(runner.invoke(lab_app, ["status", "--json", *lab_dir]).stdout) == {"peers": {}}
    assert runner.invoke(lab_app, ["down", *lab_dir]).stdout.strip() == "nothing was running"


def test_sigkill_escalation_leaves_no_postgres_child_behind(lab: Lab) -> None:
    def unstoppable(lab_dir: Path) -> PeerSpec:
        spec = postgres_spec(lab_dir)
        spec.stop_signal, spec.stop_grace = signal.SIGCONT, 0.2  # a stop signal it ignores
        return spec

    record = start_peer(lab, unstoppable)
    members = process_tree(record.pid)
    assert len(members) > 3

    lab.stop_all()

    assert [pid for pid in members if pid_running(pid)] == []


def test_cli_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(lab_app, ["up", "--only", "nope", "--lab-dir", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown peer 'nope' (known: ")
    assert "postgres" in lines[0] and "snmpsim" in lines[0]


# --- supervisor --------------------------------------------------------------------------------


def test_status_running_then_dead_and_stale_state_is_cleaned(lab: Lab) -> None:
    first = lab.start(python_peer("sleeper", "import time; time.sleep(60)"))
    assert lab.start(python_peer("sleeper", "raise SystemExit(9)")).pid == first.pid  # idempotent up

    assert [(s.name, s.running) for s in lab.status()] == [("sleeper", True)]
    os.killpg(first.pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_running(first.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(s.name, s.running) for s in lab.status()] == [("sleeper", False)]

    second = lab.start(python_peer("sleeper", "import time; time.sleep(60)"))  # stale record replaced
    assert second.pid != first.pid and lab.status()[0].running
    assert lab.stop("sleeper") is True
    assert lab.status() == []
    assert not pid_running(second.pid)
    assert lab.stop("sleeper") is False and lab.stop_all() == []


def test_stop_kills_children_and_escalates_to_sigkill(lab: Lab, tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    code = (
        "import signal, subprocess, time, pathlib\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        f"pathlib.Path({str(child_pid_file)!r}).write_text(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    spec = python_peer("stubborn", code, stop_grace=0.5)
    spec.ready = lambda pid: child_pid_file.exists() and child_pid_file.read_text() != ""
    record = lab.start(spec)
    child = int(child_pid_file.read_text())
    assert pid_running(child) and set(group_members(record.pgid)) == {record.pid, child}

    assert lab.stop_all() == ["stubborn"]

    # the peer ignores SIGTERM (its code above), so being gone means the group was SIGKILLed
    assert not pid_running(record.pid) and not pid_running(child)
    assert group_members(record.pgid) == []


def test_readiness_timeout_kills_the_peer_and_shows_its_log(lab: Lab) -> None:
    spec = python_peer(
        "mute", "import time; print('binding 127.0.0.1:1 failed', flush=True); time.sleep(60)", ready=False
    )
    spec.ready_timeout = 1.0

    with pytest.raises(LabError, match="did not become ready within 1 s") as caught:
        lab.start(spec)

    assert "binding 127.0.0.1:1 failed" in caught.value.log_tail
    assert "binding 127.0.0.1:1 failed" in str(caught.value)
    assert lab.status() == []
    assert [pid for pid in _pids_with(b"binding 127.0.0.1:1 failed") if pid_running(pid)] == []


def test_peer_that_exits_early_reports_its_exit_code(lab: Lab) -> None:
    spec = python_peer("crash", "import sys; print('bad config line 3'); sys.exit(3)", ready=False)
    with pytest.raises(LabError, match="exited with code 3") as caught:
        lab.start(spec)
    assert "bad config line 3" in caught.value.log_tail


def test_free_port_gives_bindable_ports() -> None:
    import socket

    for kind, sock_type in (("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)):
        port = free_port("127.0.2.7", kind)  # type: ignore[arg-type]
        with socket.socket(socket.AF_INET, sock_type) as sock:
            sock.bind(("127.0.2.7", port))
