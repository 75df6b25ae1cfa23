"""The city's SSH side as a lab peer (kind ``city-ssh``): the spec that starts ``ssh_sim``, the
run-time control (``change`` a device's configuration, ``rekey`` its host key) and the
expectations tests and benchmarks read (``ssh_expected.json``: which device breaks which
baseline rule, which one hangs, refuses, pages, …).

The simulator serves every city device on its own loopback address (and the SSH-only branch
switches, which have no SNMP agent) on one TCP port; user :data:`LAB_SSH_USER`, password
:data:`LAB_SSH_PASSWORD` (a lab constant the credential set-up uses, not a secret).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra_mgr.lab.city_model import EXAMPLE_YAML, City, build_city
from infra_mgr.lab.ssh_configs import BASELINE_BREAKS, BASELINE_COMMUNITY
from infra_mgr.lab.ssh_sim import (
    APPLIED_FILE,
    BEHAVIOURS,
    CONTROL_FILE,
    LAB_SSH_PASSWORD,
    LAB_SSH_USER,
    PLATFORM_DEVICE_TYPES,
    SLOW_BANNER_S,
    fingerprint,
    fleet_address,
    ssh_served,
)
from infra_mgr.lab.supervisor import LabError, PeerRecord, PeerSpec, free_port

__all__ = ["LAB_SSH_PASSWORD", "LAB_SSH_USER", "SshLabControl", "RunningSsh", "city_ssh_spec", "ssh_expectations"]

EXPECTED_SSH_FILE = "ssh_expected.json"
CREDENTIAL_NAME = "lab-ssh"


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_tcp_port(hosts: list[str]) -> int:
    """One TCP port free on every address."""
    for _ in range(50):
        port = free_port(hosts[0], "tcp")
        if all(_bindable(h, port) for h in hosts):
            return port
    raise LabError("city-ssh: no TCP port is free on every device address")


def ssh_expectations(city: City, fleet: int = 0) -> dict[str, Any]:
    """What the SSH lab is, for tests: every device's address, device_type and host-key
    fingerprint, the behaviours and baseline breaks by device, the SSH-only devices."""
    devices = ssh_served(city)
    return {
        "user": LAB_SSH_USER,
        "password": "lab constant infra_mgr.lab.ssh_sim.LAB_SSH_PASSWORD",
        "devices": [
            {
                "hostname": d.hostname,
                "address": d.address,
                "site": d.site,
                "platform": d.platform.key,
                "device_type": PLATFORM_DEVICE_TYPES[d.platform.key],
                "ssh_only": d in city.ssh_only,
                "behaviours": sorted(n for n, hosts in BEHAVIOURS.items() if d.hostname in hosts),
                "host_key": fingerprint(d.hostname, 0),
            }
            for d in devices
        ],
        "behaviours": {name: list(hosts) for name, hosts in BEHAVIOURS.items()},
        "slow_banner_s": SLOW_BANNER_S,
        "baseline_breaks": dict(BASELINE_BREAKS),
        "baseline_community": BASELINE_COMMUNITY,
        "ssh_only": [d.hostname for d in city.ssh_only],
        "fleet": {"count": fleet, "first": fleet_address(0) if fleet else None,
                  "last": fleet_address(fleet - 1) if fleet else None, "device_type": "cisco_xe"},
    }


def _answers_ssh(host: str, port: int, timeout: float = 1.0) -> bool:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        return sock.recv(64).startswith(b"SSH-2.0")


def city_ssh_spec(
    lab_dir: Path,
    *,
    yaml_path: Path = EXAMPLE_YAML,
    port: int | None = None,
    name: str = "city-ssh",
    fleet: int = 0,
    city: bool = True,
) -> PeerSpec:
    """The SSH simulator for the city (and an optional benchmark fleet) on one TCP port."""
    root = Path(lab_dir).absolute() / name
    model = build_city(yaml_path)
    from infra_mgr.lab.ssh_sim import fleet_address as fa

    hosts = [d.address for d in ssh_served(model)] if city else []
    hosts += [fa(i) for i in range(fleet)]
    if not hosts:
        raise LabError("city-ssh: nothing to serve (no city and no fleet)")
    chosen = port if port is not None else pick_tcp_port(hosts)
    argv = [sys.executable, "-m", "infra_mgr.lab.ssh_sim", f"--port={chosen}", f"--root={root}",
            f"--yaml={yaml_path}", f"--fleet={fleet}"] + ([] if city else ["--no-city"])
    probes = [hosts[0], hosts[len(hosts) // 2], hosts[-1]]

    def prepare() -> None:
        root.mkdir(parents=True, exist_ok=True)
        for stale in (CONTROL_FILE, APPLIED_FILE):
            (root / stale).unlink(missing_ok=True)
        expected = ssh_expectations(model, fleet) if city else {"fleet": {"count": fleet}}
        (root / EXPECTED_SSH_FILE).write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n",
                                              encoding="utf-8")

    def ready(pid: int) -> bool:
        return (root / APPLIED_FILE).exists() and all(_answers_ssh(h, chosen) for h in probes)

    return PeerSpec(
        name=name,
        argv=argv,
        ready=ready,
        cwd=root,
        ports={"ssh": chosen},
        addresses=[f"{h}:{chosen}/tcp" for h in hosts],
        info={
            "port": chosen,
            "username": LAB_SSH_USER,
            "password": "lab constant infra_mgr.lab.ssh_sim.LAB_SSH_PASSWORD",
            "root": str(root),
            "expected": str(root / EXPECTED_SSH_FILE),
            "devices": len(hosts),
            "fleet": fleet,
        },
        prepare=prepare,
        ready_timeout=60.0,
    )


class SshLabControl:
    """Run-time changes of the running SSH lab: write ``control.json``, wait for ``applied.json``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.root / CONTROL_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            data = {}
        data.setdefault("serial", 0)
        data.setdefault("changes", {})
        data.setdefault("rekeys", {})
        return data

    def _write(self, data: dict[str, Any], wait: float) -> None:
        data["serial"] = int(data["serial"]) + 1
        tmp = self.root / (CONTROL_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.root / CONTROL_FILE)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.status().get("serial", 0) >= data["serial"]:
                return
            time.sleep(0.05)
        raise LabError(f"city-ssh: the simulator did not apply the change within {wait:g} s (is it running?)")

    def change(self, hostname: str, wait: float = 5.0) -> int:
        """Make the device's configuration one generation newer; returns its change count."""
        data = self._read()
        data["changes"][hostname] = int(data["changes"].get(hostname, 0)) + 1
        self._write(data, wait)
        return int(data["changes"][hostname])

    def rekey(self, hostname: str, wait: float = 5.0) -> str:
        """Give the device a new host key; returns its fingerprint (``SHA256:…``)."""
        data = self._read()
        data["rekeys"][hostname] = int(data["rekeys"].get(hostname, 0)) + 1
        self._write(data, wait)
        return fingerprint(hostname, int(data["rekeys"][hostname]))

    def status(self) -> dict[str, Any]:
        """What the simulator last confirmed: serial, port, per device sessions/changes/rekeys."""
        try:
            data: dict[str, Any] = json.loads((self.root / APPLIED_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data


@dataclass(frozen=True)
class RunningSsh:
    """A started SSH lab as tests and tools use it."""

    port: int
    expected: dict[str, Any]
    root: Path

    @classmethod
    def from_record(cls, record: PeerRecord) -> RunningSsh:
        path = Path(record.info["expected"])
        return cls(int(record.info["port"]), json.loads(path.read_text(encoding="utf-8")), Path(record.info["root"]))

    @property
    def username(self) -> str:
        return LAB_SSH_USER

    @property
    def password(self) -> str:
        return LAB_SSH_PASSWORD

    def device(self, hostname: str) -> dict[str, Any]:
        return dict(next(d for d in self.expected["devices"] if d["hostname"] == hostname))

    def with_behaviour(self, behaviour: str) -> dict[str, Any]:
        return self.device(self.expected["behaviours"][behaviour][0])

    def control(self) -> SshLabControl:
        return SshLabControl(self.root)


def configure_ssh_credential(session: Any, master: bytes, ssh: RunningSsh) -> dict[str, Any]:
    """Store (or refresh) the ``lab-ssh`` credential: kind ``ssh_password``, the lab user and
    password, ``params.port`` = the simulator's port. Matched by name, so it is idempotent."""
    from sqlmodel import select

    from infra_mgr.inventory.credentials import CredentialCreate, build
    from infra_mgr.inventory.models import Credential, CredentialKind

    fresh = build(master, CredentialCreate(
        name=CREDENTIAL_NAME, kind=CredentialKind.ssh_password, username=LAB_SSH_USER, password=LAB_SSH_PASSWORD,
        port=ssh.port, priority=30, description="the lab city's SSH devices"))
    cred = session.exec(select(Credential).where(Credential.name == CREDENTIAL_NAME)).first()
    if cred is None:
        session.add(fresh)
    else:
        cred.kind, cred.username, cred.params = fresh.kind, fresh.username, fresh.params
        cred.secret_ciphertext, cred.description = fresh.secret_ciphertext, fresh.description
        session.add(cred)
    session.flush()
    return {"credential": CREDENTIAL_NAME, "port": ssh.port, "user": LAB_SSH_USER}
