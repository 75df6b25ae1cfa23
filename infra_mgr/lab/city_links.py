"""The lab city's links at run time: traffic counters, the ``linkrate`` variation, conditions.

Three things the link audit needs from the lab, in one place:

* **Counters as a closed form.** A counter's value is ``base + rate × ∫ shape`` from an instant
  ``t0`` to now (:class:`Counter`, :func:`counter_value`), the shape being the city's working day
  (:func:`day_integral`) or flat. No state: any process (an snmpsim worker, the CLI, a test)
  computes the same value for the same instant, so a condition changed at run time keeps every
  counter continuous: the new line starts at ``t0`` = the change with ``base`` = the old line's
  value then (an *anchor*).
* **The ``linkrate`` snmpsim variation module** (:func:`make_variation`): recording lines
  ``OID|70:linkrate|b=…,t=…,r=…,s=day,w=64`` answer :func:`counter_value` (modulo 2³² for
  ``w=32``: the 32-bit ifTable counters wrap as real agents' do), and ``OID|2:linkrate|flap=7``
  answers ifOperStatus down for the first half of every 7 s of wall time, up for the second
  (both ends of the cable agree, whichever worker serves them).
* **Conditions** (:class:`LinkControl`, ``infra-mgr lab link``): ``<city>/conditions.json`` holds
  what was changed on top of the city as built (per link: state, traffic, errors, speed; per
  device: SNMP loss %) and the anchors; a change rewrites the recordings (snmpsim re-reads a
  changed recording within a second) and ``<city>/loss.json`` (read by the workers, by address).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra_mgr.lab.city_model import (
    DISCARD_SHARE,
    ERROR_SHARE,
    FAULTS,
    FLAP_PERIOD_S,
    LINK_CONDITIONS,
    LOSS_PCT,
    TRAFFIC_EPOCH,
    City,
    Device,
    Interface,
    Link,
    build_city,
    set_normal_traffic,
    set_saturated,
    settle_states,
)
from infra_mgr.lab.supervisor import LabError

VARIATION = "linkrate"
DAY_S = 86400.0
PEAK_UTC_S = 8.5 * 3600  # 11:30 Asia/Riyadh (UTC+3, no daylight saving)
# the working-day shape: c0 + c1·cos θ + c2·cos 2θ, θ = 0 at the peak; 1.0 at 11:30, ~0.83 at
# 09:00 and 14:00, 0.35 at 05:30 and 17:30, 0.1 at 23:30
DAY_TERMS = (0.45, 0.45, 0.10)
PACKET_OCTETS = 700
CONDITIONS_FILE = "conditions.json"
LOSS_FILE = "loss.json"
LINK_SETTINGS = ("down", "up", "flapping", "errors", "saturated", "healthy")


# --- the closed form ----------------------------------------------------------------------------


def day_shape(t: float) -> float:
    """The traffic at unix time ``t`` as a share of the day's peak."""
    theta = 2 * math.pi * ((t - PEAK_UTC_S) % DAY_S) / DAY_S
    c0, c1, c2 = DAY_TERMS
    return c0 + c1 * math.cos(theta) + c2 * math.cos(2 * theta)


def day_integral(t0: float, t1: float) -> float:
    """∫ day_shape from ``t0`` to ``t1`` in seconds at peak (exact; angles taken modulo a day so
    the result keeps its precision for instants far from the epoch)."""
    c0, c1, c2 = DAY_TERMS

    def theta(t: float) -> float:
        return 2 * math.pi * ((t - PEAK_UTC_S) % DAY_S) / DAY_S

    a, b = theta(t0), theta(t1)
    return (
        c0 * (t1 - t0)
        + c1 * DAY_S / (2 * math.pi) * (math.sin(b) - math.sin(a))
        + c2 * DAY_S / (4 * math.pi) * (math.sin(2 * b) - math.sin(2 * a))
    )


@dataclass(frozen=True)
class Counter:
    """One counter: ``base`` at ``t0``, then ``rate`` per second at the peak of ``shape``."""

    base: int
    t0: float
    rate: float
    shape: str = "day"  # day | flat

    def params(self, width: int) -> tuple[tuple[str, Any], ...]:
        return (("b", self.base), ("t", self.t0), ("r", self.rate), ("s", self.shape), ("w", width))


ANCHOR_LEAD_S = 2.0  # how far ahead of a change its counters are anchored (see LinkControl._change)


def counter_value(counter: Counter, t: float) -> int:
    """The (unwrapped) count at unix time ``t``; never less than ``base``."""
    if t <= counter.t0 or counter.rate <= 0:
        return counter.base
    span = day_integral(counter.t0, t) if counter.shape == "day" else t - counter.t0
    return counter.base + int(counter.rate * span)


def flap_status(t: float, period: float = FLAP_PERIOD_S) -> int:
    """ifOperStatus of the flapping link at unix time ``t``: 2 (down) then 1 (up), half a period each."""
    return 2 if (t - TRAFFIC_EPOCH) % period < period / 2 else 1


def interface_counters(iface: Interface) -> dict[str, Counter]:
    """Every counter of an interface as the recording serves it now (its condition and anchor)."""
    moving = iface.oper in ("up", "flapping")
    octets_per_s = max(iface.speed_mbps, 10) * 125_000 if moving else 0
    in_rate, out_rate = iface.in_share * octets_per_s, iface.out_share * octets_per_s
    in_pps, out_pps = in_rate / PACKET_OCTETS, out_rate / PACKET_OCTETS
    error_share = ERROR_SHARE if iface.errored else 0.0
    discard_share = DISCARD_SHARE if iface.errored else 0.0
    start: dict[str, tuple[int, float]] = {
        "in_octets": (iface.in_octets, in_rate),
        "out_octets": (iface.out_octets, out_rate),
        "in_pkts": (iface.in_octets // PACKET_OCTETS, in_pps),
        "out_pkts": (iface.out_octets // PACKET_OCTETS, out_pps),
        "in_errors": (iface.in_errors, in_pps * error_share),
        "out_errors": (0, out_pps * error_share),
        "in_discards": (iface.in_discards, in_pps * discard_share),
        "out_discards": (0, 0.0),
    }
    t0, anchored = (float(TRAFFIC_EPOCH), {}) if iface.anchor is None else iface.anchor
    return {
        name: Counter(anchored.get(name, base), t0, round(rate, 4), iface.shape)
        for name, (base, rate) in start.items()
    }


# --- the snmpsim variation module ---------------------------------------------------------------


def make_variation() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """``init``, ``variate`` and ``shutdown`` of the ``linkrate`` module (see the module docstring).
    Parameters are parsed once per distinct line text: a rewritten line is a new text."""
    parsed: dict[str, tuple[Counter, int] | float | tuple[float, int]] = {}
    booted = time.time()  # about when snmpsim's numeric sysUpTime started counting (same process)

    def init(**context: Any) -> None:
        return None

    def parse(value: str) -> tuple[Counter, int] | float | tuple[float, int]:
        got = parsed.get(value)
        if got is None:
            fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
            if "lastchange" in fields:
                got = (float(fields["lastchange"]), int(fields["u"]))
            elif "flap" in fields:
                got = float(fields["flap"])
            else:
                counter = Counter(int(fields["b"]), float(fields["t"]), float(fields["r"]), fields.get("s", "day"))
                got = (counter, int(fields.get("w", 64)))
            if len(parsed) > 100_000:
                parsed.clear()
            parsed[value] = got
        return got

    def variate(oid: Any, tag: str, value: Any, **context: Any) -> tuple[Any, str, Any]:
        if context["setFlag"] or (not context["nextFlag"] and not context["exactMatch"]):
            return context["origOid"], tag, context["errorStatus"]
        try:
            got = parse(value.decode() if isinstance(value, bytes) else str(value))
        except (KeyError, ValueError):  # a broken line answers an error, it never stops the agent
            return context["origOid"], tag, context["errorStatus"]
        now = time.time()
        if isinstance(got, float):
            return oid, tag, flap_status(now, got)
        if isinstance(got[0], float):  # ifLastChange of a flapping port: sysUpTime at its last change
            period, uptime = got
            last = now - (now - TRAFFIC_EPOCH) % (period / 2)
            return oid, tag, max(0, uptime + int(100 * (last - booted))) % 2**32
        counter, width = got
        return oid, tag, counter_value(counter, now) % (2**width)

    def shutdown(**context: Any) -> None:
        return None

    return init, variate, shutdown


def variation_shim() -> str:
    """The file snmpsim executes as the ``linkrate`` module (it loads ``*.py`` from a directory)."""
    root = Path(__file__).resolve().parents[2]
    return (
        "# Generated by infra_mgr.lab.city_links: snmpsim executes this file as its 'linkrate' variation.\n"
        "import sys\n"
        f"if {str(root)!r} not in sys.path:\n"
        f"    sys.path.insert(0, {str(root)!r})\n"
        "from infra_mgr.lab.city_links import make_variation\n"
        "init, variate, shutdown = make_variation()\n"
    )


# --- conditions ---------------------------------------------------------------------------------


def _key(device: Device, iface: Interface) -> str:
    return f"{device.hostname}:{iface.name}"


def find_link(city: City, target: str) -> tuple[Link, Device, Interface]:
    """The cable one of whose ends is ``HOST:IFNAME``, and that end."""
    host, _, name = target.partition(":")
    for link in city.links:
        for device, iface in (link.a, link.b):
            if device.hostname == host and iface.name == name:
                return link, device, iface
    raise LabError(f"{target}: not a cabled port of the city (HOST:IFNAME, e.g. jed-b05-rtr:Gi0/0/0)")


def parse_setting(setting: str) -> tuple[str, int | None]:
    """``down|up|flapping|errors|saturated|healthy`` or ``speed=<N>M|<N>G``."""
    if setting.startswith("speed="):
        text = setting[6:].strip().upper()
        scale = {"M": 1, "G": 1000}.get(text[-1:])
        try:
            mbps = int(float(text[:-1]) * scale) if scale else int(text)
        except ValueError:
            mbps = 0
        if mbps <= 0:
            raise LabError(f"{setting}: speed is <N>M or <N>G, e.g. speed=100M")
        return "speed", mbps
    if setting not in LINK_SETTINGS:
        raise LabError(f"{setting}: one of {', '.join(LINK_SETTINGS)} or speed=<N>M")
    return setting, None


def _apply_override(link: Link, override: dict[str, Any], city: City) -> None:
    names = {d.hostname: d for d in city.devices}
    if "state" in override:
        link.state = override["state"]
    if "traffic" in override:
        if override["traffic"] == "saturated":
            set_saturated(link, names[str(override.get("towards", link.a[0].hostname))])
        else:
            set_normal_traffic(link)
    if "errors" in override:
        for device, iface in (link.a, link.b):
            iface.errored = _key(device, iface) == override["errors"]
    if "speed_mbps" in override:
        for _, iface in (link.a, link.b):
            iface.speed_mbps = override["speed_mbps"] or iface.design_mbps


def city_with(state: dict[str, Any], yaml_path: Path | None = None) -> City:
    """The city as built, with the state's link overrides and counter anchors applied."""
    city = build_city(Path(yaml_path or state["yaml"]))
    for target, override in state.get("links", {}).items():
        link, _, _ = find_link(city, target)
        _apply_override(link, override, city)
    settle_states(city)
    anchors = state.get("anchors", {})
    for device in city.devices:
        for iface in device.interfaces:
            anchor = anchors.get(_key(device, iface))
            if anchor is not None:
                iface.anchor = (float(anchor[0]), {k: int(v) for k, v in anchor[1].items()})
    return city


def link_words(link: Link) -> list[str]:
    """What is not healthy about a link, in the words ``--set`` takes."""
    words = [] if link.state == "up" else [link.state]
    ends = (link.a[1], link.b[1])
    if any(i.shape == "flat" for i in ends):
        words.append("saturated")
    if any(i.errored for i in ends):
        words.append("errors")
    if any(i.speed_mbps != i.design_mbps for i in ends):
        words.append(f"speed={link.a[1].speed_mbps}M")
    return words


def built_loss(city: City) -> dict[str, float]:
    """SNMP loss % per hostname as built (the lossy condition)."""
    names = {d.hostname for d in city.devices}
    return {c.host: float(LOSS_PCT) for c in LINK_CONDITIONS if c.name == "lossy" and c.host in names}


class LinkControl:
    """Change link conditions and agent loss on a running (or just generated) city.

    ``root`` is the city's directory (where ``expected.json`` lives). Every change is taken under a
    file lock, anchors the counters of the ports it touches, rewrites the affected recordings and
    the loss file; the agents serve it within about a second."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state_path = self.root / CONDITIONS_FILE

    # state --------------------------------------------------------------------------------------

    def read_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            raise LabError(f"{self.state_path}: no city here (start it: infra-mgr lab up --only city)")
        data: dict[str, Any] = json.loads(self.state_path.read_text(encoding="utf-8"))
        return data

    def _write_json(self, path: Path, data: Any) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".conditions.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def initialise(self, yaml_path: Path, city: City) -> None:
        """The city as built: no overrides, no anchors, the built loss (called when the lab starts)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            state = {"yaml": str(Path(yaml_path).absolute()), "links": {}, "loss": {}, "anchors": {}}
            self._write_json(self.state_path, state)
            self._write_loss(city, state)
        variation_dir = self.root / "variation"
        variation_dir.mkdir(exist_ok=True)
        shim = variation_dir / f"{VARIATION}.py"
        if not shim.exists() or shim.read_text(encoding="utf-8") != variation_shim():
            shim.write_text(variation_shim(), encoding="utf-8")

    def _write_loss(self, city: City, state: dict[str, Any]) -> None:
        loss = {**built_loss(city), **{h: float(p) for h, p in state.get("loss", {}).items()}}
        address = {d.hostname: d.address for d in city.devices}
        self._write_json(self.root / LOSS_FILE, {address[h]: p for h, p in sorted(loss.items()) if p > 0})

    def _change(self, mutate: Callable[[dict[str, Any], City], list[tuple[Device, Interface]]]) -> None:
        """Apply ``mutate`` to the state; anchor the ports it names at this instant; rewrite."""
        from infra_mgr.lab.city_records import write_recordings

        with self._locked():
            state = self.read_state()
            before = city_with(state)
            touched = mutate(state, before)
            # The agents keep serving the old recording until they notice the new one (within about
            # a second): anchoring a little ahead means the new counters start from a value the old
            # ones have not reached yet, so no reader ever sees a counter go back across a change.
            now = round(time.time() + ANCHOR_LEAD_S, 3)
            anchors = state.setdefault("anchors", {})
            for device, iface in touched:
                for member in [iface, *(u for u in device.interfaces if u.logical_of is iface)]:
                    values = {n: counter_value(c, now) for n, c in interface_counters(member).items()}
                    anchors[_key(device, member)] = [now, values]
            after = city_with(state)
            write_recordings(self.root, after, only={device.hostname for device, _ in touched})
            self._write_loss(after, state)
            self._write_json(self.state_path, state)

    # changes ------------------------------------------------------------------------------------

    def set_link(self, target: str, setting: str) -> None:
        """``HOST:IFNAME`` gets ``setting`` (:func:`parse_setting`); state and speed act on both ends."""
        word, mbps = parse_setting(setting)

        def mutate(state: dict[str, Any], city: City) -> list[tuple[Device, Interface]]:
            link, device, iface = find_link(city, target)
            key = _key(*link.a)
            override = dict(state.setdefault("links", {}).get(key, {}))
            if word in ("down", "up", "flapping"):
                override["state"] = word
            elif word == "saturated":
                override["traffic"], override["towards"] = "saturated", device.hostname
            elif word == "errors":
                override["errors"] = _key(device, iface)
            elif word == "speed":
                override["speed_mbps"] = mbps
            else:  # healthy
                override = {"state": "up", "traffic": "normal", "errors": None, "speed_mbps": None}
            state["links"][key] = override
            return [link.a, link.b]

        self._change(mutate)

    def set_loss(self, host: str, pct: float) -> None:
        """``host``'s agent drops ``pct`` % of SNMP requests (0: none)."""
        if not 0 <= pct < 100:
            raise LabError(f"loss {pct}: a percentage from 0 to 99")

        def mutate(state: dict[str, Any], city: City) -> list[tuple[Device, Interface]]:
            if host not in {d.hostname for d in city.devices}:
                raise LabError(f"{host}: no such device in the city")
            state.setdefault("loss", {})[host] = float(pct)
            return []

        self._change(mutate)

    def reset(self, target: str | None = None) -> None:
        """Back to the city as built: one link (``HOST:IFNAME``), one device's loss (``HOST``), or all."""

        def mutate(state: dict[str, Any], city: City) -> list[tuple[Device, Interface]]:
            touched: list[tuple[Device, Interface]] = []
            links = state.setdefault("links", {})
            for key in list(links):
                link, _, _ = find_link(city, key)
                names = {_key(*link.a), _key(*link.b), link.a[0].hostname, link.b[0].hostname}
                if target is None or target in names and ":" in target:
                    del links[key]
                    touched += [link.a, link.b]
            if target is None:
                state["loss"] = {}
            elif ":" not in target:
                state.setdefault("loss", {}).pop(target, None)
            return touched

        self._change(mutate)

    @contextlib.contextmanager
    def changed(self, target: str, setting: str | None = None, *, loss: float | None = None) -> Iterator[None]:
        """Apply a link setting (or a device's loss) for the ``with`` block, then put back exactly
        what was there before, whatever happens in the block."""
        saved = self.read_state()
        key = target
        if setting is not None:
            link, _, _ = find_link(city_with(saved), target)
            key = _key(*link.a)
            self.set_link(target, setting)
        else:
            self.set_loss(target, float(loss or 0))
        try:
            yield
        finally:
            def mutate(state: dict[str, Any], city: City) -> list[tuple[Device, Interface]]:
                section = "links" if setting is not None else "loss"
                previous = saved.get(section, {}).get(key)
                if previous is None:
                    state.setdefault(section, {}).pop(key, None)
                else:
                    state.setdefault(section, {})[key] = previous
                if setting is None:
                    return []
                link, _, _ = find_link(city, key)
                return [link.a, link.b]

            self._change(mutate)

    # reading ------------------------------------------------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        """Every link and device that is not healthy now, with whether it is as built or changed."""
        state = self.read_state()
        city = city_with(state)
        built = city_with({"yaml": state["yaml"]})
        rows: list[dict[str, Any]] = []
        for link, as_built in zip(city.links, built.links, strict=True):
            words = link_words(link)
            changed = _key(*link.a) in state.get("links", {}) and words != link_words(as_built)
            if words:
                rows.append({"target": _key(*link.a), "peer": _key(*link.b), "conditions": words,
                             "origin": "changed" if changed else "as built"})
        loss = {**built_loss(city), **{h: float(p) for h, p in state.get("loss", {}).items()}}
        for host, pct in sorted(loss.items()):
            if pct > 0:
                rows.append({"target": host, "peer": "", "conditions": [f"loss={pct:g}%"],
                             "origin": "changed" if host in state.get("loss", {}) else "as built"})
        for cond in LINK_CONDITIONS:
            if cond.name == "wrong_neighbor" and cond.port_role is not None:
                device = next(d for d in city.devices if d.hostname == cond.host)
                port = next(i for i in device.interfaces if i.role == cond.port_role and i.peer is not None)
                peer = f"{port.peer[0].hostname}:{port.peer[1].name}" if port.peer else ""
                rows.append({"target": f"{cond.host}:{port.name}", "peer": peer, "conditions": [cond.name],
                             "origin": "as built (fixed)"})
        faults = {f.host: f.name for f in FAULTS if f.port_role is None}
        for host, name in sorted(faults.items()):
            rows.append({"target": host, "peer": "", "conditions": [name], "origin": "as built (fixed)"})
        return rows
