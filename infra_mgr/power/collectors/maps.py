"""Modbus register maps as data: loading, validation, block planning and decoding.

Register maps are vendor documents (DSE GenComm, Euro-Diesel, meters) that an operator may need to
edit for their firmware, so they live as YAML in ``infra_mgr/power/maps/`` (the format is described
at the top of ``dse-gencomm.yaml``; the lab's simulator reads the same files) and the collector
stays generic. In short::

    name: dse-gencomm
    kind: genset                      # ups | drups | genset | ats | pdu | meter
    vendor: DeepSea                   # optional, as is model
    function: holding                 # holding (FC 3, default) | input (FC 4)
    word_order: big                   # 32-bit values: high word first (default) | little
    identity:   [registers that say what the device is: device.mfr, device.model, device.serial]
    registers:
      - {name: engine.rpm, address: 1030, type: u16, scale: 1, unit: rpm, sentinels: {0xFFFF: unimplemented}}
      - {name: engine.state, address: 1408, type: enum, enum: {0: stopped, 3: running}, sentinels: {15: n/a}}

Everything that can be wrong in such a file is reported at load time as a :class:`MapError` naming
the file and the register, so a typo fails the probe with one readable line, not a wrong number at
3 a.m.: unknown keys, non-canonical names, a unit that is not the canonical name's unit (a scale
mistake), enum texts outside the canonical name's vocabulary, overlapping addresses.

Sentinels are raw (unsigned) register values that are not readings. DSE GenComm reserves the top
eight of each type's range (−1 unimplemented, −2 over range, … masked to the type: 0xFFFF…0xFFF8
for u16, 0x7FFF…0x7FF8 for s16, likewise for 32 bits); a map lists the ones its device uses as
``{raw: meaning}`` (a list of raw values, or ``true`` for the type's top eight, also work). A
negative value is masked to the type, so ``-1`` in an s16 map means 0xFFFF.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from infra_mgr.power.readings import CANONICAL, DeviceKind

RegType = Literal["u16", "s16", "u32", "s32", "enum"]
MAPS_DIR = Path(__file__).resolve().parents[1] / "maps"
MAX_REGISTERS_PER_READ = 125  # Modbus limit for function code 3
KINDS: tuple[DeviceKind, ...] = ("ups", "drups", "genset", "ats", "pdu", "meter")
_KIND_BY_NAME: dict[str, DeviceKind] = {kind: kind for kind in KINDS}

# register width in words, and the raw (unsigned) value of the type's maximum
_WIDTH = {"u16": 1, "s16": 1, "enum": 1, "u32": 2, "s32": 2}
_TOP = {"u16": 0xFFFF, "enum": 0xFFFF, "s16": 0x7FFF, "u32": 0xFFFFFFFF, "s32": 0x7FFFFFFF}
# GenComm's meaning of the sentinels, from the top of the range down
SENTINEL_MEANINGS = ("unimplemented", "over_range", "under_range", "transducer_fault", "bad_data",
                     "high_digital", "low_digital", "reserved")
_REGISTER_KEYS = {"name", "address", "type", "scale", "unit", "sentinels", "enum", "description"}
_MAP_KEYS = {"name", "description", "kind", "vendor", "model", "function", "word_order", "identity",
             "registers", "sentinel_sets", "max_gap", "notes"}
# units a canonical "text" reading may be given in a map (an enum, or a number shown as text)
_TEXT_UNITS = {"", "text"}


class MapError(ValueError):
    """A register map that cannot be used; the message names the file and the register."""


@dataclass(frozen=True)
class Register:
    """One reading (or identity value) in a register map."""

    name: str
    address: int
    type: RegType
    scale: float = 1
    unit: str = ""
    sentinels: dict[int, str] = field(default_factory=dict)  # raw unsigned value → meaning
    enum: dict[int, str] | None = None
    description: str = ""

    @property
    def width(self) -> int:
        return _WIDTH[self.type]

    @property
    def end(self) -> int:
        """One past the last register address this reading occupies."""
        return self.address + self.width


@dataclass(frozen=True)
class RegisterMap:
    name: str
    description: str
    registers: tuple[Register, ...]
    identity: tuple[Register, ...] = ()
    path: Path | None = None
    kind: DeviceKind | None = None
    vendor: str | None = None
    model: str | None = None
    function: Literal["holding", "input"] = "holding"
    word_order: Literal["big", "little"] = "big"
    max_gap: int = 0  # unused registers a block may span to save a request (0: contiguous only)


@dataclass(frozen=True)
class Block:
    """One read request and the readings it serves."""

    start: int
    count: int
    registers: tuple[Register, ...] = field(default=())


@dataclass(frozen=True)
class Decoded:
    """A register's value after decoding, or ``None`` with why (problem kind and message)."""

    value: float | int | str | None
    problem: tuple[str, str] | None = None  # (kind, message): kind is sentinel, bad_value or decode


# --- names ---------------------------------------------------------------------------------------

# per-phase / per-feed parts of a name, NUT style: output.L1.current, output.L2-N.voltage, mains.1.status
_INDEX_PART = re.compile(r"^(\d+|L\d(-N|-L\d)?|phase\d+|feed\d+)$", re.IGNORECASE)
_NAMESPACES = {name.split(".")[0] for name in CANONICAL}
_VOCABULARY = re.compile(r"^([a-z_]+(?: \| [a-z_]+)+)")


def canonical_base(name: str) -> str:
    """``mains.1.status`` → ``mains.status``; ``generator.L2-N.voltage`` → ``generator.voltage``."""
    return ".".join(p for p in name.split(".") if not _INDEX_PART.match(p))


def is_canonical(name: str) -> bool:
    """A canonical name, or a per-phase/per-feed variant of one, or (NUT style) a per-phase name
    in a canonical namespace such as ``generator.L1.current``."""
    if name in CANONICAL or canonical_base(name) in CANONICAL:
        return True
    parts = name.split(".")
    return len(parts) >= 3 and parts[0] in _NAMESPACES and any(_INDEX_PART.match(p) for p in parts[1:-1])


def canonical_unit(name: str) -> str | None:
    entry = CANONICAL.get(name) or CANONICAL.get(canonical_base(name))
    return entry[0] if entry else None


def vocabulary(name: str) -> tuple[str, ...] | None:
    """The values a text reading may take, when readings.py lists them (``ok | failed``)."""
    entry = CANONICAL.get(name) or CANONICAL.get(canonical_base(name))
    if not entry or entry[0] != "text":
        return None
    match = _VOCABULARY.match(entry[1])
    return tuple(match.group(1).split(" | ")) if match else None


# --- loading -------------------------------------------------------------------------------------


def _int(value: Any, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MapError(f"{where}: {what} must be an integer, not {value!r}")
    return value


def _sentinels(raw: Any, rtype: str, where: str) -> dict[int, str]:
    if raw is None or raw is False:
        return {}
    if raw is True:
        top = _TOP[rtype]
        return {top - i: meaning for i, meaning in enumerate(SENTINEL_MEANINGS)}
    if isinstance(raw, list):
        raw = {v: "not available" for v in raw}
    if not isinstance(raw, dict):
        raise MapError(f"{where}: sentinels must be a mapping {{raw value: meaning}}, a list or true")
    mask = (1 << (16 * _WIDTH[rtype])) - 1
    out: dict[int, str] = {}
    for value, meaning in raw.items():
        value = _int(value, where, "each sentinel")
        if not -mask - 1 <= value <= mask:
            raise MapError(f"{where}: sentinel {value} does not fit in a {rtype}")
        out[value & mask] = str(meaning) if meaning not in (None, "") else "not available"
    return out


def _register(raw: Any, where: str, *, identity: bool = False) -> Register:
    if not isinstance(raw, dict):
        raise MapError(f"{where}: a register must be a mapping, not {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - _REGISTER_KEYS)
    if unknown:
        raise MapError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_REGISTER_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise MapError(f"{where}: missing name")
    where = f"{where} ({name})"
    if identity:
        if not name.startswith(("device.", "ups.")):
            raise MapError(f"{where}: identity names are device.mfr, device.model, device.serial …")
    elif not is_canonical(name):
        raise MapError(f"{where}: {name!r} is not a canonical reading name (see infra_mgr/power/readings.py)")
    if "address" not in raw:
        raise MapError(f"{where}: missing address")
    address = _int(raw["address"], where, "address")
    rtype = raw.get("type", "u16")
    if rtype not in _WIDTH:
        raise MapError(f"{where}: type must be one of {', '.join(_WIDTH)}, not {rtype!r}")
    if not 0 <= address <= 0xFFFF - (_WIDTH[rtype] - 1):
        raise MapError(f"{where}: address {address} out of range 0..65535")
    scale = raw.get("scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale == 0:
        raise MapError(f"{where}: scale must be a non-zero number, not {scale!r}")
    unit = raw.get("unit") or ""
    if not isinstance(unit, str):
        raise MapError(f"{where}: unit must be text, not {unit!r}")
    expected = None if identity else canonical_unit(name)
    if expected is not None and unit:
        if expected == "text" and unit not in _TEXT_UNITS:
            raise MapError(f"{where}: {name} is text, not {unit}")
        if expected != "text" and unit != expected:
            raise MapError(f"{where}: {name} is in {expected}, not {unit} (fix unit and scale)")
    enum_raw = raw.get("enum")
    enum: dict[int, str] | None = None
    if enum_raw is not None:
        if not isinstance(enum_raw, dict) or not enum_raw:
            raise MapError(f"{where}: enum must be a mapping of code to text")
        enum = {}
        allowed = None if identity else vocabulary(name)
        for code, text in enum_raw.items():
            code = _int(code, where, "each enum code")
            if isinstance(text, bool) or not isinstance(text, str | int | float):
                # YAML 1.1 reads bare yes/no/on/off as booleans: say so rather than store "True"
                raise MapError(f"{where}: enum {code} must be text, not {text!r} (quote yes/no/on/off)")
            if allowed and str(text) not in allowed:
                raise MapError(f"{where}: enum {code} is {text!r}, not one of {' | '.join(allowed)}")
            enum[code] = str(text)
    elif rtype == "enum":
        raise MapError(f"{where}: type enum needs an enum mapping")
    return Register(name=name, address=address, type=rtype, scale=scale, unit=unit,
                    sentinels=_sentinels(raw.get("sentinels"), rtype, where), enum=enum,
                    description=str(raw.get("description") or ""))


def _guess_kind(name: str) -> str | None:
    for word, kind in (("drups", "drups"), ("dse", "genset"), ("gencomm", "genset"), ("genset", "genset"),
                       ("meter", "meter"), ("ats", "ats"), ("pdu", "pdu"), ("ups", "ups")):
        if word in name.lower():
            return kind
    return None


def _registers(raw: Any, source: str, section: str, *, identity: bool = False) -> list[Register]:
    if raw is None and identity:
        return []
    if not isinstance(raw, list) or (not raw and not identity):
        raise MapError(f"{source}: {section} must be a non-empty list")
    return [_register(r, f"{source}: {section} #{i + 1}", identity=identity) for i, r in enumerate(raw)]


def parse_map(data: Any, source: str) -> RegisterMap:
    """Validate a map already read from YAML; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise MapError(f"{source}: a register map must be a mapping with name and registers")
    unknown = sorted(set(map(str, data)) - _MAP_KEYS)
    if unknown:
        raise MapError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_MAP_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise MapError(f"{source}: missing name")
    kind = data.get("kind") or _guess_kind(name)
    if kind is not None and kind not in KINDS:
        raise MapError(f"{source}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    function = data.get("function", "holding")
    if function not in ("holding", "input"):
        raise MapError(f"{source}: function must be holding or input, not {function!r}")
    word_order = data.get("word_order", "big")
    if word_order not in ("big", "little"):
        raise MapError(f"{source}: word_order must be big or little, not {word_order!r}")
    registers = _registers(data.get("registers"), source, "registers")
    identity = _registers(data.get("identity"), source, "identity", identity=True)
    seen: dict[str, Register] = {}
    for reg in [*identity, *registers]:
        if reg.name in seen:
            raise MapError(f"{source}: register {reg.name!r} appears twice (addresses {seen[reg.name].address} "
                           f"and {reg.address})")
        seen[reg.name] = reg
    ordered = sorted(seen.values(), key=lambda r: r.address)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.address < a.end:
            raise MapError(f"{source}: register {b.name!r} at {b.address} overlaps {a.name!r} "
                           f"({a.type} at {a.address})")
    max_gap = _int(data.get("max_gap", 0), source, "max_gap")
    if not 0 <= max_gap < MAX_REGISTERS_PER_READ:
        raise MapError(f"{source}: max_gap must be between 0 and {MAX_REGISTERS_PER_READ - 1}")
    return RegisterMap(name=name, description=str(data.get("description") or ""), registers=tuple(registers),
                       identity=tuple(identity), kind=None if kind is None else _KIND_BY_NAME[kind],
                       vendor=data.get("vendor"), model=data.get("model"), function=function,
                       word_order=word_order, max_gap=max_gap)


def load_map(path: Path | str) -> RegisterMap:
    """Read and validate one YAML map file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MapError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise MapError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    return replace(parse_map(data, str(path)), path=path)


def available_maps(directory: Path | None = None) -> dict[str, Path]:
    """Map name → file: the file stem, so ``map=dse-gencomm`` finds ``dse-gencomm.yaml``."""
    directory = directory or MAPS_DIR
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])}


@lru_cache(maxsize=32)
def _cached(path: Path, mtime_ns: int) -> RegisterMap:
    return load_map(path)


def map_at(path: Path) -> RegisterMap:
    """The map in the file ``path``, re-read only when the file changed (one ``stat``: what a
    poller reading every second may afford, unlike listing the directory)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise MapError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _cached(path, mtime)


def get_map(name: str, directory: Path | None = None) -> RegisterMap:
    """The map called ``name`` (cached until its file changes); MapError when unknown or invalid."""
    maps = available_maps(directory)
    path = maps.get(name)
    if path is None:
        known = ", ".join(maps) or "none installed"
        raise MapError(f"unknown register map {name!r} (known: {known})")
    return _cached(path, path.stat().st_mtime_ns)


# --- planning ------------------------------------------------------------------------------------


def plan_blocks(registers: Iterable[Register], *, max_gap: int = 0,
                max_count: int = MAX_REGISTERS_PER_READ) -> list[Block]:
    """Group readings into as few reads as possible: addresses that touch (or are at most
    ``max_gap`` unused registers apart) share a request of at most ``max_count`` registers."""
    blocks: list[Block] = []
    start = end = -1
    members: list[Register] = []
    for reg in sorted(registers, key=lambda r: r.address):
        if members and reg.address - end <= max_gap and reg.end - start <= max_count:
            members.append(reg)
            end = max(end, reg.end)
            continue
        if members:
            blocks.append(Block(start, end - start, tuple(members)))
        start, end, members = reg.address, reg.end, [reg]
    if members:
        blocks.append(Block(start, end - start, tuple(members)))
    return blocks


# --- decoding ------------------------------------------------------------------------------------


def raw_value(words: Sequence[int], word_order: str = "big") -> int:
    """The unsigned integer of one or two registers."""
    if len(words) == 1:
        return words[0] & 0xFFFF
    value = 0
    for w in (words if word_order == "big" else list(reversed(words))):
        value = (value << 16) | (w & 0xFFFF)
    return value


def type_sentinels(rtype: str) -> dict[int, str]:
    """GenComm's sentinels of a type: its top eight raw values and what they mean."""
    top = _TOP[rtype]
    return {top - i: meaning for i, meaning in enumerate(SENTINEL_MEANINGS)}


_SIGN_BIT = {"s16": 0x8000, "s32": 0x80000000}


def typed_value(rtype: str, words: Sequence[int], word_order: str = "big") -> int:
    """The register's integer: unsigned, or two's complement for s16/s32 — what pymodbus 3.16's
    ``convert_from_registers`` gives (the unit tests hold the two equal), computed directly since
    the poller decodes ~150 registers a second."""
    raw = raw_value(words, word_order)
    sign = _SIGN_BIT.get(rtype)
    return raw - (sign << 1) if sign is not None and raw & sign else raw


def scaled(value: int, scale: float) -> int | float:
    """``value * scale``: integers stay integers under an integer scale; floats are rounded to nine
    decimals because 2301 * 0.1 is 230.10000000000002 in binary floating point."""
    if isinstance(scale, int):
        return value * scale
    return round(value * scale, 9)


def decode(reg: Register, words: Sequence[int], word_order: str = "big") -> Decoded:
    """One register's reading from its words. Never raises: a wrong word count, a sentinel or an
    unknown enum code gives ``None`` and a (kind, message) problem."""
    if len(words) != reg.width or any(isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 0xFFFF
                                      for w in words):
        return Decoded(None, ("decode", f"register {reg.address} ({reg.name}): expected {reg.width} word(s) "
                                        f"of 16 bits, got {list(words)[:4]!r}"))
    raw = raw_value(words, word_order)
    meaning = reg.sentinels.get(raw)
    if meaning is not None:
        return Decoded(None, ("sentinel", f"register {reg.address} ({reg.name}): {meaning} "
                                          f"(0x{raw:0{reg.width * 4}X})"))
    sign = _SIGN_BIT.get(reg.type)
    value = raw - (sign << 1) if sign is not None and raw & sign else raw
    if reg.enum is not None:
        text = reg.enum.get(value)
        if text is None:
            return Decoded(None, ("bad_value", f"register {reg.address} ({reg.name}): unknown code {value}"))
        return Decoded(text)
    if reg.unit == "text":
        return Decoded(str(value))
    return Decoded(scaled(value, reg.scale))
