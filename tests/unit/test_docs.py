"""Generated documentation stays in step with the code it describes."""

from __future__ import annotations

from pathlib import Path

from infra_mgr.power.readings import CANONICAL

DOCS = Path(__file__).parents[2] / "docs"


def test_power_doc_lists_every_canonical_reading() -> None:
    doc = (DOCS / "power.md").read_text(encoding="utf-8")
    for name, (unit, meaning) in CANONICAL.items():
        assert f"| `{name}` | {unit} | {meaning} |" in doc, f"regenerate with `infra-mgr docs readings` ({name})"
