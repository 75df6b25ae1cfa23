"""Conformance against real-device recordings: serve them, probe them with our own code path,
compare field by field with the answers another monitoring system derives from the same data.

Shared by ``tests/conformance`` (pytest) and ``bench/conformance.py`` (the report), so both count
the same fields the same way. The corpus (``librenms/snmprec`` recordings and ``librenms/expected``
answers, GPL test data) is read where it lies at run time and never copied into the repository:
``$INFRA_MGR_CORPUS`` or ``../shared/corpus`` beside the repository.

What is compared, per device (only where the expected answer has a value):

* ``vendor`` (the expected OS mapped to our vendor name by ``os_vendors.yaml``), ``model``
  (their hardware), ``version``, ``serial``, ``sys_name``, ``location``;
* ``if_count`` and, per expected interface (matched by ifIndex), ``name``, ``type``, ``speed``,
  ``mac``, ``admin``, ``oper``, ``alias``;
* for power devices, every numeric sensor that names one of our canonical readings (battery
  charge and runtime, input/output voltage, current and frequency, load, battery temperature,
  power), in our units, and the state sensors that say where the load is fed from and whether
  the battery needs replacing.

A disagreement listed in ``deliberate.yaml`` (with the reason, mirrored in docs/conformance.md)
counts as agreeing; any other disagreement counts against us.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CORPUS_ENV = "INFRA_MGR_CORPUS"
GOAL_PCT = 95.0


# --- the corpus ----------------------------------------------------------------------------------


def corpus_dir() -> Path | None:
    """The ``librenms`` folder of the corpus, or None when it is not on this machine."""
    base = Path(os.environ[CORPUS_ENV]) if os.environ.get(CORPUS_ENV) else ROOT.parent / "shared" / "corpus"
    for candidate in (base / "librenms", base):
        if (candidate / "snmprec").is_dir() and (candidate / "expected").is_dir():
            return candidate
    return None


def device_names(corpus: Path) -> list[str]:
    """Every recording that has an expected answer, by name (= snmpsim community)."""
    recs = {p.name[: -len(".snmprec")] for p in (corpus / "snmprec").glob("*.snmprec")}
    return sorted(p.stem for p in (corpus / "expected").glob("*.json") if p.stem in recs)


def expected(corpus: Path, name: str) -> dict[str, Any]:
    return json.loads((corpus / "expected" / f"{name}.json").read_text(encoding="utf-8"))


# --- serving the recordings ----------------------------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _responder() -> str:
    local = Path(sys.executable).parent / "snmpsim-command-responder"
    return str(local) if local.exists() else (shutil.which("snmpsim-command-responder") or str(local))


@dataclass
class Agent:
    address: str
    port: int


@contextlib.contextmanager
def serve(corpus: Path, ready_community: str, timeout_s: float = 120.0) -> Iterator[Agent]:
    """One snmpsim process serving every recording of the corpus on a loopback UDP port (the
    community is the recording's name); its index lives in a temporary folder, removed after."""
    work = Path(tempfile.mkdtemp(prefix="conformance-"))
    port = _free_udp_port()
    env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}
    log = (work / "snmpsim.log").open("wb")
    proc = subprocess.Popen(
        [_responder(), f"--data-dir={corpus / 'snmprec'}", f"--cache-dir={work / 'cache'}",
         f"--agent-udpv4-endpoint=127.0.0.1:{port}", "--log-level=error"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        agent = Agent("127.0.0.1", port)
        deadline = time.monotonic() + timeout_s
        while not _answers(agent, ready_community):
            if proc.poll() is not None:
                raise RuntimeError(f"snmpsim exited ({proc.returncode}): "
                                   + (work / "snmpsim.log").read_text(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"snmpsim did not answer within {timeout_s:g} s")
            time.sleep(0.3)
        yield agent
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def _answers(agent: Agent, community: str) -> bool:
    from infra_mgr.snmp.engine import SnmpEngine
    from infra_mgr.snmp.target import SnmpTarget

    async def ask() -> bool:
        target = SnmpTarget(address=agent.address, port=agent.port, community=community, timeout_s=1.0, retries=0)
        try:
            async with SnmpEngine(max_concurrency=1).session(target) as walker:
                return bool(await walker.get(["1.3.6.1.2.1.1.2.0"], operation="ready"))
        except Exception:  # noqa: BLE001 - not up yet, whatever the error
            return False

    return asyncio.run(ask())


# --- probing -------------------------------------------------------------------------------------


@dataclass
class Probed:
    name: str
    result: Any = None  # ProbeResult
    power: Any = None  # PowerReadings | None
    crash: str | None = None


async def probe_one(agent: Agent, name: str) -> Probed:
    """The device as ``infra-mgr snmp probe`` sees it (same function, power readings included)."""
    import infra_mgr.cli  # noqa: F401 - the application's wiring: registers the power reader into PROBE_EXTRAS
    from infra_mgr.network.cli import _probe_with_power
    from infra_mgr.snmp.target import SnmpTarget

    target = SnmpTarget(address=agent.address, port=agent.port, community=name, timeout_s=5.0, retries=1)
    try:
        result, power = await _probe_with_power(target)
    except Exception as exc:  # noqa: BLE001 - a crash is what the per-device test reports
        return Probed(name, crash=f"{exc.__class__.__name__}: {exc}")
    return Probed(name, result, power)


def probe_all(agent: Agent, names: list[str], concurrency: int = 4) -> dict[str, Probed]:
    async def run() -> list[Probed]:
        gate = asyncio.Semaphore(concurrency)

        async def one(name: str) -> Probed:
            async with gate:
                return await probe_one(agent, name)

        return list(await asyncio.gather(*(one(n) for n in names)))

    return {p.name: p for p in asyncio.run(run())}


# --- comparing -----------------------------------------------------------------------------------


@dataclass
class FieldResult:
    device: str
    field: str
    ours: Any
    theirs: Any
    agree: bool
    power: bool = False
    deliberate: str | None = None  # the id of the deliberate difference that excuses it

    @property
    def counts(self) -> bool:
        return self.agree or self.deliberate is not None


@dataclass
class Difference:
    id: str
    field: str
    devices: tuple[str, ...]
    reason: str
    ours_none: bool | None = None
    theirs_in: tuple[Any, ...] | None = None
    theirs_matches: re.Pattern[str] | None = None
    theirs_equals: tuple[str, ...] | None = None  # sibling expected keys (ports: ifDescr, ifName)
    ours_in: tuple[Any, ...] | None = None


def load_differences(path: Path = HERE / "deliberate.yaml") -> list[Difference]:
    """The deliberate differences; each needs an id, a field glob and a reason."""
    from pydantic import BaseModel, ConfigDict

    class _Diff(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: str
        field: str
        devices: list[str] = ["*"]
        reason: str
        ours_none: bool | None = None
        theirs_in: list[Any] | None = None
        theirs_matches: str | None = None
        theirs_equals: list[str] | None = None
        ours_in: list[Any] | None = None

    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for item in raw.get("differences") or []:
        d = _Diff.model_validate(item)
        if len(d.reason.strip()) < 20:
            raise ValueError(f"deliberate.yaml: {d.id}: the reason must say why")
        out.append(Difference(d.id, d.field, tuple(d.devices), d.reason, d.ours_none,
                              tuple(d.theirs_in) if d.theirs_in is not None else None,
                              re.compile(d.theirs_matches) if d.theirs_matches else None,
                              tuple(d.theirs_equals) if d.theirs_equals else None,
                              tuple(d.ours_in) if d.ours_in is not None else None))
    return out


def load_os_vendors(path: Path = HERE / "os_vendors.yaml") -> dict[str, tuple[str, ...]]:
    """Their OS name → the vendor names we may rightly report for it."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): tuple([v] if isinstance(v, str) else v) for k, v in (raw.get("os") or {}).items()}


def generic_vendors(path: Path = HERE / "os_vendors.yaml") -> tuple[str, ...]:
    """Vendor names that only describe the agent (net-snmp): generic, not wrong."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return tuple(str(v) for v in raw.get("generic") or ())


def _norm(value: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(value).lower())


def _text_same(ours: Any, theirs: Any) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return str(ours).strip().strip('"').strip() == str(theirs).strip().strip('"').strip()


def _contains(ours: Any, theirs: Any) -> bool:
    """A model or version named within the other side's longer text ("6.7.2" in "AOS v6.7.2")."""
    a, b = _norm(ours or ""), _norm(theirs or "")
    if not a or not b:
        return a == b
    return a == b or (min(len(a), len(b)) >= 3 and (a in b or b in a))


def _num_same(ours: Any, theirs: Any) -> bool:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float):
        return False
    return abs(float(ours) - float(theirs)) <= max(0.011 * abs(float(theirs)), 0.051)


_PHASE = re.compile(r"(?:phase\s*#?|\bl)\s*([1-3])\b|\b([1-3])$")


def _phase(descr: str) -> int | None:
    match = _PHASE.search(descr)
    return int(match.group(1) or match.group(2)) if match else None


def sensor_reading(sensor: dict[str, Any]) -> tuple[str, float] | None:
    """The canonical reading a numeric sensor names, and the factor from our unit to theirs; None
    for sensors with no canonical reading (bypass, per-outlet, ambient probes, counters)."""
    cls = sensor.get("class")
    d = str(sensor.get("descr") or "").lower()
    if "bypass" in d or "outlet" in d or "branch" in d or "neutral" in d or "before alarm" in d:
        return None
    phase = _phase(d)
    source = re.search(r"\binput ([ab])\b", d)
    if source and cls in ("voltage", "frequency", "current"):  # an ATS's two inputs: ours input.1 / input.2
        return (f"input.{'12'['ab'.index(source.group(1))]}.{cls}", 1.0)
    side = ("input" if re.search(r"\binput\b|\bin\b|\bin l|total input", d) else
            "output" if re.search(r"\boutput\b|\bout\b|\bout l", d) else
            "battery" if "battery" in d or "batt" in d else
            "input" if "cord" in d else None)  # a PDU's input cord
    if cls == "charge":
        return ("battery.charge", 1.0)
    if cls == "runtime":
        ok = re.search(r"runtime|time remaining|run time", d) and "days" not in d and "replacement" not in d
        return ("battery.runtime", 1 / 60) if ok else None
    if cls == "load":
        return ("ups.load", 1.0) if phase in (None, 1) and "va" not in d.replace("load(va)", "") else None
    if cls in ("voltage", "current"):
        if side == "battery":
            return ("battery.voltage", 1.0) if cls == "voltage" else None
        if side in ("input", "output"):
            return (f"{side}.{cls}" if phase in (None, 1) else f"{side}.L{phase}.{cls}", 1.0)
        return None
    if cls == "frequency":
        return (f"{side}.frequency", 1.0) if side in ("input", "output") and phase in (None, 1) else None
    if cls == "temperature":
        return ("battery.temperature", 1.0) if ("battery" in d or "internal" in d) else None
    if cls == "power":
        if side is None and "phase" in d:
            return None  # a PDU's per-phase (phase-pair) power: no canonical reading
        if side == "input" and "cord" in d:
            return ("input.realpower", 1.0) if "active" in d else None
        if side == "output" or "active power" in d:
            return ("ups.realpower", 1.0) if phase in (None, 1) else None
        if side == "input" or "total" in d:
            return ("input.realpower", 1.0)
    return None


# LibreNMS state texts → ours, for the states a power family reports (their translation of the code)
_SOURCE = {"online": "normal", "normal": "normal", "onbattery": "battery", "battery": "battery",
           "onsmartboost": "booster", "booster": "booster", "onsmarttrim": "reducer", "reducer": "reducer",
           "bypass": "bypass", "onbypass": "bypass", "switchedbypass": "bypass", "softwarebypass": "bypass",
           "hardwarefailurebypass": "bypass", "none": "none", "off": "none", "other": "other",
           "onbuck": "reducer", "onboost": "booster"}
_STATE_READING = {
    "1.3.6.1.4.1.318.1.1.1.4.1.1.0": "output.source",  # upsBasicOutputStatus
    "1.3.6.1.2.1.33.1.4.1.0": "output.source",  # upsOutputSource
    "1.3.6.1.4.1.534.1.4.5.0": "output.source",  # xupsOutputSource
    "1.3.6.1.4.1.318.1.1.1.2.2.4.0": "battery.replace",  # upsAdvBatteryReplaceIndicator
    "1.3.6.1.4.1.318.1.1.8.5.1.2.0": "input.source",  # atsStatusSelectedSource
    "1.3.6.1.4.1.3808.1.1.1.4.1.1.0": "output.source",  # CyberPower upsBaseOutputStatus
    "1.3.6.1.4.1.3808.1.1.1.2.2.5.0": "battery.replace",  # CyberPower upsAdvanceBatteryReplaceIndicator
    "1.3.6.1.4.1.935.1.1.1.4.1.1.0": "output.source",  # NetAgent upsBaseOutputStatus
    "1.3.6.1.4.1.705.1.5.11.0": "battery.replace",  # MGE upsmgBatteryReplacement
}


def _state_text(reading: str, state: str) -> str | None:
    key = _norm(state)
    if reading == "output.source":
        return _SOURCE.get(key)
    if reading == "battery.replace":
        return "yes" if "needs" in key and not key.startswith("no") else "no"
    if reading == "input.source":
        return {"sourcea": "A", "sourceb": "B", "a": "A", "b": "B"}.get(key)
    return None


def compare_device(exp: dict[str, Any], probed: Probed, os_vendors: dict[str, tuple[str, ...]],
                   differences: list[Difference]) -> list[FieldResult]:
    """Every compared field of one device."""
    name = exp["name"]
    out: list[FieldResult] = []

    def add(fname: str, ours: Any, theirs: Any, agree: bool, power: bool = False,
            context: dict[str, Any] | None = None) -> None:
        res = FieldResult(name, fname, ours, theirs, agree, power)
        if not agree:
            res.deliberate = _excuse(res, context or exp, differences)
        out.append(res)

    result, power = probed.result, probed.power
    facts = result.facts if result is not None else None
    wanted = os_vendors.get(exp["os"])
    named = [v for v in (facts.vendor if facts else None, getattr(power, "vendor", None)) if v]
    ours_vendor = named[0] if named else None
    good = {_norm(w) for w in wanted or ()}
    match = next((v for v in named if _norm(v) in good), None)
    add("vendor", match or ours_vendor, "|".join(wanted) if wanted else exp["os"], match is not None)
    pairs = (("model", "hardware", _contains), ("version", "version", _contains),
             ("serial", "serial", lambda a, b: _norm(a) == _norm(b) and a is not None),
             ("sys_name", "sysName", _text_same), ("location", "location", _text_same))
    for ours_key, theirs_key, same in pairs:
        theirs = exp.get(theirs_key)
        if theirs in (None, ""):
            continue
        ours = getattr(facts, ours_key.replace("version", "os_version"), None) if facts else None
        add(ours_key, ours, theirs, bool(same(ours, theirs)))
    if exp.get("ports"):
        _compare_ports(exp, result, add)
    if exp.get("type") == "power":
        _compare_power(exp, power, add)
    return out


def _compare_ports(exp: dict[str, Any], result: Any, add: Any) -> None:
    ours = {i.index: i for i in (result.interfaces if result is not None else [])}
    theirs = exp["ports"]
    add("if_count", len(ours), len(theirs), len(ours) == len(theirs))
    for port in theirs:
        mine = ours.get(port["ifIndex"])
        prefix = f"port[{port['ifIndex']}]"
        checks = (("name", "ifName", lambda i: i.name, _text_same),
                  ("type", "ifType", lambda i: i.type, _text_same),
                  ("speed", "ifSpeed", lambda i: i.speed_bps, lambda a, b: a == b),
                  ("mac", "ifPhysAddress", lambda i: i.mac, lambda a, b: _norm(a or "") == _norm(b or "")),
                  ("admin", "ifAdminStatus", lambda i: i.admin_status, _text_same),
                  ("oper", "ifOperStatus", lambda i: i.oper_status, _text_same),
                  ("alias", "ifAlias", lambda i: i.alias, _text_same))
        for fname, key, get, same in checks:
            if key not in port:
                continue
            theirs_value = port[key]
            if theirs_value == "" and key in ("ifAlias", "ifPhysAddress"):
                theirs_value = None
            value = get(mine) if mine is not None else None
            if key == "ifName" and theirs_value is None:
                continue
            add(f"{prefix}.{fname}", value, theirs_value, mine is not None and bool(same(value, theirs_value)),
                context=port)


def _compare_power(exp: dict[str, Any], power: Any, add: Any) -> None:
    readings = dict(power.readings) if power is not None else {}
    seen: set[str] = set()
    for sensor in exp.get("sensors") or []:
        mapped = sensor_reading(sensor)
        if mapped is None:
            continue
        reading, factor = mapped
        if reading in seen:  # two sensors of theirs for one reading of ours: the first (their order)
            continue
        seen.add(reading)
        value = readings.get(reading)
        ours = round(float(value) * factor, 3) if isinstance(value, int | float) else value
        add(f"power.{reading}", ours, sensor.get("value"), _num_same(ours, sensor.get("value")), True, sensor)
    for state in exp.get("state_sensors") or []:
        reading = _STATE_READING.get(str(state.get("oid", "")).lstrip("."))
        if reading is None or reading in seen:
            continue
        seen.add(reading)
        want = _state_text(reading, str(state.get("state") or ""))
        add(f"power.{reading}", readings.get(reading), state.get("state"),
            want is not None and readings.get(reading) == want, True, state)


def _glob(name: str, pattern: str) -> bool:
    """fnmatch with ``[`` and ``]`` taken literally (field names have them: ``port[3].alias``)."""
    return fnmatch.fnmatchcase(name, pattern.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]"))


def _excuse(res: FieldResult, context: dict[str, Any], differences: list[Difference]) -> str | None:
    for d in differences:
        if not _glob(res.field, d.field):
            continue
        if not any(fnmatch.fnmatchcase(res.device, pat) for pat in d.devices):
            continue
        if d.ours_none is not None and (res.ours is None) != d.ours_none:
            continue
        if d.theirs_in is not None and res.theirs not in d.theirs_in:
            continue
        if d.theirs_matches is not None and not d.theirs_matches.search(str(res.theirs)):
            continue
        if d.ours_in is not None and res.ours not in d.ours_in:
            continue
        if d.theirs_equals is not None and (res.theirs in (None, "")
                                            or all(res.theirs != context.get(k) for k in d.theirs_equals)):
            continue
        return d.id
    return None


# --- the whole run -------------------------------------------------------------------------------


@dataclass
class Report:
    fields: list[FieldResult] = field(default_factory=list)
    probed: dict[str, Probed] = field(default_factory=dict)
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)

    def totals(self, power: bool | None = None) -> tuple[int, int]:
        chosen = [f for f in self.fields if power is None or f.power == power]
        return sum(f.counts for f in chosen), len(chosen)

    def per_device(self) -> dict[str, tuple[int, int, int, int]]:
        """name → (agreeing, compared, power agreeing, power compared)."""
        out: dict[str, list[int]] = {n: [0, 0, 0, 0] for n in self.expected}
        for f in self.fields:
            row = out[f.device]
            row[0] += f.counts
            row[1] += 1
            if f.power:
                row[2] += f.counts
                row[3] += 1
        return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}

    def mismatches(self, power: bool | None = None) -> list[FieldResult]:
        return [f for f in self.fields if not f.counts and (power is None or f.power == power)]

    def device_failures(self) -> dict[str, str]:
        """Devices that crashed, did not answer, or got a wrong vendor (one we could not name at
        all counts against agreement, not here: an unknown device is described generically)."""
        bad: dict[str, str] = {}
        for name, p in self.probed.items():
            if p.crash:
                bad[name] = f"crash: {p.crash}"
            elif p.result is None or not p.result.reachable:
                bad[name] = "no answer"
        for f in self.fields:
            if f.field == "vendor" and not f.counts and f.ours is not None and f.device not in bad \
                    and _norm(f.ours) not in {_norm(g) for g in generic_vendors()}:
                bad[f.device] = f"vendor {f.ours!r}, expected {f.theirs!r}"
        return bad


def run(corpus: Path, names: list[str] | None = None) -> Report:
    names = names or device_names(corpus)
    report = Report(expected={n: expected(corpus, n) for n in names})
    with serve(corpus, names[0]) as agent:
        report.probed = probe_all(agent, names)
    os_vendors, differences = load_os_vendors(), load_differences()
    for name in names:
        report.fields += compare_device(report.expected[name], report.probed[name], os_vendors, differences)
    return report


def pct(agree: int, compared: int) -> float:
    return 100.0 * agree / compared if compared else 0.0


def format_mismatch(f: FieldResult) -> str:
    return f"{f.device}: {f.field}: ours {f.ours!r} vs theirs {f.theirs!r}"
