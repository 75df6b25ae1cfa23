"""Generated documentation stays in step with the code it describes."""

from __future__ import annotations

from pathlib import Path

from infra_mgr.power.readings import CANONICAL

DOCS = Path(__file__).parents[2] / "docs"


def test_power_doc_lists_every_canonical_reading() -> None:
    doc = (DOCS / "power.md").read_text(encoding="utf-8")
    for name, (unit, meaning) in CANONICAL.items():
        assert f"| `{name}` | {unit} | {meaning} |" in doc, f"regenerate with `infra-mgr docs readings` ({name})"


def test_benchmark_figures_are_traced_to_results_files() -> None:
    """docs/benchmarks.md quotes only what a bench wrote: every RESULT line it shows is, word for word,
    in a committed results file it names, and every results file it names exists and comes from a
    full run (not a smoke run) of a named commit."""
    import re

    doc = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    results = DOCS.parent / "bench" / "results"
    named = sorted(set(re.findall(r"bench/results/([\w.-]+\.txt)", doc)))
    assert named, "docs/benchmarks.md names no results file"
    texts = {}
    for name in named:
        path = results / name
        assert path.is_file(), f"docs/benchmarks.md names {name}, which is not in bench/results/"
        text = path.read_text(encoding="utf-8")
        assert re.search(r"^# commit: [0-9a-f]{40} ", text, re.M) and "(smoke" not in text.splitlines()[0], name
        texts[name] = text
    quoted = [ln.strip() for ln in doc.splitlines() if ln.strip().startswith("RESULT ") and "<figure>" not in ln]
    assert quoted, "docs/benchmarks.md quotes no RESULT line"
    untraced = [ln for ln in quoted if not any(ln in t for t in texts.values())]
    assert untraced == [], f"figures in docs/benchmarks.md that no named results file holds: {untraced}"
