"""The lab's SSH devices: one asyncssh process answering every city device on its own loopback
address (same TCP port for all), with the prompt, paging commands and outputs of its platform.

``python -m infra_mgr.lab.ssh_sim --port P --root DIR [--yaml Y] [--fleet N] [--no-city]``

What a client sees is what the platform's real CLI shows to netmiko's driver: the prompt
(``host#``, ``netops@host> ``, ``[netops@host] > ``, ``netops@host:~$ ``), the echo of what is
typed, silence (or Junos' "Screen length set to 0") for the paging-off commands, the running
configuration for the backup command (``ssh_configs``), ``show``/``print`` commands from
``ssh_show`` when it is installed, and the platform's own "invalid command" text otherwise.
ProCurve switches ask to "Press any key to continue" first; RouterOS accepts netmiko's
``netops+ct511w4098h`` login.

Behaviours (which device does what is :data:`BEHAVIOURS`, listed in the expectations):
``hang`` never shows a prompt; ``refuse`` rejects the password; ``slow_banner`` prints its banner
and waits 5 s before the prompt; ``pager`` ignores ``terminal length 0`` and stops long output at
`` --More-- `` until a key; ``changing`` devices show a new generation of their configuration in
every session after the first. At run time, ``control.json`` in the root (written by
``ssh_lab.SshLabControl``) adds configuration changes and host-key changes per device; the server
re-reads it when its mtime moves and confirms in ``applied.json``.

Host keys are ECDSA P-256 keys derived from hostname and key generation, so a restart offers the
same keys and nothing has to be stored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from infra_mgr.lab.city_model import EXAMPLE_YAML, City, Device, build_city
from infra_mgr.lab.ssh_configs import BANNER, fleet_config, linux_files, running_config

LAB_SSH_USER = "netops"
LAB_SSH_PASSWORD = "jeddah-lab-ssh"  # a lab constant, not a secret: the lab's devices are invented
CONTROL_FILE = "control.json"
APPLIED_FILE = "applied.json"
SLOW_BANNER_S = 5.0
PAGE_LINES = 23
MORE = " --More-- "
FLEET_NETWORK = "127.40"

# behaviour -> devices (deterministic; healthy branches of the link audit, so SNMP tests are unaffected)
BEHAVIOURS: dict[str, tuple[str, ...]] = {
    "changing": ("jed-hq-dist1", "jed-b02-rtr", "jed-b04-rtr", "jed-b06-sw"),
    "hang": ("jed-b47-rtr",),
    "refuse": ("jed-b49-rtr",),
    "slow_banner": ("jed-b51-rtr",),
    "pager": ("jed-b59-sw",),
    "rekey": ("jed-b61-rtr",),  # the device meant to change its host key (only when told)
}

PLATFORM_DEVICE_TYPES: dict[str, str] = {
    "ios-xe": "cisco_xe",
    "ios": "cisco_ios",
    "junos": "juniper_junos",
    "routeros": "mikrotik_routeros",
    "arubaos-switch": "hp_procurve",
    "aos-cx": "aruba_aoscx",
    "linux": "linux",
}

log = logging.getLogger("infra_mgr.lab.ssh_sim")


@dataclass(frozen=True)
class CliPlatform:
    """How one platform's CLI looks to a client: data, so a new platform is a new row."""

    prompt: str  # format with {host} and {user}
    quiet: dict[str, str]  # command -> its reply (paging off, terminal width …)
    backup: tuple[str, ...]  # commands that print the running configuration
    invalid: str  # format with {command}
    after_output: str = "\n"  # what precedes the prompt after a command's output
    any_key: bool = False  # "Press any key to continue" before the first prompt
    login_banner: str = ""


_CISCO_INVALID = "{caret}^\n% Invalid input detected at '^' marker.\n"
CLI_PLATFORMS: dict[str, CliPlatform] = {
    "cisco_xe": CliPlatform("{host}#", {"terminal length 0": "", "terminal width 511": "", "terminal no monitor": ""},
                            ("show running-config", "show run"), _CISCO_INVALID),
    "cisco_ios": CliPlatform("{host}#", {"terminal length 0": "", "terminal width 511": "", "terminal no monitor": ""},
                             ("show running-config", "show run"), _CISCO_INVALID),
    "juniper_junos": CliPlatform(
        "{user}@{host}> ",
        {"set cli screen-length 0": "Screen length set to 0\n", "set cli screen-width 511": "Screen width set to 511\n",
         "set cli complete-on-space off": "Disabling complete-on-space\n"},
        ("show configuration",), "{caret}^\nunknown command.\n", after_output="\n",
        login_banner="--- JUNOS {version} Kernel 64-bit  JNPR-12.1-20230613.1f9e8f3_buil\n"),
    "mikrotik_routeros": CliPlatform(
        "[{user}@{host}] > ", {}, ("/export show-sensitive", "/export"),
        "bad command name {word} (line 1 column 2)\n",
        login_banner="\n\n  MMM      MMM       KKK                          TTTTTTTTTTT      KKK\n"
                     "  MikroTik RouterOS {version} (c) 1999-2024       https://www.mikrotik.com/\n\n"),
    "hp_procurve": CliPlatform(
        "{host}# ", {"no page": "", "terminal width 511": "", "terminal length 1000": ""},
        ("show running-config",), "Invalid input: {word}\n", any_key=True,
        login_banner="HPE {model} Switch\nSoftware revision {version}\n\n"
                     "(C) Copyright 2023 Hewlett Packard Enterprise Development LP\n\n"
                     "                   RESTRICTED RIGHTS LEGEND\n"
                     " Confidential computer software. Valid license from HPE required.\n\n"
                     "Press any key to continue\n"),
    "aruba_aoscx": CliPlatform("{host}# ", {"no page": "", "terminal width 511": ""},
                               ("show running-config",), "Invalid input: {word}\n"),
    "linux": CliPlatform("{user}@{host}:~$ ", {}, (), "-bash: {word}: command not found\n"),
}


# --- host keys -------------------------------------------------------------------------------------

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def host_key(hostname: str, generation: int = 0) -> asyncssh.SSHKey:
    """The device's ECDSA P-256 host key for a key generation: derived, so stable across restarts."""
    seed = hashlib.sha512(f"jeddah-lab-hostkey:{hostname}:{generation}".encode()).digest()
    scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    return asyncssh.import_private_key(pem)


def fingerprint(hostname: str, generation: int = 0) -> str:
    """``SHA256:…`` of the host key a device offers at that key generation (what OpenSSH prints)."""
    return str(host_key(hostname, generation).get_fingerprint("sha256"))


# --- the devices -------------------------------------------------------------------------------------


@dataclass(eq=False)
class SimDevice:
    """One device the simulator serves and its run-time state."""

    hostname: str
    address: str
    device_type: str
    config: Callable[[int], str]  # generation -> running configuration
    model: str = ""
    version: str = ""
    city_device: Device | None = None
    behaviours: frozenset[str] = frozenset()
    files: Callable[[int], dict[str, str]] | None = None  # Linux: path -> content
    sessions: int = 0
    changes: int = 0
    rekeys: int = 0
    acceptor: Any = None
    _cache: dict[int, str] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        """Configuration generation the current session sees."""
        auto = max(0, self.sessions - 1) if "changing" in self.behaviours else 0
        return self.changes + auto

    def config_text(self, generation: int) -> str:
        if generation not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            self._cache[generation] = self.config(generation)
        return self._cache[generation]


# A device the lab made silent answers SSH no more than SNMP (it is down), and the device that
# answers only an unknown community stays a "no working credential" case for discovery.
SSH_SILENT_FAULTS = frozenset({"unreachable", "wrong_community"})


def ssh_served(city: City) -> list[Device]:
    """The city devices the SSH lab serves: every device and the SSH-only ones, but the silent."""
    return [d for d in (*city.devices, *city.ssh_only) if d.fault not in SSH_SILENT_FAULTS]


def city_devices(city: City) -> list[SimDevice]:
    """Every served city device (:func:`ssh_served`) as the simulator serves it."""
    out = []
    for device in ssh_served(city):
        flags = frozenset(n for n, hosts in BEHAVIOURS.items() if device.hostname in hosts)
        out.append(SimDevice(
            hostname=device.hostname,
            address=device.address,
            device_type=PLATFORM_DEVICE_TYPES[device.platform.key],
            config=lambda g, d=device: running_config(d, g),  # type: ignore[misc]
            model=device.model.model,
            version=device.platform.os_version,
            city_device=device,
            behaviours=flags,
            files=(lambda g, d=device: linux_files(d, g)) if device.platform.key == "linux" else None,  # type: ignore[misc]
        ))
    return out


def fleet_address(index: int) -> str:
    """The address of benchmark fleet device ``index`` (0-based): 127.40.<hi>.<lo>."""
    return f"{FLEET_NETWORK}.{index // 250}.{index % 250 + 1}"


def fleet_devices(count: int) -> list[SimDevice]:
    """The synthetic benchmark fleet: Cisco IOS-XE-like switches ``fleet-0001`` …"""
    out = []
    for i in range(count):
        name, address = f"fleet-{i + 1:04d}", fleet_address(i)
        out.append(SimDevice(name, address, "cisco_xe",
                             config=lambda g, n=name, a=address, k=i: fleet_config(n, a, k, g),  # type: ignore[misc]
                             model="C9300-48P", version="17.9.4a"))
    return out


# --- one CLI session ----------------------------------------------------------------------------------


class SessionClosed(Exception):
    """The client went away or typed exit."""


class CliSession:
    """The interactive shell of one SSH session on one device."""

    def __init__(self, sim: Simulator, device: SimDevice, process: asyncssh.SSHServerProcess[str], user: str):
        self.sim, self.device, self.process = sim, device, process
        self.platform = CLI_PLATFORMS[device.device_type]
        self.user = user
        self.buffer = ""
        self.last = ""
        self.generation = device.generation
        self.prompt = self.platform.prompt.format(host=device.hostname, user=user)

    def write(self, text: str) -> None:
        self.process.stdout.write(text.replace("\r\n", "\n").replace("\n", "\r\n"))

    async def char(self) -> str:
        while not self.buffer:
            data = await self.process.stdin.read(4096)
            if not data:
                raise SessionClosed
            self.buffer += data
        ch, self.buffer = self.buffer[0], self.buffer[1:]
        return ch

    async def run(self) -> None:
        device, platform = self.device, self.platform
        if "hang" in device.behaviours:
            while await self.process.stdin.read(4096):
                pass
            return
        fields = {"version": device.version, "model": device.model}
        if platform.login_banner:
            self.write(platform.login_banner.format(**fields))
        if platform.any_key:
            await self.char()
            self.buffer = self.buffer.lstrip("\r\n")
        if "slow_banner" in device.behaviours:
            self.write(f"\n{BANNER}\n")
            await asyncio.sleep(SLOW_BANNER_S)
        self.write("\n" + self.prompt)
        line = ""
        while True:
            ch = await self.char()
            if ch == "\n" and self.last == "\r":
                self.last = ch
                continue
            self.last = ch
            if ch in "\r\n":
                self.write("\n")
                await self.command(line)
                line = ""
                self.write(self.prompt)
            elif ch == "\x03":
                self.write("^C\n" + self.prompt)
                line = ""
            elif ch in "\x7f\b":
                if line:
                    line = line[:-1]
                    self.write("\b \b")
            elif ch == "\t" or ch == "?":
                self.write(ch)
                line += ch
            elif ch >= " ":
                line += ch
                self.write(ch)

    async def command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        command = " ".join(words)
        platform = self.platform
        if command in ("exit", "quit", "logout", "/quit"):
            raise SessionClosed
        if command in platform.quiet:
            self.write(platform.quiet[command])
            if platform.after_output and platform.quiet[command]:
                self.write(platform.after_output)
            return
        text = self.answer(command)
        if text is None:
            caret = " " * (len(self.prompt) + len(line) - len(line.lstrip()))
            self.write(platform.invalid.format(caret=caret, command=command, word=words[0]))
            return
        if text and not text.endswith("\n"):
            text += "\n"
        if "pager" in self.device.behaviours:
            await self.paged(text)
        else:
            self.write(text)
        if platform.after_output:
            self.write(platform.after_output)

    def answer(self, command: str) -> str | None:
        device = self.device
        if command in self.platform.backup:
            return device.config_text(self.generation)
        if device.files is not None and command.startswith("cat "):
            files = device.files(self.generation)
            parts = []
            for path in command.split()[1:]:
                parts.append(files.get(path, f"cat: {path}: No such file or directory\n"))
            return "".join(parts)
        if device.files is not None and command == "hostname":
            return device.hostname + "\n"
        return self.sim.show(device, command)

    async def paged(self, text: str) -> None:
        """Print like a terminal whose paging is on: a page, then `` --More-- `` until a key."""
        lines = text.splitlines(keepends=True)
        shown = 0
        budget = PAGE_LINES
        while shown < len(lines):
            chunk = lines[shown:shown + budget]
            self.write("".join(chunk))
            shown += len(chunk)
            if shown >= len(lines):
                break
            self.process.stdout.write(MORE)
            key = await self.char()
            self.process.stdout.write("\b" * len(MORE) + " " * len(MORE) + "\b" * len(MORE))
            if key in "qQ\x03":
                self.write("\n")
                return
            budget = 1 if key in "\r\n" else PAGE_LINES


# --- the server --------------------------------------------------------------------------------------


class _DeviceServer(asyncssh.SSHServer):
    def __init__(self, device: SimDevice):
        self.device = device

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        # RouterOS login options ride on the user name ("netops+ct511w4098h")
        user = username.split("+", 1)[0]
        return "refuse" not in self.device.behaviours and user == LAB_SSH_USER and password == LAB_SSH_PASSWORD


class Simulator:
    """Every device on its own listener (one port), the control file, the show renderer."""

    def __init__(self, devices: list[SimDevice], port: int, root: Path, city: City | None):
        self.devices = devices
        self.port = port
        self.root = root
        self.city = city
        self.by_host = {d.hostname: d for d in devices}
        self._control_mtime = 0.0
        self._dirty = True
        self._render: Callable[[Any, Any, str], str | None] | None | bool = False

    def show(self, device: SimDevice, command: str) -> str | None:
        """``ssh_show.render_show`` when that module exists and the device is a city device."""
        if self._render is False:
            try:
                from infra_mgr.lab import ssh_show

                self._render = ssh_show.render_show
            except ImportError:
                self._render = None
        if not callable(self._render) or device.city_device is None or self.city is None:
            return None
        try:
            return self._render(device.city_device, self.city, command)
        except Exception:  # a renderer bug must not kill the session; the client sees "invalid"
            log.exception("ssh_show failed for %s %r", device.hostname, command)
            return None

    async def start(self) -> None:
        for device in self.devices:
            device.acceptor = await asyncssh.create_server(
                lambda d=device: _DeviceServer(d),
                host=device.address,
                port=self.port,
                server_host_keys=[host_key(device.hostname, device.rekeys)],
                process_factory=lambda p, d=device: self.session(d, p),
                line_editor=False,
                encoding="utf-8",
                allow_scp=False,
                agent_forwarding=False,
                x11_forwarding=False,
                login_timeout=30,
                keepalive_interval=0,
            )

    async def session(self, device: SimDevice, process: asyncssh.SSHServerProcess[str]) -> None:
        device.sessions += 1
        self._dirty = True
        user = (process.get_extra_info("username") or LAB_SSH_USER).split("+", 1)[0]
        cli = CliSession(self, device, process, user)
        with contextlib.suppress(SessionClosed, asyncssh.Error, BrokenPipeError, ConnectionError):
            await cli.run()
        with contextlib.suppress(Exception):
            process.exit(0)

    def apply_control(self) -> bool:
        """Re-read control.json if it moved; apply changes and rekeys. True when it was read."""
        path = self.root / CONTROL_FILE
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if mtime == self._control_mtime:
            return False
        self._control_mtime = mtime
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        for host, count in (data.get("changes") or {}).items():
            if host in self.by_host:
                self.by_host[host].changes = int(count)
        for host, count in (data.get("rekeys") or {}).items():
            device = self.by_host.get(host)
            if device is not None and device.rekeys != int(count):
                device.rekeys = int(count)
                device.acceptor.update(server_host_keys=[host_key(device.hostname, device.rekeys)])
        self._serial = int(data.get("serial", 0))
        self._dirty = True
        return True

    def write_applied(self) -> None:
        data = {
            "serial": getattr(self, "_serial", 0),
            "port": self.port,
            "written": time.time(),
            "devices": {
                d.hostname: {"sessions": d.sessions, "changes": d.changes, "rekeys": d.rekeys,
                             "generation": d.generation}
                for d in self.devices
                if d.sessions or d.changes or d.rekeys
            },
        }
        tmp = self.root / (APPLIED_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.root / APPLIED_FILE)
        self._dirty = False

    async def watch(self, stop: asyncio.Event) -> None:
        last_write = 0.0
        while not stop.is_set():
            applied = self.apply_control()
            now = time.monotonic()
            if applied or (self._dirty and now - last_write > 0.5):
                self.write_applied()
                last_write = now
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)


async def serve(options: argparse.Namespace) -> None:
    city = build_city(options.yaml) if not options.no_city else None
    devices = city_devices(city) if city is not None else []
    devices += fleet_devices(options.fleet)
    root = Path(options.root)
    root.mkdir(parents=True, exist_ok=True)
    sim = Simulator(devices, options.port, root, city)
    sim.apply_control()
    await sim.start()
    sim.write_applied()
    print(f"ssh_sim: {len(devices)} devices on port {options.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await sim.watch(stop)
    for device in devices:
        device.acceptor.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra_mgr.lab.ssh_sim", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True, help="directory of control.json / applied.json")
    parser.add_argument("--yaml", type=Path, default=EXAMPLE_YAML)
    parser.add_argument("--fleet", type=int, default=0, help="also serve N synthetic devices on 127.40.x.y")
    parser.add_argument("--no-city", action="store_true", help="serve only the fleet")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # clients that drop the socket are normal here
    asyncio.run(serve(options))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
