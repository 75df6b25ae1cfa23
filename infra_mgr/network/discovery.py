"""Discovery: crawl the network from seeds through LLDP/CDP neighbours, then reconcile.

Two halves, kept apart on purpose:

* ``crawl`` is I/O only. Starting from seed addresses (and seed ranges, swept host by host) it
  probes every address with each SNMP credential in order, follows neighbours' management
  addresses — only inside the allow-list, never outside — and returns what it found and what did
  not answer. It knows nothing of the database.
* ``reconcile`` is database only. In one transaction it folds the crawl into the source of truth:
  one device per identity (chassis id, serial or sysName, whatever addresses it answered on),
  placed in a site by prefix or else by sysLocation; interfaces, neighbours and links with first
  and last seen; and an event for each change worth telling (device new / missing / returned,
  serial changed, interface up / down, neighbour changed, link new).

A crash between the two, or inside ``reconcile``, leaves the database as it was.

The crawl is :mod:`infra_mgr.network.crawl`, the reconcile :mod:`infra_mgr.network.reconcile`;
this module decides the scope of a run (seeds, allow-list, credentials) and runs the two.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infra_mgr.common import utcnow
from infra_mgr.db import write_session
from infra_mgr.inventory.credentials import reveal
from infra_mgr.inventory.models import Credential, Device, Site
from infra_mgr.network.crawl import Answer, Crawler, CredentialOption, SshFn, SshMiss, range_hosts
from infra_mgr.network.models import (
    DevicePoll,
    DiscoveryRun,
    DiscoveryTarget,
    RunStatus,
    TargetRole,
    target_problem,
)
from infra_mgr.network.reconcile import DiscoveryReport, reconcile
from infra_mgr.network.snmp.facts import NeighborFacts, ProbeResult
from infra_mgr.network.ssh.cli_facts import facts_from_cli
from infra_mgr.network.ssh.facts import SshFailure, SshProblem, SshTarget
from infra_mgr.network.ssh.platforms import SshPlatform
from infra_mgr.snmp.target import PollProblem, SnmpTarget

if TYPE_CHECKING:  # the collector loads netmiko: only a run that reads over SSH pays for it
    from infra_mgr.network.ssh.collector import CliRead

ProbeFn = Callable[..., Awaitable[ProbeResult]]  # (target[, on_neighbors=…]) -> result
AliveFn = Callable[[str, int, float], Awaitable[bool]]
Progress = Callable[[str, int, int], None]  # (address, done, total)




# --------------------------------------------------------------------------- the whole job


def credential_options(session: Session, master: bytes, timeout_s: float = 1.0, retries: int = 1
                       ) -> list[CredentialOption]:
    """SNMP credentials in the order to try them: ``params.priority`` (low first), then id.
    A credential with ``params.discovery`` false (e.g. a UPS's own community) is not tried."""
    creds = session.exec(select(Credential).where(col(Credential.kind).in_(["snmp_v2c", "snmp_v3"]))).all()
    creds = sorted((c for c in creds if c.params.get("discovery", True) is not False),
                   key=lambda c: (int(c.params.get("priority", 100)), c.id or 0))
    out = []
    for c in creds:
        s = reveal(session, master, c.id or 0)
        port = int(s.get("port") or 161)
        if c.kind == "snmp_v2c":
            t = SnmpTarget(address="", port=port, version="2c", community=s.get("community", ""),
                           timeout_s=timeout_s, retries=retries)
        else:
            t = SnmpTarget(address="", port=port, version="3", user=c.username, auth_proto=s.get("auth_proto"),
                           auth_key=s.get("auth_key", ""), priv_proto=s.get("priv_proto"),
                           priv_key=s.get("priv_key", ""), timeout_s=timeout_s, retries=retries)
        out.append(CredentialOption(c.id, t, c.name))
    return out


SSH_KINDS = ("ssh_password", "ssh_key")


@dataclass(frozen=True)
class SshOption:
    """One SSH credential to try, revealed (in memory only, for the run)."""

    credential_id: int
    username: str
    port: int
    secrets: dict[str, str]
    device_type: str | None = None  # params.device_type: the platform to log in as, when known

    def __repr__(self) -> str:  # never print a secret
        return f"SshOption({self.credential_id}, {self.username}@:{self.port})"


def ssh_options(session: Session, master: bytes) -> list[SshOption]:
    """SSH credentials in the order to try them (``params.priority``, low first, then id); one
    with ``params.discovery`` false is not tried."""
    creds = session.exec(select(Credential).where(col(Credential.kind).in_(SSH_KINDS))).all()
    creds = sorted((c for c in creds if c.params.get("discovery", True) is not False),
                   key=lambda c: (int(c.params.get("priority", 100)), c.id or 0))
    out = []
    for c in creds:
        s = reveal(session, master, c.id or 0)
        port = int(s.get("port") or c.params.get("port") or 22)
        out.append(SshOption(c.id or 0, s.get("username") or c.username, port,
                             {k: str(v) for k, v in s.items() if k in ("password", "private_key", "passphrase",
                                                                      "enable_secret") and v},
                             c.params.get("device_type") or None))
    return out


MAX_SSH_LOGINS = 3  # logins CLI discovery tries on one address per run, whatever the credentials


def ssh_discovery(session: Session, master: bytes, timeout_s: float) -> SshFn | None:
    """The crawl's SSH reader: for an address, each SSH credential in order (the device's own
    first; only those whose ``params.discovery`` is not false; at most :data:`MAX_SSH_LOGINS`),
    one login each. It logs in as the platform the credential names (``params.device_type``),
    else the one the inventory knows for that address, else once with the generic driver and
    recognises the platform from its answer (``collector.detect_and_read_one``). The recorded host key is
    required (TOFU), and on first contact the first key seen is pinned for the rest of the run:
    no later credential goes to a different key. A changed key refuses the device. None when no
    SSH credential is stored."""
    from infra_mgr.network.ssh.collector import cli_read_one, detect_and_read_one
    from infra_mgr.network.ssh.hostkeys import known_keys
    from infra_mgr.network.ssh.platforms import platform_table

    options = ssh_options(session, master)
    if not options:
        return None
    keys = known_keys(session)
    table = platform_table()
    known_types: dict[str, str] = {}
    for poll, dev in session.exec(select(DevicePoll, Device).join(Device, col(Device.id) == col(DevicePoll.device_id))):
        plat = table.for_device(dev.platform, dev.vendor)
        if poll.address and plat is not None and plat.discovery:
            known_types[poll.address] = plat.device_type
    wait = max(3.0, timeout_s * 3)

    def login(address: str, opt: SshOption) -> tuple[SshPlatform | None, CliRead]:
        device_type = opt.device_type or known_types.get(address)
        platform = table.get(device_type) if device_type else None
        target = SshTarget(address=address, port=opt.port, device_type=device_type or table.detection.login,
                           username=opt.username, password=opt.secrets.get("password"),
                           private_key=opt.secrets.get("private_key"), passphrase=opt.secrets.get("passphrase"),
                           enable_secret=opt.secrets.get("enable_secret"), known_key=keys.get((address, opt.port)),
                           credential_id=opt.credential_id, connect_timeout_s=wait, auth_timeout_s=wait,
                           banner_timeout_s=wait, command_timeout_s=max(10.0, wait))
        if platform is None or not platform.discovery:
            return detect_and_read_one(replace(target, device_type=table.detection.login), table)
        return platform, cli_read_one(target, dict(platform.discovery))

    async def read(address: str, preferred: int | None) -> Answer | SshMiss:
        order = sorted(options, key=lambda o: o.credential_id != preferred)[:MAX_SSH_LOGINS]
        miss = SshMiss()
        for opt in order:
            platform, got = await asyncio.to_thread(login, address, opt)
            if got.host_key is not None and (address, opt.port) not in keys:
                keys[(address, opt.port)] = got.host_key  # first contact: pinned for this run
            if got.problem is None and platform is not None:
                result = facts_from_cli(platform.device_type, got.outputs, address, opt.port)
                if result.facts.sys_name or result.facts.serial:
                    return Answer(address, opt.credential_id, result, "ssh", got.host_key, opt.port)
                miss.problems.append(PollProblem(address, f"ssh {platform.device_type}", SshFailure.command.value,
                                                 "logged in, but the output names no device"))
                return miss  # the credential works: another one reads the same output
            problem = got.problem or SshProblem(SshFailure.error, "no platform")
            miss.problems.append(PollProblem(address, f"ssh {got.device_type}", problem.kind.value, problem.message))
            if problem.kind in (SshFailure.unreachable, SshFailure.hostkey_changed):
                miss.host_key, miss.port = got.host_key, opt.port
                return miss  # nothing listens, or the key changed: no credential changes that
            if problem.kind not in (SshFailure.auth, SshFailure.no_credential):
                return miss  # logged in (or as good as): another credential reads no better
        return miss

    return read


@dataclass
class Scope:
    seeds: list[str]
    allow: list[str]
    site_ids: set[int] | None
    default_site_id: int | None
    skipped: dict[str, str] = field(default_factory=dict)  # stored target -> why it was not used


def scope_for(session: Session, site_code: str | None, extra_seeds: Sequence[str] = (),
              all_sites: bool = False) -> Scope:
    """Seeds and allow-list of one site (``site_code``), of every site (``all_sites``), or of just
    the given seeds. Allow-list entries that belong to no site apply to every run."""
    from infra_mgr.errors import Invalid, NotFound

    site: Site | None = None
    targets: list[DiscoveryTarget] = []
    if site_code:
        site = session.exec(select(Site).where(Site.code == site_code)).first()
        if site is None:
            raise NotFound(f"no site with code {site_code!r}", field="site")
        targets = list(session.exec(select(DiscoveryTarget).where(DiscoveryTarget.site_id == site.id)).all())
    elif all_sites:
        targets = list(session.exec(select(DiscoveryTarget)).all())
    targets += [t for t in session.exec(select(DiscoveryTarget).where(
        col(DiscoveryTarget.site_id).is_(None), col(DiscoveryTarget.role) == TargetRole.allow.value)).all()
        if t not in targets]
    seeds: list[str] = []
    allow: list[str] = []
    skipped: dict[str, str] = {}
    for t in targets:
        problem = target_problem(t.cidr, t.role)  # stored before targets were checked at the door
        if problem:
            skipped[t.cidr] = problem
            continue
        if t.role == TargetRole.seed.value:
            seeds.extend(range_hosts(t.cidr))
        allow.append(t.cidr)
    for i, s in enumerate(extra_seeds):
        problem = target_problem(s, TargetRole.seed.value)  # the CLI and traps pass seeds too
        if problem:
            raise Invalid(problem, field=f"seeds.{i}")
        seeds.extend(range_hosts(s))
        allow.append(s)
    if not seeds:
        why = "".join(f"; skipped {cidr}: {reason}" for cidr, reason in skipped.items())
        raise Invalid(f"nothing to discover: add seed targets (or pass a seed address){why}", field="seed")
    return Scope(seeds=list(dict.fromkeys(seeds)), allow=allow,
                 site_ids={site.id or 0} if site else None, default_site_id=site.id if site else None,
                 skipped=skipped)


def known_addresses(session: Session, site_ids: set[int] | None) -> list[str]:
    """Addresses at which the scope's devices were polled before. A re-discovery (what runs every
    day) asks all of them at once, beside the seeds, instead of finding them again hop by hop
    through LLDP/CDP from the seeds: the crawl is as wide as its concurrency from the first second,
    and a device whose neighbours stopped reporting it is still read. The caller keeps only the
    addresses the allow-list still admits."""
    query = select(DevicePoll.address).join(Device, col(Device.id) == col(DevicePoll.device_id)).where(
        col(DevicePoll.address) != "")
    if site_ids is not None:
        query = query.where(col(Device.site_id).in_(site_ids))
    return sorted(set(session.exec(query).all()))


async def discover(engine: Engine, master: bytes, *, site_code: str | None = None, all_sites: bool = False,
                   seeds: Sequence[str] = (), follow: bool = True,
                   probe: ProbeFn | None = None, alive: AliveFn | None = None, concurrency: int = 64,
                   timeout_s: float = 1.0, retries: int = 1, progress: Progress | None = None,
                   actor: str = "discovery", trigger: str = "manual", ssh: SshFn | None | bool = True
                   ) -> DiscoveryReport:
    """Crawl and reconcile one site (or all): the job behind ``infra-mgr discover`` and the API.
    Each run that gets as far as crawling is recorded (:class:`DiscoveryRun`), including one that
    breaks: the Jobs page and the API show afterwards what it did and which devices failed.
    ``ssh``: True reads a device no SNMP credential opens over SSH with the stored SSH credentials
    (when there are any), False never, or the function to use."""
    import time

    from infra_mgr.errors import Invalid

    started = time.perf_counter()
    if probe is None:
        from infra_mgr.network.snmp.getters import ProbeOptions
        from infra_mgr.network.snmp.getters import probe as snmp_probe

        light = ProbeOptions(neighbors=True, ip_addresses=False, counters=False)
        early = True

        async def probe(target: SnmpTarget, on_neighbors: Callable[[list[NeighborFacts]], None] | None = None
                        ) -> ProbeResult:
            return await snmp_probe(target, options=replace(light, on_neighbors=on_neighbors))
    else:
        early = False
    if alive is None:
        from infra_mgr.snmp.liveness import agent_alive

        alive = with_retries(agent_alive, retries)
    with Session(engine) as session:
        scope = scope_for(session, site_code, seeds, all_sites)
        options = credential_options(session, master, timeout_s, retries)
        polls = session.exec(select(DevicePoll)).all()
        preferred = {p.address: p.credential_id for p in polls if p.credential_id is not None}
        ssh_fn = ssh_discovery(session, master, timeout_s) if ssh is True else (ssh or None)
        # Runs over a site or the city re-read what they know; a run of just some seeds reads those.
        known = known_addresses(session, scope.site_ids) if follow and (site_code or all_sites) else []
    if not options:
        raise Invalid("no SNMP credential stored: add one (kind snmp_v2c or snmp_v3)", field="credentials")
    crawler = Crawler(probe, options, scope.allow, concurrency=concurrency, alive=alive, progress=progress,
                      early=early, ssh=ssh_fn)
    seeds = [*scope.seeds, *(a for a in known if crawler.allowed(a))]
    label = site_code or ("all sites" if all_sites else "seeds")
    run_id = await asyncio.to_thread(start_run, engine, trigger=trigger, actor=actor, scope=label,
                                     targets=[*scope.seeds[:50], *seeds_asked(seeds, scope.seeds)])
    try:
        crawl = await crawler.run(seeds, preferred, follow)
        crawled = time.perf_counter()
        report = await asyncio.to_thread(reconcile, engine, crawl, default_site_id=scope.default_site_id,
                                         scope_site_ids=scope.site_ids, actor=actor,
                                         mark_missing=bool(site_code) or all_sites)
    except BaseException as exc:
        await asyncio.shield(asyncio.to_thread(finish_run, engine, run_id, None,
                                               f"{type(exc).__name__}: {exc}"))
        raise
    try:  # the branches' uplinks follow what was found; a failure here never undoes the run
        await asyncio.to_thread(identify_uplinks, engine, actor)
    except Exception:  # noqa: BLE001 - logged; the next run identifies again
        logging.getLogger("infra_mgr.network").exception("uplink identification after discovery failed")
    report.seconds = time.perf_counter() - started
    report.crawl_seconds = crawled - started
    report.problems.extend(PollProblem(cidr, "discovery target", "error", f"skipped: {reason}")
                           for cidr, reason in scope.skipped.items())
    report.run_id = run_id
    await asyncio.to_thread(finish_run, engine, run_id, report)
    return report


def identify_uplinks(engine: Engine, actor: str) -> None:
    """Identify the branches' uplinks from the links just reconciled (manual choices kept)."""
    from infra_mgr.network.uplinks import identify

    with write_session(engine) as session:
        identify(session, actor=actor)
        session.commit()


def with_retries(alive: AliveFn, retries: int) -> AliveFn:
    """The liveness check with the probes' retry policy: one lost or late answer from a busy agent
    must not turn "no credential works" into "unreachable" (a different fault, a different fix)."""

    async def check(address: str, port: int, timeout_s: float) -> bool:
        for _ in range(retries + 1):
            if await alive(address, port, timeout_s):
                return True
        return False

    return check


def seeds_asked(asked: Sequence[str], seeds: Sequence[str]) -> list[str]:
    """How many known addresses a run asked beside its seeds, as one line of its targets."""
    extra = len(set(asked) - set(seeds))
    return [f"+{extra} known addresses"] if extra else []


def start_run(engine: Engine, *, trigger: str, actor: str, scope: str, targets: list[str]) -> int:
    """Record that a run started (it shows as running until :func:`finish_run`)."""
    with write_session(engine) as session:
        run = DiscoveryRun(trigger=trigger[:16], actor=actor[:64], scope=scope[:255], targets=targets,
                           status=RunStatus.running.value)
        session.add(run)
        session.commit()
        return run.id or 0


def finish_run(engine: Engine, run_id: int, report: DiscoveryReport | None, error: str = "") -> None:
    """Close a run: what it found and which devices failed and why, or (``report`` None) how it broke."""
    with write_session(engine) as session:
        run = session.get(DiscoveryRun, run_id)
        if run is None:
            return
        run.finished_at = utcnow()
        run.duration_s = round((run.finished_at - run.started_at).total_seconds(), 3)
        if report is None:
            run.status, run.error = RunStatus.failed.value, error[:1000]
        else:
            run.status = RunStatus.ok.value
            run.found, run.new, run.changed = len(report.found), len(report.new), len(report.changed)
            run.missing, run.links, run.links_new = len(report.missing), report.links_total, report.links_new
            run.events = report.events
            run.devices = {"new": report.new, "changed": report.changed, "missing": report.missing}
            run.failures = [f.__dict__ for f in report.failures]
        session.add(run)
        session.commit()


async def repoll_device(engine: Engine, master: bytes, device_id: int, timeout_s: float = 1.0
                        ) -> DiscoveryReport | None:
    """Read one known device again now (after a trap) and fold it in; its neighbours are not crawled
    and nothing else is marked missing. None when the device has no address to poll."""
    with Session(engine) as session:
        dev = session.get(Device, device_id)
        poll = session.get(DevicePoll, device_id)
        address = (poll.address if poll and poll.address else None) or (dev.management_address if dev else None)
    if not address:
        return None
    return await discover(engine, master, seeds=[address], follow=False, timeout_s=timeout_s, actor="trap",
                          trigger="trap")
