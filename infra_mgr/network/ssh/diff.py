"""Differences between two stored configurations: counts, ``diff -u`` text and side-by-side rows.

Pure functions, no database. A person asking "what changed last night?" needs the answer in
milliseconds even for a 5,000-line configuration, so the matching runs once (:func:`compare`) and
its opcodes feed the counts, the unified text and the side-by-side rows. Configurations mostly
change in a few places: the common head and tail are cut off before ``difflib`` looks at the rest,
which keeps the matcher's work proportional to the changed middle, not to the whole text.

``difflib``'s matcher is quadratic in the middle's length (a 20,000-line configuration with every
other line edited takes seconds, 100,000 lines minutes), so it only ever sees sections of at most
``MATCH_CELLS`` line pairs. A larger middle is first cut at anchors — lines that occur exactly once
on each side, kept in the order both sides agree on (the longest increasing run, as patience diff
does) — and each section between anchors is matched in turn; a section that stays too large and
has no anchor is reported as replaced whole, which bounds the work at the cost of a coarser diff.
"""

from __future__ import annotations

import bisect
import difflib
from collections import Counter
from dataclasses import dataclass

from infra_mgr.network.ssh.views import DiffLine

# (tag, i1, i2, j1, j2) as difflib returns them; tags: equal | replace | delete | insert
Opcode = tuple[str, int, int, int, int]
MATCH_CELLS = 1_000_000  # the largest (old lines × new lines) section given to difflib's matcher
ANCHOR_DEPTH = 12  # how many times a section is cut at its own anchors before it counts as replaced


@dataclass(frozen=True)
class Comparison:
    """The outcome of matching two texts line by line."""

    old: list[str]
    new: list[str]
    opcodes: list[Opcode]

    @property
    def added(self) -> int:
        return sum(j2 - j1 for tag, _, _, j1, j2 in self.opcodes if tag in ("insert", "replace"))

    @property
    def removed(self) -> int:
        return sum(i2 - i1 for tag, i1, i2, _, _ in self.opcodes if tag in ("delete", "replace"))

    @property
    def changed_lines(self) -> int:
        """Lines added plus lines removed: what a version's ``changed_lines`` stores."""
        return self.added + self.removed


def lines_of(text: str) -> list[str]:
    """A configuration's lines without their endings (CRLF from a device is one line end)."""
    return text.splitlines()


def compare(old_text: str, new_text: str) -> Comparison:
    """Match ``old_text`` against ``new_text``."""
    a, b = lines_of(old_text), lines_of(new_text)
    head = 0
    limit = min(len(a), len(b))
    while head < limit and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < limit - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    a_mid, b_mid = a[head:len(a) - tail], b[head:len(b) - tail]
    opcodes: list[Opcode] = []
    if head:
        opcodes.append(("equal", 0, head, 0, head))
    if a_mid or b_mid:
        if not a_mid:
            opcodes.append(("insert", head, head, head, head + len(b_mid)))
        elif not b_mid:
            opcodes.append(("delete", head, head + len(a_mid), head, head))
        else:
            opcodes.extend(_section(a_mid, b_mid, head, head, 0))
    if tail:
        opcodes.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return Comparison(a, b, _merge(opcodes))


def _section(a: list[str], b: list[str], ia: int, ib: int, depth: int) -> list[Opcode]:
    """Opcodes for ``a`` against ``b`` (which start at ``ia``/``ib`` in the whole texts)."""
    if not a and not b:
        return []
    if not a:
        return [("insert", ia, ia, ib, ib + len(b))]
    if not b:
        return [("delete", ia, ia + len(a), ib, ib)]
    if len(a) * len(b) <= MATCH_CELLS:
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=True)
        return [(tag, i1 + ia, i2 + ia, j1 + ib, j2 + ib) for tag, i1, i2, j1, j2 in matcher.get_opcodes()]
    anchors = _anchors(a, b) if depth < ANCHOR_DEPTH else []
    if not anchors:
        return [("replace", ia, ia + len(a), ib, ib + len(b))]
    out: list[Opcode] = []
    pa = pb = 0
    for i, j in anchors:
        out.extend(_section(a[pa:i], b[pb:j], ia + pa, ib + pb, depth + 1))
        out.append(("equal", ia + i, ia + i + 1, ib + j, ib + j + 1))
        pa, pb = i + 1, j + 1
    out.extend(_section(a[pa:], b[pb:], ia + pa, ib + pb, depth + 1))
    return _merge(out)


def _anchors(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Lines found exactly once in ``a`` and once in ``b``, as (index in a, index in b) pairs,
    the longest run in which both indexes increase (O(n log n))."""
    count_a, count_b = Counter(a), Counter(b)
    where_b = {line: j for j, line in enumerate(b) if count_b[line] == 1}
    pairs = [(i, where_b[line]) for i, line in enumerate(a) if count_a[line] == 1 and line in where_b]
    if not pairs:
        return []
    tails: list[int] = []  # tails[k]: the smallest b index ending an increasing run of length k+1
    tail_at: list[int] = []  # the pair index of that tail
    back: list[int] = [-1] * len(pairs)
    for n, (_, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_at.append(n)
        else:
            tails[k], tail_at[k] = j, n
        back[n] = tail_at[k - 1] if k else -1
    run: list[tuple[int, int]] = []
    n = tail_at[-1]
    while n >= 0:
        run.append(pairs[n])
        n = back[n]
    return run[::-1]


def _merge(opcodes: list[Opcode]) -> list[Opcode]:
    """Join neighbouring equal runs (the cut head/tail may touch an equal run of the matcher)."""
    out: list[Opcode] = []
    for op in opcodes:
        if out and out[-1][0] == op[0] == "equal":
            prev = out[-1]
            out[-1] = ("equal", prev[1], op[2], prev[3], op[4])
        else:
            out.append(op)
    return out


def counts(old_text: str, new_text: str) -> tuple[int, int]:
    """(added, removed) lines from ``old_text`` to ``new_text``."""
    comparison = compare(old_text, new_text)
    return comparison.added, comparison.removed


def _hunks(opcodes: list[Opcode], context: int) -> list[list[Opcode]]:
    """Group opcodes into hunks with ``context`` unchanged lines around each change (as ``diff -u``)."""
    if not any(tag != "equal" for tag, *_ in opcodes):
        return []
    codes = list(opcodes)
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = (tag, max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = (tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    groups: list[list[Opcode]] = []
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            groups.append(group)
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        groups.append(group)
    return [g for g in groups if any(op[0] != "equal" for op in g)]


def _range(start: int, length: int) -> str:
    """``diff -u``'s hunk range: 1-based start, length omitted when 1, start before when empty."""
    first = start + 1
    if length == 1:
        return str(first)
    if not length:
        first -= 1
    return f"{first},{length}"


def unified(comparison: Comparison, old_label: str = "old", new_label: str = "new", context: int = 3) -> str:
    """The ``diff -u`` text (empty when nothing changed)."""
    hunks = _hunks(comparison.opcodes, context)
    if not hunks:
        return ""
    a, b = comparison.old, comparison.new
    out = [f"--- {old_label}\n", f"+++ {new_label}\n"]
    for hunk in hunks:
        first, last = hunk[0], hunk[-1]
        out.append(f"@@ -{_range(first[1], last[2] - first[1])} +{_range(first[3], last[4] - first[3])} @@\n")
        for tag, i1, i2, j1, j2 in hunk:
            if tag == "equal":
                out.extend(f" {line}\n" for line in a[i1:i2])
                continue
            out.extend(f"-{line}\n" for line in a[i1:i2])
            out.extend(f"+{line}\n" for line in b[j1:j2])
    return "".join(out)


def rows(comparison: Comparison, context: int = 3) -> list[DiffLine]:
    """Side-by-side rows; unchanged runs longer than ``2 * context`` keep ``context`` lines on each
    side of a change and fold the rest into one ``skipped`` row. A replaced block pairs its lines
    as ``changed`` and shows the surplus of either side as ``removed`` or ``added``."""
    a, b = comparison.old, comparison.new
    out: list[DiffLine] = []
    codes = comparison.opcodes
    for index, (tag, i1, i2, j1, j2) in enumerate(codes):
        if tag == "equal":
            keep_head = context if index > 0 else 0
            keep_tail = context if index < len(codes) - 1 else 0
            length = i2 - i1
            if length <= keep_head + keep_tail:
                out.extend(_same(a, i1, i2, j1))
                continue
            out.extend(_same(a, i1, i1 + keep_head, j1))
            out.append(DiffLine(kind="skipped", left_no=i1 + keep_head + 1, right_no=j1 + keep_head + 1,
                                count=length - keep_head - keep_tail))
            out.extend(_same(a, i2 - keep_tail, i2, j2 - keep_tail))
            continue
        paired = min(i2 - i1, j2 - j1)
        for k in range(paired):
            out.append(DiffLine(kind="changed", left_no=i1 + k + 1, left=a[i1 + k], right_no=j1 + k + 1,
                                right=b[j1 + k]))
        for k in range(i1 + paired, i2):
            out.append(DiffLine(kind="removed", left_no=k + 1, left=a[k]))
        for k in range(j1 + paired, j2):
            out.append(DiffLine(kind="added", right_no=k + 1, right=b[k]))
    return out


def _same(a: list[str], i1: int, i2: int, j1: int) -> list[DiffLine]:
    return [DiffLine(kind="same", left_no=i + 1, left=a[i], right_no=j1 + (i - i1) + 1, right=a[i])
            for i in range(i1, i2)]
