"""Conformance report: every real-device recording of the corpus served by snmpsim, probed with the
code path of ``infra-mgr snmp probe``, compared field by field with the expected answers.

Prints a per-device table (fields agreeing / compared, power readings agreeing / compared) and
two figures:

    RESULT conformance_fields: <agreeing>/<compared> (<pct> %); baseline librenms-expected; ratio n/a;
        goal >= 95 %: PASS|FAIL   (on one line)
    RESULT conformance_power_readings: ...

The baseline is the answer LibreNMS derives from the same recording (the corpus's expected/*.json):
there is no time or speed here, only agreement. Deliberate differences (tests/conformance/
deliberate.yaml, mirrored in docs/conformance.md) count as agreeing. ``--smoke``: 5 devices, the
figures mean nothing. The corpus is read where it lies ($INFRA_MGR_CORPUS or ../shared/corpus).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import record  # noqa: E402
from tests.conformance import harness  # noqa: E402

SMOKE_DEVICES = ("apc_smx750", "routeros_rb750gr3", "junos_qfx5100", "netmanplus_204", "linux_lsi")


def _figure(name: str, agree: int, compared: int) -> str:
    rate = harness.pct(agree, compared)
    verdict = "PASS" if compared and rate >= harness.GOAL_PCT else "FAIL"
    return (f"RESULT {name}: {agree}/{compared} ({rate:.1f} %); baseline librenms-expected; ratio n/a; "
            f"goal >= {harness.GOAL_PCT:g} %: {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="5 devices, figures mean nothing")
    parser.add_argument("--device", action="append", help="only these recordings (repeatable)")
    args = parser.parse_args(argv)
    corpus = harness.corpus_dir()
    with record("conformance", smoke=args.smoke, argv=argv):
        if corpus is None:
            print(f"corpus not found: set {harness.CORPUS_ENV} or put it in {ROOT.parent / 'shared' / 'corpus'}")
            print(_figure("conformance_fields", 0, 0))
            print(_figure("conformance_power_readings", 0, 0))
            return 0
        names = harness.device_names(corpus)
        if args.device:
            names = [n for n in names if n in set(args.device)]
        elif args.smoke:
            names = [n for n in SMOKE_DEVICES if n in names] or names[:5]
        report = harness.run(corpus, names)
        print(f"corpus: {corpus} ({len(names)} recordings)")
        print(f"{'device':34} {'os':18} {'fields':>11} {'%':>6} {'power':>9}  note")
        failures = report.device_failures()
        for name, (agree, compared, p_agree, p_compared) in sorted(report.per_device().items()):
            power = f"{p_agree}/{p_compared}" if p_compared else "-"
            print(f"{name:34} {report.expected[name]['os']:18} {agree:>5}/{compared:<5} "
                  f"{harness.pct(agree, compared):6.1f} {power:>9}  {failures.get(name, '')}")
        by_field: dict[str, list[int]] = {}
        for f in report.fields:
            key = f.field.split(".", 1)[1] if f.field.startswith("port[") else f.field
            key = "power reading" if f.power else key
            row = by_field.setdefault(key, [0, 0])
            row[0] += f.counts
            row[1] += 1
        print("\nby field: " + ", ".join(f"{k} {a}/{n}" for k, (a, n) in sorted(by_field.items())))
        excused = sum(1 for f in report.fields if not f.agree and f.deliberate)
        print(f"deliberate differences counted as agreeing: {excused}")
        print(f"devices failing (crash, no answer, wrong vendor): {len(failures)}")
        mismatches = report.mismatches()
        print(f"\nmismatches ({len(mismatches)}):")
        for f in mismatches:
            print("  " + harness.format_mismatch(f))
        print()
        print(_figure("conformance_fields", *report.totals()))
        print(_figure("conformance_power_readings", *report.totals(power=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
