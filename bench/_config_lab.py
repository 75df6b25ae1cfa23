"""The SSH side of ``bench/config_backup.py``: the lab's SSH simulator started, a fresh database
holding its devices, ``run_backup`` timed, and netmiko driven the simplest way over the same devices
with the same credential, commands and timeouts (one device after another, and 16 threads).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra_mgr.config import get_settings
from infra_mgr.network.ssh.platforms import platform_table

ROOT = Path(__file__).resolve().parents[1]
MASTER = b"bench-config-key"


@dataclass
class Device:
    """One device the simulator serves, as both sides see it."""

    hostname: str
    address: str
    port: int
    device_type: str
    platform: str  # the lab's platform key (ios-xe, junos, …)
    vendor: str
    username: str
    password: str
    enable_secret: str | None = None
    site: str = ""


@dataclass
class Pass:
    """One timed backup of every device (ours or a baseline's)."""

    label: str
    wall_s: float
    cpu_s: float
    devices: int
    ok: int
    failed: int
    note: str = ""
    seconds_ok: list[float] = field(default_factory=list)  # per device read (the baseline's)


@dataclass
class BackupRuns:
    ours: list[Pass] = field(default_factory=list)
    serial: list[Pass] = field(default_factory=list)
    pool: list[Pass] = field(default_factory=list)
    problem: str = ""  # why ours did not run
    base_problem: str = ""
    serial_estimate_s: float = 0.0
    again: Pass | None = None  # ours once more on the same database (informational)


# --- the baseline: netmiko, the simplest way ---------------------------------------------------------


def netmiko_one(d: Device) -> tuple[bool, str, float]:
    """``ConnectHandler``, enable where the platform needs it, the platform's backup commands:
    (read, why not, seconds)."""
    t0 = time.perf_counter()
    good, why = _netmiko_read(d)
    return good, why, time.perf_counter() - t0


def _netmiko_read(d: Device) -> tuple[bool, str]:
    from netmiko import ConnectHandler

    plat = platform_table().get(d.device_type)
    if plat is None:
        return False, "no platform"
    cfg = get_settings()  # the service's own limits: the baseline waits exactly as long
    params: dict[str, Any] = dict(device_type=d.device_type, host=d.address, port=d.port, username=d.username,
                                  password=d.password, conn_timeout=cfg.backup_connect_timeout_s,
                                  auth_timeout=cfg.backup_auth_timeout_s, banner_timeout=cfg.backup_banner_timeout_s,
                                  read_timeout_override=cfg.backup_banner_timeout_s, fast_cli=True,
                                  use_keys=False, allow_agent=False)
    if d.enable_secret:
        params["secret"] = d.enable_secret
    try:
        with ConnectHandler(**params) as conn:
            conn.read_timeout_override = cfg.backup_command_timeout_s
            if plat.enable and d.enable_secret:
                conn.enable()
            text = "".join(str(conn.send_command(cmd, read_timeout=cfg.backup_command_timeout_s))
                           for cmd in plat.backup)
        return bool(text.strip()), ""
    except Exception as exc:  # noqa: BLE001 - a baseline device that fails is counted, like ours
        return False, type(exc).__name__


def _failures(kinds: dict[str, list[str]]) -> str:
    """``failures: kind n (first hostnames), …``: which devices failed and how, on either side."""
    if not kinds:
        return ""
    parts = [f"{k} {len(v)} ({', '.join(sorted(v)[:3])}{', …' if len(v) > 3 else ''})"
             for k, v in sorted(kinds.items())]
    return "failures: " + ", ".join(parts)


def netmiko_pass(label: str, devices: Sequence[Device], threads: int) -> Pass:
    cpu0, t0 = time.process_time(), time.perf_counter()
    if threads <= 1:
        results = [netmiko_one(d) for d in devices]
    else:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(netmiko_one, devices))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    ok = sum(1 for good, _, _ in results if good)
    kinds: dict[str, list[str]] = {}
    for d, (good, why, _) in zip(devices, results, strict=True):
        if not good:
            kinds.setdefault(why, []).append(d.hostname)
    note = _failures(kinds)
    return Pass(label, wall, cpu, len(devices), ok, len(devices) - ok, note,
                [sec for good, _, sec in results if good])


# --- ours -------------------------------------------------------------------------------------------


def ours_pass(label: str, engine: Any, run_backup: Callable[..., Any]) -> Pass:
    cpu0, t0 = time.process_time(), time.perf_counter()
    row = asyncio.run(run_backup(engine, MASTER, trigger="manual", actor="bench", concurrency=16))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    kinds: dict[str, list[str]] = {}
    for f in row.failures:
        kinds.setdefault(str(f.get("kind")), []).append(str(f.get("hostname")))
    note = f"{row.changed} changed, {row.unchanged} unchanged" + (f"; {_failures(kinds)}" if kinds else "")
    return Pass(label, wall, cpu, row.devices, row.changed + row.unchanged, row.failed, note)


def _fresh_db(path: Path, devices: Sequence[Device], ssh: Any, *, site_code: str | None) -> Any:
    """A fresh SQLite database holding ``devices`` as discovery leaves them (hostname, management
    address, platform, site) and the lab's SSH credential."""
    from sqlmodel import Session, select

    from infra_mgr.db import make_engine, upgrade
    from infra_mgr.inventory.importer import import_file
    from infra_mgr.inventory.models import Device as DbDevice
    from infra_mgr.inventory.models import Site
    from infra_mgr.lab.ssh_lab import configure_ssh_credential

    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        import_file(s, ROOT / "examples" / "jeddah.yaml")
        if site_code is not None:
            s.add(Site(code=site_code, name_en="Simulated fleet", name_ar=""))
        s.flush()
        sites = {site.code: site.id or 0 for site in s.exec(select(Site)).all()}
        for d in devices:
            s.add(DbDevice(site_id=sites[site_code or d.site], hostname=d.hostname, management_address=d.address,
                           platform=d.platform, vendor=d.vendor))
        configure_ssh_credential(s, MASTER, ssh)
        s.commit()
    return engine


def _start(lab: Any, name: str, *, fleet: int, city: bool) -> Any:
    from infra_mgr.lab.ssh_lab import RunningSsh, city_ssh_spec

    t0 = time.perf_counter()
    rec = lab.start(city_ssh_spec(lab.lab_dir, name=name, fleet=fleet, city=city))
    ssh = RunningSsh.from_record(rec)
    print(f"SSH simulator {name!r} up: {rec.info['devices']} devices on port {ssh.port} in "
          f"{time.perf_counter() - t0:.1f} s")
    return ssh


def _imports() -> tuple[Callable[..., Any], Any] | str:
    """``run_backup`` and the lab's ``Lab``, or why they cannot be imported."""
    try:
        from infra_mgr.lab.supervisor import Lab
        from infra_mgr.network.ssh.backup import run_backup
    except ImportError as exc:
        return f"not importable: {exc}"
    return run_backup, Lab


def lab_backups(tmp: Path, *, rounds: int, smoke: bool) -> BackupRuns:
    """Part 1: the city's SSH devices, ours ``rounds`` times, netmiko serial once, in 16 threads twice."""
    got = _imports()
    if isinstance(got, str):
        return BackupRuns(problem=got)
    run_backup, lab_cls = got
    tmp.mkdir(parents=True, exist_ok=True)
    lab = lab_cls(tmp / "peers")
    out = BackupRuns()
    try:
        ssh = _start(lab, "city-ssh", fleet=0, city=True)
        table = platform_table()
        devices = [Device(d["hostname"], d["address"], ssh.port, d["device_type"], d["platform"], "", ssh.username,
                          ssh.password, site=d["site"])
                   for d in ssh.expected["devices"] if table.get(d["device_type"]) is not None]
        if smoke:  # a healthy few and the password-refusing one: the whole path, in seconds
            refuse = set(ssh.expected["behaviours"].get("refuse", []))
            devices = [d for d in devices if not set(ssh.device(d.hostname)["behaviours"])][:4] + \
                      [d for d in devices if d.hostname in refuse]
        print(f"\n== lab backup: {len(devices)} devices with an SSH command set (behaviours: "
              f"{', '.join(f'{k} {len(v)}' for k, v in sorted(ssh.expected['behaviours'].items()))})")
        for n in range(rounds):
            engine = _fresh_db(tmp / f"lab-{n}.db", devices, ssh, site_code=None)
            try:
                out.ours.append(ours_pass(f"ours: run_backup #{n + 1} (fresh db)", engine, run_backup))
                if n == 0:  # the nightly case: the same devices again, most unchanged (informational)
                    out.again = ours_pass("ours: run_backup again (same db)", engine, run_backup)
            finally:
                engine.dispose()
        out.serial.append(netmiko_pass("netmiko one device after another", devices, 1))
        out.pool.append(netmiko_pass("netmiko 16 threads", devices, 16))
    except Exception as exc:  # noqa: BLE001 - reported as a FAIL line, the other parts still run
        what = f"{type(exc).__name__}: {str(exc)[:300]}"
        if not out.ours:
            out.problem = what
        else:
            out.base_problem = what
    finally:
        lab.stop_all()
    return out


def fleet_backups(tmp: Path, *, devices: int, rounds: int, smoke: bool, serial_s_per_device: float = 0.0
                  ) -> BackupRuns:
    """Part 2: ``devices`` synthetic devices, ours ``rounds`` times, netmiko in 16 threads once."""
    got = _imports()
    if isinstance(got, str):
        return BackupRuns(problem=got)
    run_backup, lab_cls = got
    from infra_mgr.lab.ssh_sim import fleet_address

    tmp.mkdir(parents=True, exist_ok=True)
    lab = lab_cls(tmp / "peers")
    out = BackupRuns()
    try:
        ssh = _start(lab, "fleet-ssh", fleet=devices, city=False)
        fleet = [Device(f"fleet-{i + 1:04d}", fleet_address(i), ssh.port, "cisco_xe", "ios-xe", "Cisco",
                        ssh.username, ssh.password) for i in range(devices)]
        print(f"\n== {devices} simulated devices (cisco_xe)")
        for n in range(rounds):
            engine = _fresh_db(tmp / f"fleet-{n}.db", fleet, ssh, site_code="BENCH-FLEET")
            try:
                out.ours.append(ours_pass(f"ours: run_backup #{n + 1} (fresh db)", engine, run_backup))
            finally:
                engine.dispose()
        out.pool.append(netmiko_pass("netmiko 16 threads", fleet, 16))
        out.serial_estimate_s = serial_s_per_device * devices
    except Exception as exc:  # noqa: BLE001 - reported as a FAIL line, the other parts still run
        what = f"{type(exc).__name__}: {str(exc)[:300]}"
        if not out.ours:
            out.problem = what
        else:
            out.base_problem = what
    finally:
        lab.stop_all()
    return out
