"""The conformance corpus served once per session (one snmpsim for every recording) and probed
with our own code path; every test reads the same report.

The corpus is GPL test data read where it lies (``$INFRA_MGR_CORPUS`` or ``../shared/corpus``):
never copied here. Without it the tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import os

import pytest

from tests.conformance import harness

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def corpus() -> harness.Path:
    found = harness.corpus_dir()
    if found is None:
        message = (f"conformance corpus not found (set {harness.CORPUS_ENV} or put it in "
                   f"{harness.ROOT.parent / 'shared' / 'corpus'})")
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def report(corpus: harness.Path) -> harness.Report:
    return harness.run(corpus)
