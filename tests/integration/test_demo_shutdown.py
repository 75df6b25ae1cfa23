"""``infra-mgr demo`` as an operator runs it, stopped the way an operator stops it: Ctrl-C (SIGINT)
or a service manager's SIGTERM must take down every lab peer the demo started — peers are
detached process groups, so nothing else would."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra_mgr.lab.supervisor import free_port, pid_running, process_start_ticks, process_tree

READY_LINE = "dashboard:"
START_TIMEOUT_S = 240


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "INFRA_MGR_DATA_DIR": str(tmp_path / "data"), "INFRA_MGR_SECRET_KEY": "demo-test-key"}
    env.pop("INFRA_MGR_DATABASE_URL", None)
    return env


def _wait_for_line(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """The output up to the line holding ``marker`` (fails with the output if it exits first).
    A reader thread, because a buffered pipe hides lines from ``select``."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=1.0))
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if marker in seen[-1]:
            return "".join(seen)
    if proc.poll() is None:  # a signal it can act on, so what it started stops too
        proc.terminate()
        proc.wait(timeout=60)
    time.sleep(0.5)
    while not lines.empty():
        seen.append(lines.get())
    out = "".join(seen)
    if "not installed" in out and os.environ.get("CI") != "true":
        pytest.skip(f"a lab peer is not installed: {out[-300:]}")
    pytest.fail(f"did not become ready (exit {proc.poll()}):\n{out[-3000:]}")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The scratch data directory's environment; whatever a failed test left running is stopped."""
    environ = _env(tmp_path)
    yield environ
    subprocess.run([sys.executable, "-m", "infra_mgr", "lab", "down"], capture_output=True, env=environ, timeout=120)


def _running(env: dict[str, str]) -> dict[tuple[int, int | None], str]:
    """Every process of every running peer of the lab: (pid, start time) -> peer name."""
    status = subprocess.run([sys.executable, "-m", "infra_mgr", "lab", "status", "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    peers = json.loads(status.stdout)["peers"]
    return {(pid, process_start_ticks(pid)): name for name, p in peers.items() if p["running"]
            for pid in process_tree(p["pid"])}


def _all_gone(started: dict[tuple[int, int | None], str], sig: signal.Signals) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_running(*key) for key in started):
        time.sleep(0.2)
    left = sorted(f"{name} pid {key[0]}" for key, name in started.items() if pid_running(*key))
    assert not left, f"peers still running after {sig.name}: {left}"


GUARDED_LAB = """
import sys, time
from pathlib import Path
from infra_mgr.lab.cli import up
from infra_mgr.lab.supervisor import Lab
lab_dir = Path(sys.argv[1])
with Lab(lab_dir).stopped_at_exit():
    up(only=["modbus-meter", "nut"], lab_dir=lab_dir)
    print("lab ready", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_guarded_lab_stops_on_a_signal_and_spares_older_peers(env: dict[str, str], sig: signal.Signals) -> None:
    """The guard the demo runs in, on two quick peers; a peer that ran before it stays."""
    lab_dir = Path(env["INFRA_MGR_DATA_DIR"]) / "lab"
    older = subprocess.run([sys.executable, "-m", "infra_mgr", "lab", "up", "--only", "modbus-dse"],
                           capture_output=True, text=True, env=env, timeout=120)
    if older.returncode != 0 and "not installed" in older.stderr + older.stdout and os.environ.get("CI") != "true":
        pytest.skip(older.stderr)
    assert older.returncode == 0, older.stderr + older.stdout
    kept = _running(env)
    proc = subprocess.Popen([sys.executable, "-c", GUARDED_LAB, str(lab_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        _wait_for_line(proc, "lab ready", 120)
        started = {k: v for k, v in _running(env).items() if k not in kept}
        assert set(started.values()) == {"modbus-meter", "nut"}
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _all_gone(started, sig)
    assert all(pid_running(*key) for key in kept), "a peer started before the guard was stopped"


def test_demo_stops_its_peers_on_ctrl_c(env: dict[str, str]) -> None:
    """The whole demo (its lab, import, first discovery, server), then Ctrl-C. SIGTERM takes the
    same path (see the guarded lab test above); one full demo is enough for the machine."""
    sig = signal.SIGINT
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "infra_mgr", "demo", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        _wait_for_line(proc, READY_LINE, START_TIMEOUT_S)
        started = _running(env)
        assert {"city", "postgres"} <= set(started.values()), started
        proc.send_signal(sig)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _all_gone(started, sig)
    assert not _running(env)
