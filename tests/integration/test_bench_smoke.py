"""Every benchmark under ``bench/`` starts, runs at tiny sizes and ends with well-formed ``RESULT`` lines.

A bench that cannot start (a missing module, a peer that does not come up, a renamed function)
must fail CI, not the day someone wants its figures. Smoke runs measure nothing: no timing is
asserted, only that the bench ran its whole path, printed one line per figure in the agreed shape
and wrote its results file with the commit id.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(r"^RESULT [a-z0-9_]+: .+; baseline .+; ratio .+; goal .+: (PASS|FAIL)$")


def _benches() -> list[str]:
    """Every runnable bench script (helpers that are imported, not run, start with ``_`` or are listed)."""
    helpers = {"provenance.py", "netns_agents.py", "quote_results.py"}
    return sorted(p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_") and p.name not in helpers)


SMOKED = ["api_concurrency", "api_interfaces", "city_discovery", "city_scale", "config_backup", "conformance",
          "link_audit", "power_detect", "snmp_sweep"]


def test_every_bench_is_smoked_and_in_make_bench() -> None:
    """A new bench cannot slip past the smoke run or `make bench`: both lists are the directory's."""
    assert set(_benches()) == {f"{name}.py" for name in SMOKED}
    listed = re.search(r"^BENCHES := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert listed and sorted(listed.group(1).split()) == sorted(SMOKED)


@pytest.mark.slow
@pytest.mark.parametrize("bench", SMOKED)
def test_bench_smoke(bench: str) -> None:
    if os.geteuid() != 0 and bench in {"snmp_sweep", "power_detect"}:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{bench} needs root and CI runs as root")
        pytest.skip(f"{bench} needs root")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / f"{bench}.py"), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=280)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{out[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert lines, out[-4000:]
    bad = [ln for ln in lines if not RESULT.match(ln)]
    assert bad == [], bad
    written = re.search(r"results written to (\S+)", out)
    assert written, out[-2000:]
    text = (ROOT / written.group(1)).read_text(encoding="utf-8")
    assert re.search(r"^# commit: [0-9a-f]{40} ", text, re.M), text[:500]
    assert all(ln in text for ln in lines)
