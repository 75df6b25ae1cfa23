"""NAPALM-style SNMP getters: facts, interfaces, LLDP/CDP neighbours, IP addresses, ARP, MAC table.

Two layers, kept apart so the parsing can be fuzzed without a network:

* **pure parsers** (``parse_*``, ``identify``, ``decode_text``): raw varbinds in, the dataclasses
  of :mod:`facts` and a list of :class:`PollProblem` out. They never raise on agent data, whatever
  it is (random OIDs, wrong types, invalid UTF-8, huge integers, ``None``).
* **getters** (``get_*``, ``probe``): ask a :class:`Walker` for what ``tables.yaml`` names and hand
  the varbinds to the parsers. No database here: the discovery service reconciles the results.

What is read where is data: ``tables.yaml`` (columns per table and their types) and
``vendors.yaml`` (sysObjectID prefixes and sysDescr patterns). No code branches on a vendor.

Text decoding rule (agents send bytes; Arabic sysLocation and ifAlias are normal here): valid
UTF-8 is kept exactly, except trailing NUL padding, which some agents add; bytes that are not
valid UTF-8 are never guessed at (cp1256 or latin-1 would each be wrong half the time): each byte
of an invalid sequence is written as ``\\xNN`` (Python's ``backslashreplace``), so the text stays
readable where it is ASCII, nothing is lost, and the result is always JSON-safe.

The data files are loaded by :mod:`schema`, values parsed by :mod:`parse`, devices identified by
:mod:`identity`; this module reads through a ``Walker`` and returns facts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from infra_mgr.network.snmp.facts import (
    DeviceFacts,
    InterfaceFacts,
    IpAddressFacts,
    NeighborFacts,
    ProbeResult,
)
from infra_mgr.network.snmp.identity import identify, parse_facts
from infra_mgr.network.snmp.parse import (
    UINT32_MAX,
    parse_cdp,
    parse_interfaces,
    parse_ip_addresses,
    parse_lldp,
)
from infra_mgr.network.snmp.schema import scalar_groups, tables
from infra_mgr.snmp.engine import PollAbort, SnmpEngine, ValueType, VarBind, Walker, default_engine
from infra_mgr.snmp.target import PollProblem, SnmpTarget

# --- getters (I/O through a Walker) ------------------------------------------------------------


async def walk_table(walker: Walker, name: str, columns: Sequence[str] | None = None,
                     rows: Sequence[str] | None = None, expect_rows: int | None = None) -> list[VarBind]:
    """The varbinds of a tables.yaml table: column by column (only the named columns), or the whole
    entry in one walk when the table says ``walk: entry``. When the first column comes back
    empty the table is taken as empty and the other columns are not asked for (a table's first
    listed column must exist in every row). ``rows``: only these row indexes (OID suffixes),
    fetched by GET where the walker can — e.g. the LLDP local ports that have a neighbour.
    ``expect_rows``: how many rows the table is believed to have (sizes the first walk)."""
    table = tables()[name]
    operation = f"walk {name}"
    wanted = [c for c in table.columns if columns is None or c.name in columns]
    if rows is not None:
        return await _table_rows(walker, [f"{table.entry}.{c.id}" for c in wanted], rows, operation)
    if table.walk == "entry":
        limit = getattr(walker, "max_rows", 20_000) * max(c.id for c in table.columns)
        return await walker.walk(table.entry, max_rows=limit, operation=operation)
    first = f"{table.entry}.{wanted[0].id}"
    out = await walker.walk(first, operation=operation, expect_rows=expect_rows)
    if not out and table.first_optional:
        for column in wanted[1:]:
            out.extend(await walker.walk(f"{table.entry}.{column.id}", operation=operation))
        return out
    if not out or len(wanted) == 1:
        return out
    # The first column gave the row indexes: the other columns are fetched for exactly those rows,
    # by GET where the walker can (several columns per request), else walked, each in one answer
    # of the known size (no request past the end, no rows of the next column over-fetched).
    rest = [f"{table.entry}.{column.id}" for column in wanted[1:]]
    get_rows = getattr(walker, "get_rows", None)
    if get_rows is not None:
        cut = len(first) + 1
        cells = await get_rows(rest, [oid[cut:] for oid, _ in out], operation=operation)
        if cells is not None:
            return out + cells
    known = len(out)
    for base in rest:
        out.extend(await walker.walk(base, operation=operation, expect_rows=known))
    return out


async def _table_rows(walker: Walker, bases: list[str], rows: Sequence[str], operation: str) -> list[VarBind]:
    if not rows or not bases:
        return []
    get_rows = getattr(walker, "get_rows", None)
    if get_rows is not None:
        cells = await get_rows(bases, list(rows), operation=operation)
        if cells is not None:
            return cells
    wanted = set(rows)
    out: list[VarBind] = []
    for base in bases:  # a walker that cannot GET rows (SNMPv1): walk and keep the rows asked for
        cut = len(base) + 1
        out.extend(vb for vb in await walker.walk(base, operation=operation) if vb[0][cut:] in wanted)
    return out


def _column_rows(varbinds: Iterable[VarBind], base: str) -> dict[str, ValueType]:
    """Row index → value of one column among a table's varbinds."""
    prefix = base + "."
    cut = len(prefix)
    return {oid[cut:]: value for oid, value in varbinds if oid.startswith(prefix)}


def _keep(walker: Walker, problems: list[PollProblem]) -> None:
    """Parser problems go on the walker's list beside the request problems (already one per
    field, so not deduplicated again per operation)."""
    walker.problems.extend(problems)


async def get_facts(walker: Walker) -> DeviceFacts:
    """System group, LLDP local chassis id, ENTITY-MIB chassis, vendor scalars when needed."""
    oids = [s.oid for group in ("system", "lldp_local", "interfaces") for s in scalar_groups()[group]]
    before = len(walker.problems)
    system = await walker.get(oids, operation="facts")
    if len(walker.problems) == before and not any(s.oid in system for s in scalar_groups()["system"]):
        walker.problem("facts", "no_such_object", "the agent has none of the system group (noSuchObject)")
    try:
        entity = await walk_table(walker, "ent_physical")
    except PollAbort:
        # ENTITY-MIB is optional and some agents drop requests that reach into their broken
        # groups: a device that has answered the system group keeps its facts (the timeout is
        # on the walker's problems); a device that never answered is given up as before.
        if not walker.answered or not any(s.oid in system for s in scalar_groups()["system"]):
            raise
        entity = []
    facts, problems = parse_facts(system, entity, address=walker.address)
    ident = identify(facts.sys_object_id, facts.sys_descr)
    missing = [(name, oid) for name, oid in ident.scalars
               if getattr(facts, name, None) is None or (ident.card and name in ("model", "serial"))]
    probes = [s.oid for s in ident.signatures] + [o for s in ident.signatures for _, o in s.scalars]
    if missing or probes:
        asked = list(dict.fromkeys([oid for _, oid in missing] + probes))
        extra = await walker.get(asked, operation="facts vendor")
        facts, problems = parse_facts(system, entity, extra, address=walker.address)
    _keep(walker, problems)
    return facts


# Traffic counters: needed to monitor an interface, not to know it exists (discovery skips them,
# which roughly halves what it asks of every device).
COUNTER_COLUMNS = frozenset({"if_in_octets", "if_in_discards", "if_in_errors", "if_out_octets", "if_out_discards",
                             "if_out_errors", "if_hc_in_octets", "if_hc_out_octets"})


def _columns(name: str, counters: bool) -> list[str] | None:
    if counters:
        return None
    return [c.name for c in tables()[name].columns if c.name not in COUNTER_COLUMNS]


async def get_interfaces(walker: Walker, counters: bool = True, if_count: int | None = None
                         ) -> list[InterfaceFacts]:
    """ifTable + ifXTable. An agent without ifTable rows is reported (``end_of_mib``): every
    SNMP agent of a network device has interfaces, so none means the walk was cut short.
    ``if_count`` (ifNumber, from the facts) sizes the first walk.

    Without counters (discovery) ifXTable is read by GET for the ifTable rows only, and
    ifHighSpeed only where ifSpeed cannot say it (missing, or saturated above 4.29 Gbit/s)."""
    before = len(walker.problems)
    if_rows = await walk_table(walker, "if_table", _columns("if_table", counters), expect_rows=if_count)
    ifx_rows: list[VarBind] = []
    if if_rows and counters:
        ifx_rows = await walk_table(walker, "ifx_table")
    elif if_rows:
        table = tables()["if_table"]
        indexes = _column_rows(if_rows, f"{table.entry}.{table.columns[0].id}")
        ifx_rows = await walk_table(walker, "ifx_table", [c for c in _columns("ifx_table", False) or ()
                                                          if c != "if_high_speed"], rows=list(indexes))
        speeds = _column_rows(if_rows, f"{table.entry}.{table.column('if_speed').id}")
        unsure = [i for i in indexes if not isinstance(speed := speeds.get(i), int) or speed >= UINT32_MAX]
        ifx_rows += await walk_table(walker, "ifx_table", ["if_high_speed"], rows=unsure)
    if not if_rows and len(walker.problems) == before:
        walker.problem("walk if_table", "end_of_mib", "no interfaces: the agent ended the walk at once "
                                                      "(endOfMibView or an empty ifTable)")
    interfaces, problems = parse_interfaces(if_rows, ifx_rows, address=walker.address)
    _keep(walker, problems)
    return interfaces


async def read_lldp(walker: Walker) -> tuple[list[VarBind], list[VarBind]]:
    """The LLDP remote table and its management addresses, raw (who the neighbours are and
    where to reach them: enough for a crawl to go on before the interfaces are read)."""
    remote = await walk_table(walker, "lldp_rem")
    man = await walk_table(walker, "lldp_rem_man_addr") if remote else []
    return remote, man


async def finish_lldp(walker: Walker, remote: list[VarBind], man: list[VarBind],
                      interfaces: Sequence[InterfaceFacts]) -> list[NeighborFacts]:
    """LLDP neighbours from :func:`read_lldp`'s tables, their local ports named from the LLDP
    local port table — read only for the ports that have a neighbour."""
    if not remote:
        return []
    rem = tables()["lldp_rem"]
    cut = len(rem.entry) + 1
    # the index is lldpRemTimeMark.lldpRemLocalPortNum.lldpRemIndex
    ports = {oid[cut:].split(".")[2] for oid, _ in remote
             if oid.startswith(rem.entry + ".") and oid.count(".", cut) >= 3}
    local = await walk_table(walker, "lldp_loc_port", rows=sorted(ports, key=lambda p: (len(p), p)))
    neighbors, problems = parse_lldp(remote, man, local, interfaces, address=walker.address)
    _keep(walker, problems)
    return neighbors


async def get_lldp_neighbors(walker: Walker, interfaces: Sequence[InterfaceFacts] | None = None
                             ) -> list[NeighborFacts]:
    """LLDP neighbours (interfaces are walked if not given: they name the local ports)."""
    remote, man = await read_lldp(walker)
    if not remote:
        return []
    if interfaces is None:
        interfaces = await get_interfaces(walker)
    return await finish_lldp(walker, remote, man, interfaces)




async def get_ip_addresses(walker: Walker) -> list[IpAddressFacts]:
    """ipAddressTable, and ipAddrTable only when the former has no IPv4 rows."""
    new = await walk_table(walker, "ip_address")
    addresses, problems = parse_ip_addresses(new, address=walker.address)
    if not any(":" not in a.address for a in addresses):
        old = await walk_table(walker, "ip_addr")
        addresses, problems = parse_ip_addresses(new, old, address=walker.address)
    _keep(walker, problems)
    return addresses






# --- probe -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeOptions:
    """What a probe reads beyond facts and interfaces.

    ``on_neighbors``: called once, as soon as the neighbour tables are read and before the
    interfaces are, with the neighbours as far as they are known then (addresses, names; local
    ports not yet named) — so that a crawl reaches the next devices without waiting for this
    one's interfaces. The neighbours in the result are the complete ones.
    """

    neighbors: bool = True
    ip_addresses: bool = True
    counters: bool = True
    on_neighbors: Callable[[list[NeighborFacts]], None] | None = None


async def probe(target: SnmpTarget, engine: SnmpEngine | None = None, options: ProbeOptions | None = None
                ) -> ProbeResult:
    """Poll one device: facts, interfaces, LLDP and CDP neighbours, IP addresses.

    Never raises for anything the agent does: problems are in ``errors``; ``reachable`` is False
    when no valid SNMP response came back (timeout, refused port, failed SNMPv3 authentication).
    What was read before a device was given up is kept.
    """
    engine = engine or default_engine()
    options = options or ProbeOptions()
    result = ProbeResult(address=target.address, port=target.port)
    async with engine.session(target) as walker:
        try:
            async with asyncio.timeout(engine.device_deadline_s):
                result.facts = await get_facts(walker)
                remote: list[VarBind] = []
                man: list[VarBind] = []
                cache: list[VarBind] = []
                if options.neighbors:
                    remote, man = await read_lldp(walker)
                    cache = await walk_table(walker, "cdp_cache")
                    if options.on_neighbors is not None and (remote or cache):
                        options.on_neighbors(parse_lldp(remote, man, address=walker.address)[0]
                                             + parse_cdp(cache, (), address=walker.address)[0])
                result.interfaces = await get_interfaces(walker, options.counters, result.facts.if_count)
                if options.neighbors:
                    result.neighbors = await finish_lldp(walker, remote, man, result.interfaces)
                    if cache:
                        cdp, problems = parse_cdp(cache, result.interfaces, address=walker.address)
                        _keep(walker, problems)
                        result.neighbors += cdp
                if options.ip_addresses:
                    result.ip_addresses = await get_ip_addresses(walker)
        except PollAbort:
            pass
        except TimeoutError:
            walker.problem("poll", "timeout", f"device poll exceeded {engine.device_deadline_s:g} s")
        result.errors = list(walker.problems)
        # an SNMPv3 agent answers engine discovery to anyone: only an authenticated answer counts
        result.reachable = walker.answered and not any(p.kind == "auth" for p in result.errors)
    return result


async def probe_many(targets: Iterable[SnmpTarget], engine: SnmpEngine | None = None,
                     options: ProbeOptions | None = None) -> list[ProbeResult]:
    """Probe many devices concurrently within the engine's bounds; results in the targets' order.
    One device's failure is in its own result and never stops the others."""
    engine = engine or default_engine()
    return list(await asyncio.gather(*(probe(t, engine, options) for t in targets)))
