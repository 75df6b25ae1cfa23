"""The simulated city as a lab peer (``infra-mgr lab up``, kind ``city``): recordings written by
``city_records`` from the model in ``city_model``, served by the fast snmpsim of ``city_snmpsim``,
and the broken-walks device served by the liar on its city address.

``python -m infra_mgr.lab.city generate OUT`` writes the recordings; ``… serve <snmpsim options>``
runs the server (what the peer starts).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra_mgr.lab.city_links import LOSS_FILE, LinkControl
from infra_mgr.lab.city_model import EXAMPLE_YAML, EXPECTED_FILE, STANDARD_PORT, build_city
from infra_mgr.lab.city_records import served, write_city
from infra_mgr.lab.city_snmpsim import STATS_FILE, default_workers, serve
from infra_mgr.lab.supervisor import Lab, LabError, PeerRecord, PeerSpec, PeerUnavailable, free_port

# --- the lab peer -------------------------------------------------------------------------------


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(hosts: Sequence[str], prefer_standard: bool = True) -> int:
    """One UDP port free on every city address: 161 when allowed and free, else a random one."""
    if prefer_standard and all(_bindable(h, STANDARD_PORT) for h in hosts):
        return STANDARD_PORT
    for _ in range(50):
        port = free_port(hosts[0], "udp")
        if all(_bindable(h, port) for h in hosts):
            return port
    raise LabError("city: no UDP port is free on every city address")


def _udp_inodes(wanted: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Inode of the socket bound to each wanted (host, port), read from /proc/net/udp once."""
    keys = {f"{socket.inet_aton(h)[::-1].hex().upper()}:{p:04X}": (h, p) for h, p in wanted}
    found: dict[tuple[str, int], str] = {}
    with contextlib.suppress(OSError), open("/proc/net/udp") as table:
        next(table)
        for line in table:
            cols = line.split()
            if cols[1] in keys:
                found[keys[cols[1]]] = cols[9]
    return found


def _owns_all(pids: Iterable[int], endpoints: set[tuple[str, int]]) -> bool:
    """Whether the processes ``pids`` together hold the sockets of every endpoint (snmpsim logs
    success on bind failure, so a port taken by someone else would otherwise look ready)."""
    inodes = _udp_inodes(endpoints)
    if len(inodes) != len(endpoints):
        return False
    held = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return all(f"socket:[{inode}]" in held for inode in inodes.values())


def city_spec(
    lab_dir: Path,
    *,
    yaml_path: Path = EXAMPLE_YAML,
    port: int | None = None,
    prefer_standard_port: bool = True,
    name: str = "city",
    log_level: str = "error",
    workers: int | None = None,
) -> PeerSpec:
    """The city: every device on its own loopback address, same port, served by ``workers``
    snmpsim processes (default :func:`default_workers`) under one ``serve`` supervisor."""
    from infra_mgr.lab.peers import SYS_NAME, snmp_get, snmpsim_program

    snmpsim_program()  # PeerUnavailable when snmpsim is not installed
    root = Path(lab_dir).absolute() / name
    data_dir, cache_dir, stats_dir = root / "data", root / "cache", root / "stats"
    city = build_city(yaml_path)
    devices = served(city)
    v3_devices = [d for d in devices if d.v3]
    if len(v3_devices) > 1:
        raise LabError("city: one SNMPv3-only device at most (they share the engine)")
    hosts = [d.address for d in city.devices]
    chosen = port if port is not None else pick_port(hosts, prefer_standard=prefer_standard_port)
    argv = [sys.executable, "-m", "infra_mgr.lab.city", "serve", f"--workers={workers or default_workers()}"]
    argv += [f"--stats-dir={stats_dir}", f"--cache-dir={cache_dir}", f"--log-level={log_level}"]
    engine_id = v3_devices[0].engine_id.hex() if v3_devices else "auto"
    argv += [f"--v3-engine-id={engine_id}"]
    if v3_devices:
        v3 = v3_devices[0].v3 or {}
        argv += [f"--v3-user={v3['user']}", f"--v3-auth-key={v3['auth_key']}", f"--v3-auth-proto={v3['auth_proto']}"]
        argv += [f"--v3-priv-key={v3['priv_key']}", f"--v3-priv-proto={v3['priv_proto']}"]
    try:
        import snmpsim
    except ImportError as exc:
        raise PeerUnavailable("city: snmpsim is not installed (pip install 'infra-mgr[lab]')") from exc
    variation_dirs = [root / "variation", Path(snmpsim.__file__).parent / "variation"]  # ours + numeric
    argv += [f"--variation-modules-dir={d}" for d in variation_dirs]
    argv += [f"--loss-file={root / LOSS_FILE}"]
    argv += [f"--data-dir={data_dir}"]
    argv += [f"--agent-udpv4-endpoint={d.address}:{chosen}" for d in devices]
    agents: list[dict[str, Any]] = [
        {"name": d.hostname, "host": d.address, "port": chosen, "community": d.community}
        for d in devices
        if d.community
    ]
    liar = next((d for d in city.devices if d.served_by == "liar"), None)
    endpoints = {(d.address, chosen) for d in devices}
    answered: set[str] = set()

    def prepare() -> None:
        write_city(root, yaml_path, city)
        LinkControl(root).initialise(yaml_path, city)  # the city as built: run-time changes forgotten
        cache_dir.mkdir(parents=True, exist_ok=True)

    def ready(pid: int) -> bool:
        from infra_mgr.lab.supervisor import process_tree

        if not _owns_all(process_tree(pid), endpoints):
            return False
        for agent in agents:
            if agent["name"] not in answered:
                got = snmp_get(agent["host"], chosen, agent["community"], SYS_NAME, timeout=0.5)[1]
                if got != agent["name"].encode():
                    raise LabError(f"city: {agent['host']} answered as {got!r}, not {agent['name']}")
                answered.add(agent["name"])
        return True

    info: dict[str, Any] = {
        "port": chosen,
        "expected": str(root / EXPECTED_FILE),
        "data_dir": str(data_dir),
        "stats_dir": str(stats_dir),
        "workers": workers or default_workers(),
        "devices": len(city.devices),
        "agents": agents,
        "v3": {"host": v3_devices[0].address, "port": chosen, **(v3_devices[0].v3 or {})} if v3_devices else None,
        "liar": {"host": liar.address, "port": chosen, "community": liar.community} if liar else None,
    }
    return PeerSpec(
        name=name,
        argv=argv,
        ready=ready,
        env={"SNMPSIM_ALLOW_ROOT": "true"},
        cwd=root,
        ports={"snmp": chosen},
        addresses=[f"{d.address}:{chosen}/udp" for d in devices],
        info=info,
        prepare=prepare,
        ready_timeout=90.0,
    )


@dataclass(frozen=True)
class RunningCity:
    """A started city as tests and tools use it: expected.json's data plus the shared UDP port."""

    expected: dict[str, Any]
    port: int
    expected_path: Path
    liar_running: bool = False

    @classmethod
    def from_record(cls, record: PeerRecord, liar_running: bool = False) -> RunningCity:
        path = Path(record.info["expected"])
        return cls(json.loads(path.read_text(encoding="utf-8")), int(record.info["port"]), path, liar_running)

    @property
    def devices(self) -> list[dict[str, Any]]:
        return list(self.expected["devices"])

    @property
    def links(self) -> list[dict[str, Any]]:
        return list(self.expected["links"])

    def device(self, hostname: str) -> dict[str, Any]:
        for device in self.expected["devices"]:
            if device["hostname"] == hostname:
                return dict(device)
        raise KeyError(hostname)

    @property
    def root(self) -> Path:
        """The city's directory: recordings, expected.json, uplinks.yaml, conditions."""
        return self.expected_path.parent

    def link_control(self) -> LinkControl:
        """Change link conditions and agent loss of this running city (``with …changed(…):``
        restores them)."""
        return LinkControl(self.root)

    def with_fault(self, fault: str) -> dict[str, Any]:
        return next(d for d in self.expected["devices"] if d["fault"] == fault)

    def interface(self, hostname: str, name: str) -> dict[str, Any]:
        """One interface of a device by ifName (``"jed-b01-rtr", "Gi0/0/0"``)."""
        return next(i for i in self.device(hostname)["interfaces"] if i["name"] == name)

    def v2c_agents(self) -> list[tuple[str, str, str]]:
        """(hostname, address, community) of every device that answers SNMPv2c from snmpsim."""
        return [
            (d["hostname"], d["address"], d["snmp"]["community"])
            for d in self.expected["devices"]
            if d["served_by"] == "snmpsim" and d["snmp"]["version"] == "2c"
        ]


def liar_available() -> bool:
    """Whether the lying agent (another developer's ``infra_mgr.lab.liar``) is installed."""
    import importlib.util

    return importlib.util.find_spec("infra_mgr.lab.liar") is not None


def city_liar_spec(lab_dir: Path, *, name: str = "city-liar", city_name: str = "city") -> PeerSpec:
    """The broken-walks device: the liar agent bound to its city address and the city's port.
    Start it after the city (it reads the port from the city's peer record)."""
    from infra_mgr.lab.peers import SYS_NAME, snmp_get
    from infra_mgr.lab.supervisor import owns_socket

    if not liar_available():
        raise PeerUnavailable("city-liar: infra_mgr.lab.liar is not installed yet (the broken-walks device is silent)")
    record = Lab(lab_dir).record(city_name)
    if record is None or not record.info.get("liar"):
        raise LabError("city-liar: start the city first (infra-mgr lab up --only city)")
    host, port = record.info["liar"]["host"], int(record.info["liar"]["port"])
    device = next(d for d in RunningCity.from_record(record).devices if d["address"] == host)
    return PeerSpec(
        name=name,
        # It is the city's device (name, place, serial) and every walk of it loops, whatever the community.
        argv=[sys.executable, "-m", "infra_mgr.lab.liar", "--host", host, "--port", str(port),
              "--name", device["hostname"], "--location", device["sys_location"], "--serial", device["serial"],
              "--always", record.info["liar"]["community"]],
        ready=lambda pid: owns_socket(pid, "udp", host, port) and bool(snmp_get(host, port, "public", SYS_NAME)),
        cwd=Path(lab_dir).absolute(),
        ports={"snmp": port},
        addresses=[f"{host}:{port}/udp"],
        info={"host": host, "port": port, "community": record.info["liar"]["community"]},
    )


def city_pids(record: PeerRecord) -> list[int]:
    """The city's live processes: the ``serve`` supervisor and its snmpsim workers."""
    from infra_mgr.lab.supervisor import process_tree

    return process_tree(record.pid)


def city_counters(record: PeerRecord, timeout: float = 5.0) -> dict[str, int]:
    """Requests and varbinds answered so far, summed over the city's workers (SIGUSR1 each, then
    read what they wrote). Needs a city started with ``stats_dir`` (``city_spec`` does)."""
    import signal
    import time

    stats_dir = Path(record.info["stats_dir"])
    workers = [pid for pid in city_pids(record) if pid != record.pid] or [record.pid]
    for pid in workers:
        with contextlib.suppress(FileNotFoundError):
            (stats_dir / STATS_FILE.format(pid=pid)).unlink()
        os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    totals = {"workers": len(workers), "requests": 0, "varbinds": 0}
    for pid in workers:
        path = stats_dir / STATS_FILE.format(pid=pid)
        while not path.exists():
            if time.monotonic() > deadline:
                raise LabError(f"city: worker {pid} wrote no counters to {path}")
            time.sleep(0.02)
        data = json.loads(path.read_text())
        totals["requests"] += int(data["requests"])
        totals["varbinds"] += int(data["varbinds"])
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra_mgr.lab.city generate OUT [--yaml Y]`` or ``serve <snmpsim options>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        return serve(args[1:])
    parser = argparse.ArgumentParser(prog="python -m infra_mgr.lab.city", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the recordings and expected.json into a directory")
    gen.add_argument("out_dir", type=Path)
    gen.add_argument("--yaml", type=Path, default=EXAMPLE_YAML)
    sub.add_parser("serve", help="run snmpsim with per-endpoint recordings (arguments go to snmpsim)")
    options = parser.parse_args(args)
    expected = write_city(options.out_dir, options.yaml)
    print(f"{len(expected['devices'])} devices, {len(expected['links'])} links -> {options.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
