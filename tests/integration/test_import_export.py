"""Import/export: the Jeddah example, idempotence, round-trip, and all-or-nothing bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from infra_mgr.inventory.importer import ImportFailed, export_yaml, import_file
from infra_mgr.inventory.models import ObjectChange, Prefix, Site

EXAMPLE = Path(__file__).parents[2] / "examples" / "jeddah.yaml"


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_jeddah_example_imports_once_and_round_trips(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as s:
        first = import_file(s, EXAMPLE)
        s.commit()
    assert first.created["site"] == 65 and first.created["prefix"] > 63 * 3
    with Session(engine) as s:
        branches = s.exec(select(Site).where(Site.kind == "branch")).all()
        assert len(branches) == 63
        assert all(b.name_ar for b in branches)
        again = import_file(s, EXAMPLE)
        s.commit()
    assert again.created == {"site": 0, "prefix": 0, "device": 0}
    assert again.unchanged["site"] == 65
    with Session(engine) as s:
        exported = export_yaml(s)
    out = tmp_path / "export.yaml"
    out.write_text(exported, encoding="utf-8")
    with Session(engine) as s:
        third = import_file(s, out)
    assert third.updated == {"site": 0, "prefix": 0, "device": 0}
    assert "بلدية البلد الفرعية" in exported


def test_bad_rows_are_reported_with_line_and_nothing_is_written(engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sites:\n"
        "  - code: JED-X1\n"
        "    name_en: Good site\n"
        "    prefixes:\n"
        "      - prefix: 10.9.0.0/24\n"
        "  - code: bad code\n"
        "    name_en: Broken\n"
        "    latitude: 500\n"
        "  - code: JED-X2\n"
        "    name_en: Bad prefix\n"
        "    prefixes:\n"
        "      - prefix: 10.9.1.7/24\n"
        "devices:\n"
        "  - hostname: r1\n"
        "    site: JED-NOPE\n",
        encoding="utf-8",
    )
    with Session(engine) as s, pytest.raises(ImportFailed) as info:
        import_file(s, bad)
    problems = info.value.problems
    assert f"{bad}:6: code: " in problems[0]
    assert any(p.startswith(f"{bad}:8: latitude: ") for p in problems)
    assert any(p.startswith(f"{bad}:12: prefix: ") for p in problems)
    assert any(p.startswith(f"{bad}:15: site: no site with code 'JED-NOPE'") for p in problems)
    assert _count(engine, Site) == 0 and _count(engine, Prefix) == 0 and _count(engine, ObjectChange) == 0


def test_csv_import_and_errors(engine: Engine, tmp_path: Path) -> None:
    sites = tmp_path / "sites.csv"
    sites.write_text("code,name_en,name_ar,kind\nJED-B01,Al Balad,البلد,branch\nJED-B02,Al Rawdah,الروضة,shop\n",
                     encoding="utf-8")
    with Session(engine) as s, pytest.raises(ImportFailed) as info:
        import_file(s, sites)
    assert info.value.problems == [f"{sites}:3: kind: Input should be 'branch', 'hq' or 'datacenter'"]
    sites.write_text("code,name_en,name_ar,kind\nJED-B01,Al Balad,البلد,branch\n", encoding="utf-8")
    prefixes = tmp_path / "prefixes.csv"
    prefixes.write_text("prefix,site,role\n10.64.1.0/24,JED-B01,users\n", encoding="utf-8")
    with Session(engine) as s:
        import_file(s, sites)
        import_file(s, prefixes)
        s.commit()
        pfx = s.exec(select(Prefix)).one()
        site = s.exec(select(Site)).one()
    assert pfx.site_id == site.id and site.name_ar == "البلد"


def test_not_yaml_and_not_utf8(engine: Engine, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("sites:\n  - code: [unclosed\n", encoding="utf-8")
    with Session(engine) as s, pytest.raises(ImportFailed) as info:
        import_file(s, broken)
    assert info.value.problems[0].startswith(f"{broken}:")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("code,name_en\nJED-1,caf\xe9\n".encode("latin-1"))
    with Session(engine) as s, pytest.raises(ImportFailed) as info:
        import_file(s, latin)
    assert "not UTF-8" in info.value.problems[0]
