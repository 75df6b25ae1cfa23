"""Every real-device recording of the corpus, probed as ``infra-mgr snmp probe`` probes, against
the answers another monitoring system derives from it (see ``harness.py`` for what is compared).

Per device: no crash, an answer, and never a wrong vendor. Overall: at least 95 % of compared
fields agree (deliberate differences, listed with their reason in ``deliberate.yaml`` and
docs/conformance.md, count as agreeing). Power readings alone must not fall below the floor in
``floors.yaml`` (raised as families are added; the goal is 95 %, reported by bench/conformance.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conformance import harness

_CORPUS = harness.corpus_dir()
DEVICES = harness.device_names(_CORPUS) if _CORPUS else []
FLOORS = yaml.safe_load((Path(__file__).parent / "floors.yaml").read_text(encoding="utf-8"))


def test_corpus_is_there(corpus: Path) -> None:
    """Skips (fails under CI) without the corpus; with it, every recording has an answer."""
    assert harness.device_names(corpus), f"no recordings with expected answers in {corpus}"


@pytest.mark.parametrize("name", DEVICES)
def test_device(report: harness.Report, name: str) -> None:
    failure = report.device_failures().get(name)
    assert failure is None, f"{name}: {failure}"


def test_overall_agreement(report: harness.Report) -> None:
    agree, compared = report.totals()
    rate = harness.pct(agree, compared)
    listed = "\n".join(harness.format_mismatch(f) for f in report.mismatches()[:400])
    assert rate >= harness.GOAL_PCT, (f"{agree}/{compared} fields agree ({rate:.1f} %), goal "
                                      f">= {harness.GOAL_PCT:g} %; mismatches:\n{listed}")


def test_power_readings_do_not_regress(report: harness.Report) -> None:
    agree, compared = report.totals(power=True)
    rate = harness.pct(agree, compared)
    listed = "\n".join(harness.format_mismatch(f) for f in report.mismatches(power=True))
    assert compared > 0
    assert rate >= FLOORS["power_readings_pct"], (
        f"{agree}/{compared} power readings agree ({rate:.1f} %), floor {FLOORS['power_readings_pct']} %; "
        f"mismatches:\n{listed}")


def test_deliberate_differences_are_documented() -> None:
    """Each deliberate difference is in docs/conformance.md by its id (the doc mirrors the list)."""
    doc = (harness.ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    missing = [d.id for d in harness.load_differences() if f"`{d.id}`" not in doc]
    assert not missing, f"deliberate differences not in docs/conformance.md: {missing}"


def test_deliberate_list_rejects_a_difference_without_reason(tmp_path: Path) -> None:
    bad = tmp_path / "deliberate.yaml"
    bad.write_text("differences:\n  - {id: x, field: model, reason: because}\n", encoding="utf-8")
    with pytest.raises(ValueError):
        harness.load_differences(bad)
