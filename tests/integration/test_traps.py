"""The trap/inform receiver against real senders: net-snmp's ``snmptrap`` and ``snmpinform``.

The receiver listens on a kernel-chosen free UDP port on 127.0.0.1. Where a timing is measured,
the datagram ``snmptrap`` produced is captured first and replayed with ``sendto`` so the clock
starts when the trap leaves, not when a process starts on a loaded machine. Tests that write
events run on SQLite and PostgreSQL (``engine``); the others check the collector alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.events.models import Event, EventRead
from infra_mgr.inventory.models import Device, Site
from infra_mgr.network.trap_service import TrapPipeline, run_trap_receiver
from infra_mgr.network.traps import ReceiverConfig, TrapFacts, TrapReceiver, V3User
from tests.peers import peer_unavailable

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
UPS_ON_BATTERY = "1.3.6.1.2.1.33.2.1"
IF_INDEX_3 = "1.3.6.1.2.1.2.2.1.1.3"
IF_NAME_3 = "1.3.6.1.2.1.31.1.1.1.1.3"
IF_ALIAS_3 = "1.3.6.1.2.1.31.1.1.1.18.3"
ARABIC_ALIAS = "وصلة فرع البلد - الطابق ٢"
COMMUNITY = "jeddah-traps"
USER = V3User("nms-traps", "SHA-256", "auth-pass-phrase", "AES", "priv-pass-phrase")
SENDER_ENGINE_ID = "0x80001f88804a45442d7570733031"


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def senders(tmp_path: Path) -> dict[str, Any]:
    """Paths of net-snmp's senders and an environment that keeps them off shared state."""
    found = {name: shutil.which(name) for name in ("snmptrap", "snmpinform")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        peer_unavailable(f"net-snmp senders not installed: {', '.join(missing)} (apt-get install snmp)")
    persistent = tmp_path / "net-snmp"
    persistent.mkdir()
    env = {**os.environ, "MIBS": "", "SNMPCONFPATH": str(persistent), "SNMP_PERSISTENT_DIR": str(persistent)}
    return {**found, "env": env}


def v2c_args(community: str = COMMUNITY) -> list[str]:
    return ["-v", "2c", "-c", community]


def v3_args(user: V3User = USER, *, auth_key: str | None = None, priv_key: str | None = None,
            level: str = "authPriv", engine_id: str | None = SENDER_ENGINE_ID) -> list[str]:
    args = ["-v", "3", "-u", user.name, "-l", level]
    if engine_id:
        args += ["-e", engine_id]
    if level != "noAuthNoPriv":
        args += ["-a", str(user.auth_proto), "-A", auth_key or user.auth_key]
    if level == "authPriv":
        args += ["-x", str(user.priv_proto).replace("-", ""), "-X", priv_key or user.priv_key]
    return args


async def send(senders: dict[str, Any], program: str, target: tuple[str, int], auth: list[str],
               trap_oid: str, *varbinds: str, extra: tuple[str, ...] = ()) -> int:
    """Run ``snmptrap``/``snmpinform`` without blocking the loop (informs wait for our ack)."""
    argv = [senders[program], *auth, *extra, f"{target[0]}:{target[1]}", "", trap_oid, *varbinds]
    proc = await asyncio.create_subprocess_exec(*argv, env=senders["env"], stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    if proc.returncode:
        print(f"{program} exited {proc.returncode}: {err.decode(errors='replace').strip()}")
    return proc.returncode


def capture(senders: dict[str, Any], auth: list[str], trap_oid: str, *varbinds: str) -> bytes:
    """The datagram ``snmptrap`` sends, caught on a socket of ours (to replay with a clock)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as cap:
        cap.bind(("127.0.0.1", 0))
        cap.settimeout(20)
        port = cap.getsockname()[1]
        subprocess.run([senders["snmptrap"], *auth, f"127.0.0.1:{port}", "", trap_oid, *varbinds],
                       env=senders["env"], check=True, timeout=30, capture_output=True)
        return cap.recv(65535)


def sendto(datagram: bytes, target: tuple[str, int], source: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(datagram, target)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the receiver")
        await asyncio.sleep(0.002)


@contextlib.asynccontextmanager
async def collector(**overrides: Any) -> AsyncIterator[tuple[TrapReceiver, list[TrapFacts]]]:
    """The receiver alone (no database), collecting facts in a list."""
    got: list[TrapFacts] = []
    cfg = ReceiverConfig(**{"host": "127.0.0.1", "port": 0, "communities": (COMMUNITY,), "users": (USER,),
                            **overrides})
    async with TrapReceiver(cfg, got.append) as rx:
        yield rx, got


def make_device(engine: Engine, address: str, hostname: str = "jed-hq-core1") -> tuple[int, int]:
    with Session(engine) as s:
        site = Site(code="JED-HQ", name_en="Jeddah HQ", name_ar="المقر الرئيسي", kind="hq")
        s.add(site)
        s.flush()
        dev = Device(site_id=site.id or 0, hostname=hostname, management_address=address)
        s.add(dev)
        s.commit()
        return int(dev.id or 0), int(site.id or 0)


# --------------------------------------------------------------------------- events in the database


def test_link_down_from_a_known_device_becomes_an_event_within_a_second(engine: Engine,
                                                                         senders: dict[str, Any]) -> None:
    device_id, site_id = make_device(engine, "127.0.0.1")
    datagram = capture(senders, v2c_args(), LINK_DOWN, IF_INDEX_3, "i", "3", "1.3.6.1.2.1.2.2.1.7.3", "i", "1",
                       "1.3.6.1.2.1.2.2.1.8.3", "i", "2", IF_NAME_3, "s", "Gi0/3", IF_ALIAS_3, "s", ARABIC_ALIAS)

    async def scenario() -> tuple[float, list[EventRead], list[int]]:
        events: list[EventRead] = []
        seen_at: list[float] = []
        repolled: list[int] = []

        def on_event(ev: EventRead) -> None:
            seen_at.append(time.perf_counter())
            events.append(ev)

        async def repoll(dev_id: int) -> None:
            repolled.append(dev_id)

        cfg = ReceiverConfig(host="127.0.0.1", port=0, communities=(COMMUNITY,))
        async with TrapPipeline(engine, cfg, repoll=repoll, on_event=on_event) as pipe:
            t0 = time.perf_counter()
            sendto(datagram, pipe.address)
            await wait_until(lambda: bool(events) and bool(repolled))
        return seen_at[0] - t0, events, repolled

    latency, events, repolled = asyncio.run(scenario())
    print(f"\ntrap -> event latency on {engine.dialect.name}: {latency * 1000:.1f} ms")
    assert latency < 1.0, f"linkDown took {latency:.3f} s to become an event"

    (ev,) = events
    assert (ev.kind, ev.severity.value, ev.device_id, ev.site_id) == ("interface.down", "warning", device_id, site_id)
    assert ev.data["ifIndex"] == 3 and ev.data["ifName"] == "Gi0/3" and ev.data["ifAlias"] == ARABIC_ALIAS
    assert ev.data["ifOperStatus"] == "down" and ev.data["source"] == "127.0.0.1"
    assert ev.message.startswith("jed-hq-core1: interface Gi0/3 (" + ARABIC_ALIAS + ") down")
    assert repolled == [device_id]
    with Session(engine) as s:
        row = s.exec(select(Event)).one()
    assert row.kind == "interface.down" and row.device_id == device_id
    assert row.data["ifAlias"] == ARABIC_ALIAS and row.data["varbinds"][IF_ALIAS_3] == ARABIC_ALIAS


def test_unknown_sender_and_ups_on_battery(engine: Engine, senders: dict[str, Any]) -> None:
    device_id, _ = make_device(engine, "127.0.0.1", hostname="jed-dc-ups1")

    async def scenario() -> tuple[list[EventRead], list[int]]:
        events: list[EventRead] = []
        repolled: list[int] = []
        cfg = ReceiverConfig(host="127.0.0.1", port=0, communities=(COMMUNITY,), users=(USER,))
        async with TrapPipeline(engine, cfg, repoll=repolled.append, on_event=events.append) as pipe:
            # From 127.0.0.2: no device has that address.
            assert await send(senders, "snmptrap", pipe.address, v2c_args(), LINK_DOWN, IF_INDEX_3, "i", "3",
                              extra=("--clientaddr=127.0.0.2",)) == 0
            await wait_until(lambda: len(events) == 1)
            # UPS-MIB upsTrapOnBattery over SNMPv3 authPriv from the known UPS.
            assert await send(senders, "snmptrap", pipe.address, v3_args(), UPS_ON_BATTERY,
                              "1.3.6.1.2.1.33.1.2.2.0", "i", "42", "1.3.6.1.2.1.33.1.2.3.0", "i", "17") == 0
            await wait_until(lambda: len(events) == 2 and bool(repolled))
        return events, repolled

    events, repolled = asyncio.run(scenario())
    unknown, ups = events
    assert unknown.device_id is None and unknown.site_id is None
    assert unknown.data["source"] == "127.0.0.2" and unknown.kind == "interface.down"
    assert ups.kind == "power.on_battery" and ups.severity.value == "critical" and ups.device_id == device_id
    assert ups.data["upsEstimatedMinutesRemaining"] == 17 and ups.data["user"] == USER.name
    assert "jed-dc-ups1: UPS on battery" in ups.message
    assert repolled == [device_id]  # the unknown sender has nothing to re-poll
    with Session(engine) as s:
        assert len(s.exec(select(Event)).all()) == 2


def test_run_trap_receiver_shuts_down_cleanly(sqlite_engine: Engine, senders: dict[str, Any]) -> None:
    async def scenario() -> tuple[Any, tuple[str, int]]:
        stop = asyncio.Event()
        ready: asyncio.Future[TrapPipeline] = asyncio.get_running_loop().create_future()
        cfg = ReceiverConfig(host="127.0.0.1", port=0, communities=(COMMUNITY,))
        task = asyncio.create_task(run_trap_receiver(sqlite_engine, cfg, stop=stop, on_ready=ready.set_result))
        pipe = await asyncio.wait_for(ready, 10)
        address = pipe.address
        assert await send(senders, "snmptrap", address, v2c_args(), "1.3.6.1.6.3.1.1.5.1") == 0
        await wait_until(lambda: pipe.stats.receiver.notifications == 1)
        stop.set()  # right after receipt: the queued notification must still be written
        return await asyncio.wait_for(task, 10), address

    stats, address = asyncio.run(scenario())
    assert stats.events_written == 1 and stats.by_kind == {"device.restarted": 1}
    with Session(sqlite_engine) as s:
        ev = s.exec(select(Event)).one()
    assert ev.kind == "device.restarted" and ev.severity == "warning" and ev.device_id is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(address)  # the port was released


# --------------------------------------------------------------------------- the collector alone


def test_v2c_inform_is_acknowledged_and_a_wrong_community_is_not(senders: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with collector() as (rx, got):
            assert await send(senders, "snmpinform", rx.address, v2c_args(), LINK_DOWN, IF_INDEX_3, "i", "7") == 0
            (facts,) = got
            assert (facts.version, facts.pdu_type, facts.community) == ("2c", "inform", COMMUNITY)
            assert facts.varbinds == {IF_INDEX_3: 7} and facts.uptime_s is not None
            rc = await send(senders, "snmpinform", rx.address, v2c_args("public"), LINK_DOWN,
                            extra=("-t", "0.3", "-r", "0"))
            assert rc != 0 and len(got) == 1
            assert rx.stats.dropped == {"bad_community": 1} and rx.stats.informs == 1

    asyncio.run(scenario())


def test_v3_authpriv_trap_and_inform(senders: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with collector() as (rx, got):
            assert await send(senders, "snmptrap", rx.address, v3_args(), LINK_DOWN, IF_INDEX_3, "i", "3") == 0
            assert await send(senders, "snmpinform", rx.address, v3_args(engine_id=None), LINK_DOWN,
                              IF_INDEX_3, "i", "4") == 0
            await wait_until(lambda: len(got) == 2)
            trap, inform = got
            assert (trap.version, trap.pdu_type, trap.user, trap.security_level) == ("3", "trap", USER.name,
                                                                                     "authPriv")
            assert trap.engine_id == SENDER_ENGINE_ID and trap.varbinds == {IF_INDEX_3: 3}
            assert trap.community is None
            assert (inform.pdu_type, inform.varbinds) == ("inform", {IF_INDEX_3: 4})
            assert rx.stats.learned_engine_ids == 1 and rx.stats.discovery_probes >= 1
            assert rx.stats.dropped_total == 0

    asyncio.run(scenario())


def test_v3_engine_ids_can_be_required(senders: dict[str, Any]) -> None:
    listed = V3User(USER.name, USER.auth_proto, USER.auth_key, USER.priv_proto, USER.priv_key,
                    engine_ids=(SENDER_ENGINE_ID,))

    async def scenario() -> None:
        async with collector(users=(listed,), learn_engine_ids=False) as (rx, got):
            assert await send(senders, "snmptrap", rx.address, v3_args(), LINK_DOWN) == 0
            assert await send(senders, "snmptrap", rx.address, v3_args(engine_id="0x8000000001020304"),
                              LINK_DOWN) == 0
            await wait_until(lambda: rx.stats.datagrams == 2)
            assert [f.engine_id for f in got] == [SENDER_ENGINE_ID]
            assert rx.stats.dropped == {"unknown_user": 1}

    asyncio.run(scenario())


def test_bad_credentials_and_garbage_are_dropped_and_counted(senders: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with collector() as (rx, got):
            target = rx.address
            bad = [
                (v2c_args("public"), ()),
                (["-v", "1", "-c", "public"], ()),
                (v3_args(auth_key="not-the-auth-key"), ()),
                (v3_args(priv_key="not-the-priv-key"), ()),
                (v3_args(level="noAuthNoPriv"), ()),  # an authPriv user's name without its keys
                (v3_args(V3User("intruder", "SHA-256", "auth-pass-phrase", "AES", "priv-pass-phrase")), ()),
            ]
            for auth, extra in bad:
                if auth[1] == "1":  # v1 syntax: enterprise, agent, generic, specific, uptime
                    argv = [senders["snmptrap"], *auth, f"{target[0]}:{target[1]}", "1.3.6.1.4.1.318",
                            "10.1.2.3", "6", "5", ""]
                    proc = await asyncio.create_subprocess_exec(*argv, env=senders["env"],
                                                                stdout=asyncio.subprocess.DEVNULL,
                                                                stderr=asyncio.subprocess.DEVNULL)
                    assert await proc.wait() == 0
                else:
                    assert await send(senders, "snmptrap", target, auth, LINK_DOWN, extra=extra) == 0
            for junk in (b"", b"\x30\x03abc", b"\x30\x82\xff\xff" + b"\x00" * 20, os.urandom(300),
                         b"GET / HTTP/1.1\r\n\r\n"):
                sendto(junk, target)
            await wait_until(lambda: rx.stats.datagrams == len(bad) + 5)
            assert got == []
            assert rx.stats.dropped_total == len(bad) + 5, rx.stats
            assert rx.stats.dropped["bad_community"] == 2
            assert rx.stats.dropped["wrong_digest"] == 1 and rx.stats.dropped["decryption_error"] == 1
            assert rx.stats.dropped["insufficient_security"] == 1 and rx.stats.dropped["unknown_user"] == 1
            assert rx.stats.learned_engine_ids == 0  # a sender that failed its keys is not remembered
            # ... and it still works afterwards.
            assert await send(senders, "snmptrap", target, v3_args(), LINK_DOWN) == 0
            assert await send(senders, "snmptrap", target, v2c_args(), LINK_DOWN) == 0
            await wait_until(lambda: len(got) == 2)
            # Once the engine ID is known, an unauthenticated message under the user's name is
            # still refused (pysnmp itself checks the level only for informs).
            assert await send(senders, "snmptrap", target, v3_args(level="noAuthNoPriv"), LINK_DOWN) == 0
            await wait_until(lambda: rx.stats.dropped["insufficient_security"] == 2)
            assert len(got) == 2 and rx.stats.learned_engine_ids == 1

    asyncio.run(scenario())


def test_v1_trap_is_translated(senders: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with collector() as (rx, got):
            argv = [senders["snmptrap"], "-v", "1", "-c", COMMUNITY, "{}:{}".format(*rx.address),
                    "1.3.6.1.4.1.318", "10.64.9.20", "6", "5", "", "1.3.6.1.4.1.318.1.1.1.2.2.3.0", "t", "90000"]
            proc = await asyncio.create_subprocess_exec(*argv, env=senders["env"], stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            assert await proc.wait() == 0
            await wait_until(lambda: len(got) == 1)
            (facts,) = got
            assert (facts.version, facts.trap_oid) == ("1", "1.3.6.1.4.1.318.0.5")  # APC upsOnBattery
            assert facts.agent_address == "10.64.9.20" and facts.enterprise == "1.3.6.1.4.1.318"
            assert facts.varbinds == {"1.3.6.1.4.1.318.1.1.1.2.2.3.0": 90000}  # no community varbind
            assert facts.community == COMMUNITY and COMMUNITY not in json.dumps(facts.to_json())

    asyncio.run(scenario())


def test_text_is_kept_exactly_and_invalid_utf8_does_not_crash(senders: dict[str, Any]) -> None:
    location = "أمانة جدة - فرع البلد"

    async def scenario() -> None:
        async with collector() as (rx, got):
            assert await send(senders, "snmptrap", rx.address, v2c_args(), LINK_DOWN,
                              IF_ALIAS_3, "s", ARABIC_ALIAS, "1.3.6.1.2.1.1.6.0", "s", location,
                              IF_NAME_3, "x", "D8 A7 FF FE", "1.3.6.1.2.1.2.2.1.6.3", "x", "00 1A 2B 3C 4D 5E",
                              "1.3.6.1.2.1.4.20.1.1.10.0.0.1", "a", "10.0.0.1",
                              "1.3.6.1.2.1.1.2.0", "o", "1.3.6.1.4.1.9.1.516") == 0
            await wait_until(lambda: len(got) == 1)
            v = got[0].varbinds
            assert v[IF_ALIAS_3] == ARABIC_ALIAS and v["1.3.6.1.2.1.1.6.0"] == location
            assert v[IF_NAME_3] == b"\xd8\xa7\xff\xfe"  # not UTF-8: kept as the bytes that came
            assert v["1.3.6.1.2.1.2.2.1.6.3"] == bytes.fromhex("001a2b3c4d5e")
            assert v["1.3.6.1.2.1.4.20.1.1.10.0.0.1"] == "10.0.0.1"
            assert v["1.3.6.1.2.1.1.2.0"] == "1.3.6.1.4.1.9.1.516"
            as_json = got[0].to_json()["varbinds"]
            assert as_json[IF_NAME_3] == "0xd8a7fffe" and json.loads(json.dumps(as_json, ensure_ascii=False))

    asyncio.run(scenario())


# --------------------------------------------------------------------------- the CLI


def test_cli_listen_prints_events_as_json_lines(tmp_path: Path, senders: dict[str, Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "INFRA_MGR_DATA_DIR": str(tmp_path / "data"), "INFRA_MGR_SECRET_KEY": "cli-test-key"}
    env.pop("INFRA_MGR_DATABASE_URL", None)
    code = "from infra_mgr.network.traps_cli import traps_app; traps_app()"
    proc = subprocess.Popen([sys.executable, "-c", code, "listen", "--host", "127.0.0.1", "--port", str(port),
                             "--community", COMMUNITY, "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stderr is not None and proc.stdout is not None
        line = proc.stderr.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        subprocess.run([senders["snmptrap"], *v2c_args(), f"127.0.0.1:{port}", "", LINK_DOWN, IF_INDEX_3, "i", "3",
                        IF_ALIAS_3, "s", ARABIC_ALIAS], env=senders["env"], check=True, timeout=30,
                       capture_output=True)
        event = json.loads(proc.stdout.readline())
        assert event["kind"] == "interface.down" and event["data"]["ifAlias"] == ARABIC_ALIAS
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        stats = json.loads(proc.stderr.read().strip().splitlines()[-1])
        assert stats["events_written"] == 1 and stats["receiver"]["notifications"] == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


CONFIG_CHANGED = "1.3.6.1.4.1.9.9.43.2.0.1"  # ciscoConfigManEvent
CONFIG_DEST = "1.3.6.1.4.1.9.9.43.1.1.6.1.5.17"


def _config_trap(address: str) -> TrapFacts:
    import datetime as dt

    return TrapFacts(source_address=address, source_port=162, received_at=dt.datetime.now(dt.UTC), version="2c",
                     pdu_type="trap", trap_oid=CONFIG_CHANGED, varbinds={CONFIG_DEST: 3})


def _routers(engine: Engine, count: int) -> dict[str, int]:
    with Session(engine) as session:
        site = Site(code="JED-B30", name_en="Branch 30")
        session.add(site)
        session.flush()
        assert site.id is not None
        devices = [Device(site_id=site.id, hostname=f"jed-b30-rtr{n:02}", management_address=f"127.3.30.{n}")
                   for n in range(1, count + 1)]
        session.add_all(devices)
        session.commit()
        return {d.management_address or "": d.id or 0 for d in devices}


def test_a_trap_storm_backs_up_within_the_shared_concurrency(sqlite_engine: Engine) -> None:
    """Twenty routers announcing a change at once: never more backups at a time than allowed."""
    from infra_mgr.network.trap_service import TrapHandler

    ids = _routers(sqlite_engine, 20)
    running: list[int] = []
    most: list[int] = [0]
    done: list[int] = []

    async def backup(device_id: int) -> None:
        running.append(device_id)
        most[0] = max(most[0], len(running))
        await asyncio.sleep(0.05)
        running.remove(device_id)
        done.append(device_id)

    async def scenario() -> None:
        handler = TrapHandler(sqlite_engine, backup=backup, backup_debounce_s=0.05, backup_concurrency=3)
        await handler.handle_batch([_config_trap(address) for address in ids])
        while len(done) < len(ids):
            await asyncio.sleep(0.05)
        await handler.aclose(timeout=5)

    asyncio.run(scenario())
    assert sorted(done) == sorted(ids.values()) and most[0] == 3


def test_the_backup_waits_for_quiet_after_the_last_change_up_to_a_limit(sqlite_engine: Engine) -> None:
    """Changes keep coming (an engineer typing commands): the backup starts only once the quiet
    time has passed after the last of them, so it records the end state; a device changing without
    end is still backed up at the limit."""
    from infra_mgr.network.trap_service import TrapHandler

    ids = _routers(sqlite_engine, 2)
    quiet_addr, busy_addr = list(ids)
    called_at: list[tuple[int, float]] = []
    debounce = 2.0

    async def backup(device_id: int) -> None:
        called_at.append((device_id, asyncio.get_running_loop().time()))

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        handler = TrapHandler(sqlite_engine, backup=backup, backup_debounce_s=debounce, backup_max_delay_s=60.0)
        last = 0.0
        for _ in range(3):  # each well within the quiet time of the one before
            last = loop.time()  # no later than the handler notes the change
            await handler.handle(_config_trap(quiet_addr))
            await asyncio.sleep(0.3)
        while not called_at:
            await asyncio.sleep(0.1)
        await handler.aclose(timeout=5)
        return last

    last = asyncio.run(scenario())
    assert len(called_at) == 1 and called_at[0][0] == ids[quiet_addr]
    assert called_at[0][1] >= last + debounce  # counted from the last change, not the first

    async def endless() -> None:
        handler = TrapHandler(sqlite_engine, backup=backup, backup_debounce_s=1.0, backup_max_delay_s=2.0)
        while len(called_at) < 2:
            await handler.handle(_config_trap(busy_addr))
            await asyncio.sleep(0.3)
        await handler.aclose(timeout=5)

    asyncio.run(endless())
    assert called_at[1][0] == ids[busy_addr]
