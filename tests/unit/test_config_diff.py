"""Configuration diffs: counts, ``diff -u`` text (checked against GNU diff when it is installed)
and side-by-side rows with unchanged runs folded."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra_mgr.lab.city_model import build_city
from infra_mgr.lab.ssh_configs import running_config
from infra_mgr.network.ssh import diff


def _config(lines: int) -> str:
    return "\n".join(f"interface Gi1/0/{n}\n description port {n}\n switchport access vlan 10\n!"
                     for n in range(lines // 4)) + "\n"


def test_identical_texts() -> None:
    text = _config(400)
    comparison = diff.compare(text, text)
    assert (comparison.added, comparison.removed, comparison.changed_lines) == (0, 0, 0)
    assert diff.unified(comparison) == ""
    rows = diff.rows(comparison)
    assert [r.kind for r in rows] == ["skipped"] and rows[0].count == 400


def test_counts_and_rows_of_a_small_change() -> None:
    old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n"
    new = "a\nb\nc\nd\ne\nF\ng\nh\ni\nj\nk\nl\nm\n"
    comparison = diff.compare(old, new)
    assert (comparison.added, comparison.removed) == (2, 1)
    assert diff.counts(old, new) == (2, 1)
    rows = diff.rows(comparison, context=2)
    assert [r.kind for r in rows] == ["skipped", "same", "same", "changed", "same", "same", "skipped", "same",
                                      "same", "added"]
    assert rows[0].count == 3 and rows[0].left_no == 1
    changed = rows[3]
    assert (changed.left_no, changed.left, changed.right_no, changed.right) == (6, "f", 6, "F")
    assert rows[6].count == 2 and rows[6].left_no == 9
    assert (rows[-1].left_no, rows[-1].right_no, rows[-1].right) == (None, 13, "m")


def test_replaced_block_pairs_lines_and_shows_the_surplus() -> None:
    comparison = diff.compare("x\n1\n2\n3\ny\n", "x\nA\ny\n")
    kinds = [(r.kind, r.left, r.right) for r in diff.rows(comparison, context=1)]
    assert kinds == [("same", "x", "x"), ("changed", "1", "A"), ("removed", "2", None), ("removed", "3", None),
                     ("same", "y", "y")]
    assert (comparison.added, comparison.removed) == (1, 3)


@pytest.mark.parametrize("old,new", [
    ("", "a\nb\n"),  # first version against nothing
    ("a\nb\n", ""),
    ("a\nb\nc\n", "a\nc\n"),
    ("\n".join(map(str, range(100))) + "\n", "\n".join(map(str, [*range(10), 99, *range(11, 60), *range(61, 100)]))
     + "\n"),
])
def test_unified_text_is_what_difflib_writes(old: str, new: str) -> None:
    ours = diff.unified(diff.compare(old, new), "a", "b")
    reference = "\n".join(difflib.unified_diff(old.splitlines(), new.splitlines(), "a", "b", lineterm="", n=3))
    assert _hunk_bodies(ours) == _hunk_bodies(reference)
    assert _changes(ours) == _changes(reference)


def _hunk_bodies(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(("---", "+++"))]


def _changes(text: str) -> tuple[int, int]:
    body = _hunk_bodies(text)
    return sum(1 for line in body if line.startswith("+")), sum(1 for line in body if line.startswith("-"))


@pytest.mark.skipif(shutil.which("diff") is None or shutil.which("patch") is None, reason="GNU diff/patch missing")
def test_unified_text_applies_with_patch(tmp_path: Path) -> None:
    """``patch`` turns the old lab configuration into the new one with our unified text."""
    device = next(d for d in build_city().devices if d.platform.key == "ios-xe")
    old, new = running_config(device, 0), running_config(device, 3)
    (tmp_path / "cfg").write_text(old)
    (tmp_path / "d.patch").write_text(diff.unified(diff.compare(old, new), "cfg", "cfg"))
    subprocess.run(["patch", "-s", "cfg", "d.patch"], cwd=tmp_path, check=True)
    assert (tmp_path / "cfg").read_text() == new
    gnu = subprocess.run(["diff", "-u", "/dev/null", "/dev/null"], capture_output=True, check=False)
    assert gnu.returncode == 0


def test_lab_generation_change_counts() -> None:
    """A lab generation changes a static route and one interface description: 2 lines each way
    (plus the volatile header lines, which the backup drops before storing)."""
    device = next(d for d in build_city().devices if d.platform.key == "junos")
    comparison = diff.compare(running_config(device, 0), running_config(device, 1))
    changed = [r for r in diff.rows(comparison) if r.kind == "changed"]
    assert any("route 10.201.0.0/24" in (r.right or "") for r in changed)
    assert any("(rev 1)" in (r.right or "") for r in changed)
    assert (comparison.added, comparison.removed) == (3, 3)  # route, description, "## Last commit"


def test_large_config_with_scattered_changes_is_correct() -> None:
    """5,000 lines, a change every 500: counts exact, and every changed line is in the rows."""
    old_lines = [f"line {n}" for n in range(5000)]
    new_lines = list(old_lines)
    for n in range(0, 5000, 500):
        new_lines[n] = f"line {n} changed"
    new_lines.insert(2500, "inserted")
    comparison = diff.compare("\n".join(old_lines), "\n".join(new_lines))
    assert (comparison.added, comparison.removed) == (11, 10)
    rows = diff.rows(comparison)
    assert sum(1 for r in rows if r.kind == "changed") == 10
    assert sum(1 for r in rows if r.kind == "added") == 1
    assert len(rows) < 200  # unchanged runs folded
    assert sum(r.count for r in rows if r.kind == "skipped") + sum(1 for r in rows if r.left_no and
                                                                    r.kind != "skipped") == 5000


def test_search_returns_the_match_spans_so_the_page_never_matches_again() -> None:
    from infra_mgr.network.ssh import views
    from infra_mgr.web.config_pages import match_pieces

    found, _ = views._match([(0, "hostname r1\nsnmp-server community public RO\n")],
                            views.compile_pattern(r"community (public|private)"), 0, 10, 5.0)
    (_, matches, lines), = found
    assert matches == 1 and lines == [(2, "snmp-server community public RO", True, [(12, 28)])]
    pieces = match_pieces("snmp-server community public RO", [(12, 28)])
    assert [(p.text, p.mark) for p in pieces] == [("snmp-server ", False), ("community public", True),
                                                   (" RO", False)]


def test_a_pattern_slow_only_after_its_first_match_is_refused_within_the_budget() -> None:
    """``^ description`` matches at once; the rest of the line makes ``(-|--)+y`` backtrack
    exponentially. Marking every match on the line must stay within the search's budget."""
    from infra_mgr.errors import Invalid
    from infra_mgr.network.ssh import views

    line = " description " + "-" * 60
    with pytest.raises(Invalid, match="took longer"):
        views._match([(0, f"interface Gi1\n{line}\n")], views.compile_pattern(r"^ description|(-|--)+y"),
                     0, 10, 0.2)


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record the size of every middle section handed to difflib's quadratic matcher."""
    sizes: list[tuple[int, int]] = []
    real = diff.difflib.SequenceMatcher

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, isjunk: Any, a: Any, b: Any, autojunk: bool = True) -> None:
            sizes.append((len(a), len(b)))
            super().__init__(isjunk, a, b, autojunk=autojunk)

    monkeypatch.setattr(diff.difflib, "SequenceMatcher", Counting)
    return sizes


def test_a_large_scattered_change_never_reaches_the_quadratic_matcher_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other line of 20,000 changed: the matcher only ever sees bounded sections, and the
    counts are still exact (each changed line is one removed and one added)."""
    sizes = _count_calls(monkeypatch)
    old = [f"line {n}" for n in range(20_000)]
    new = [f"line {n}" if n % 2 else f"edited {n}" for n in range(20_000)]
    comparison = diff.compare("\n".join(old) + "\n", "\n".join(new) + "\n")
    assert (comparison.added, comparison.removed) == (10_000, 10_000)
    assert all(x * y <= diff.MATCH_CELLS for x, y in sizes)
    assert diff.counts("\n".join(old), "\n".join(new)) == (10_000, 10_000)


def test_bounded_matching_still_gives_a_valid_diff() -> None:
    """Whatever path the matcher takes, applying the opcodes to the old text gives the new one."""
    old = [f"x{n % 7}" if n % 5 else f"u{n}" for n in range(3000)]
    new = list(old)
    new[100:140] = [f"new{n}" for n in range(10)]
    del new[2000:2100]
    new.insert(2500, "!")
    comparison = diff.compare("\n".join(old), "\n".join(new))
    rebuilt: list[str] = []
    for tag, i1, i2, j1, j2 in comparison.opcodes:
        if tag == "equal":
            assert old[i1:i2] == new[j1:j2]
            rebuilt.extend(old[i1:i2])
        else:
            rebuilt.extend(new[j1:j2])
    assert rebuilt == new
    assert [op[1] for op in comparison.opcodes] == sorted(op[1] for op in comparison.opcodes)
