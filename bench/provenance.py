"""Where a benchmark's figures come from: every bench writes its whole output, headed by the commit
and whether the tree was clean, to ``bench/results/<bench>-<UTC date>.txt``.

``docs/benchmarks.md`` quotes only those files, so a figure can always be traced to the run that
produced it. Smoke runs (``--smoke``: tiny sizes, a few seconds, run by ``make test`` so that a bench
that cannot start fails CI) write to ``bench/results/smoke/`` which git ignores: a smoke figure
means nothing and must never be quoted.

Usage, in a bench's ``main``::

    with record("snmp_sweep", smoke=args.smoke, argv=argv):
        ... print the table and the RESULT lines ...
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def git_state() -> tuple[str, bool]:
    """The commit id of the tree the bench ran from, and whether that tree had no uncommitted change
    to tracked files outside ``bench/results/``."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        # Results files written by an earlier bench of the same run are not a change to what is measured.
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":!bench/results"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, not dirty


class _Tee:
    """A text stream that writes to the terminal and to the results file at once."""

    def __init__(self, *streams: TextIO) -> None:
        self._streams = streams

    def write(self, text: str) -> int:
        for s in self._streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self._streams:
            s.flush()

    def isatty(self) -> bool:
        return False


def results_path(bench: str, *, smoke: bool, when: dt.datetime | None = None) -> Path:
    """``bench/results/<bench>-<UTC date>.txt`` (smoke runs under ``smoke/``, not committed)."""
    when = when or dt.datetime.now(dt.UTC)
    folder = RESULTS / "smoke" if smoke else RESULTS
    return folder / f"{bench}-{when:%Y-%m-%d}.txt"


@contextlib.contextmanager
def record(bench: str, *, smoke: bool = False, argv: Sequence[str] | None = None) -> Iterator[Path]:
    """Tee stdout (and stderr) into the bench's results file, headed by commit, cleanliness, host and
    command line. A second run on the same day replaces that day's file: the file is the last run."""
    started = dt.datetime.now(dt.UTC)
    path = results_path(bench, smoke=smoke, when=started)
    path.parent.mkdir(parents=True, exist_ok=True)
    commit, clean = git_state()
    args = list(sys.argv[1:] if argv is None else argv)
    with path.open("w", encoding="utf-8", buffering=1) as fh:  # line by line: children forked later inherit no buffer
        fh.write(f"# bench: {bench}{' (smoke: figures mean nothing)' if smoke else ''}\n")
        fh.write(f"# commit: {commit} ({'clean tree' if clean else 'UNCOMMITTED CHANGES in the tree'})\n")
        fh.write(f"# started: {started:%Y-%m-%dT%H:%M:%SZ}\n")
        fh.write(f"# host: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
                 f"Python {platform.python_version()}, uid {os.geteuid()}\n")
        fh.write(f"# command: bench/{bench}.py {' '.join(args)}\n")
        fh.flush()
        out, err = sys.stdout, sys.stderr
        sys.stdout = _Tee(out, fh)  # type: ignore[assignment]  # a TextIO in every way print() uses
        sys.stderr = _Tee(err, fh)  # type: ignore[assignment]
        try:
            yield path
        finally:
            sys.stdout, sys.stderr = out, err
            ended = dt.datetime.now(dt.UTC)
            fh.write(f"# ended: {ended:%Y-%m-%dT%H:%M:%SZ} ({(ended - started).total_seconds():.0f} s)\n")
    print(f"results written to {path.relative_to(ROOT)}")


def require_root(bench: str) -> int | None:
    """Root-only benches (network namespaces, upsd as root) say so and return the exit code 2."""
    if os.geteuid() != 0:
        print(f"{bench}: needs root (network namespaces / system daemons); run it as root", file=sys.stderr)
        return 2
    return None
