"""A lying SNMP v2c agent for tests: one UDP socket, and a behaviour chosen by the community.

Real agents misbehave in ways a recording cannot show (snmpsim always answers well), and the poll
engine must survive all of them. This agent serves a small simulated switch honestly to the
community ``public`` and lies to the others (:data:`BEHAVIOURS`); an unknown community gets no
answer, as with real agents. Messages are decoded and encoded with pysnmp's ``proto.api.v2c``
and pyasn1, as pysnmp's own low-level agent examples do; only v2c is spoken (v1 is ignored).

Run by the lab supervisor (peer kind ``liar``) as::

    python -m infra_mgr.lab.liar --host 127.0.0.1 --port 16100
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import dataclasses
import hashlib
import logging
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from infra_mgr.lab.peers import IF_ENTRY, IFX_ENTRY, SYS, SwitchProfile, cisco_ios_switch_records
from infra_mgr.lab.snmprec import SnmpRecord, SnmpType

log = logging.getLogger("infra_mgr.lab.liar")
proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

SMALL_MSG_CELLS = 20  # smallmsg: Cisco's default 1,500-byte packet size holds about this many cells

BEHAVIOURS: dict[str, str] = {
    "public": "honest: the simulated switch as it is",
    "loop": "GETNEXT/GETBULK answer an existing OID with that same OID again",
    "regress": "GETNEXT/GETBULK answer with an OID smaller than the one asked (after the first row)",
    "garbage": "every answer is random bytes",
    "truncated": "every answer is a valid response cut in half",
    "wrongtype": "sysUpTime, sysObjectID, ifSpeed, ifPhysAddress, ifAdminStatus, ifHCInOctets of wrong types",
    "nosuch": "GET of the system group answers noSuchObject",
    "endofmib": "GETNEXT/GETBULK answer endOfMibView at once",
    "nobulk": "GETBULK answers genErr (GETNEXT works)",
    "huge": "an ifTable of 50,000 rows",
    "smallmsg": f"a GET of more than {SMALL_MSG_CELLS} OIDs answers tooBig (a small maximum message size)",
    "silent": "never answers",
}

HUGE_ROWS = 50_000
MAX_REPETITIONS = 50  # cap on GETBULK repetitions, as agents have (snmpsim: 64)

PROFILE = SwitchProfile(
    name="liar-sw1",
    location="أمانة جدة - مختبر الاختبار",
    serial="FOC0000LIAR",
    ports=4,
    aliases={1: "منفذ الاختبار الأول", 4: "uplink"},
)

Oid = tuple[int, ...]
Value = Any  # a pysnmp value object


def _oid(text: str) -> Oid:
    return tuple(int(p) for p in text.split("."))


_TO_PYSNMP: dict[SnmpType, Callable[[Any], Value]] = {
    SnmpType.INTEGER: rfc1902.Integer32,
    SnmpType.OCTET_STRING: lambda v: rfc1902.OctetString(v.encode() if isinstance(v, str) else v),
    SnmpType.OID: rfc1902.ObjectIdentifier,
    SnmpType.IP_ADDRESS: rfc1902.IpAddress,
    SnmpType.COUNTER32: rfc1902.Counter32,
    SnmpType.GAUGE32: rfc1902.Gauge32,
    SnmpType.TIMETICKS: rfc1902.TimeTicks,
    SnmpType.COUNTER64: rfc1902.Counter64,
}


# --- MIB views ---------------------------------------------------------------------------------


class StaticView:
    """Sorted (oid, value) pairs: exact GET and GETNEXT by bisection."""

    def __init__(self, pairs: Mapping[Oid, Value]) -> None:
        self.keys = sorted(pairs)
        self.values = dict(pairs)

    def get(self, oid: Oid) -> Value | None:
        return self.values.get(oid)

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        i = bisect.bisect_right(self.keys, oid)
        return (self.keys[i], self.values[self.keys[i]]) if i < len(self.keys) else None


class HugeIfTable:
    """An ifTable of ``rows`` rows computed on demand (50,000 rows would not fit a sorted list
    cheaply): columns ifIndex, ifDescr, ifType, ifSpeed, ifAdminStatus, ifOperStatus."""

    def __init__(self, rows: int) -> None:
        self.entry = _oid(IF_ENTRY)
        self.rows = rows
        self.columns: dict[int, Callable[[int], Value]] = {
            1: rfc1902.Integer32,
            2: lambda r: rfc1902.OctetString(f"Port{r}".encode()),
            3: lambda r: rfc1902.Integer32(6),
            5: lambda r: rfc1902.Gauge32(1_000_000_000),
            7: lambda r: rfc1902.Integer32(1),
            8: lambda r: rfc1902.Integer32(1 if r % 2 else 2),
        }
        self.order = sorted(self.columns)

    def get(self, oid: Oid) -> Value | None:
        n = len(self.entry)
        if oid[:n] != self.entry or len(oid) != n + 2 or oid[n] not in self.columns or not 1 <= oid[n + 1] <= self.rows:
            return None
        return self.columns[oid[n]](oid[n + 1])

    def _cell(self, column: int, row: int) -> tuple[Oid, Value]:
        return (*self.entry, column, row), self.columns[column](row)

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        n = len(self.entry)
        if oid[:n] != self.entry:
            return self._cell(self.order[0], 1) if oid < self.entry else None
        rest = oid[n:]
        if not rest:
            return self._cell(self.order[0], 1)
        column = rest[0]
        if column in self.columns:
            row = rest[1] if len(rest) > 1 else 0
            if row < self.rows:
                return self._cell(column, max(row + 1, 1))
        later = [c for c in self.order if c > column]
        return self._cell(later[0], 1) if later else None


class Views:
    """Several views as one: GET from the first that has the OID, GETNEXT the smallest next."""

    def __init__(self, *views: StaticView | HugeIfTable) -> None:
        self.views = views

    def get(self, oid: Oid) -> Value | None:
        for view in self.views:
            value = view.get(oid)
            if value is not None:
                return value
        return None

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        found = [n for n in (v.next(oid) for v in self.views) if n is not None]
        return min(found, key=lambda pair: pair[0]) if found else None


def _records_view(records: Sequence[SnmpRecord], keep: Callable[[str], bool] = lambda oid: True) -> StaticView:
    return StaticView({_oid(r.oid): _TO_PYSNMP[r.type](r.value) for r in records if keep(r.oid)})


# Wrong types for ``wrongtype``: column (or scalar) OID -> a value of another SNMP type.
_WRONG: dict[Oid, Value] = {
    _oid(f"{SYS}.3"): rfc1902.OctetString(b"yesterday"),
    _oid(f"{SYS}.2"): rfc1902.Integer32(9),
    _oid(f"{IF_ENTRY}.5"): rfc1902.OctetString(b"fast"),
    _oid(f"{IF_ENTRY}.6"): rfc1902.Integer32(42),
    _oid(f"{IF_ENTRY}.7"): rfc1902.OctetString(b"up"),
    _oid(f"{IFX_ENTRY}.6"): rfc1902.OctetString(b"lots"),
}


_NULL = rfc1902.Null("")


def _wrongtype(oid: Oid, value: Value) -> Value:
    for prefix, wrong in _WRONG.items():
        if oid[: len(prefix)] == prefix:
            return wrong
    return value


# --- encoding ------------------------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    """A BER type-length-value (definite length)."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


class _ResponseEncoder:
    """GetResponse messages, assembled around pyasn1-encoded leaves.

    pyasn1 encoding a whole 25-varbind message costs ~10 ms here (building the typed tree is most
    of it): a walk of a few thousand rows would take minutes. Leaves (OIDs and values) are still
    encoded by pyasn1; the SEQUENCE/PDU containers are plain BER and each varbind of a static view
    is encoded once.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[Oid, int], bytes] = {}

    def varbind(self, oid: Oid, value: Value, cacheable: bool) -> bytes:
        key = (oid, id(value))
        encoded = self._cache.get(key) if cacheable else None
        if encoded is None:
            encoded = _tlv(0x30, encoder.encode(rfc1902.ObjectName(oid)) + encoder.encode(value))
            if cacheable:
                self._cache[key] = encoded
        return encoded

    @staticmethod
    def message(community: bytes, request_id: int, error_status: int, error_index: int, varbinds: list[bytes]) -> bytes:
        pdu = (encoder.encode(rfc1902.Integer32(request_id)) + encoder.encode(rfc1902.Integer32(error_status))
               + encoder.encode(rfc1902.Integer32(error_index)) + _tlv(0x30, b"".join(varbinds)))
        body = (encoder.encode(rfc1902.Integer32(api.SNMP_VERSION_2C)) + encoder.encode(rfc1902.OctetString(community))
                + _tlv(0xA2, pdu))
        return _tlv(0x30, body)


# --- the agent ---------------------------------------------------------------------------------

Answer = tuple[int, int, list[tuple[Oid, Value]]]  # error status, error index, varbinds


class LiarAgent:
    """Builds the answer (bytes, or None for silence) to one request datagram."""

    def __init__(self, huge_rows: int = HUGE_ROWS, profile: SwitchProfile = PROFILE, always: str | None = None) -> None:
        if always is not None and always not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {always!r}")
        self.always = always  # one behaviour for every community (a city device that is simply broken)
        records = cisco_ios_switch_records(profile)
        self.honest = Views(_records_view(records))
        system_only = _records_view(records, lambda oid: not oid.startswith((IF_ENTRY + ".", IFX_ENTRY + ".")))
        self.huge = Views(system_only, HugeIfTable(huge_rows))
        self.system = _oid(SYS)
        self.encoder = _ResponseEncoder()

    def answer(self, data: bytes) -> bytes | None:
        try:
            if int(api.decodeMessageVersion(data)) != api.SNMP_VERSION_2C:
                return None
            message, _ = decoder.decode(data, asn1Spec=proto.Message())
        except Exception:  # noqa: BLE001  # not SNMP, or not v2c: real agents drop it silently
            return None
        community = bytes(proto.apiMessage.get_community(message))
        behaviour = self.always or community.decode("utf-8", "replace")
        behaviour = behaviour if behaviour in BEHAVIOURS else "silent"
        if behaviour == "silent":
            return None
        if behaviour == "garbage":
            rng = random.Random(hashlib.sha256(data).digest())
            return bytes(rng.randrange(256) for _ in range(rng.randrange(20, 200)))
        request = proto.apiMessage.get_pdu(message)
        status, index, varbinds = self._answer(behaviour, request)
        cacheable = behaviour != "huge"  # values of the huge table are built per request
        encoded = self.encoder.message(community, int(proto.apiPDU.get_request_id(request)), status, index,
                                       [self.encoder.varbind(o, v, cacheable) for o, v in varbinds])
        if behaviour == "truncated":
            return encoded[: len(encoded) // 2]
        return encoded

    def _answer(self, behaviour: str, request: Any) -> Answer:
        view = self.huge if behaviour == "huge" else self.honest
        asked = [tuple(oid) for oid, _ in proto.apiPDU.get_varbinds(request)]
        if request.isSameTypeWith(proto.GetRequestPDU()):
            if behaviour == "smallmsg" and len(asked) > SMALL_MSG_CELLS:
                return 1, 0, [(oid, _NULL) for oid in asked]  # tooBig(1)
            out = []
            for oid in asked:
                if behaviour == "nosuch" and oid[: len(self.system)] == self.system:
                    out.append((oid, rfc1905.noSuchObject))
                    continue
                value = view.get(oid)
                if value is not None and behaviour == "wrongtype":
                    value = _wrongtype(oid, value)
                out.append((oid, value if value is not None else rfc1905.noSuchInstance))
            return 0, 0, out
        bulk = request.isSameTypeWith(proto.GetBulkRequestPDU())
        gen_err = (5, 1, [(oid, _NULL) for oid in asked])
        if not bulk and not request.isSameTypeWith(proto.GetNextRequestPDU()):
            return gen_err  # SET and the rest are not served
        if behaviour == "endofmib":
            return 0, 0, [(oid, rfc1905.endOfMibView) for oid in asked]
        if bulk and behaviour == "nobulk":
            return gen_err
        repetitions = 1
        if bulk:
            repetitions = max(1, min(int(proto.apiBulkPDU.get_max_repetitions(request)), MAX_REPETITIONS))
        lying = behaviour in ("loop", "regress")
        out = []
        for oid in asked[:1] if bulk else asked:  # GETBULK: one repeater (non-repeaters unsupported)
            current = oid
            for _ in range(repetitions):
                lie = self._lie(behaviour, view, current) if lying else None
                found = lie if lie is not None else view.next(current)
                if found is None:
                    out.append((current, rfc1905.endOfMibView))
                    break
                current, value = found
                out.append((current, _wrongtype(current, value) if behaviour == "wrongtype" else value))
                if lie is not None:
                    break  # a liar answers one varbind and waits to be asked again
        return 0, 0, out

    @staticmethod
    def _lie(behaviour: str, view: Views, oid: Oid) -> tuple[Oid, Value] | None:
        """The dishonest next varbind for ``loop`` and ``regress`` (None: answer honestly)."""
        value = view.get(oid)
        if value is None:
            return None  # not an existing instance (e.g. the column asked first): honest
        if behaviour == "loop":
            return oid, value
        if behaviour == "regress":
            first = view.next(oid[:-1])
            if first is not None and first[0] < oid:
                return first
        return None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, agent: LiarAgent) -> None:
        self.agent = agent
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # asyncio hands a datagram protocol a DatagramTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = self.agent.answer(data)
        except Exception:  # a bug here must not take the agent down mid-test
            log.exception("cannot answer %s", addr)
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve(host: str, port: int, huge_rows: int = HUGE_ROWS, profile: SwitchProfile = PROFILE,
                always: str | None = None) -> None:
    """Answer on host:port until cancelled."""
    loop = asyncio.get_running_loop()
    agent = LiarAgent(huge_rows, profile, always)
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(agent), local_addr=(host, port))
    print(f"liar: listening on {host}:{port}/udp; communities: {', '.join(BEHAVIOURS)}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A lying SNMP v2c agent for tests (behaviour by community).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=16100)
    parser.add_argument("--huge-rows", type=int, default=HUGE_ROWS, help="rows of the 'huge' ifTable")
    parser.add_argument("--name", default=PROFILE.name, help="sysName of the simulated switch")
    parser.add_argument("--location", default=PROFILE.location, help="sysLocation")
    parser.add_argument("--serial", default=PROFILE.serial, help="chassis serial number")
    parser.add_argument("--always", choices=sorted(BEHAVIOURS), help="one behaviour for every community")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    profile = dataclasses.replace(PROFILE, name=args.name, location=args.location, serial=args.serial)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.huge_rows, profile, args.always))
    return 0


if __name__ == "__main__":
    sys.exit(main())
