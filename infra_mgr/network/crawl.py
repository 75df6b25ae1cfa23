"""Discovery's crawl: I/O only. From seed addresses (and seed ranges, swept host by host) it
probes every address with each SNMP credential in order and follows neighbours' management
addresses as soon as they are read — only inside the allow-list, never outside — and returns
what answered and what did not. It knows nothing of the database (``reconcile`` does).

A device that answers no SNMP credential may still be read over SSH (CLI discovery): the crawl
asks an injected function (``ssh``; built by ``discovery`` from the stored SSH credentials) after
SNMP, every time: SNMP stays first even for an address last read over SSH, so a device that was
silent for one run is read over SNMP again as soon as it answers (SSH facts are fewer). Its answer
is an :class:`Answer` like an SNMP one — the CLI's facts in the same shape — so its neighbours
are followed alike.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from infra_mgr.network.snmp.facts import NeighborFacts, ProbeResult
from infra_mgr.snmp.target import PollProblem, SnmpTarget

ProbeFn = Callable[..., Awaitable[ProbeResult]]  # (target[, on_neighbors=…]) -> result
AliveFn = Callable[[str, int, float], Awaitable[bool]]
Progress = Callable[[str, int, int], None]  # (address, done, total)

MAX_RANGE_HOSTS = 4096
_NO_ANSWER = {"timeout", "auth"}


# --------------------------------------------------------------------------- crawl (I/O only)


@dataclass(frozen=True)
class CredentialOption:
    """One credential to try, as a target template (address filled per device)."""

    credential_id: int | None
    template: SnmpTarget
    label: str = ""


@dataclass
class Answer:
    address: str
    credential_id: int | None
    result: ProbeResult
    protocol: str = "snmp"  # snmp | ssh: how the device was read
    host_key: Any = None  # ssh: the HostKey the device presented (recorded on first use)
    port: int | None = None  # ssh: the port it was read on


@dataclass
class SshMiss:
    """No SSH credential read the device: why (``problems``; kind ``hostkey_changed`` when its key
    differs from the recorded one) and the key it offered, if any."""

    problems: list[PollProblem] = field(default_factory=list)
    host_key: Any = None
    port: int | None = None


# (address, preferred credential id) -> the CLI's answer, or why not
SshFn = Callable[[str, int | None], Awaitable[Answer | SshMiss]]


@dataclass
class NoAnswer:
    address: str
    reason: str  # "unreachable" | "wrong_credentials" | "hostkey_changed" (SSH refused a changed key)
    name_hint: str | None = None  # a name neighbours gave it, if any
    problems: list[PollProblem] = field(default_factory=list)
    host_key: Any = None  # hostkey_changed: the key the device offered
    port: int | None = None


@dataclass
class CrawlResult:
    answers: list[Answer] = field(default_factory=list)
    no_answer: list[NoAnswer] = field(default_factory=list)
    outside_allow: dict[str, str] = field(default_factory=dict)  # address -> name neighbours gave it


def range_hosts(cidr: str) -> list[str]:
    net = ipaddress.ip_network(cidr, strict=False)
    if net.num_addresses == 1:
        return [str(net.network_address)]
    if net.num_addresses > MAX_RANGE_HOSTS + 2:
        raise ValueError(f"{cidr}: range larger than {MAX_RANGE_HOSTS} hosts; split it")
    return [str(h) for h in net.hosts()]


def _answered(result: ProbeResult) -> bool:
    if not result.reachable:
        return False
    f = result.facts
    return bool(f.sys_object_id or f.sys_name or f.sys_descr)


class Crawler:
    """Breadth-first crawl; each wave probes its addresses concurrently (bounded)."""

    def __init__(self, probe: ProbeFn, credentials: Sequence[CredentialOption], allow: Iterable[str],
                 concurrency: int = 64, alive: AliveFn | None = None, progress: Progress | None = None,
                 early: bool = False, ssh: SshFn | None = None) -> None:
        if not credentials:
            raise ValueError("no SNMP credential to try")
        self.probe = probe
        self.credentials = list(credentials)
        self.allow = [ipaddress.ip_network(a, strict=False) for a in allow]
        self.sem = asyncio.Semaphore(concurrency)
        self.alive = alive
        self.progress = progress
        # early: the probe takes ``on_neighbors`` and reports neighbours before it is done, so
        # the crawl goes on to them while this device's interfaces are still being read
        self.early = early
        self.names: dict[str, str] = {}  # address -> sysName a neighbour reported for it
        self.ssh = ssh

    def allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self.allow)

    async def _try(self, address: str, preferred: int | None,
                   learn: Callable[[list[NeighborFacts]], None]) -> Answer | NoAnswer:
        order = sorted(self.credentials, key=lambda c: c.credential_id != preferred) if preferred else self.credentials
        problems: list[PollProblem] = []
        extra = {"on_neighbors": learn} if self.early else {}
        miss: SshMiss | None = None
        async with self.sem:
            for cred in order:
                result = await self.probe(replace(cred.template, address=address), **extra)
                if _answered(result):
                    return Answer(address, cred.credential_id, result)
                problems.extend(result.errors)
                if not any(p.kind in _NO_ANSWER for p in result.errors) and result.reachable:
                    # It answered but with nothing useful: another credential will not help.
                    return Answer(address, cred.credential_id, result)
            if self.ssh is not None:
                got = await self.ssh(address, preferred)
                if isinstance(got, Answer):
                    return got
                miss = got
            if miss is not None:
                problems.extend(miss.problems)
                if any(p.kind == "hostkey_changed" for p in miss.problems):
                    return NoAnswer(address, "hostkey_changed", self.names.get(address), problems,
                                    miss.host_key, miss.port)
            port = self.credentials[0].template.port
            timeout = self.credentials[0].template.timeout_s
            alive = await self.alive(address, port, timeout) if self.alive else False
            if not alive and miss is not None:  # an SSH login that was refused is a live device too
                alive = any(p.kind in ("auth", "command", "timeout", "dropped", "paging", "unsupported")
                            for p in miss.problems)
        return NoAnswer(address, "wrong_credentials" if alive else "unreachable", self.names.get(address), problems)

    async def run(self, seeds: Iterable[str], preferred: dict[str, int] | None = None, follow: bool = True
                  ) -> CrawlResult:
        """Probe seeds, then (``follow``) every neighbour address as soon as it is learnt (no waiting
        for a whole wave: one slow or silent device never holds the others back)."""
        preferred = preferred or {}
        out = CrawlResult()
        seen: set[str] = set()
        running: set[asyncio.Task[Answer | NoAnswer]] = set()

        def start(address: str) -> None:
            seen.add(address)
            running.add(asyncio.create_task(self._try(address, preferred.get(address), learn)))

        def learn(neighbors: list[NeighborFacts]) -> None:
            for n in neighbors:
                addr = n.remote_address
                if not addr:
                    continue
                if n.remote_system_name:
                    self.names.setdefault(addr, n.remote_system_name)
                if addr in seen or not follow:
                    continue
                if not self.allowed(addr):
                    out.outside_allow.setdefault(addr, n.remote_system_name or "")
                    continue
                start(addr)

        for address in dict.fromkeys(seeds):
            start(address)
        done_count = 0
        while running:
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                running.discard(task)
                res = task.result()
                done_count += 1
                if self.progress:
                    self.progress(res.address, done_count, len(seen))
                if isinstance(res, NoAnswer):
                    out.no_answer.append(res)
                    continue
                out.answers.append(res)
                learn(res.result.neighbors)
        for na in out.no_answer:
            na.name_hint = na.name_hint or self.names.get(na.address)
        return out


