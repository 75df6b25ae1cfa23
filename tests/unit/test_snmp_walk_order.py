"""The engine checks OID order one GETBULK answer at a time (engine._ordered): it must agree with
the obvious varbind-by-varbind rule on every answer, honest or not, column or entry walk."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from infra_mgr.snmp.engine import _ordered, varbind_size

BASE = "1.3.6.1.2.1.2.2"
PREFIX = BASE + "."


def reference(answer: list[tuple[str, object]], last: tuple[int, ...]) -> tuple[int, tuple[int, ...], str]:
    for n, (oid, _) in enumerate(answer):
        if not oid.startswith(PREFIX) or oid == BASE:
            return n, last, "outside"
        try:
            key = tuple(int(a) for a in oid[len(PREFIX):].split("."))
        except ValueError:
            return n, last, "malformed"
        if key <= last:
            return n, last, "loop"
        last = key
    return len(answer), last, ""


def test_honest_column_and_entry_answers() -> None:
    column = [(f"{PREFIX}1.{i}", i) for i in (1, 2, 10, 11)]
    assert _ordered([(f"{PREFIX}{i}", i) for i in (1, 2, 10)], PREFIX, ()) == (3, (10,), "")
    assert _ordered(column, PREFIX, (1, 0)) == (4, (1, 11), "")


def test_lies_are_found_where_they_are() -> None:
    regress = [(f"{PREFIX}1.9", 0), (f"{PREFIX}1.10", 0), (f"{PREFIX}1.9", 0)]
    assert _ordered(regress, PREFIX, ()) == (2, (1, 10), "loop")
    assert _ordered([(f"{PREFIX}5", 0), (f"{PREFIX}5", 0)], PREFIX, ()) == (1, (5,), "loop")
    assert _ordered([(f"{PREFIX}3", 0)], PREFIX, (3,)) == (0, (3,), "loop")  # repeats the previous answer's last
    assert _ordered([(f"{PREFIX}1.1", 0), ("1.3.6.1.2.1.2.3.1", 0)], PREFIX, ()) == (1, (1, 1), "outside")
    assert _ordered([(f"{PREFIX}1.x", 0)], PREFIX, ()) == (0, (), "malformed")


suffixes = st.lists(st.integers(0, 300), min_size=1, max_size=3).map(lambda arcs: ".".join(map(str, arcs)))
oids = st.one_of(suffixes.map(lambda s: PREFIX + s), st.sampled_from([BASE, "1.3.6.1.2.1.2.3.1", PREFIX + "1.a"]))


@given(st.lists(oids, min_size=1, max_size=30), st.lists(st.integers(0, 300), max_size=3).map(tuple))
def test_agrees_with_the_varbind_by_varbind_rule(answer_oids: list[str], last: tuple[int, ...]) -> None:
    answer = [(oid, 0) for oid in answer_oids]
    assert _ordered(answer, PREFIX, last) == reference(answer, last)


def test_varbind_size_estimate_is_near_the_encoding() -> None:
    # ifDescr.12 = "GigabitEthernet1/0/12": 30-byte sequence per BER (2 + 2+10 + 2+19 … rounded)
    assert 30 <= varbind_size(f"{PREFIX}1.2.12", b"GigabitEthernet1/0/12") <= 45
    assert varbind_size(f"{PREFIX}1.2.12", b"x" * 200) > 200
    assert varbind_size("1.0.8802.1.1.2.1.4.1.1.9.0.1.1", 5) < varbind_size("1.0.8802.1.1.2.1.4.1.1.9.0.1.1", b"x" * 30)
