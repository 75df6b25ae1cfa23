"""The branch link audit: a pure function from a branch's stored facts to its state, score and reasons.

Pure (no database, no clock, no network) so every rule is pinned by a table of cases and the same
facts always give the same verdict, whether the API, the dashboard, the CLI or a report asks.

Rules, per uplink (the interfaces leading from the branch toward headquarters or the data centre):

* no successful poll within ``no_data_s`` → ``no_data`` (unknown); the last status is stale then,
  so no status-based reason is drawn from it (the 7-day utilisation still is);
* oper status not ``up`` → ``link_down`` (down), with since when and the flaps of the last 24 h;
* at least ``flaps_24h`` transitions in 24 h while up → ``flapping`` (degraded);
* errors ≥ ``error_pct`` % of packets over ``error_window_s`` → ``errors`` (degraded);
* running speed below the expected one → ``speed`` (degraded);
* the LLDP/CDP neighbour differs from the expected one (both known) → ``neighbor`` (degraded);
* p95 of 5-minute utilisation over ``util_window_s`` ≥ ``util_p95_pct`` → ``utilisation`` (degraded).

Per branch device (its reachability probes over ``loss_window_s``): no answer to ICMP nor SNMP in
any cycle → ``unreachable`` (down); ICMP answers but SNMP never → ``no_snmp`` (degraded); the worse
of ICMP and SNMP loss ≥ ``loss_pct`` → ``loss`` (degraded). A branch without uplinks is ``unknown``
(``no_uplink``): nothing says its way out is healthy.

State = the worst severity (down > degraded > unknown > ok); score = 100 − 60 per down reason −
20 per degraded − 10 per unknown, never below 0. Times in sentences are the city's local time
(Asia/Riyadh, UTC+3, no daylight saving): an engineer in Jeddah reads "down since 10:42" as their
own clock; ``params`` also carry the instant in epoch ms for pages that show another zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from infra_mgr.network.linkfacts import AuditState, BranchAudit, BranchFacts, LinkFacts, ReachFacts, Reason

CITY_TZ = ZoneInfo("Asia/Riyadh")

# Reason codes (the catalogue keys are ``audit.reason.<code>``).
NO_DATA = "no_data"
LINK_DOWN = "link_down"
FLAPPING = "flapping"
ERRORS = "errors"
SPEED = "speed"
NEIGHBOR = "neighbor"
UTILISATION = "utilisation"
UNREACHABLE = "unreachable"
NO_SNMP = "no_snmp"
LOSS = "loss"
NO_UPLINK = "no_uplink"

SEVERITY_ORDER: dict[AuditState, int] = {AuditState.down: 3, AuditState.degraded: 2, AuditState.unknown: 1,
                                         AuditState.ok: 0}
PENALTY: dict[AuditState, int] = {AuditState.down: 60, AuditState.degraded: 20, AuditState.unknown: 10,
                                  AuditState.ok: 0}

Translate = Callable[..., str]
A = TypeVar("A", bound=BranchAudit)


class AuditThresholds(BaseModel):
    """The audit's thresholds (setting ``link_audit``; env ``INFRA_MGR_LINK_AUDIT`` as JSON).

    ``extra="forbid"``: a misspelt threshold in the settings is an error, not a default quietly kept."""

    model_config = ConfigDict(extra="forbid")

    no_data_s: int = Field(default=900, ge=1, description="No successful poll for this long: no data")
    flaps_24h: int = Field(default=3, ge=1, description="Status transitions in 24 h that make a link flapping")
    error_pct: float = Field(default=0.5, gt=0, description="Errors as % of packets that degrade a link")
    error_window_s: int = Field(default=900, ge=60, description="Window the error share is measured over")
    util_p95_pct: float = Field(default=90.0, gt=0, le=100, description="p95 utilisation that degrades a link")
    util_window_s: int = Field(default=7 * 86400, ge=3600, description="Window of the utilisation p95")
    loss_pct: float = Field(default=5.0, gt=0, le=100, description="Probe loss that degrades a device")
    loss_window_s: int = Field(default=900, ge=60, description="Window of the reachability figures")


def thresholds_from(settings: Any) -> AuditThresholds:
    """The thresholds a deployment set (setting ``link_audit``: only the ones it changes), validated."""
    return AuditThresholds.model_validate(getattr(settings, "link_audit", None) or {})


# --------------------------------------------------------------------------- formatting


def fmt_num(value: float) -> str:
    """A figure as a person reads it: whole numbers from 10 up, one decimal below (0.8, 5, 12)."""
    if abs(value) >= 10:
        return str(int(round(value)))
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def fmt_speed(bps: int | float) -> str:
    """A line rate in the unit the port name implies: 100 Mb/s, 1 Gb/s, 2.5 Gb/s, 10 Gb/s."""
    for unit, size in (("Tb/s", 10**12), ("Gb/s", 10**9), ("Mb/s", 10**6), ("kb/s", 10**3)):
        if bps >= size:
            return f"{fmt_num(bps / size)} {unit}"
    return f"{int(bps)} b/s"


def span_parts(seconds: int) -> tuple[str, int]:
    """(unit, count) of a window: days when whole days (≥ 2), hours when whole hours, else minutes."""
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return "days", seconds // 86400
    if seconds >= 3600 and seconds % 3600 == 0:
        return "h", seconds // 3600
    return "min", max(1, round(seconds / 60))


def _span_en(seconds: int) -> str:
    unit, n = span_parts(seconds)
    return f"{n} {unit}"


def local_time(ts_ms: int, now_ms: int) -> str:
    """An instant in the city's time: ``10:42`` the same day as ``now_ms``, else ``2024-05-01 10:42``."""
    at = dt.datetime.fromtimestamp(ts_ms / 1000, CITY_TZ)
    now = dt.datetime.fromtimestamp(now_ms / 1000, CITY_TZ)
    return at.strftime("%H:%M") if at.date() == now.date() else at.strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- the rules


def _reason(code: str, severity: AuditState, text: str, params: dict[str, Any], link: LinkFacts | None = None,
            device: str = "") -> Reason:
    return Reason(code=code, severity=severity, text=text, params=params,
                  interface_id=link.interface_id if link else None, device=link.device if link else device)


def _link_reasons(link: LinkFacts, now_ms: int, th: AuditThresholds) -> list[Reason]:
    out: list[Reason] = []
    base: dict[str, Any] = {"interface": link.interface, "device": link.device}
    fresh = link.last_sample_ms is not None and now_ms - link.last_sample_ms <= th.no_data_s * 1000
    if not fresh:
        p = {**base, "window_s": th.no_data_s, "last_ms": link.last_sample_ms}
        out.append(_reason(NO_DATA, AuditState.unknown,
                           f"uplink {link.interface}: no data for {_span_en(th.no_data_s)}", p, link))
    else:
        if link.oper_status != "up":
            p = {**base, "status": link.oper_status, "flaps": link.flaps_24h, "since_ms": link.oper_since_ms,
                 "since": local_time(link.oper_since_ms, now_ms) if link.oper_since_ms is not None else ""}
            text = f"uplink {link.interface} down"
            if p["since"]:
                text += f" since {p['since']}"
            if link.flaps_24h:
                text += f" ({link.flaps_24h} flap{'s' if link.flaps_24h != 1 else ''} in 24 h)"
            out.append(_reason(LINK_DOWN, AuditState.down, text, p, link))
        elif link.flaps_24h >= th.flaps_24h:
            out.append(_reason(FLAPPING, AuditState.degraded,
                               f"uplink {link.interface} flapping: {link.flaps_24h} flaps in 24 h",
                               {**base, "flaps": link.flaps_24h}, link))
        if link.error_pct is not None and link.error_pct >= th.error_pct:
            p = {**base, "pct": fmt_num(link.error_pct), "value": link.error_pct, "window_s": th.error_window_s}
            out.append(_reason(ERRORS, AuditState.degraded,
                               f"{link.interface}: errors {p['pct']} % of packets over "
                               f"{_span_en(th.error_window_s)}", p, link))
        if link.oper_status == "up" and link.speed_bps and link.expected_speed_bps \
                and link.speed_bps < link.expected_speed_bps:
            p = {**base, "speed": fmt_speed(link.speed_bps), "expected": fmt_speed(link.expected_speed_bps),
                 "speed_bps": link.speed_bps, "expected_bps": link.expected_speed_bps,
                 "source": link.expected_speed_source}
            out.append(_reason(SPEED, AuditState.degraded,
                               f"{link.interface}: running at {p['speed']}, expected {p['expected']}", p, link))
        if link.neighbor and link.expected_neighbor and \
                link.neighbor.casefold() != link.expected_neighbor.casefold():
            p = {**base, "neighbor": link.neighbor, "expected": link.expected_neighbor,
                 "source": link.expected_neighbor_source}
            out.append(_reason(NEIGHBOR, AuditState.degraded,
                               f"{link.interface}: neighbour is {link.neighbor}, expected {link.expected_neighbor}",
                               p, link))
    if link.util_p95_pct is not None and link.util_p95_pct >= th.util_p95_pct:
        p = {**base, "pct": fmt_num(link.util_p95_pct), "value": link.util_p95_pct, "window_s": th.util_window_s}
        out.append(_reason(UTILISATION, AuditState.degraded,
                           f"{link.interface}: utilisation p95 {p['pct']} % over {_span_en(th.util_window_s)}",
                           p, link))
    return out


def _reach_reasons(r: ReachFacts, th: AuditThresholds) -> list[Reason]:
    span = _span_en(th.loss_window_s)
    base: dict[str, Any] = {"device": r.device, "window_s": th.loss_window_s}
    if r.probes <= 0 or (r.icmp_loss_pct is None and r.snmp_loss_pct is None):
        return [_reason(NO_DATA, AuditState.unknown, f"{r.device}: no reachability probe for {span}", base,
                        device=r.device)]
    icmp_dead = r.icmp_loss_pct is None or r.icmp_loss_pct >= 100
    snmp_dead = r.snmp_loss_pct is None or r.snmp_loss_pct >= 100
    if icmp_dead and snmp_dead:
        return [_reason(UNREACHABLE, AuditState.down, f"{r.device} unreachable: no answer to ping or SNMP for {span}",
                        base, device=r.device)]
    out: list[Reason] = []
    losses = [r.icmp_loss_pct] if r.snmp_loss_pct is not None and r.snmp_loss_pct >= 100 else \
        [r.icmp_loss_pct, r.snmp_loss_pct]
    if r.snmp_loss_pct is not None and r.snmp_loss_pct >= 100:
        out.append(_reason(NO_SNMP, AuditState.degraded, f"{r.device} answers ping but not SNMP for {span}",
                           base, device=r.device))
    worst = max((x for x in losses if x is not None), default=None)
    if worst is not None and worst >= th.loss_pct:
        p = {**base, "pct": fmt_num(worst), "value": worst}
        out.append(_reason(LOSS, AuditState.degraded, f"{r.device}: loss {p['pct']} % over {span}", p,
                           device=r.device))
    return out


def worst_state(states: Iterable[AuditState]) -> AuditState:
    return max(states, key=SEVERITY_ORDER.__getitem__, default=AuditState.ok)


def audit_branch(facts: BranchFacts, th: AuditThresholds | None = None) -> BranchAudit:
    """The verdict on one branch from its facts; deterministic (no clock: ``facts.now_ms`` is "now")."""
    th = th or AuditThresholds()
    reasons: list[Reason] = []
    if not facts.links:
        reasons.append(Reason(code=NO_UPLINK, severity=AuditState.unknown, text="no uplink known", params={}))
    for host in sorted(facts.devices_without_uplink) if facts.links else ():
        # a branch device none of whose interfaces is an uplink is not watched at all: say so
        reasons.append(Reason(code=NO_UPLINK, severity=AuditState.unknown, text=f"{host}: no uplink known",
                              params={"device": host}, device=host))
    for link in sorted(facts.links, key=lambda x: (x.device, x.interface)):
        reasons += _link_reasons(link, facts.now_ms, th)
    for reach in sorted(facts.reach, key=lambda x: x.device):
        reasons += _reach_reasons(reach, th)
    reasons.sort(key=lambda r: -SEVERITY_ORDER[r.severity])  # stable: worst first, rule order within
    score = max(0, 100 - sum(PENALTY[r.severity] for r in reasons))
    return BranchAudit(site_code=facts.site_code, site_name_en=facts.site_name_en, site_name_ar=facts.site_name_ar,
                       state=worst_state(r.severity for r in reasons), score=score, reasons=reasons,
                       uplinks=len(facts.links))


def rank(audits: Iterable[A]) -> list[A]:
    """Worst first: lowest score, then the worse state, then the site code (a stable, readable order)."""
    return sorted(audits, key=lambda a: (a.score, -SEVERITY_ORDER[a.state], a.site_code))


# --------------------------------------------------------------------------- sentences in any language


_LATIN = re.compile(r"[A-Za-z]")  # a name or a unit; bare numbers need no isolation


def reason_text(reason: Reason, t: Translate, *, isolate: bool = False) -> str:
    """The reason's sentence in the translator's language (``t`` is the dashboard's ``Translator``:
    ``t(key, **params)``). The catalogue keys are ``audit.reason.<code>``; windows and flap counts
    are composed from ``audit.span.<unit>`` and ``audit.reason.flaps`` so plurals follow the language.
    A code the catalogue lacks falls back to the English ``text``."""
    key = f"audit.reason.{reason.code}"
    if reason.code == NO_DATA and reason.interface_id is None:  # a device never probed, not a link
        key = "audit.reason.no_probe"
    if reason.code == NO_UPLINK and reason.device:  # one device of the branch, not the whole branch
        key = "audit.reason.no_uplink_device"
    p = dict(reason.params)
    if isolate:  # names and units (Gi1/0/24, 100 Mb/s) keep their own direction inside an Arabic sentence
        p = {k: f"\u2068{v}\u2069" if isinstance(v, str) and _LATIN.search(v) else v for k, v in p.items()}
    if "window_s" in p:
        unit, n = span_parts(int(p["window_s"]))
        p["window"] = t(f"audit.span.{unit}", count=n)
    text = t(key, **p)
    if text == key:
        return reason.text
    if reason.code == LINK_DOWN:
        if p.get("since"):
            text += t("audit.reason.since", since=p["since"])
        if p.get("flaps"):
            text += t("audit.reason.flaps", count=p["flaps"])
    return text
