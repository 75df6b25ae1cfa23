"""The NUT peer of the power lab: Debian's ``dummy-ups`` + ``upsd``, kept in line with the scenario.

Run as ``python -m infra_mgr.lab.nut_sim --config-dir D --lab-dir L`` (the ``nut`` peer kind does
this; :func:`write_config` writes ``D`` first). The process starts one ``dummy-ups`` driver per UPS
and then ``upsd`` (as its children, so the supervisor stops them as one process group), and then
pushes the scenario's values (:mod:`infra_mgr.lab.power_scenario`) into upsd every 0.5 s, and at
once when the scenario file changes.

How values reach clients (measured here with NUT 2.8.0): ``dummy-ups`` re-reads a changed ``.dev``
file at its next poll (``pollinterval`` 2 s): 1.4-2.0 s until ``upsc`` shows it. ``SET VAR`` through
upsd (what ``upsrw -s`` does) is applied by the driver at once: 0-0.01 s typically, up to 0.65 s
when it lands in the driver's poll; ``upsrw`` itself adds a process start and a login per call.
So the pusher keeps one logged-in upsd connection and sends ``SET VAR`` for the values that
changed. The ``.dev`` file gives the initial values (so a driver restarted on its own comes back
sane); with ``--seq`` the driver instead plays ``<ups>.seq`` (normal, a 20 s outage, back) in a loop
and nothing is pushed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra_mgr.lab.power_scenario import (
    UPS_PROFILES,
    Outage,
    OutageReader,
    Readings,
    device_readings,
    outage_path,
)

NUT_BIN = Path("/lib/nut")
PUSH_INTERVAL = 0.5
# Between pushes the pusher looks at the scenario file this often, and pushes at once when it
# changes: an outage's start then reaches upsd within ~20 ms plus what upsd and dummy-ups take,
# like the Modbus and SNMP peers that answer from the file at once, not up to PUSH_INTERVAL later.
FILE_WATCH_INTERVAL = 0.02
# What the pusher keeps in line with the scenario, and how each value is written.
PUSHED: dict[str, str] = {
    "ups.status": "{}",
    "battery.charge": "{:.0f}",
    "battery.runtime": "{:.0f}",
    "battery.voltage": "{:.1f}",
    "input.voltage": "{:.1f}",
    "input.frequency": "{:.1f}",
    "output.voltage": "{:.1f}",
    "ups.load": "{:.0f}",
    "ups.realpower": "{:.0f}",
}
SEQ_NORMAL_S = 10
SEQ_OUTAGE_S = 20
SEQ_AFTER_S = 30
SEQ_STEP_S = 2  # dummy-ups' default pollinterval


def nut_values(ups: str, outage: Outage, now: float) -> dict[str, str]:
    """The pushed NUT variables of a UPS at ``now``, as upsd shows them."""
    readings: Readings = device_readings(f"ups:{ups}", outage, now)
    return {name: fmt.format(readings[name]) for name, fmt in PUSHED.items()}


def dev_text(ups: str, values: dict[str, str]) -> str:
    """A dummy-ups ``.dev`` file: identity, thresholds and the given values."""
    profile = UPS_PROFILES[ups]
    static = {
        "device.type": "ups",
        "device.mfr": profile.mfr,
        "device.model": profile.model,
        "device.serial": profile.serial,
        "ups.mfr": profile.mfr,
        "ups.model": profile.model,
        "ups.serial": profile.serial,
        "ups.firmware": profile.firmware,
        "ups.realpower.nominal": f"{profile.capacity_w:.0f}",
        "battery.charge.low": "20",
        "battery.charge.warning": "50",
        "battery.runtime.low": "300",
        "battery.voltage.nominal": f"{profile.battery_nominal_v:.0f}",
        "input.voltage.nominal": "230",
        "output.voltage.nominal": "230",
    }
    return "".join(f"{k}: {v}\n" for k, v in {**static, **values}.items())


def seq_text(ups: str) -> str:
    """A dummy-ups ``.seq`` file: 10 s normal, a 20 s outage, 30 s after, sampled every 2 s.

    dummy-ups plays at most one ``TIMER`` block per poll (``pollinterval``, 2 s: measured, a
    ``TIMER 1`` sequence runs at half speed), so the steps are as long as the poll interval."""
    outage = Outage(started_at=float(SEQ_NORMAL_S), ended_at=float(SEQ_NORMAL_S + SEQ_OUTAGE_S))
    chunks: list[str] = []
    previous: dict[str, str] = {}
    for second in range(0, SEQ_NORMAL_S + SEQ_OUTAGE_S + SEQ_AFTER_S, SEQ_STEP_S):
        values = nut_values(ups, outage, float(second))
        changed = {k: v for k, v in values.items() if previous.get(k) != v}
        previous = values
        chunks.append("".join(f"{k}: {v}\n" for k, v in changed.items()) + f"TIMER {SEQ_STEP_S}\n")
    return dev_text(ups, nut_values(ups, outage, 0.0)) + "".join(chunks)


def write_config(
    config_dir: Path,
    state_dir: Path,
    lab_dir: Path,
    *,
    host: str,
    port: int,
    upses: Iterable[str],
    monitor: tuple[str, str],
    admin: tuple[str, str],
    seq: bool = False,
) -> None:
    """Write ups.conf, upsd.conf, upsd.users, nut.conf, the ``.dev``/``.seq`` files and the
    pusher's ``lab.json`` (0600: it holds the SET user's password)."""
    from infra_mgr.lab.power_scenario import load_outage

    config_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)  # upsd warns about a world-readable state directory
    outage, now = load_outage(lab_dir), time.time()
    ups_conf = []
    for ups in upses:
        source = f"{ups}.seq" if seq else f"{ups}.dev"
        ups_conf.append(f'[{ups}]\n  driver = dummy-ups\n  port = {source}\n  desc = "lab UPS {ups}"\n')
        _write(config_dir / f"{ups}.dev", dev_text(ups, nut_values(ups, outage, now)))
        _write(config_dir / f"{ups}.seq", seq_text(ups))
    _write(config_dir / "ups.conf", "maxretry = 3\n\n" + "\n".join(ups_conf))
    _write(config_dir / "upsd.conf", f"LISTEN {host} {port}\nMAXAGE 15\n")
    users = (
        f"[{monitor[0]}]\n  password = {monitor[1]}\n  upsmon secondary\n\n"
        f"[{admin[0]}]\n  password = {admin[1]}\n  actions = SET\n  instcmds = ALL\n"
    )
    _write(config_dir / "upsd.users", users)
    _write(config_dir / "nut.conf", "MODE=standalone\n")
    settings = {
        "host": host,
        "port": port,
        "upses": list(upses),
        "admin": list(admin),
        "state_dir": str(state_dir),
        "seq": seq,
    }
    _write(config_dir / "lab.json", json.dumps(settings, indent=2) + "\n")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --- the protocol ------------------------------------------------------------------------------------


class NutConnection:
    """A minimal NUT protocol client (one command, one answer; LIST answers up to their END)."""

    def __init__(self, host: str, port: int, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rwb")

    def command(self, line: str) -> str:
        self.file.write(line.encode() + b"\n")
        self.file.flush()
        answer = self.file.readline().decode().rstrip("\n")
        if not answer:
            raise ConnectionError("upsd closed the connection")
        return answer

    def list(self, line: str) -> list[str]:
        first = self.command(line)
        if not first.startswith("BEGIN LIST"):
            raise RuntimeError(first)
        lines: list[str] = []
        while True:
            answer = self.file.readline().decode().rstrip("\n")
            if not answer or answer.startswith("END LIST"):
                return lines
            lines.append(answer)

    def close(self) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            self.command("LOGOUT")
        self.sock.close()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the launcher and pusher ---------------------------------------------------------------------------


def _program(child: subprocess.Popen[bytes]) -> str:
    """The program a child runs (its first argument), for messages."""
    args = child.args
    return os.fsdecode(args if isinstance(args, str | bytes | os.PathLike) else args[0])


def _wait(predicate: Any, timeout: float, what: str, children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for child in children:
            if child.poll() is not None:
                raise SystemExit(f"nut_sim: {_program(child)} exited with {child.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"nut_sim: timed out waiting for {what}")
        time.sleep(0.05)


def ups_loaded(conn: NutConnection, ups: str) -> bool:
    """Whether upsd serves the UPS with its data loaded: until dummy-ups has parsed its file (at
    its first poll) upsd answers ``ups.status`` ``WAIT`` and knows no other variable."""
    status = conn.command(f"GET VAR {ups} ups.status")
    return status.startswith("VAR ") and '"WAIT"' not in status and conn.command(
        f"GET VAR {ups} battery.charge"
    ).startswith("VAR ")


def _upsd_answers(host: str, port: int, upses: list[str]) -> bool:
    try:
        conn = NutConnection(host, port, timeout=0.5)
    except OSError:
        return False
    try:
        return all(ups_loaded(conn, ups) for ups in upses)
    except (OSError, ConnectionError):
        return False
    finally:
        conn.sock.close()


def run(config_dir: Path, lab_dir: Path) -> None:
    """Start the drivers and upsd, then push the scenario until SIGTERM."""
    settings = json.loads((config_dir / "lab.json").read_text())
    host, port, upses = settings["host"], int(settings["port"]), list(settings["upses"])
    state_dir = Path(settings["state_dir"])
    env = {**os.environ, "NUT_CONFPATH": str(config_dir), "NUT_STATEPATH": str(state_dir)}
    env["NUT_ALTPIDPATH"] = str(state_dir)
    as_root = ["-u", "root"] if os.geteuid() == 0 else []
    children: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: Any) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=3)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for ups in upses:
        children.append(subprocess.Popen([str(NUT_BIN / "dummy-ups"), "-a", ups, *as_root, "-F"], env=env))
        _wait(lambda u=ups: (state_dir / f"dummy-ups-{u}").exists(), 10, f"dummy-ups {ups}", children)
    children.append(subprocess.Popen([str(NUT_BIN / "upsd"), *as_root, "-F"], env=env))
    _wait(lambda: _upsd_answers(host, port, upses), 15, "upsd", children)
    print(f"nut_sim: upsd on {host}:{port} serving {', '.join(upses)}", flush=True)
    if settings.get("seq"):
        while all(child.poll() is None for child in children):
            time.sleep(1)
        raise SystemExit("nut_sim: a NUT program exited")
    push(host, port, upses, tuple(settings["admin"]), lab_dir, children)


def push(
    host: str,
    port: int,
    upses: list[str],
    admin: tuple[str, str],
    lab_dir: Path,
    children: list[subprocess.Popen[bytes]],
) -> None:
    """Every 0.5 s, and at once when the scenario file changes, ``SET VAR`` what changed in the
    scenario (one logged-in connection)."""
    reader = OutageReader(lab_dir)
    scenario = outage_path(lab_dir)
    sent: dict[tuple[str, str], str] = {}
    conn: NutConnection | None = None
    complained: set[str] = set()
    while True:
        if any(child.poll() is not None for child in children):
            raise SystemExit("nut_sim: a NUT program exited")
        started = time.monotonic()
        stamp = _file_stamp(scenario)  # before reading it: a change from here on wakes the next push
        try:
            if conn is None:
                conn = NutConnection(host, port)
                for line in (f"USERNAME {admin[0]}", f"PASSWORD {admin[1]}"):
                    answer = conn.command(line)
                    if answer != "OK":
                        raise ConnectionError(f"{line.split()[0]}: {answer}")
                sent.clear()
            outage, now = reader.get(), time.time()
            for ups in upses:
                for name, value in nut_values(ups, outage, now).items():
                    if sent.get((ups, name)) == value:
                        continue
                    answer = conn.command(f"SET VAR {ups} {name} {_quote(value)}")
                    if answer == "OK":
                        sent[(ups, name)] = value
                    elif name not in complained:
                        complained.add(name)
                        print(f"nut_sim: SET VAR {ups} {name}: {answer}", file=sys.stderr, flush=True)
        except (OSError, ConnectionError) as exc:
            print(f"nut_sim: upsd connection: {exc}; reconnecting", file=sys.stderr, flush=True)
            if conn is not None:
                conn.sock.close()
            conn = None
        time.sleep(FILE_WATCH_INTERVAL)
        while time.monotonic() - started < PUSH_INTERVAL and _file_stamp(scenario) == stamp:
            time.sleep(FILE_WATCH_INTERVAL)


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """Modification time and size of a file (None when it does not exist)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-dir", type=Path, required=True, help="NUT_CONFPATH written by write_config")
    parser.add_argument("--lab-dir", type=Path, required=True, help="lab directory holding outage.json")
    args = parser.parse_args(argv)
    run(args.config_dir.absolute(), args.lab_dir.absolute())


if __name__ == "__main__":
    main()
