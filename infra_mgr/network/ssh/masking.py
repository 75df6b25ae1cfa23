"""Secret masking of device configurations, per platform, as data (``masking.yaml``).

Every configuration is masked inside the SSH collector, before a result is built: the unmasked
text never reaches the database, logs, events or the API. A rule replaces only the secret itself
with :data:`MARKER` and keeps the rest of the line, so the masked text still reads like the
device's own and compliance rules can run on it; the marker is fixed (no hash of the secret,
which a low-entropy password would not survive), so a rotated secret alone never makes a new
version, and masking an already masked text changes nothing.

This module is pure: text in, text out, no I/O besides reading its YAML once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

MASKING_FILE = Path(__file__).with_name("masking.yaml")
MARKER = "<secret hidden>"
# While rules run the marker stands as one token without spaces, so a rule whose secret is `\S+`
# matches an already masked value whole and replaces it with itself (idempotence).
_HELD = "\x00secret-hidden\x00"


class MaskRule(BaseModel):
    """One rule: a ``pattern`` whose ``secret*`` groups are hidden, or a ``begin``/``end`` block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    why: str = ""
    pattern: str | None = None
    keep: str | None = Field(default=None, description="values matching this stay visible")
    within: str | None = Field(default=None, description="header line of the section the rule applies to")
    until: str | None = Field(default=None, description="first line after that section")
    begin: str | None = None
    end: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> MaskRule:
        if (self.pattern is None) == (self.begin is None):
            raise ValueError(f"rule {self.name}: give either `pattern` or `begin`/`end`")
        if self.begin is not None and self.end is None:
            raise ValueError(f"rule {self.name}: `begin` needs `end`")
        if (self.within is None) != (self.until is None):
            raise ValueError(f"rule {self.name}: `within` and `until` go together")
        for field_name in ("pattern", "keep", "within", "until", "begin", "end"):
            value = getattr(self, field_name)
            if value is not None:
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(f"rule {self.name}: `{field_name}` is not a regex: {exc}") from exc
        if self.pattern is not None and not _secret_groups(re.compile(self.pattern)):
            raise ValueError(f"rule {self.name}: the pattern needs a named group `secret…`")
        return self


class MaskingTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sets: dict[str, tuple[MaskRule, ...]]
    platforms: dict[str, tuple[str, ...]]

    @model_validator(mode="after")
    def _names(self) -> MaskingTable:
        if "common" not in self.sets:
            raise ValueError("masking needs a `common` rule set")
        for device_type, names in self.platforms.items():
            unknown = [n for n in names if n not in self.sets]
            if unknown:
                raise ValueError(f"platform {device_type}: unknown rule sets {unknown}")
        return self

    def rule_sets(self, device_type: str) -> tuple[str, ...]:
        """``common`` plus the platform's sets; every set for a platform nobody described."""
        extra = self.platforms.get(device_type)
        if extra is None:
            extra = tuple(n for n in self.sets if n != "common")
        return ("common", *extra)


def _secret_groups(regex: re.Pattern[str]) -> tuple[str, ...]:
    return tuple(sorted(n for n in regex.groupindex if n.startswith("secret")))


class _Rule:
    """A compiled rule. ``apply`` adds the 0-based line numbers it masked to ``hits`` when given."""

    def __init__(self, rule: MaskRule) -> None:
        self.name = rule.name
        flags = re.MULTILINE
        self.pattern = re.compile(rule.pattern, flags) if rule.pattern else None
        self.groups = _secret_groups(self.pattern) if self.pattern else ()
        self.keep = re.compile(rule.keep, flags) if rule.keep else None
        self.within = re.compile(rule.within, flags) if rule.within else None
        self.until = re.compile(rule.until, flags) if rule.until else None
        self.begin = re.compile(rule.begin, flags) if rule.begin else None
        self.end = re.compile(rule.end, flags) if rule.end else None

    def apply(self, text: str, hits: set[int] | None = None) -> str:
        if self.begin is not None:
            return self._blocks(text, hits)
        if self.within is not None:
            return self._sections(text, hits)
        return self._sub(text, 0, hits)

    def _sub(self, text: str, first_line: int, hits: set[int] | None) -> str:
        assert self.pattern is not None

        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            base = match.start()
            spans: list[tuple[int, int]] = []
            for name in self.groups:
                value = match.group(name)
                if value is None or value == _HELD or (self.keep is not None and self.keep.search(value)):
                    continue
                spans.append(match.span(name))
            if not spans:
                return whole
            if hits is not None:
                hits.update(first_line + text.count("\n", 0, start) for start, _ in spans)
            out, last = [], base
            for start, end in sorted(spans):
                out.append(whole[last - base : start - base])
                out.append(_HELD)
                last = end
            out.append(whole[last - base :])
            return "".join(out)

        return self.pattern.sub(replace, text)

    def _sections(self, text: str, hits: set[int] | None) -> str:
        assert self.within is not None and self.until is not None
        if not self.within.search(text):
            return text
        lines = text.splitlines(keepends=True)
        active = False
        for i, line in enumerate(lines):
            if self.within.search(line):
                active = True
            elif active and self.until.search(line):
                active = False
            elif active:
                lines[i] = self._sub(line, i, hits)
        return "".join(lines)

    def _blocks(self, text: str, hits: set[int] | None) -> str:
        assert self.begin is not None and self.end is not None
        if not self.begin.search(text):
            return text
        out: list[str] = []
        body: list[str] = []
        body_start = 0
        inside = False
        for i, line in enumerate(text.splitlines(keepends=True)):
            if inside:
                if self.end.search(line):
                    out.append(self._collapsed(body, body_start, hits))
                    out.append(line)
                    inside = False
                else:
                    body.append(line)
                continue
            found = self.begin.search(line)
            if found is None:
                out.append(line)
                continue
            closing = self.end.search(line, found.end())
            if closing is not None:  # a whole blob on one line (escaped newlines): hide what is between
                if line[found.end() : closing.start()] not in ("", _HELD):
                    line = line[: found.end()] + _HELD + line[closing.start() :]
                    if hits is not None:
                        hits.add(i)
                out.append(line)
                continue
            out.append(line)
            inside, body, body_start = True, [], i + 1
        if inside:  # no end: the rest is the blob (a cut-off read must not leak its tail)
            out.append(self._collapsed(body, body_start, hits))
        return "".join(out)

    @staticmethod
    def _collapsed(body: list[str], first: int, hits: set[int] | None) -> str:
        if not body:
            return ""
        indent = body[0][: len(body[0]) - len(body[0].lstrip(" \t"))]
        ending = "\n" if body[-1].endswith("\n") else ""
        collapsed = indent + _HELD + ending
        if len(body) == 1 and body[0] == collapsed:
            return collapsed
        if hits is not None:
            hits.update(range(first, first + len(body)))
        return collapsed


@lru_cache(maxsize=1)
def masking_table(path: Path = MASKING_FILE) -> MaskingTable:
    return MaskingTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=64)
def _rules(device_type: str) -> tuple[_Rule, ...]:
    table = masking_table()
    return tuple(_Rule(rule) for name in table.rule_sets(device_type) for rule in table.sets[name])


def _run(text: str, rules: Iterable[_Rule]) -> str:
    work = text.replace(MARKER, _HELD)
    for rule in rules:
        work = rule.apply(work)
    return work.replace(_HELD, MARKER)


def mask(text: str, device_type: str) -> str:
    """The configuration with every secret the platform's rules know replaced by :data:`MARKER`."""
    return _run(text, _rules(device_type))


def secret_lines(text: str, device_type: str) -> list[int]:
    """1-based numbers of the lines of ``text`` that hold a secret (what :func:`mask` hides)."""
    hits: set[int] = set()
    work = text.replace(MARKER, _HELD)
    for rule in _rules(device_type):
        rule.apply(work, hits)
    return sorted(n + 1 for n in hits)
