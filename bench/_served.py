"""What the HTTP benches share: ``infra-mgr serve`` started as deployed (uvicorn, its own process
group, a free loopback port, a fresh secret key, the power poller off because the benches load no
power devices) and the percentile rule their figures use, so two benches that quote a p95 mean the
same thing by it."""

from __future__ import annotations

import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from infra_mgr.lab.peers import postgres_spec
from infra_mgr.lab.supervisor import Lab, LabError

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: always one of the measured values, never an interpolation."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


class Server:
    """``infra-mgr serve`` on a free loopback port, in its own process group (Ctrl-C reaches the
    bench, which stops the server itself)."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, INFRA_MGR_DATABASE_URL=url, INFRA_MGR_DATA_DIR=str(data_dir),
                   INFRA_MGR_SECRET_KEY=secrets.token_urlsafe(32), INFRA_MGR_LOG_LEVEL="warning",
                   INFRA_MGR_POWER_POLLER="false")
        env.pop("INFRA_MGR_CONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "infra_mgr", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-access-log"], cwd=ROOT, env=env, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early with code {self.proc.returncode}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"server did not answer /healthz within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class PostgresUnavailable(Exception):
    """Why a bench could not have its private PostgreSQL: the bench reports that backend as a FAIL."""


@contextmanager
def private_postgres(work: Path) -> Iterator[str]:
    """A private PostgreSQL server (the lab's own spec) for the length of the block: its URL."""
    try:
        import psycopg  # noqa: F401  (the URL names this driver)
    except ImportError as exc:
        raise PostgresUnavailable("psycopg is not installed (pip install 'infra-mgr[postgres]')") from exc
    lab = Lab(work / "pg-lab")
    try:
        rec = lab.start(postgres_spec(lab.lab_dir))
    except LabError as exc:
        raise PostgresUnavailable(f"PostgreSQL did not start: {exc.summary}") from exc
    try:
        print(f"[postgres] private PostgreSQL {rec.info.get('version')} (pid {rec.pid}), "
              f"data in {rec.info.get('data_dir')}")
        yield str(rec.info["url"])
    finally:
        lab.stop(rec.name)
