"""The SSH collector against the lab's device simulator (and small asyncssh servers of the test's
own for the jump host and the host-key check): every platform backed up and masked, every
failing device named with its reason, host keys pinned before the password is sent."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncssh
import pytest

from infra_mgr.lab.city_model import Device, build_city
from infra_mgr.lab.ssh_configs import running_config
from infra_mgr.lab.ssh_lab import RunningSsh
from infra_mgr.network.ssh.collector import (
    MAX_OUTPUT_BYTES,
    _clean,
    _screen,
    backup,
    backup_one,
    cli_probe_one,
    cli_read_one,
    command_deadline,
)
from infra_mgr.network.ssh.facts import HostKey, JumpHost, SshFailure, SshTarget
from infra_mgr.network.ssh.masking import MARKER, mask, secret_lines
from infra_mgr.network.ssh.platforms import platform_table

JUMP_USER = "hop"


# --- helpers ------------------------------------------------------------------------------------


class Devices(dict[str, Device]):
    """The lab's devices by hostname. A short repr: a device links to its neighbours, and
    printing that graph in a failure report would never end."""

    def __repr__(self) -> str:
        return f"<{len(self)} lab devices>"


@pytest.fixture(scope="module")
def devices() -> Devices:
    city = build_city()
    return Devices({d.hostname: d for d in [*city.devices, *city.ssh_only]})


def target(ssh: RunningSsh, hostname: str, **overrides: Any) -> SshTarget:
    info = ssh.device(hostname)
    fields: dict[str, Any] = {"port": ssh.port, "password": ssh.password, "banner_timeout_s": 10.0,
                              "command_timeout_s": 15.0, "connect_timeout_s": 5.0}
    fields.update(overrides)
    return SshTarget(info["address"], info["device_type"], ssh.username, **fields)


def plain_device(ssh: RunningSsh, device_type: str) -> str:
    """A device of that platform with no special behaviour (stable configuration)."""
    return next(d["hostname"] for d in ssh.expected["devices"]
                if d["device_type"] == device_type and not d["behaviours"])


def expected_config(device: Device, device_type: str, generation: int = 0) -> str:
    """What a backup must hold: the device's configuration, volatile lines dropped, masked."""
    platform = platform_table().get(device_type)
    assert platform is not None
    lines = [line.rstrip() for line in running_config(device, generation).replace("\r\n", "\n").split("\n")
             if not platform.volatile(line)]
    return mask("\n".join(lines).strip("\n") + "\n", device_type)


def raw_secret_lines(device: Device, device_type: str) -> list[str]:
    raw = running_config(device, 0).split("\n")
    return [raw[n - 1].strip() for n in secret_lines("\n".join(raw), device_type)]


class LoopThread:
    """An asyncio loop in a thread, so asyncssh servers answer while the collector blocks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class RecordingServer(asyncssh.SSHServer):
    """Logs every authentication attempt; lets authenticated clients open direct-tcpip channels."""

    def __init__(self, attempts: list[str], password: str, client_key: asyncssh.SSHKey | None):
        self.attempts, self.password, self.client_key = attempts, password, client_key

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self.attempts.append(f"password:{username}")
        return username == JUMP_USER and password == self.password

    def public_key_auth_supported(self) -> bool:
        return self.client_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self.attempts.append(f"key:{username}")
        assert self.client_key is not None
        return username == JUMP_USER and key.public_data == self.client_key.public_data

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        return True  # asyncssh connects to the destination itself: a real jump host


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def jump_server() -> Iterator[dict[str, Any]]:
    """An SSH bastion on 127.0.0.1 that accepts a key (or a password) and forwards direct-tcpip."""
    loop = LoopThread()
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    server_key = asyncssh.generate_private_key("ssh-ed25519")
    attempts: list[str] = []
    port = free_port()
    password = "bastion-pass"  # a value made up for this test server

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(lambda: RecordingServer(attempts, password, client_key),
                                            "127.0.0.1", port, server_host_keys=[server_key])

    acceptor = loop.run(start())
    yield {"port": port, "client_key": client_key.export_private_key("openssh").decode(), "attempts": attempts,
           "password": password,
           "host_key": HostKey(server_key.get_algorithm(), server_key.export_public_key("openssh").split()[1].decode())}
    acceptor.close()
    loop.stop()


# --- every platform -----------------------------------------------------------------------------

PLATFORMS = ["cisco_xe", "cisco_ios", "juniper_junos", "mikrotik_routeros", "hp_procurve", "aruba_aoscx", "linux"]


@pytest.mark.parametrize("device_type", PLATFORMS)
def test_each_platform_is_backed_up_masked(city_ssh: RunningSsh, devices: Devices, device_type: str) -> None:
    hostname = plain_device(city_ssh, device_type)
    result = backup_one(target(city_ssh, hostname))
    assert result.ok, result.problem
    assert result.config is not None
    assert result.config == expected_config(devices[hostname], device_type)
    secrets = raw_secret_lines(devices[hostname], device_type)
    assert (MARKER in result.config) == bool(secrets)
    leaked = [line for line in secrets if line in result.config]
    assert not leaked, f"unmasked secret lines in {hostname}: {len(leaked)}"
    assert result.host_key is not None and result.host_key.fingerprint == city_ssh.device(hostname)["host_key"]
    assert hostname in result.prompt
    assert "--More--" not in result.config and "\r" not in result.config


def test_the_backup_drops_volatile_lines(city_ssh: RunningSsh) -> None:
    hostname = plain_device(city_ssh, "cisco_xe")
    result = backup_one(target(city_ssh, hostname))
    assert result.config is not None
    assert "Building configuration" not in result.config
    assert "Current configuration :" not in result.config


# --- failing devices ----------------------------------------------------------------------------


def test_a_device_that_hangs_after_login_times_out(city_ssh: RunningSsh) -> None:
    hostname = city_ssh.expected["behaviours"]["hang"][0]
    result = backup_one(target(city_ssh, hostname, banner_timeout_s=2.0))
    assert result.problem is not None and result.problem.kind is SshFailure.timeout
    assert result.problem.message == "no prompt within 2 s after login"
    assert result.config is None
    assert result.host_key is not None  # the key is known even when the device then hangs


def test_a_refused_password_is_named(city_ssh: RunningSsh) -> None:
    hostname = city_ssh.expected["behaviours"]["refuse"][0]
    result = backup_one(target(city_ssh, hostname))
    assert result.problem is not None and result.problem.kind is SshFailure.auth
    assert result.problem.message == f"the password was refused for user {city_ssh.username}"
    assert city_ssh.password not in result.problem.message


def test_a_slow_banner_passes_within_the_limit_and_fails_beyond_it(city_ssh: RunningSsh,
                                                                   devices: Devices) -> None:
    hostname = city_ssh.expected["behaviours"]["slow_banner"][0]
    slow = backup_one(target(city_ssh, hostname, banner_timeout_s=1.5))
    assert slow.problem is not None and slow.problem.kind is SshFailure.timeout
    patient = backup_one(target(city_ssh, hostname, banner_timeout_s=city_ssh.expected["slow_banner_s"] + 5))
    assert patient.ok, patient.problem
    assert patient.config == expected_config(devices[hostname], city_ssh.device(hostname)["device_type"])


def test_a_paging_device_is_read_whole(city_ssh: RunningSsh, devices: Devices) -> None:
    hostname = city_ssh.expected["behaviours"]["pager"][0]
    result = backup_one(target(city_ssh, hostname))
    assert result.ok, result.problem
    assert result.config == expected_config(devices[hostname], city_ssh.device(hostname)["device_type"])


def test_nothing_listening_and_no_credential(city_ssh: RunningSsh) -> None:
    hostname = plain_device(city_ssh, "cisco_xe")
    closed = backup_one(target(city_ssh, hostname, port=free_port()))
    assert closed.problem is not None and closed.problem.kind is SshFailure.unreachable
    assert closed.problem.message.startswith("connection refused on port ")
    bare = backup_one(target(city_ssh, hostname, password=None))
    assert bare.problem is not None and bare.problem.kind is SshFailure.no_credential
    odd = backup_one(SshTarget("127.0.0.1", "vendor_unknown", "x", password="y"))
    assert odd.problem is not None and odd.problem.kind is SshFailure.unsupported


def test_pager_prompts_erased_by_the_device_leave_no_trace() -> None:
    erase = "\b" * 10 + " " * 10 + "\b" * 10
    raw = "show run\r\nline one\r\n --More-- " + erase + "!\r\nline three\r\nR1#"
    assert _clean("show run", raw, "R1#") == "line one\n!\nline three"
    assert _screen("abc\rxy") == "xyc"
    assert _screen("keep\x1b[2Kgone") == "keepgone"
    with pytest.raises(Exception, match="pager"):
        _clean("show run", "show run\nline\nmid -- More -- line\nR1#", "R1#")


# --- host keys ------------------------------------------------------------------------------------


def test_first_contact_records_the_key_and_a_known_key_is_accepted(city_ssh: RunningSsh) -> None:
    hostname = plain_device(city_ssh, "juniper_junos")
    first = backup_one(target(city_ssh, hostname))
    assert first.ok and first.host_key is not None
    again = backup_one(target(city_ssh, hostname, known_key=first.host_key))
    assert again.ok, again.problem
    assert again.host_key == first.host_key


def test_a_changed_host_key_is_refused_until_accepted(city_ssh: RunningSsh) -> None:
    hostname = city_ssh.expected["behaviours"]["rekey"][0]
    recorded = backup_one(target(city_ssh, hostname)).host_key
    assert recorded is not None
    new_fingerprint = city_ssh.control().rekey(hostname)
    sessions_before = city_ssh.control().status()["devices"].get(hostname, {}).get("sessions", 0)
    refused = backup_one(target(city_ssh, hostname, known_key=recorded))
    assert refused.problem is not None and refused.problem.kind is SshFailure.hostkey_changed
    assert refused.config is None
    assert refused.host_key is not None and refused.host_key.fingerprint == new_fingerprint
    assert refused.problem.message == (f"host key changed from {recorded.fingerprint} to {new_fingerprint}: "
                                       "accept it if the change is expected")
    time.sleep(0.7)  # the simulator confirms its session counters every 0.5 s
    assert city_ssh.control().status()["devices"].get(hostname, {}).get("sessions", 0) == sessions_before
    accepted = backup_one(target(city_ssh, hostname, known_key=refused.host_key))
    assert accepted.ok, accepted.problem


def test_no_password_reaches_a_server_whose_key_changed(jump_server: dict[str, Any]) -> None:
    """The host key is compared before authentication: the server never sees an attempt."""
    attempts: list[str] = jump_server["attempts"]
    attempts.clear()
    other = asyncssh.generate_private_key("ssh-ed25519")
    wrong = HostKey(other.get_algorithm(), other.export_public_key("openssh").split()[1].decode())
    result = backup_one(SshTarget("127.0.0.1", "linux", JUMP_USER, port=jump_server["port"],
                                  password=jump_server["password"], known_key=wrong, banner_timeout_s=3))
    assert result.problem is not None and result.problem.kind is SshFailure.hostkey_changed
    assert result.host_key == jump_server["host_key"]
    assert attempts == []


def test_a_private_key_logs_in_and_a_wrong_one_is_named(jump_server: dict[str, Any]) -> None:
    """Key authentication (the key text loaded in memory, with and without a passphrase) against
    a server that accepts only that key. It offers no shell, so a login that worked ends later."""
    attempts: list[str] = jump_server["attempts"]
    base: dict[str, Any] = {"port": jump_server["port"], "known_key": jump_server["host_key"], "banner_timeout_s": 3.0}
    attempts.clear()
    good = backup_one(SshTarget("127.0.0.1", "linux", JUMP_USER, private_key=jump_server["client_key"], **base))
    assert f"key:{JUMP_USER}" in attempts
    assert good.problem is not None and good.problem.kind is not SshFailure.auth
    locked = asyncssh.import_private_key(jump_server["client_key"]).export_private_key(
        "openssh", passphrase="made-up-passphrase").decode()
    attempts.clear()
    unlocked = backup_one(SshTarget("127.0.0.1", "linux", JUMP_USER, private_key=locked,
                                    passphrase="made-up-passphrase", **base))
    assert f"key:{JUMP_USER}" in attempts
    assert unlocked.problem is not None and unlocked.problem.kind is not SshFailure.auth
    wrong_pass = backup_one(SshTarget("127.0.0.1", "linux", JUMP_USER, private_key=locked, passphrase="nope", **base))
    assert wrong_pass.problem is not None and wrong_pass.problem.kind is SshFailure.auth
    other = asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh").decode()
    refused = backup_one(SshTarget("127.0.0.1", "linux", JUMP_USER, private_key=other, **base))
    assert refused.problem is not None and refused.problem.kind is SshFailure.auth
    assert refused.problem.message == f"the key was refused for user {JUMP_USER}"


# --- jump host ----------------------------------------------------------------------------------


def test_a_backup_through_a_jump_host(city_ssh: RunningSsh, devices: Devices,
                                      jump_server: dict[str, Any]) -> None:
    hostname = plain_device(city_ssh, "cisco_ios")
    jump = JumpHost("127.0.0.1", jump_server["port"], JUMP_USER, private_key=jump_server["client_key"])
    result = backup_one(target(city_ssh, hostname, jump=jump))
    assert result.ok, result.problem
    assert result.config == expected_config(devices[hostname], "cisco_ios")
    assert result.host_key is not None and result.host_key.fingerprint == city_ssh.device(hostname)["host_key"]
    assert f"key:{JUMP_USER}" in jump_server["attempts"]


def test_jump_host_failures_are_named(city_ssh: RunningSsh, jump_server: dict[str, Any]) -> None:
    hostname = plain_device(city_ssh, "cisco_ios")
    good = JumpHost("127.0.0.1", jump_server["port"], JUMP_USER, password=jump_server["password"])
    unreachable = backup_one(target(city_ssh, hostname, jump=good, port=free_port()))
    assert unreachable.problem is not None and unreachable.problem.kind is SshFailure.unreachable
    assert "could not reach" in unreachable.problem.message
    wrong = JumpHost("127.0.0.1", jump_server["port"], JUMP_USER, password="not-the-password")
    refused = backup_one(target(city_ssh, hostname, jump=wrong))
    assert refused.problem is not None and refused.problem.kind is SshFailure.auth
    assert "jump host" in refused.problem.message and "not-the-password" not in refused.problem.message


# --- CLI reads --------------------------------------------------------------------------------------


def test_cli_probe_returns_outputs_by_role(city_ssh: RunningSsh) -> None:
    hostname = plain_device(city_ssh, "cisco_xe")
    outputs = cli_probe_one(target(city_ssh, hostname), {"version": "show version", "bogus": "show flux capacitor"})
    assert isinstance(outputs, dict), outputs
    assert "bogus" not in outputs
    assert hostname in outputs["version"]
    assert not outputs["version"].startswith("show version")
    nothing = cli_read_one(target(city_ssh, hostname), {"bogus": "show flux capacitor"})
    assert nothing.problem is not None and nothing.problem.kind is SshFailure.command
    assert nothing.host_key is not None


# --- secrets in logs ----------------------------------------------------------------------------


def test_debug_logging_never_sees_a_password_or_an_unmasked_secret(
        city_ssh: RunningSsh, devices: Devices, caplog: pytest.LogCaptureFixture) -> None:
    hostname = plain_device(city_ssh, "mikrotik_routeros")
    with caplog.at_level(logging.DEBUG):
        for name in ("", "netmiko", "paramiko", "infra_mgr"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        result = backup_one(target(city_ssh, hostname, enable_secret="lab-enable-made-up"))
    assert result.ok, result.problem
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "debug logging was on"
    assert city_ssh.password not in text
    assert "lab-enable-made-up" not in text
    leaked = [line for line in raw_secret_lines(devices[hostname], "mikrotik_routeros") if line in text]
    assert not leaked


# --- the whole lab ----------------------------------------------------------------------------------


def test_the_whole_lab_at_concurrency_16(city_ssh: RunningSsh) -> None:
    hostnames = [d["hostname"] for d in city_ssh.expected["devices"]]
    targets = [target(city_ssh, h, banner_timeout_s=3.0, command_timeout_s=15.0) for h in hostnames]
    done: list[str] = []
    started = time.monotonic()
    results = asyncio.run(backup(targets, concurrency=16, on_done=lambda r: done.append(r.address)))
    elapsed = time.monotonic() - started
    assert len(results) == len(targets) and sorted(done) == sorted(t.address for t in targets)
    assert [r.address for r in results] == [t.address for t in targets]
    by_host = dict(zip(hostnames, results, strict=True))
    behaviours = city_ssh.expected["behaviours"]
    kinds = {h: r.problem.kind if r.problem else None for h, r in by_host.items()}
    assert kinds[behaviours["hang"][0]] is SshFailure.timeout
    assert kinds[behaviours["refuse"][0]] is SshFailure.auth
    assert kinds[behaviours["slow_banner"][0]] is SshFailure.timeout
    failing = {behaviours[k][0] for k in ("hang", "refuse", "slow_banner")}
    for hostname, result in by_host.items():
        if hostname in failing:
            assert result.config is None and result.problem is not None and result.problem.message
        else:
            assert result.ok, (hostname, result.problem)
            assert result.config
    print(f"\n{len(results)} devices at concurrency 16 in {elapsed:.1f} s")


# --- devices that misbehave on purpose ----------------------------------------------------------

ODD_PROMPT = "odd9#"
ODD_PASSWORD = "odd-device-pass"  # a value made up for this test server
# What the `escapes` user's device prints as its configuration: terminal control sequences that
# would retitle a window, hide text or plant a link on the operator's screen if they were kept.
ESCAPING_CONFIG = (
    "hostname odd9\n"
    "\x1b]0;pwned-title\x07banner motd ^hello^\n"
    "interface Gi0/1\n"
    " description \x1b]8;;http://example.invalid/\x1b\\link\x1b]8;;\x1b\\ uplink\n"
    " description2 bell\x07nul\x00del\x7fvt\x0bff\x0cend\n"
    " description3 \x1bPdevice-control\x1b\\\x1b[31mred\x1b[0m \x9b31mc1\x1b(Bcharset\n"
    " description4 \x1b]2;unterminated title\n"
    "!\nend\n"
)
ESCAPING_CONFIG_SHOWN = (
    "hostname odd9\n"
    "banner motd ^hello^\n"
    "interface Gi0/1\n"
    " description link uplink\n"
    " description2 bellnuldelvtffend\n"
    " description3 red c1charset\n"
    " description4\n"
    "!\nend\n"
)


class OddDevice(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == ODD_PASSWORD


async def odd_shell(process: asyncssh.SSHServerProcess[str]) -> None:
    """A Cisco-like shell whose `show running-config` depends on the user name: ``flood`` never
    stops sending, ``trickle`` sends a line now and then forever, ``escapes`` prints
    :data:`ESCAPING_CONFIG`."""
    mode = process.get_extra_info("username")

    def write(text: str) -> None:
        process.stdout.write(text.replace("\n", "\r\n"))

    async def show_run() -> None:
        if mode == "escapes":
            write(ESCAPING_CONFIG)
            return
        line = 0
        while True:
            line += 1
            if mode == "flood":
                write("".join(f" description line {line} of a configuration that never ends {n}\n"
                              for n in range(500)))
                await process.stdout.drain()
            else:
                write(f" description line {line}\n")
                await asyncio.sleep(0.05)

    with contextlib.suppress(asyncssh.Error, BrokenPipeError, ConnectionError, OSError):
        write("\n" + ODD_PROMPT)
        typed = ""
        while True:
            data = await process.stdin.read(4096)
            if not data:
                break
            for ch in data:
                if ch not in "\r\n":
                    typed += ch
                    write(ch)
                    continue
                command, typed = " ".join(typed.split()), ""
                write("\n")
                if command == "show running-config":
                    await show_run()
                elif command and not command.startswith("terminal "):
                    write("% Invalid input detected at '^' marker.\n")
                write(ODD_PROMPT)
    with contextlib.suppress(Exception):
        process.exit(0)


@pytest.fixture(scope="module")
def odd_device() -> Iterator[dict[str, Any]]:
    """A Cisco-like device on 127.0.0.1 that floods, trickles or prints escape sequences."""
    loop = LoopThread()
    server_key = asyncssh.generate_private_key("ssh-ed25519")
    port = free_port()

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(OddDevice, "127.0.0.1", port, server_host_keys=[server_key],
                                            process_factory=odd_shell, line_editor=False, encoding="utf-8")

    acceptor = loop.run(start())
    yield {"port": port}
    acceptor.close()
    loop.stop()


def odd_target(odd_device: dict[str, Any], mode: str, **overrides: Any) -> SshTarget:
    fields: dict[str, Any] = {"port": odd_device["port"], "password": ODD_PASSWORD, "banner_timeout_s": 10.0,
                              "command_timeout_s": 10.0, "connect_timeout_s": 5.0}
    fields.update(overrides)
    return SshTarget("127.0.0.1", "cisco_ios", mode, **fields)


def test_a_device_that_never_stops_sending_is_cut_at_the_byte_cap(odd_device: dict[str, Any]) -> None:
    result = backup_one(odd_target(odd_device, "flood"))
    assert result.problem is not None and result.problem.kind is SshFailure.error
    assert result.problem.message == (f"`show running-config` sent more than {MAX_OUTPUT_BYTES // 2**20} MB: "
                                      "the output was abandoned")
    assert result.config is None


def test_a_device_that_keeps_trickling_is_cut_at_the_command_deadline(odd_device: dict[str, Any]) -> None:
    result = backup_one(odd_target(odd_device, "trickle", command_deadline_s=3.0))
    assert result.problem is not None and result.problem.kind is SshFailure.timeout
    assert result.problem.message == "`show running-config` was still sending after 3 s: the output was abandoned"
    assert result.config is None


def test_the_command_deadline_defaults_to_four_command_timeouts_and_at_least_two_minutes() -> None:
    assert command_deadline(SshTarget("a", "cisco_ios", "u", command_timeout_s=30.0)) == 120.0
    assert command_deadline(SshTarget("a", "cisco_ios", "u", command_timeout_s=60.0)) == 240.0
    assert command_deadline(SshTarget("a", "cisco_ios", "u", command_deadline_s=5.0)) == 5.0


def test_terminal_escape_sequences_never_reach_the_stored_configuration(odd_device: dict[str, Any]) -> None:
    result = backup_one(odd_target(odd_device, "escapes"))
    assert result.ok, result.problem
    assert result.config == ESCAPING_CONFIG_SHOWN
    assert not [ch for ch in result.config if (ord(ch) < 32 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F]


def test_clean_removes_every_control_but_tab_and_newline() -> None:
    raw = ("show run\r\na\x1b]0;t\x07b\x1b]1;t\x1b\\c\x1b_apc\x1b\\d\x1b^pm\x1b\\e\x1bXsos\x1b\\f"
           "\x1b7g\x1b8\tz\x05\x9d\r\nR1#")
    assert _clean("show run", raw, "R1#") == "abcdefg\tz"


# --- secrets never printed ------------------------------------------------------------------------


def test_targets_and_jump_hosts_never_print_a_secret() -> None:
    jump = JumpHost("10.0.0.1", 22, "hop", password="jump-pw-made-up", private_key="KEY-TEXT-made-up",
                    passphrase="jump-phrase-made-up")
    target_ = SshTarget("10.0.0.2", "cisco_ios", "u", password="dev-pw-made-up", private_key="DEV-KEY-made-up",
                        passphrase="dev-phrase-made-up", enable_secret="enable-made-up", jump=jump)
    secrets = ["jump-pw-made-up", "KEY-TEXT-made-up", "jump-phrase-made-up", "dev-pw-made-up", "DEV-KEY-made-up",
               "dev-phrase-made-up", "enable-made-up"]
    for shown in (repr(jump), str(jump), repr(target_), str(target_), repr(dataclasses.asdict(target_)),
                  str(dataclasses.asdict(jump)), f"{[target_, jump]}"):
        assert not [s for s in secrets if s in shown], shown
    assert target_.jump is not None and target_.jump.password == "jump-pw-made-up"  # still usable as text
    assert target_.password == "dev-pw-made-up" and target_.password + "" == "dev-pw-made-up"


# --- jump host keys and the collection time ---------------------------------------------------------


def test_a_jump_host_key_is_recorded_on_first_contact_and_pinned_after(city_ssh: RunningSsh,
                                                                       jump_server: dict[str, Any]) -> None:
    hostname = plain_device(city_ssh, "cisco_ios")
    first = backup_one(target(city_ssh, hostname, jump=JumpHost("127.0.0.1", jump_server["port"], JUMP_USER,
                                                                 password=jump_server["password"])))
    assert first.ok, first.problem
    assert first.jump_key == jump_server["host_key"]
    pinned = JumpHost("127.0.0.1", jump_server["port"], JUMP_USER, password=jump_server["password"],
                      known_key=jump_server["host_key"])
    again = backup_one(target(city_ssh, hostname, jump=pinned))
    assert again.ok, again.problem
    assert again.jump_key == jump_server["host_key"]
    read = cli_read_one(target(city_ssh, hostname, jump=pinned), {"version": "show version"})
    assert read.problem is None and read.jump_key == jump_server["host_key"]


def test_a_changed_jump_host_key_is_refused_before_any_credential(city_ssh: RunningSsh,
                                                                  jump_server: dict[str, Any]) -> None:
    hostname = plain_device(city_ssh, "cisco_ios")
    attempts: list[str] = jump_server["attempts"]
    attempts.clear()
    other = asyncssh.generate_private_key("ssh-ed25519")
    wrong = HostKey(other.get_algorithm(), other.export_public_key("openssh").split()[1].decode())
    jump = JumpHost("127.0.0.1", jump_server["port"], JUMP_USER, password=jump_server["password"], known_key=wrong)
    result = backup_one(target(city_ssh, hostname, jump=jump))
    assert result.problem is not None and result.problem.kind is SshFailure.hostkey_changed
    offered = jump_server["host_key"]
    assert result.problem.message == (f"the jump host 127.0.0.1 port {jump_server['port']}: host key changed from "
                                      f"{wrong.fingerprint} to {offered.fingerprint}: "
                                      "accept it if the change is expected")
    assert result.jump_key == offered
    assert result.host_key is None and result.config is None
    assert attempts == []
    read = cli_read_one(target(city_ssh, hostname, jump=jump), {"version": "show version"})
    assert read.problem is not None and read.problem.kind is SshFailure.hostkey_changed
    assert read.jump_key == offered and attempts == []


def test_the_result_carries_when_the_session_was_opened(city_ssh: RunningSsh) -> None:
    hostname = plain_device(city_ssh, "cisco_xe")
    before = datetime.now(UTC)
    result = backup_one(target(city_ssh, hostname))
    after = datetime.now(UTC)
    assert result.ok, result.problem
    assert result.started_at is not None and result.started_at.utcoffset() == timedelta(0)
    assert before <= result.started_at <= after
    failed = backup_one(target(city_ssh, hostname, port=free_port()))
    assert failed.problem is not None and failed.started_at is not None
