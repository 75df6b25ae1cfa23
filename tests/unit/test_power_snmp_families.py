"""The SNMP power tables for APC rack PDUs and ATSs (``oids.yaml``), read from the lab's generated
records without a network: kinds, scales, NUT names and ups.status from flags alone."""

from __future__ import annotations

import time
from typing import Any

import pytest

from infra_mgr.lab.power_scenario import Outage
from infra_mgr.lab.power_snmp import ATS, RPDU2, AtsContext, apc_ats_records, apc_pdu_records
from infra_mgr.power.collectors.snmp_ups import (
    OidTableError,
    build_readings,
    family_for,
    load_oid_tables,
    parse_oid_tables,
)
from infra_mgr.power.readings import PowerReadings


def _read(family: str, values: dict[str, Any]) -> PowerReadings:
    result = PowerReadings(source="snmp://test:161")
    assert build_readings(load_oid_tables()[family], values, [], result.source, result)
    return result


def test_apc_prefixes_pick_ups_pdu_and_ats() -> None:
    kinds = {oid: (f.name, f.kind) for oid in ("1.3.6.1.4.1.318.1.3.27", "1.3.6.1.4.1.318.1.3.4.5",
                                               "1.3.6.1.4.1.318.1.3.4.6", "1.3.6.1.4.1.318.1.3.11")
             if (f := family_for(oid)) is not None}
    assert kinds == {"1.3.6.1.4.1.318.1.3.27": ("apc-powernet", "ups"),
                     "1.3.6.1.4.1.318.1.3.4.5": ("apc-rpdu2", "pdu"),
                     "1.3.6.1.4.1.318.1.3.4.6": ("apc-rpdu2", "pdu"),
                     "1.3.6.1.4.1.318.1.3.11": ("apc-ats", "ats")}


def test_pdu_readings_are_scaled_to_nut_units() -> None:
    r = _read("apc-rpdu2", {rec.oid: rec.value for rec in apc_pdu_records()})
    assert (r.kind, r.vendor, r.model) == ("pdu", "APC", "AP8941") and not r.errors
    got = r.readings
    assert got["input.realpower"] == 3420 and got["input.power"] == 3600  # 0.01 kW / kVA → W / VA
    assert got["input.current"] == pytest.approx(15.6) and got["input.L1.current"] == pytest.approx(15.6)
    assert got["input.energy"] == pytest.approx(18745.2) and got["outlet.count"] == 24
    assert "input.L2.current" not in got  # single phase: the instance is absent, not an error
    assert got["ups.status"] == "OL" and "ups.alarm" not in got and "_load_state" not in got


def test_pdu_load_state_gives_flags_and_alarm() -> None:
    values = {rec.oid: rec.value for rec in apc_pdu_records()}
    values[f"{RPDU2}.4.3.1.4.1"] = 4  # rPDU2DeviceStatusLoadState: overload
    r = _read("apc-rpdu2", values)
    assert r.readings["ups.status"] == "OL OVER" and r.readings["ups.alarm"] == "overload"


def test_older_rpdu_answers_through_the_fallback_oids() -> None:
    r = _read("apc-rpdu2", {"1.3.6.1.4.1.318.1.1.12.1.5.0": "AP7900", "1.3.6.1.4.1.318.1.1.12.1.16.0": 410,
                            "1.3.6.1.4.1.318.1.1.12.2.3.1.1.2.1": 23})
    assert r.model == "AP7900" and r.readings["input.realpower"] == 410
    assert r.readings["input.current"] == pytest.approx(2.3)


def test_ats_normal_and_on_source_b_with_redundancy_lost() -> None:
    now = time.time()
    normal = _read("apc-ats", {rec.oid: rec.value for rec in apc_ats_records(Outage(), now)})
    assert (normal.kind, normal.model) == ("ats", "AP4423") and not normal.errors
    got = normal.readings
    assert (got["input.source"], got["input.source.preferred"], got["ats.redundancy"]) == ("A", "A", "redundant")
    assert got["output.current"] == pytest.approx(8.8) and got["output.realpower"] == 1883
    assert got["ups.status"] == "OL" and "ups.alarm" not in got

    outage = _read("apc-ats", {rec.oid: rec.value for rec in apc_ats_records(Outage(started_at=now - 5), now)})
    got = outage.readings
    assert (got["input.source"], got["ats.redundancy"]) == ("B", "lost")
    assert got["input.1.voltage"] == 0 and got["input.2.voltage"] > 200  # type: ignore[operator]
    assert got["ups.alarm"] == "redundancy lost" and got["ups.status"] == "OL"
    assert "input.1.frequency" in got  # source A's frequency is static in the record


def test_ats_output_failure_is_off() -> None:
    values = {rec.oid: rec.value for rec in apc_ats_records(Outage(), time.time())}
    values[f"{ATS}.5.1.15.0"] = 1  # atsStatusVoltageOutStatus: fail
    values[f"{ATS}.5.3.2.1.4.2"] = -1  # atsInputFrequency of B: not measurable
    r = _read("apc-ats", values)
    assert r.readings["ups.status"] == "OFF" and "no output voltage" in str(r.readings["ups.alarm"])
    assert r.readings["input.2.frequency"] is None and [e.kind for e in r.errors] == ["sentinel"]


def test_ats_context_follows_mains() -> None:
    now = time.time()
    assert AtsContext(Outage(), now).selected == 1
    assert AtsContext(Outage(started_at=now - 1), now).selected == 2
    assert AtsContext(Outage(started_at=now - 60, ended_at=now - 30), now).selected == 1


def test_family_kind_is_validated() -> None:
    table = {"families": {"x": {"kind": "switch", "sys_object_ids": ["1.3.6.1.4.1.99"],
                                "readings": {"ups.model": {"oid": "1.3.6.1.4.1.99.1.0"}}}}}
    with pytest.raises(OidTableError, match="kind 'switch'"):
        parse_oid_tables(table)
    table["families"]["x"]["kind"] = "pdu"
    assert parse_oid_tables(table)["x"].kind == "pdu"


def test_bad_data_files_name_the_file_and_key() -> None:
    """oids.yaml, vendors.yaml and tables.yaml are validated by pydantic models at load: a wrong
    file fails with the file and the key named, not later in a poll."""
    from infra_mgr.network.snmp.schema import DataFileError, parse_tables, parse_vendors

    with pytest.raises(OidTableError, match=r"oids.yaml: family x: .*fill_from 'nope'"):
        parse_oid_tables({"families": {"x": {"fill_from": "nope", "readings": {"ups.load": {"oid": "1.2.3"}}}}},
                         "oids.yaml")
    with pytest.raises(OidTableError, match=r"oids.yaml: family x reading ups.load #1 scale: .*non-zero"):
        parse_oid_tables({"families": {"x": {"readings": {"ups.load": {"oid": "1.2.3", "scale": 0}}}}}, "oids.yaml")
    with pytest.raises(DataFileError, match=r"vendors.yaml: vendors #1 scalars.modle: "):
        parse_vendors({"vendors": [{"prefix": "1.3.6.1.4.1.9", "vendor": "X", "scalars": {"modle": "1.2.3"}}]})
    with pytest.raises(DataFileError, match=r"vendors.yaml: vendors #1 prefix: 'cisco' is not a numeric OID"):
        parse_vendors({"vendors": [{"prefix": "cisco", "vendor": "X"}]})
    with pytest.raises(DataFileError, match=r"tables.yaml: tables.t.columns.a.type: "):
        parse_tables({"scalars": {}, "enums": {},
                      "tables": {"t": {"entry": "1.3.6", "columns": {"a": {"id": 1, "type": "txt"}}}}})


def test_fill_from_reads_missing_readings_from_the_other_family() -> None:
    """A vendor family whose own OID gives nothing takes the reading from fill_from's sources (a
    second GET, asked only for what is missing); a reading its own OID gives is not asked again."""
    tables = parse_oid_tables({"families": {
        "std": {"readings": {"battery.charge": {"oid": "9.1"}, "ups.load": {"oid": "9.2"}}},
        "vendor": {"fill_from": "std", "readings": {"battery.charge": {"oid": "5.1"}, "ups.load": {"oid": "5.2"},
                                                    "ups.model": {"oid": "5.3"}}}}})
    fam = tables["vendor"]
    assert fam.oids() == ["5.1", "5.2", "5.3"]
    first = {"5.2": 40, "5.3": b"X-1"}
    assert fam.later_oids(first) == ["9.1"]
    result = PowerReadings(source="s")
    assert build_readings(fam, {**first, "9.1": 87}, [], "s", result)
    assert result.readings["battery.charge"] == 87 and result.readings["ups.load"] == 40
