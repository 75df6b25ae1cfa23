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
of ICMP and SNMP loss ≥ ``loss_pct`` → ``loss`` (degraded). A device read over SSH has no SNMP
agent by design and is probed by ICMP alone (no SNMP loss: never ``no_snmp``, its loss is the
echoes'). A branch without uplinks is ``unknown``
(``no_uplink``): nothing says its way out is healthy.

State = the worst severity (down > degraded > unknown > ok); score = 100 − 60 per down reason −
20 per degraded − 10 per unknown, never below 0. Times in sentences are UTC and say so ("down since
07:42 UTC"), like every time the dashboard, the CLI and the API show, so a sentence and the facts
beside it never disagree by the city's three hours; ``params`` also carry the instant in epoch ms.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from infra_mgr.common import speed_parts
from infra_mgr.config import AuditThresholds
from infra_mgr.network.linkfacts import AuditState, BranchAudit, BranchFacts, LinkFacts, ReachFacts, Reason

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


def thresholds_from(settings: Any) -> AuditThresholds:
    """The thresholds a deployment set (setting ``link_audit``, validated when the settings load);
    a plain mapping (only the thresholds it changes) is validated here."""
    value = getattr(settings, "link_audit", None)
    if isinstance(value, AuditThresholds):
        return value
    return AuditThresholds.model_validate(value or {})


# --------------------------------------------------------------------------- formatting


def fmt_num(value: float) -> str:
    """A figure as a person reads it: whole numbers from 10 up, one decimal below (0.8, 5, 12)."""
    if abs(value) >= 10:
        return str(int(round(value)))
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


ENGLISH_SPEED = {"tbps": "Tb/s", "gbps": "Gb/s", "mbps": "Mb/s", "kbps": "kb/s", "bps": "b/s"}


def fmt_speed(bps: int | float) -> str:
    """A line rate in English (the API's ``text``, logs): 100 Mb/s, 1 Gb/s, 2.5 Gb/s, 10 Gb/s; pages
    and the CLI write it in the reader's language from the same parts (:func:`reason_text`)."""
    parts = speed_parts(bps)
    return f"{parts[1]} {ENGLISH_SPEED[parts[0]]}" if parts else "0 b/s"


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
    """An instant as the dashboard shows times: ``10:42 UTC`` the same day as ``now_ms``, else
    ``2024-05-01 10:42 UTC``."""
    at = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    return at.strftime("%H:%M UTC") if at.date() == now.date() else at.strftime("%Y-%m-%d %H:%M UTC")


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
    if worst is not None and worst >= th.loss_pct and r.lossy_cycles >= th.loss_min_cycles:
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
    for text_key, bps_key in (("speed", "speed_bps"), ("expected", "expected_bps")):
        parts = speed_parts(p.get(bps_key)) if isinstance(p.get(bps_key), int | float) else None
        if text_key in p and parts is not None:  # in the reader's units, as the facts beside it say
            said = t(f"speed.{parts[0]}", n=parts[1])
            if said != f"speed.{parts[0]}":
                p[text_key] = f"\u2068{said}\u2069" if isolate else said
    if isolate:  # names and units (Gi1/0/24, 100 Mb/s) keep their own direction inside an Arabic sentence
        p = {k: f"\u2068{v}\u2069" if isinstance(v, str) and _LATIN.search(v) and not v.startswith("\u2068")
             else v for k, v in p.items()}
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
