"""Fill docs/benchmarks.md's result blocks from the newest committed results file of each bench.

Each ``<!-- results: NAME -->`` marker in the doc is followed by a code block of that bench's
``RESULT`` lines, copied word for word from ``bench/results/NAME-<date>.txt`` (the newest full run),
with the file, its commit and whether the tree was clean. Running this after a bench keeps the doc
quoting only what a bench wrote; ``tests/unit/test_docs.py`` checks the result.

    .venv/bin/python bench/quote_results.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results"
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?:\n?\*\*Results\*\*.*?```\n.*?```\n)?", re.S)


def newest(name: str) -> Path | None:
    files = sorted(RESULTS.glob(f"{name}-????-??-??.txt"))
    return files[-1] if files else None


def block(name: str) -> str:
    path = newest(name)
    if path is None:
        return f"\n**Results:** no results file yet (run `bench/{name}.py`).\n"
    text = path.read_text(encoding="utf-8")
    commit = re.search(r"^# commit: (\w+) \((.+)\)$", text, re.M)
    started = re.search(r"^# started: (\S+)$", text, re.M)
    lines = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
    where = f"`bench/results/{path.name}`"
    head = (f"\n**Results** ({where}; run of {started.group(1) if started else '?'} from commit "
            f"`{commit.group(1)[:10] if commit else '?'}`, {commit.group(2) if commit else '?'}):\n")
    return head + "\n```\n" + "\n".join(lines) + "\n```\n"


def main() -> int:
    doc = DOC.read_text(encoding="utf-8")
    out = BLOCK.sub(lambda m: m.group(1) + block(m.group("name")), doc)
    DOC.write_text(out, encoding="utf-8")
    print(f"{DOC.relative_to(ROOT)}: {len(BLOCK.findall(doc))} result blocks filled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
