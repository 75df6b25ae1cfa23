"""A fleet of real net-snmp ``snmpd`` agents in network namespaces, for SNMP client benchmarks.

Each namespace looks like a branch access switch: 48 "ports" (24 veth pairs named ``Gi1-0-1`` …
``Gi1-0-48``, some administratively down), two bridges (``Vlan1``, ``Vlan10``), its management
uplink ``mgmt0`` and ``lo`` — 52 rows in ifTable/ifXTable, served by net-snmp from the namespace's
own kernel interface list. Port descriptions (ifAlias, English and Arabic, some empty) are set
over SNMP after start-up, since net-snmp keeps ifAlias in its own memory.

Extra groups (``groups``: ports and agents each) get a namespace each, after the main ones: agents
whose ifTable has another size than the main fleet's (8 or 500 rows, say), to show that a figure
per varbind does not hang on one table size.

Addressing (exists only inside what this module creates, never on a real network; ``net`` is 77
unless a second fleet, such as a smoke run, must live beside a first one)::

    root namespace   bridge <prefix>br0 10.<net>.0.1/16, route 10.<net+1>.<k>.0/24 via namespace k
    namespace k      mgmt0 10.<net>.<hi>.<lo>/16 (veth to the bridge), default route via the bridge
    agent j of k     10.(net + 1 + k // 256).(k % 256).(j + 1)/32 on lo, one ``snmpd`` bound there

Several agents may share one namespace (``per_namespace``): each is its own ``snmpd`` process on
its own address, answering with the namespace's interface table. That is how 1,000 agents run
without 1,000 × 52 kernel interfaces.

Every process started here gets ``PR_SET_PDEATHSIG`` = SIGKILL, and :meth:`AgentFleet.close` kills
the agents, deletes the namespaces and the bridge; a lock file keeps two fleets apart and lets a
new run remove what a crashed one left (only names with this module's prefix).

Usage as a script (holds a fleet up for manual poking until Ctrl-C)::

    .venv/bin/python bench/netns_agents.py --agents 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "bench" / "out" / "netns_agents"

SNMPD = "/usr/sbin/snmpd"
SNMPSET = "/usr/bin/snmpset"
SETPRIV = "/usr/bin/setpriv"
WAVE = 100  # agents started, awaited and configured together
PREFIX = "isb"  # "infra-mgr SNMP bench": every namespace, link and lock of ours starts with it
NET = 77  # second octet of the bridge's /16; agents live in the next two /16s
SET_CHUNK = 100  # assignments per snmpset command (net-snmp's limit is 128)
RW_COMMUNITY = "isb-bench-rw"  # accepted only from the bridge address, only to set ifAlias
MAX_NAMESPACES = 512  # the two /16s after the bridge's hold 512 /24s
# Only the MIB modules a discovery walk needs (plus access control and the cache table): the
# default set polls CPU, memory and IP tables every few seconds, which adds up over 1,000 agents.
SNMPD_MODULES = "system_mib,sysORTable,ifTable,ifXTable,vacm_conf,vacm_vars,nsCache"
# NET-SNMP-AGENT-MIB nsCacheTimeout for ifTable. net-snmp reloads ifTable from the kernel every 3 s
# even when idle (~5 ms CPU per reload here): 1,000 idle agents would eat 5 cores. One hour instead.
IFTABLE_CACHE_TIMEOUT_OID = "1.3.6.1.4.1.8072.1.5.3.1.2.1.3.6.1.2.1.2.2"
IFTABLE_CACHE_TIMEOUT_S = 3600

ALIASES_EN = [
    "uplink to core", "printer 2nd floor", "AP corridor east", "CCTV entrance", "reception PC",
    "VoIP phone desk 14", "door controller", "UPS management", "meeting room TV", "spare",
]
ALIASES_AR = [
    "مبنى البلدية - الطابق ٢", "قاعة الاجتماعات الرئيسية", "مركز خدمة المواطنين", "غرفة الخوادم",
    "بوابة الحديقة العامة", "مكتب الاستقبال", "كاميرات المراقبة - المدخل", "مكتبة الحي",
]


@dataclass(frozen=True)
class Agent:
    """One running ``snmpd``: where to reach it and what it calls itself."""

    index: int
    address: str
    port: int
    namespace: str
    sys_name: str
    pid: int
    interfaces: int = 52  # rows of its ifTable (ports + 2 bridges + mgmt0 + lo)


@dataclass
class _Namespace:
    name: str
    transit: str  # mgmt0 address, 10.<net>.x.y
    subnet_prefix: str  # "10.<net + 1>.k" — agents are <subnet_prefix>.<j + 1>
    ports: int = 48
    agents: int = 1  # agents in this namespace
    if_indexes: dict[str, int] = field(default_factory=dict)


def _ip_batch(lines: Sequence[str], namespace: str | None = None, check: bool = True) -> None:
    cmd = ["ip", "-force", "-batch", "-"] if namespace is None else ["ip", "-n", namespace, "-force", "-batch", "-"]
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", text=True, capture_output=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[:500]}")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgentFleet:
    """Build, run and tear down ``n_agents`` snmpd agents spread over network namespaces.

    Use as a context manager; :meth:`start` returns the agents once every one answers: the
    ``n_agents`` main ones first (``ports`` ports each), then those of each extra group.
    """

    def __init__(self, n_agents: int, community: str = "isb-bench", namespaces: int | None = None,
                 ports: int = 48, prefix: str = PREFIX, seed: int = 27, verbose: bool = True,
                 groups: Sequence[tuple[int, int]] = (), net: int = NET) -> None:
        if n_agents < 1:
            raise ValueError("n_agents must be >= 1")
        for p in (ports, *(g[0] for g in groups)):
            if p < 2 or p % 2:
                raise ValueError("ports must be an even number >= 2 (they are veth pairs)")
        if any(not 1 <= g[1] <= 250 for g in groups):
            raise ValueError("an extra group has 1 to 250 agents (one namespace)")
        if not 1 <= net <= 250:
            raise ValueError("net is the bridge's second octet, 1..250")
        self.n_agents = n_agents
        self.community = community
        self.n_namespaces = min(n_agents, namespaces or min(n_agents, 50), MAX_NAMESPACES - len(groups))
        self.per_namespace = math.ceil(n_agents / self.n_namespaces)
        if self.per_namespace > 250:
            raise ValueError("more than 250 agents per namespace: raise namespaces")
        self.ports = ports
        self.groups = list(groups)
        self.prefix = prefix
        self.net = net
        self.bridge_addr = f"10.{net}.0.1"
        self.bridge = f"{prefix}br0"
        self.seed = seed
        self.verbose = verbose
        self.agents: list[Agent] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._namespaces: list[_Namespace] = []
        self._bridge_made = False
        self._lock_file: IO[str] | None = None
        self._workdir: Path | None = None
        self._frozen: set[int] = set()
        self._pid_proc: dict[int, subprocess.Popen[bytes]] = {}
        self.setup_s = 0.0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> AgentFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _log(self, msg: str) -> None:
        if self.verbose:
            print(f"[agents] {msg}", flush=True)

    def start(self, ready_timeout_s: float = 120.0) -> list[Agent]:
        """Create namespaces, start every agent, wait until all answer, set their ifAlias values."""
        if os.geteuid() != 0:
            raise SystemExit("netns agents need root (ip netns, veth, bridges)")
        for tool in (SNMPD, SNMPSET, SETPRIV):
            if not Path(tool).exists():
                raise SystemExit(f"{tool} is missing: apt-get install snmpd snmp")
        t0 = time.perf_counter()
        self._take_lock()
        self._remove_stale()
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        self._workdir = Path(tempfile.mkdtemp(prefix="run-", dir=OUT_DIR))
        self._make_network()
        self._start_agents(ready_timeout_s)
        self.setup_s = time.perf_counter() - t0
        extra = "".join(f", {n} with {p + 4}" for p, n in self.groups)
        self._log(f"{len(self.agents)} agents in {len(self._namespaces)} namespaces "
                  f"({self.per_namespace} per namespace, {self.n_agents} with {self.ports + 4} interfaces{extra}) "
                  f"ready in {self.setup_s:.1f} s")
        return self.agents

    def close(self) -> None:
        """Stop every agent and remove every namespace and link this fleet made. Safe to call twice.

        SIGINT/SIGTERM are held off meanwhile: a second Ctrl-C must not leave half a fleet behind.
        """
        main = threading.current_thread() is threading.main_thread()
        held = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        try:
            self._close()
        finally:
            for s, handler in held.items():
                signal.signal(s, handler)

    def _close(self) -> None:
        procs, self._procs = self._procs, []
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGCONT)
                    p.terminate()
        deadline = time.monotonic() + 5.0
        for p in procs:
            try:
                p.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        namespaces, self._namespaces = self._namespaces, []
        if namespaces:
            _ip_batch([f"netns del {ns.name}" for ns in namespaces], check=False)
        if self._bridge_made:
            _ip_batch([f"link del {self.bridge}"], check=False)
            self._bridge_made = False
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        self.agents = []

    def agent_cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by all running agents, from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for a in self.agents:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{a.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total / tick

    # ------------------------------------------------------------------ dead agents

    def freeze(self, agents: Sequence[Agent]) -> None:
        """SIGSTOP these agents: their sockets stay bound, requests are queued and never answered."""
        for a in agents:
            os.kill(a.pid, signal.SIGSTOP)
            self._frozen.add(a.pid)

    def thaw(self) -> None:
        """SIGCONT every frozen agent (they then answer their stale queued requests, harmlessly)."""
        for pid in list(self._frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen.clear()

    # ------------------------------------------------------------------ internals

    def _take_lock(self) -> None:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        f = open(OUT_DIR / f".{self.prefix}.lock", "w")  # noqa: SIM115 - held for the fleet's life
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise SystemExit(f"another SNMP agent fleet (prefix {self.prefix!r}) is running; wait for it") from None
        self._lock_file = f

    def _remove_stale(self) -> None:
        """Remove namespaces/bridge with our prefix left by a run that was killed (we hold the lock)."""
        out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout.strip()
        names = [n["name"] for n in json.loads(out or "[]") if n["name"].startswith(f"{self.prefix}-")]
        for name in names:
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
            for pid in pids:  # agents of our own earlier run (normally already gone through PDEATHSIG)
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        if names:
            self._log(f"removing {len(names)} namespaces left by an earlier run")
            _ip_batch([f"netns del {n}" for n in names], check=False)
        # A deleted namespace's veth ends vanish asynchronously; delete what is left and wait.
        deadline = time.monotonic() + 15.0
        while links := [p.name for p in Path("/sys/class/net").iterdir()
                        if p.name == self.bridge or p.name.startswith(f"{self.prefix}v")]:
            if time.monotonic() > deadline:
                raise SystemExit(f"links {links[:5]} from an earlier run do not go away")
            _ip_batch([f"link del {n}" for n in links], check=False)
            time.sleep(0.2)
        for old in OUT_DIR.glob("run-*"):
            shutil.rmtree(old, ignore_errors=True)

    def _make_network(self) -> None:
        t0 = time.perf_counter()
        sizes = [(self.ports, self.per_namespace)] * self.n_namespaces + self.groups
        for k, (ports, agents) in enumerate(sizes):
            host = k + 2
            self._namespaces.append(_Namespace(
                name=f"{self.prefix}-{k}", transit=f"10.{self.net}.{host >> 8}.{host & 255}",
                subnet_prefix=f"10.{self.net + 1 + k // 256}.{k % 256}", ports=ports, agents=agents))
        self._bridge_made = True
        root = [f"link add {self.bridge} type bridge", f"addr add {self.bridge_addr}/16 dev {self.bridge}",
                f"link set {self.bridge} up"]
        for k, ns in enumerate(self._namespaces):
            veth = f"{self.prefix}v{k}"
            root += [f"netns add {ns.name}", f"link add {veth} type veth peer name mgmt0 netns {ns.name}",
                     f"link set {veth} master {self.bridge} up",
                     f"route add {ns.subnet_prefix}.0/24 via {ns.transit} dev {self.bridge}"]
        _ip_batch(root)

        def build(ns: _Namespace) -> None:
            lines = ["link set lo up", f"addr add {ns.transit}/16 dev mgmt0", "link set mgmt0 up",
                     f"route add default via {self.bridge_addr}"]
            for j in range(ns.agents):
                lines.append(f"addr add {ns.subnet_prefix}.{j + 1}/32 dev lo")
            for p in range(1, ns.ports + 1, 2):
                lines.append(f"link add Gi1-0-{p} type veth peer name Gi1-0-{p + 1}")
            for b in ("Vlan1", "Vlan10"):
                lines += [f"link add {b} type bridge", f"link set {b} up"]
            for p in range(1, ns.ports + 1):
                if p % 7 != 0:  # every 7th port administratively down, like unused access ports
                    lines.append(f"link set Gi1-0-{p} up")
            _ip_batch(lines, namespace=ns.name)
            out = subprocess.run(["ip", "-n", ns.name, "-j", "link", "show"], capture_output=True, text=True,
                                 check=True).stdout
            ns.if_indexes = {i["ifname"]: int(i["ifindex"]) for i in json.loads(out)}

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(build, self._namespaces))
        self._log(f"{len(self._namespaces)} namespaces built in {time.perf_counter() - t0:.1f} s")

    def _agent_plan(self) -> Iterator[tuple[int, _Namespace, str, str]]:
        """The main agents round-robin over the main namespaces, then each extra group's."""
        main, extra = self._namespaces[:self.n_namespaces], self._namespaces[self.n_namespaces:]
        slots = [(ns, j) for j in range(self.per_namespace) for ns in main][:self.n_agents]
        slots += [(ns, j) for ns in extra for j in range(ns.agents)]
        for i, (ns, j) in enumerate(slots):
            branch = i % 63 + 1
            yield i, ns, f"{ns.subnet_prefix}.{j + 1}", f"jed-b{branch:02d}-acc-{i // 63 + 1:02d}"

    def _start_agents(self, ready_timeout_s: float) -> None:
        """Start agents in waves: each wave answers and is configured before the next starts.

        Until its ifTable cache timeout is raised, an idle snmpd reloads ifTable every 3 s
        (~2.5 ms CPU/s each here); starting 1,000 at once saturated this 2-core machine.
        """
        assert self._workdir is not None
        t0 = time.perf_counter()
        env = dict(os.environ, MIBS="", SNMP_PERSISTENT_DIR=str(self._workdir))
        plan = list(self._agent_plan())
        for w in range(0, len(plan), WAVE):
            wave: list[Agent] = []
            for i, ns, addr, sys_name in plan[w:w + WAVE]:
                wave.append(self._spawn(i, ns, addr, sys_name, env))
            self._wait_ready(wave, ready_timeout_s)
            self._configure(wave)
            self.agents += wave
        self._log(f"{len(self.agents)} snmpd started, answering and configured in {time.perf_counter() - t0:.1f} s")

    def _spawn(self, i: int, ns: _Namespace, addr: str, sys_name: str, env: dict[str, str]) -> Agent:
        assert self._workdir is not None
        conf = self._workdir / f"agent{i}.conf"
        conf.write_text(
            f"agentaddress udp:{addr}:161\n"
            f"rocommunity {self.community} default\n"
            f"rwcommunity {RW_COMMUNITY} {self.bridge_addr}/32\n"
            f"sysName {sys_name}\n"
            f"sysLocation Jeddah, branch {i % 63 + 1:02d}, comms room\n"
            "sysContact noc@jeddah-municipality.invalid\n"
            "sysDescr Branch access switch (net-snmp 5.9 benchmark agent)\n"
            "dontLogTCPWrappersConnects yes\n"
            "[snmp] noPersistentLoad yes\n"
            "[snmp] noPersistentSave yes\n"
            "[snmp] mibs :\n"
        )
        with open(self._workdir / f"agent{i}.log", "wb") as log:
            # setpriv --pdeathsig: the agent dies with this process even on SIGKILL. (Not a
            # preexec_fn: that forks the interpreter and runs at-fork hooks, which swallowed a
            # Ctrl-C here under load.)
            proc = subprocess.Popen(
                [SETPRIV, "--pdeathsig", "KILL", "--", "ip", "netns", "exec", ns.name,
                 SNMPD, "-f", "-Lo", "-C", "-c", str(conf), "-I", SNMPD_MODULES],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._procs.append(proc)
        self._pid_proc[proc.pid] = proc
        return Agent(index=i, address=addr, port=161, namespace=ns.name, sys_name=sys_name, pid=proc.pid,
                     interfaces=ns.ports + 4)

    def _wait_ready(self, agents: Sequence[Agent], timeout_s: float) -> None:
        """Until every agent answers sysName.0 with its own name."""
        from gufo.snmp.aio import SnmpSession

        async def probe(a: Agent, deadline: float) -> bool:
            while time.monotonic() < deadline:
                try:
                    session = SnmpSession(addr=a.address, port=a.port, community=self.community, timeout=0.5)
                    name = await session.get("1.3.6.1.2.1.1.5.0")
                    if (name.decode() if isinstance(name, bytes) else str(name)) == a.sys_name:
                        return True
                except (TimeoutError, OSError):
                    pass
                if self._pid_proc[a.pid].poll() is not None:
                    return False
                await asyncio.sleep(0.1)
            return False

        async def all_ready() -> list[bool]:
            deadline = time.monotonic() + timeout_s
            return await asyncio.gather(*(probe(a, deadline) for a in agents))

        ok = asyncio.run(all_ready())
        missing = [a for a, good in zip(agents, ok, strict=True) if not good]
        if missing:
            dead = [a for a in agents if self._pid_proc[a.pid].poll() is not None]
            detail = ""
            if dead and self._workdir is not None:
                detail = (self._workdir / f"agent{dead[0].index}.log").read_text(errors="replace")[-800:]
            raise RuntimeError(f"{len(missing)} agents did not answer within {timeout_s:.0f} s "
                               f"(exited: {len(dead)}) {detail}")

    def _configure(self, agents: Sequence[Agent]) -> None:
        """ifAlias per port, set over SNMP (net-snmp does not read the kernel's ifalias), and the
        ifTable cache timeout (see ``IFTABLE_CACHE_TIMEOUT_OID``)."""
        by_ns = {ns.name: ns for ns in self._namespaces}
        jobs: list[list[str]] = []
        for a in agents:
            ns = by_ns[a.namespace]
            rng = random.Random(self.seed * 100_003 + a.index)
            head = [SNMPSET, "-v2c", "-c", RW_COMMUNITY, "-t", "3", "-r", "2", "-Ln", f"udp:{a.address}:{a.port}"]
            sets: list[list[str]] = []
            for p in range(1, ns.ports + 1):
                r = rng.random()
                alias = rng.choice(ALIASES_AR) if r < 0.15 else rng.choice(ALIASES_EN) if r < 0.6 else ""
                if alias:
                    sets.append([f"1.3.6.1.2.1.31.1.1.1.18.{ns.if_indexes[f'Gi1-0-{p}']}", "s", alias])
            sets += [[f"1.3.6.1.2.1.31.1.1.1.18.{ns.if_indexes['mgmt0']}", "s", "management uplink"],
                     [IFTABLE_CACHE_TIMEOUT_OID, "i", str(IFTABLE_CACHE_TIMEOUT_S)]]
            # snmpset takes at most 128 assignments per command
            for start in range(0, len(sets), SET_CHUNK):
                jobs.append(head + [word for one in sets[start:start + SET_CHUNK] for word in one])

        def run(args: list[str]) -> str:
            proc = subprocess.run(args, capture_output=True, text=True)
            return "" if proc.returncode == 0 else proc.stderr.strip()[:300]

        with ThreadPoolExecutor(4) as pool:
            errors = [e for e in pool.map(run, jobs) if e]
        if errors:
            raise RuntimeError(f"configuring agents over SNMP failed on {len(errors)} agents: {errors[0]}")


def main(argv: list[str] | None = None) -> int:
    """Hold a fleet up until Ctrl-C, printing how to walk it."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=5)
    ap.add_argument("--namespaces", type=int, default=None, help="default: min(agents, 50)")
    ap.add_argument("--community", default="isb-bench")
    ap.add_argument("--group", action="append", default=[], metavar="PORTS:AGENTS",
                    help="an extra namespace of AGENTS agents with PORTS ports each (repeatable)")
    args = ap.parse_args(argv)
    groups = [(int(g.split(":")[0]), int(g.split(":")[1])) for g in args.group]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with AgentFleet(args.agents, community=args.community, namespaces=args.namespaces, groups=groups) as fleet:
        agents = fleet.start()
        for a in agents[:10] + agents[max(10, len(agents) - 5):]:
            print(f"{a.sys_name:<20} {a.address:<15} ns {a.namespace:<8} pid {a.pid} ({a.interfaces} interfaces)")
        a = agents[0]
        print(f"try: snmpbulkwalk -v2c -c {args.community} -Cr25 {a.address} 1.3.6.1.2.1.31.1.1.1.18")
        print("Ctrl-C stops and removes everything")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
