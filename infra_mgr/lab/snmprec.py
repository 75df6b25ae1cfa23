"""A small typed writer (and reader) of snmpsim ``.snmprec`` recordings.

A recording is one ``OID|tag|value`` line per variable. snmpsim answers GETNEXT/GETBULK by walking
the file in line order, so the lines must be sorted in *numeric* OID order (``…2.2.1.10`` after
``…2.2.1.9``); a plain string sort would make walks skip or repeat columns. We always sort here so
generators can emit records in whatever order is convenient.

Octet strings that are not plain printable ASCII (Arabic UTF-8 text, MAC addresses, anything with
leading/trailing blanks that snmpsim's parser would strip) are written in the ``4x`` hex form so
the agent serves exactly the bytes we meant.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class SnmpType(IntEnum):
    """The snmprec tag of each SNMP type we generate (the BER tag numbers snmpsim uses)."""

    INTEGER = 2
    OCTET_STRING = 4
    OID = 6
    IP_ADDRESS = 64
    COUNTER32 = 65
    GAUGE32 = 66
    TIMETICKS = 67
    COUNTER64 = 70


_INT_RANGES: dict[SnmpType, tuple[int, int]] = {
    SnmpType.INTEGER: (-(2**31), 2**31 - 1),
    SnmpType.COUNTER32: (0, 2**32 - 1),
    SnmpType.GAUGE32: (0, 2**32 - 1),
    SnmpType.TIMETICKS: (0, 2**32 - 1),
    SnmpType.COUNTER64: (0, 2**64 - 1),
}


def oid_key(oid: str) -> tuple[int, ...]:
    """Numeric sort key of a dotted OID (``"1.3.6.1.2.1.2.2.1.10"`` → ``(1, 3, …, 10)``)."""
    return tuple(int(part) for part in oid.strip(".").split("."))


def _check_oid(oid: str) -> str:
    normalised = oid.strip().lstrip(".")
    parts = normalised.split(".")
    if len(parts) < 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"not a numeric OID: {oid!r}")
    return normalised


@dataclass(frozen=True)
class SnmpRecord:
    """One variable of a recording: a numeric OID, its SNMP type and its value.

    ``value`` is an ``int`` for the integer types, ``str`` (UTF-8 encoded on write) or ``bytes`` for
    OCTET STRING, a dotted string for OID and IpAddress.
    """

    oid: str
    type: SnmpType
    value: int | str | bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "oid", _check_oid(self.oid))
        object.__setattr__(self, "type", SnmpType(self.type))
        if self.type in _INT_RANGES:
            low, high = _INT_RANGES[self.type]
            if not isinstance(self.value, int) or isinstance(self.value, bool):
                raise TypeError(f"{self.oid}: {self.type.name} needs an int, got {self.value!r}")
            if not low <= self.value <= high:
                raise ValueError(f"{self.oid}: {self.value} out of range for {self.type.name}")
        elif self.type is SnmpType.OCTET_STRING:
            if not isinstance(self.value, str | bytes):
                raise TypeError(f"{self.oid}: OCTET STRING needs str or bytes, got {self.value!r}")
        elif self.type is SnmpType.OID:
            object.__setattr__(self, "value", _check_oid(str(self.value)))
        elif self.type is SnmpType.IP_ADDRESS:
            octets = str(self.value).split(".")
            if len(octets) != 4 or not all(o.isdigit() and int(o) < 256 for o in octets):
                raise ValueError(f"{self.oid}: not an IPv4 address: {self.value!r}")

    @property
    def octets(self) -> bytes:
        """The exact bytes an OCTET STRING record carries on the wire."""
        if self.type is not SnmpType.OCTET_STRING:
            raise TypeError(f"{self.oid} is not an OCTET STRING")
        return self.value.encode("utf-8") if isinstance(self.value, str) else bytes(self.value)


def _is_plain(data: bytes) -> bool:
    """Whether bytes survive snmpsim's line parser unchanged (printable ASCII, no edge blanks)."""
    return all(0x20 <= b <= 0x7E for b in data) and data == data.strip()


def format_record(record: SnmpRecord) -> str:
    """One snmprec line (without newline) for a record."""
    if record.type is SnmpType.OCTET_STRING:
        data = record.octets
        if _is_plain(data):
            return f"{record.oid}|4|{data.decode('ascii')}"
        return f"{record.oid}|4x|{data.hex()}"
    value = record.value
    if isinstance(value, bytes):  # unreachable: SnmpRecord admits bytes only for OCTET STRING
        raise TypeError(f"{record.oid}: bytes value for {record.type.name}")
    return f"{record.oid}|{int(record.type)}|{value}"


def parse_line(line: str) -> SnmpRecord:
    """Parse one snmprec line we (or snmpsim's grammar) wrote; hex forms come back as ``bytes``."""
    oid, tag, value = line.rstrip("\r\n").split("|", 2)
    hexed = tag.endswith("x")
    snmp_type = SnmpType(int(tag.removesuffix("x")))
    if snmp_type is SnmpType.OCTET_STRING:
        return SnmpRecord(oid, snmp_type, bytes.fromhex(value) if hexed else value)
    if hexed:
        raise ValueError(f"hex form of {snmp_type.name} is not supported: {line!r}")
    if snmp_type in _INT_RANGES:
        return SnmpRecord(oid, snmp_type, int(value))
    return SnmpRecord(oid, snmp_type, value)


def sorted_records(records: Iterable[SnmpRecord]) -> list[SnmpRecord]:
    """Records in numeric OID order; a duplicate OID is a generator bug, so it raises."""
    ordered = sorted(records, key=lambda r: oid_key(r.oid))
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.oid == after.oid:
            raise ValueError(f"duplicate OID in recording: {before.oid}")
    return ordered


def write_snmprec(path: Path | str, records: Iterable[SnmpRecord]) -> Path:
    """Write a recording sorted numerically; atomic (temp file + rename) so a running agent never
    indexes a half-written file. An unchanged file is left alone: snmpsim rebuilds its index of a
    recording whose modification time changed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(format_record(r) + "\n" for r in sorted_records(records))
    if target.exists() and target.read_text(encoding="ascii") == text:
        return target
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="ascii", newline="\n")
    os.replace(tmp, target)
    return target


def read_snmprec(path: Path | str) -> list[SnmpRecord]:
    """Read a recording back (for tests and tooling), in file order."""
    lines = Path(path).read_text(encoding="ascii").splitlines()
    return [parse_line(line) for line in lines if line.strip() and not line.startswith("#")]
