"""Compliance rules as data (``compliance.yaml``, validated by pydantic) and their evaluation.

A rule says what a configuration must or must not hold, for which platforms (netmiko device
types) and device roles, with a message and a severity (the event log's). The same rule id may
appear once per platform family with that platform's own form of the statement ("SSH v2 only" is
``ip ssh version 2`` on IOS and the absence of ``protocol-version v1`` on Junos): a finding is
reported under the id, whatever the platform's spelling.

:func:`evaluate` is pure (text in, findings out); the backup service stores what it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from infra_mgr.events.models import Severity

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from infra_mgr.network.ssh.backup import ComplianceCheck

RULES_FILE = Path(__file__).with_name("compliance.yaml")
EVIDENCE_MAX = 20  # lines kept as a finding's evidence
MISSING = "missing"

RuleKind = Literal["must_contain", "must_not_contain", "regex_present", "regex_absent"]


class Rule(BaseModel):
    """One check. ``pattern`` is a plain substring for must_(not_)contain and a regular expression
    for regex_*; ``scope: line`` tests each line on its own (the default), ``scope: text`` applies
    the regex to the whole text with ``^``/``$`` at line ends, for statements that span a block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    message: str = Field(min_length=1, max_length=500)
    description: str = ""
    severity: Severity = Severity.warning
    platforms: tuple[str, ...] = Field(default=(), description="netmiko device types; empty: all")
    roles: tuple[str, ...] = Field(default=(), description="inventory device roles; empty: all")
    kind: RuleKind
    pattern: str = Field(min_length=1)
    scope: Literal["line", "text"] = "line"
    ignore_case: bool = False

    @model_validator(mode="after")
    def _compiles(self) -> Rule:
        if self.kind.startswith("regex_"):
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"rule {self.id}: bad regex: {exc}") from exc
        elif self.scope == "text":
            raise ValueError(f"rule {self.id}: scope 'text' needs a regex_* kind")
        return self

    @cached_property
    def regex(self) -> re.Pattern[str]:
        flags = re.MULTILINE | (re.IGNORECASE if self.ignore_case else 0)
        source = self.pattern if self.kind.startswith("regex_") else re.escape(self.pattern)
        return re.compile(source, flags)

    def applies(self, device_type: str, role: str) -> bool:
        return (not self.platforms or device_type in self.platforms) and (not self.roles or role in self.roles)

    @property
    def wants_presence(self) -> bool:
        return self.kind in ("must_contain", "regex_present")

    def matching_lines(self, text: str, lines: list[str]) -> list[str]:
        """The lines the pattern matches (for ``scope: text``, the line each match ends on)."""
        if self.scope == "line":
            return [line for line in lines if self.regex.search(line)]
        found: list[str] = []
        for match in self.regex.finditer(text):
            end = max(match.start(), match.end() - 1)
            start = text.rfind("\n", 0, end) + 1
            stop = text.find("\n", end)
            found.append(text[start:stop if stop >= 0 else len(text)])
        return found


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...]

    @field_validator("rules")
    @classmethod
    def _no_overlap(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        """One id may have several entries (one per platform family), but a device must never be
        judged twice under the same id: two entries of an id may not share a platform."""
        seen: dict[str, list[set[str]]] = {}
        for rule in rules:
            platforms = set(rule.platforms) or {"*"}
            for other in seen.get(rule.id, []):
                if "*" in other or "*" in platforms or other & platforms:
                    raise ValueError(f"rule {rule.id}: two entries apply to the same platform")
            seen.setdefault(rule.id, []).append(platforms)
        return rules


@dataclass(frozen=True)
class Finding:
    """A rule the text breaks, with the lines that show it (or ``["missing"]``)."""

    rule_id: str
    severity: str
    message: str
    lines: list[str] = field(default_factory=list)


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_FILE) -> RuleSet:
    return RuleSet.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def evaluate(text: str, device_type: str, role: str = "", rules: RuleSet | None = None) -> list[Finding]:
    """Every rule that applies to the device and that ``text`` breaks, in the rules' order."""
    ruleset = rules or load_rules()
    lines = text.splitlines()
    findings: list[Finding] = []
    for rule in ruleset.rules:
        if not rule.applies(device_type, role):
            continue
        matched = rule.matching_lines(text, lines)
        if rule.wants_presence and not matched:
            findings.append(Finding(rule.id, rule.severity.value, rule.message, [MISSING]))
        elif not rule.wants_presence and matched:
            findings.append(Finding(rule.id, rule.severity.value, rule.message,
                                    [line.strip() for line in matched[:EVIDENCE_MAX]]))
    return findings


def check_all(engine: Engine) -> ComplianceCheck:
    """Re-evaluate every device's latest configuration against the current rules (after the rules
    changed: ``infra-mgr config check``). The storing lives with the backup service, which owns
    the findings table; this is the rules' entry point."""
    from infra_mgr.network.ssh.backup import check_all as check

    return check(engine)
