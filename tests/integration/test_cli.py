"""The CLI as an operator runs it: real subprocesses on a scratch data directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "jeddah.yaml"


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INFRA_MGR_DATA_DIR": str(tmp_path / "data"), "INFRA_MGR_SECRET_KEY": "cli-test-key"}
    env.pop("INFRA_MGR_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "infra_mgr", *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=120)


def test_import_list_export_and_users(tmp_path: Path) -> None:
    up = run(tmp_path, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    imp = run(tmp_path, "import", str(EXAMPLE), "--json")
    assert imp.returncode == 0, imp.stderr
    assert json.loads(imp.stdout)["created"]["site"] == 65
    listed = run(tmp_path, "sites", "list", "--json")
    sites = json.loads(listed.stdout)
    assert len(sites) == 65 and {s["kind"] for s in sites} == {"branch", "hq", "datacenter"}
    branches = json.loads(run(tmp_path, "sites", "list", "--kind", "branch", "--json").stdout)
    assert len(branches) == 63
    exported = run(tmp_path, "export")
    assert exported.returncode == 0 and "JED-B63" in exported.stdout
    added = run(tmp_path, "user", "add", "noura", "--role", "facilities", "--password-stdin",
                stdin="a very long password\n")
    assert added.returncode == 0, added.stderr
    tok = run(tmp_path, "token", "create", "noura", "--name", "grafana", "--json")
    assert json.loads(tok.stdout)["token"].startswith("imt_")


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites:\n  - code: JED-1\n    name_en: ok\n    kind: castle\n", encoding="utf-8")
    res = run(tmp_path, "import", str(bad))
    assert res.returncode == 1
    assert f"{bad}:4: kind:" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    missing = run(tmp_path, "import", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "Traceback" not in missing.stderr and "nope.yaml" in missing.stderr
    short = run(tmp_path, "user", "add", "x1", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "password" in short.stderr and "Traceback" not in short.stderr
    nouser = run(tmp_path, "token", "create", "ghost")
    assert nouser.returncode == 1 and "ghost" in nouser.stderr
    fmt = run(tmp_path, "export", "--format", "xml")
    assert fmt.returncode == 1 and "--format" in fmt.stderr


def test_probe_without_answer_names_both_causes_and_the_options(tmp_path: Path) -> None:
    """An agent drops a request with an unknown community silently: a UDP port that reads and
    never answers is exactly what a wrong community looks like from the client."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        res = run(tmp_path, "snmp", "probe", f"127.0.0.1:{port}", "-c", "not-the-community")
    assert res.returncode == 2, res.stderr
    assert "no answer after 2 attempt(s) of 1 s: host unreachable or wrong community" in res.stderr
    assert "--community" in res.stderr and "--timeout" in res.stderr and f"127.0.0.1:{port}" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
