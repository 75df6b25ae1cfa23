"""An import never re-homes an existing object unasked, a dry run writes nothing and reports what a
real run would, and a hostile file (a device, a FIFO, a huge file, a secret file, a YAML bomb) is
refused without reading it whole or printing what it holds."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from infra_mgr.inventory.importer import ImportFailed, import_file
from infra_mgr.inventory.models import Device, ObjectChange, Prefix, Site

EXAMPLE = Path(__file__).parents[2] / "examples" / "jeddah.yaml"

NEW_SITE_TAKING_A_PREFIX = (
    "sites:\n"
    "  - code: TST-03\n"
    "    name_en: Test branch\n"
    "    prefixes:\n"
    "      - prefix: 10.64.7.0/24\n"  # line 5: JED-B07's users LAN
    "        role: users\n"
    "      - prefix: 10.99.3.0/24\n"
)

DEVICES = (
    "devices:\n"
    "  - hostname: b07-sw1\n"
    "    site: JED-B07\n"
    "    management_address: 10.64.7.2\n"
    "  - hostname: b08-sw1\n"
    "    site: JED-B08\n"
    "    management_address: 10.64.8.2\n"
)

DEVICES_ELSEWHERE = (
    "sites:\n"
    "  - code: TST-03\n"
    "    name_en: Test branch\n"
    "devices:\n"
    "  - hostname: b07-sw1\n"
    "    site: TST-03\n"  # line 6: the device would leave JED-B07
    "  - hostname: tst-sw1\n"
    "    site: TST-03\n"
    "    management_address: 10.64.8.2\n"  # line 9: b08-sw1's address
)


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def _owner(engine: Engine, prefix: str) -> str | None:
    with Session(engine) as s:
        pfx = s.exec(select(Prefix).where(Prefix.prefix == prefix)).one()
        site = s.get(Site, pfx.site_id) if pfx.site_id else None
        return site.code if site else None


def _device_site(engine: Engine, hostname: str) -> str:
    with Session(engine) as s:
        dev = s.exec(select(Device).where(Device.hostname == hostname)).one()
        site = s.get(Site, dev.site_id)
        assert site is not None
        return site.code


def _import(engine: Engine, path: Path, **kwargs: bool) -> list[str]:
    with Session(engine) as s:
        result = import_file(s, path, **kwargs)
        s.commit()
    return [c.describe() for c in result.changes if c.action != "unchanged"]


@pytest.fixture
def city(engine: Engine, tmp_path: Path) -> Engine:
    """The Jeddah example plus two switches with management addresses."""
    devices = tmp_path / "devices.yaml"
    devices.write_text(DEVICES, encoding="utf-8")
    with Session(engine) as s:
        import_file(s, EXAMPLE)
        import_file(s, devices)
        s.commit()
    return engine


def test_an_object_of_another_owner_is_refused_naming_it_and_nothing_is_written(city: Engine,
                                                                                tmp_path: Path) -> None:
    new_site = tmp_path / "tst.yaml"
    new_site.write_text(NEW_SITE_TAKING_A_PREFIX, encoding="utf-8")
    changes_before = _count(city, ObjectChange)
    with Session(city) as s, pytest.raises(ImportFailed) as info:
        import_file(s, new_site)
    assert info.value.problems == [f"{new_site}:5: prefix 10.64.7.0/24 belongs to JED-B07 "
                                   "(the file gives it to TST-03; --move re-homes it)"]
    assert _owner(city, "10.64.7.0/24") == "JED-B07"
    with Session(city) as s:
        assert s.exec(select(Site).where(Site.code == "TST-03")).first() is None
        assert s.exec(select(Prefix).where(Prefix.prefix == "10.99.3.0/24")).first() is None

    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(DEVICES_ELSEWHERE, encoding="utf-8")
    with Session(city) as s, pytest.raises(ImportFailed) as info:
        import_file(s, elsewhere)
    assert info.value.problems == [
        f"{elsewhere}:6: device b07-sw1 belongs to JED-B07 (the file gives it to TST-03; --move re-homes it)",
        f"{elsewhere}:9: address 10.64.8.2 belongs to b08-sw1 (the file gives it to tst-sw1; --move re-homes it)",
    ]
    assert _device_site(city, "b07-sw1") == "JED-B07"
    assert _count(city, Device) == 2 and _count(city, ObjectChange) == changes_before

    # A CSV row without a site takes the prefix away from its site: that is a move too.
    orphan = tmp_path / "prefixes.csv"
    orphan.write_text("prefix,role\n10.64.7.0/24,users\n", encoding="utf-8")
    with Session(city) as s, pytest.raises(ImportFailed) as info:
        import_file(s, orphan)
    assert info.value.problems[0].startswith(f"{orphan}:2: prefix 10.64.7.0/24 belongs to JED-B07 ")
    assert _owner(city, "10.64.7.0/24") == "JED-B07"


def test_move_rehomes_and_lists_each_move(city: Engine, tmp_path: Path) -> None:
    new_site = tmp_path / "tst.yaml"
    new_site.write_text(NEW_SITE_TAKING_A_PREFIX, encoding="utf-8")
    listed = _import(city, new_site, move=True)
    assert "moved: prefix 10.64.7.0/24 JED-B07 -> TST-03 (description)" in listed
    assert "created: prefix 10.99.3.0/24" in listed and "created: site TST-03" in listed
    assert _owner(city, "10.64.7.0/24") == "TST-03"

    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(DEVICES_ELSEWHERE, encoding="utf-8")
    listed = _import(city, elsewhere, move=True)
    assert listed == ["moved: address 10.64.8.2 b08-sw1 -> tst-sw1",
                      "updated: device b08-sw1 (management_address)",
                      "moved: device b07-sw1 JED-B07 -> TST-03",
                      "created: device tst-sw1"]
    assert _device_site(city, "b07-sw1") == "TST-03"
    with Session(city) as s:
        held = {d.hostname: d.management_address for d in s.exec(select(Device)).all()}
    assert held == {"b07-sw1": "10.64.7.2", "b08-sw1": None, "tst-sw1": "10.64.8.2"}
    assert _import(city, elsewhere) == []  # the same file again: nothing left to move


def test_dry_run_reports_what_a_real_run_writes_and_writes_nothing(city: Engine, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.yaml"
    device_rows = DEVICES_ELSEWHERE[DEVICES_ELSEWHERE.index("devices:"):]
    elsewhere.write_text(NEW_SITE_TAKING_A_PREFIX + device_rows, encoding="utf-8")
    counts = {m: _count(city, m) for m in (Site, Prefix, Device, ObjectChange)}
    dry = _import(city, elsewhere, move=True, dry_run=True)
    assert {m: _count(city, m) for m in (Site, Prefix, Device, ObjectChange)} == counts
    assert _owner(city, "10.64.7.0/24") == "JED-B07" and _device_site(city, "b07-sw1") == "JED-B07"
    real = _import(city, elsewhere, move=True)
    assert dry == real and len(real) == 7


# --------------------------------------------------------------------------- the command line


def _limit_memory() -> None:
    """A hostile file must not cost the importer more than this; the old code's read of
    /dev/zero ends here in a MemoryError rather than by eating the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def run(tmp_path: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INFRA_MGR_DATA_DIR": str(tmp_path / "data"), "INFRA_MGR_SECRET_KEY": "cli-test-key",
           **env_extra}
    env.pop("INFRA_MGR_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "infra_mgr", *args], capture_output=True, text=True, env=env,
                          timeout=120, preexec_fn=_limit_memory)


def test_cli_refuses_a_silent_move_and_dry_runs_an_explicit_one(tmp_path: Path) -> None:
    assert run(tmp_path, "import", str(EXAMPLE)).returncode == 0
    tst = tmp_path / "tst.yaml"
    tst.write_text(NEW_SITE_TAKING_A_PREFIX, encoding="utf-8")

    refused = run(tmp_path, "import", str(tst))
    assert refused.returncode == 1, refused.stdout
    assert f"{tst}:5: prefix 10.64.7.0/24 belongs to JED-B07" in refused.stderr
    assert "nothing written" in refused.stderr

    dry = run(tmp_path, "import", str(tst), "--move", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[:4] == ["dry run: nothing written", "created: site TST-03",
                         "moved: prefix 10.64.7.0/24 JED-B07 -> TST-03 (description)",
                         "created: prefix 10.99.3.0/24"]
    assert "total moved: 1 prefixes, 0 devices, 0 addresses" in lines
    exported = run(tmp_path, "export").stdout
    assert "TST-03" not in exported and "10.99.3.0/24" not in exported

    moved = run(tmp_path, "import", str(tst), "--move", "--json")
    assert moved.returncode == 0, moved.stderr
    summary = json.loads(moved.stdout)
    assert summary["dry_run"] is False and summary["moved"]["prefix"] == 1
    assert {"action": "moved", "kind": "prefix", "key": "10.64.7.0/24", "from": "JED-B07", "to": "TST-03",
            "fields": {"description": {"before": "Al Baghdadiyah staff LAN", "after": ""}}} in summary["changes"]
    assert "code: TST-03" in run(tmp_path, "export").stdout


def _one_line_refusal(res: subprocess.CompletedProcess[str], what: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr[-500:])
    assert res.stdout == "" and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and what in res.stderr


def test_cli_refuses_devices_fifos_directories_and_big_files_before_reading(tmp_path: Path) -> None:
    _one_line_refusal(run(tmp_path, "import", "/dev/zero"), "/dev/zero: a character device")
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # nobody writes: reading it would block for ever
    _one_line_refusal(run(tmp_path, "import", str(fifo)), "a FIFO")
    _one_line_refusal(run(tmp_path, "import", str(tmp_path)), "a directory")
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    _one_line_refusal(run(tmp_path, "import", str(link)), "a character device")
    _one_line_refusal(run(tmp_path, "import", str(EXAMPLE), INFRA_MGR_IMPORT_MAX_BYTES="1000"),
                      "above the import limit of 1000 bytes")
    assert run(tmp_path, "import", str(EXAMPLE), INFRA_MGR_IMPORT_MAX_BYTES="100000").returncode == 0


SECRET = "hunter2-Zq9"


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("shadow", f"root:$y$j9T${SECRET}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
     ["shadow:1: file: unknown section", "shadow:2: file: unknown section"]),
    ("keys.yaml", f"sites:\n  - code: JED-1\n    name_en: ok\n    {SECRET}: 1\n",
     ["keys.yaml:4: field: unknown name"]),
    ("values.yaml", f"sites:\n  - code: JED-1\n    name_en: ok\n    prefixes:\n      - prefix: '{SECRET}'\n"
     f"devices:\n  - hostname: r1\n    site: '{SECRET} !'\n",
     ["values.yaml:5: prefix: ", "values.yaml:8: site: not a site code"]),
    ("cols.csv", f"code,name_en,{SECRET}\nJED-1,ok,{SECRET}\n", ["cols.csv:1: header: column 3 not a known field"]),
    ("bad.yaml", f"sites:\n  - code: [{SECRET}\n", ["bad.yaml:"]),
])
def test_cli_problems_name_the_line_never_the_content(tmp_path: Path, name: str, content: str,
                                                      expected: list[str]) -> None:
    hostile = tmp_path / name
    hostile.write_text(content, encoding="utf-8")
    res = run(tmp_path, "import", str(hostile))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert SECRET not in res.stderr + res.stdout
    for start in expected:
        assert any(line.startswith(f"{tmp_path}/{start}") for line in res.stderr.splitlines()), res.stderr


def test_yaml_bombs_are_refused_without_expanding(engine: Engine, tmp_path: Path) -> None:
    # An alias repeats a whole list for a few bytes: 20 sites naming the same 10^4-entry prefix
    # list are 200,000 rows from a file of 200 KB, and nesting aliases multiplies again.
    prefixes = "[" + ", ".join(["{prefix: 10.0.0.0/8}"] * 10_000) + "]"
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(f"sites:\n  - {{code: JED-0, name_en: b, prefixes: &p {prefixes}}}\n"
                    + "".join(f"  - {{code: JED-{i}, name_en: b, prefixes: *p}}\n" for i in range(1, 20)),
                    encoding="utf-8")
    deep = tmp_path / "deep.yaml"
    deep.write_text("sites: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    for path, problem in ((bomb, ":3: file: not valid YAML (aliases (*name) are not accepted"),
                          (deep, ":1: file: not valid YAML (nested deeper than")):
        with Session(engine) as s, pytest.raises(ImportFailed) as info:
            import_file(s, path)
        assert info.value.problems[0].startswith(f"{path}{problem}"), info.value.problems
    assert _count(engine, Site) == 0
