"""Every command line and URL the README shows, run as written against a lab like the demo's.

The README's shell blocks are the contract with a newcomer: each line is run, in order, with bash,
from a scratch folder holding the repository's ``.venv`` and ``examples`` (so ``export >
estate.yaml`` writes nowhere that matters), on SQLite, with the lab's peers at the addresses and
ports the README states. To own those ports whatever else runs on the machine, the whole walk
happens in a network namespace of its own (loopback only): it needs root, as ``make demo`` does.
A line that cannot run in a test is listed in ``NOT_RUN`` with the reason; a new README line that is
neither is simply run, so the README can never promise a command nobody tried.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
IN_CI = os.environ.get("CI", "").lower() == "true"
BASE = "http://127.0.0.1:8000"

# README line (without its comment) -> why the walk does not run it.
NOT_RUN: dict[str, str] = {
    "make demo": "the whole walk below is what it does; it also serves until stopped",
    "make test": "runs the suite this test belongs to",
    ".venv/bin/infra-mgr serve --host 0.0.0.0 --port 8000":
        "serves until stopped; the walk serves the same app itself on the README's 127.0.0.1:8000",
    ".venv/bin/infra-mgr traps listen --port 162 -c public": "listens until stopped (tests/integration/test_traps.py)",
    ".venv/bin/infra-mgr power import power.yaml": "reads the operator's own file; `lab configure` imports one",
}
PASSWORD = "fatimah's long password\n" * 2  # typed, then confirmed


@dataclass
class Block:
    lines: list[str]
    first_line: int


def readme_blocks(text: str) -> list[Block]:
    """The fenced ``sh`` blocks, each line joined with its ``\\`` continuations, comments dropped."""
    blocks: list[Block] = []
    for m in re.finditer(r"^```(?:sh|bash|shell)\n(.*?)^```", text, re.M | re.S):
        start = text.count("\n", 0, m.start()) + 2
        lines: list[str] = []
        pending = ""
        for raw in m.group(1).splitlines():
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                lines.append(command)
        blocks.append(Block(lines, start))
    return blocks


def readme_urls(text: str) -> list[str]:
    """Every page of this service the README's prose names (full URLs on the demo's port and `/…`
    paths); the URLs inside command blocks are checked by running those commands. ``/api/v1/`` is
    named as the API's prefix, not as a page."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    found = set(re.findall(r"http://127\.0\.0\.1:8000(/[^\s>`')]*)", prose))
    found |= set(re.findall(r"`(/(?:api|healthz|metrics)[^\s`]*)`", prose))
    return sorted(found - {"/api/v1/"})


def test_readme_parses_into_commands_and_urls() -> None:
    """The extraction itself: it sees the two commands, the lab lines and the API example."""
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    commands = [c for b in blocks for c in b.lines]
    assert "make demo" in commands and "make test" in commands
    assert any(c.startswith("curl ") and "-X POST" in c and "-d '{" in c for c in commands), commands
    assert not [c for c in commands if re.search(r"\s\|\s", c)], "README lines must run as written, no a | b"
    assert not set(NOT_RUN) - set(commands), "NOT_RUN lists a line the README no longer has"
    # one Modbus simulator and one SNMP UPS agent probed at the ports the address table states
    assert any("modbus://127.3.0.12:502/" in c for c in commands), commands
    assert any(c.startswith(".venv/bin/infra-mgr snmp probe 127.3.0.22 ") for c in commands), commands
    urls = readme_urls(README.read_text(encoding="utf-8"))
    assert {"/api/docs", "/api/v1/openapi.json", "/healthz", "/metrics"} <= set(urls), urls


# --------------------------------------------------------------------------- the walk


class Netns:
    """A network namespace with only loopback: the README's fixed addresses and ports are ours."""

    def __init__(self) -> None:
        self.name = f"infra-readme-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run_plain(["ip", "link", "set", "lo", "up"])

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run_plain(self, argv: list[str]) -> None:
        subprocess.run(self.argv(argv), check=True)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


@dataclass
class Walk:
    ns: Netns
    cwd: Path
    env: dict[str, str]

    def sh(self, command: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.ns.argv(["bash", "-o", "pipefail", "-c", command]), cwd=self.cwd, env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    if os.geteuid() != 0 or not shutil.which("ip"):
        if IN_CI:
            pytest.fail("the README walk needs root and iproute2 (a network namespace for the demo's ports)")
        pytest.skip("the README walk needs root and iproute2 (a network namespace for the demo's ports)")
    cwd = tmp_path_factory.mktemp("readme")
    (cwd / ".venv").symlink_to(REPO / ".venv")
    (cwd / "examples").symlink_to(REPO / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRA_MGR_")}
    env.update(INFRA_MGR_DATA_DIR=str(cwd / "var"), INFRA_MGR_POWER_POLLER="false", SNMPSIM_ALLOW_ROOT="true",
               PATH=f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}")
    ns = Netns()
    w = Walk(ns, cwd, env)
    server: subprocess.Popen[bytes] | None = None
    try:
        yield w
    finally:
        server = getattr(w, "server", None)
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        w.sh(".venv/bin/infra-mgr lab down", timeout=120)
        ns.delete()


def _serve(w: Walk) -> None:
    """The README's ``serve``, on the URL it names (127.0.0.1:8000), inside the walk's namespace."""
    log = (w.cwd / "serve.log").open("wb")
    w.server = subprocess.Popen(w.ns.argv([".venv/bin/infra-mgr", "serve", "--host", "127.0.0.1", "--port", "8000"]),
                                cwd=w.cwd, env=w.env, stdout=log, stderr=subprocess.STDOUT)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if w.sh(f"curl -sf {BASE}/healthz", timeout=10).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"serve did not answer: {(w.cwd / 'serve.log').read_text()[-2000:]}")


def _check_output(command: str, out: str) -> None:
    """Sensible output: ``--json`` commands print JSON; the probes name what they read."""
    if "--json" in command:
        json.loads(out)
    if "snmp probe 127.1.0.1" in command:
        assert "jed-hq-core1" in out, out[:500]
    if "power probe 'nut://127.3.0.21:3493/dc-ups1'" in command:
        doc = json.loads(out)
        assert doc["readings"].get("ups.status") and not doc["errors"], doc
    if "power probe 'modbus://127.3.0.12:502/" in command:
        doc = json.loads(out)
        assert doc["readings"] and not doc["errors"], doc
    if "snmp probe 127.3.0.22" in command:
        assert "dc-ups2" in out, out[:500]
    if "sites list" in command:
        assert {s["kind"] for s in json.loads(out)} == {"branch"}


def test_every_readme_command_runs_as_written(walk: Walk) -> None:
    text = README.read_text(encoding="utf-8")
    blocks = readme_blocks(text)
    api_block = next(b for b in blocks if any(c.startswith("curl ") for c in b.lines))
    shell_lines = [c for b in blocks if b is not api_block for c in b.lines]
    failures: list[str] = []
    for command in shell_lines:
        if command in NOT_RUN:
            continue
        if command.startswith("make "):
            failures.append(f"{command}: a make target neither run nor listed in NOT_RUN")
            continue
        if command == ".venv/bin/infra-mgr lab down":
            continue  # the walk's own teardown runs it, after the API example needs the lab
        done = walk.sh(command, stdin=PASSWORD if "user add" in command else "")
        if done.returncode != 0:
            failures.append(f"{command}: exit {done.returncode}: {done.stderr.strip()[-400:]}")
            continue
        try:
            _check_output(command, done.stdout)
        except (AssertionError, ValueError, KeyError) as exc:
            failures.append(f"{command}: unexpected output ({exc}): {done.stdout[:300]}")
    assert not failures, "\n".join(failures)

    _serve(walk)
    # The API example, as one script (its TOKEN carries from line to line); each curl's answer is
    # printed after a marker so every one is checked.
    script = "set -e\n" + "".join(f"{line}\necho; echo '@@ {i}'\n" for i, line in enumerate(api_block.lines))
    done = walk.sh(script)
    assert done.returncode == 0, done.stderr
    answers = re.split(r"\n@@ \d+\n", "\n" + done.stdout)
    for line, answer in zip(api_block.lines, answers, strict=False):
        if not line.startswith("curl "):
            continue
        body = json.loads(answer)
        assert "detail" not in body, (line, body)
        if "/devices?site=JED-B07" in line:
            assert body["results"] and all(d["hostname"].startswith("jed-b07") for d in body["results"]), body
        if "/allocate" in line:
            assert body["dns_name"] == "vm-42.jeddah.local" and body["address"], body

    created = walk.sh(".venv/bin/infra-mgr token create fatimah")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    for path in readme_urls(text):
        url = BASE + path
        status = walk.sh(f"curl -sL -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer {token}' "
                         f"'{url}'").stdout
        assert status == "200", (path, status)
    page = walk.sh(f"curl -s {BASE}/api/docs").stdout
    for asset in re.findall(r"""(?:src|href)=["'](/static/[^"']+)""", page):
        status = walk.sh(f"curl -s -o /dev/null -w '%{{http_code}}' '{BASE}{urllib.parse.quote(asset)}'").stdout
        assert status == "200", (asset, status)
    assert "cdn" not in page.lower()
