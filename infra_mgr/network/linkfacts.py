"""The facts of the branch link audit: what the pollers return, what the audit reads, what it says.

One module for the contract between the three parts, so each can be read and tested alone:

* the **collectors** (``snmp/ifpoll.py`` reads interface counters, ``reach.py`` probes
  reachability) return :class:`InterfacePoll` and :class:`ReachResult` — plain values, no
  database;
* the **rate arithmetic** (``counters.py``) turns two :class:`CounterSnapshot` into a
  :class:`RateResult`, or says in :attr:`RateResult.note` why there is no rate;
* the **audit** (``audit.py``) is a pure function of :class:`BranchFacts` (gathered from the
  stored data by the read views) giving a :class:`BranchAudit` with its reasons.

Telemetry series names live here too, so the writer and every reader name a series the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

# --- telemetry series (source kind, name, unit) ------------------------------------------------

IF_SERIES_KIND = "interface"  # source id: interface id
DEVICE_SERIES_KIND = "device"  # source id: device id

S_IN_BPS = "in_bps"
S_OUT_BPS = "out_bps"
S_UTIL_PCT = "util_pct"  # the busier direction, % of the running speed
S_ERRORS_PS = "errors_ps"  # in + out errors per second
S_DISCARDS_PS = "discards_ps"
S_ERROR_PCT = "error_pct"  # errors as % of packets in the same interval
S_PKTS_PS = "pkts_ps"  # in + out packets per second (weights a window's error share: Σ errors / Σ packets)
S_OPER_UP = "oper_up"  # 1 up, 0 not up
S_RX_DBM = "rx_dbm"
S_TX_DBM = "tx_dbm"
S_RTT_MS = "rtt_ms"  # device: round-trip time of the probe
S_LOSS_PCT = "loss_pct"  # device: % of ICMP echoes unanswered in one cycle
S_SNMP_LOSS_PCT = "snmp_loss_pct"  # device: % of single SNMP GETs (no retry) unanswered in one cycle

SERIES_UNITS: dict[str, str] = {
    S_IN_BPS: "bit/s", S_OUT_BPS: "bit/s", S_UTIL_PCT: "%", S_ERRORS_PS: "1/s", S_DISCARDS_PS: "1/s",
    S_ERROR_PCT: "%", S_OPER_UP: "", S_RX_DBM: "dBm", S_TX_DBM: "dBm", S_RTT_MS: "ms", S_LOSS_PCT: "%",
    S_SNMP_LOSS_PCT: "%", S_PKTS_PS: "1/s",
}


# --- what the interface poller returns ----------------------------------------------------------


@dataclass
class CounterRow:
    """One interface's counters and status as read in one poll. ``None``: the agent did not give it."""

    if_index: int
    hc: bool  # True: octet/packet counters are the 64-bit ifHC* ones; False: 32-bit ifTable ones
    in_octets: int | None = None
    out_octets: int | None = None
    in_pkts: int | None = None  # unicast + multicast + broadcast
    out_pkts: int | None = None
    in_errors: int | None = None
    out_errors: int | None = None
    in_discards: int | None = None
    out_discards: int | None = None
    oper_status: str | None = None  # IF-MIB names: up | down | testing | unknown | dormant | …
    last_change_cs: int | None = None  # ifLastChange, TimeTicks (centiseconds of sysUpTime)
    speed_bps: int | None = None  # ifHighSpeed × 10⁶ where given, else ifSpeed
    rx_dbm: float | None = None  # optical levels where the device publishes them
    tx_dbm: float | None = None


@dataclass
class InterfacePoll:
    """One device's answer to one poll cycle (or why there was none: ``error_kind`` set, ``rows`` empty)."""

    address: str
    ts_ms: int  # when the answer arrived (the rate's time base is sysUpTime where given)
    rtt_ms: float | None = None  # round trip of the first request: the SNMP reachability fallback
    uptime_cs: int | None = None  # sysUpTime, TimeTicks
    rows: dict[int, CounterRow] = field(default_factory=dict)
    error_kind: str | None = None  # timeout | auth | error … (PollProblem kinds)
    error: str = ""


# --- rate arithmetic ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CounterSnapshot:
    """What is kept between two polls of one interface (``UplinkState`` stores it)."""

    ts_ms: int
    uptime_cs: int | None
    hc: bool
    counters: dict[str, int | None]  # COUNTERS names → raw value


COUNTERS = ("in_octets", "out_octets", "in_pkts", "out_pkts", "in_errors", "out_errors", "in_discards", "out_discards")


class NoRate(StrEnum):
    """Why a sample gave no rate: marked on the sample, never turned into a spike or a zero."""

    first = "first"  # no earlier sample to compare with
    reboot = "reboot"  # sysUpTime went back: the agent restarted
    reset = "reset"  # a counter went back without a plausible wrap
    gap = "gap"  # the earlier sample is too old to give a meaningful rate
    same_time = "same_time"  # no time passed between the two samples
    missing = "missing"  # the agent did not give the counters


@dataclass
class RateResult:
    """Rates between two snapshots; all ``None`` with ``note`` set when there is none."""

    interval_s: float | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    util_pct: float | None = None
    errors_ps: float | None = None
    discards_ps: float | None = None
    error_pct: float | None = None
    pkts_ps: float | None = None  # in + out packets per second
    wrapped: list[str] = field(default_factory=list)  # counters that wrapped at 2³² (32-bit agents)
    note: NoRate | None = None


# --- reachability -------------------------------------------------------------------------------


@dataclass
class ReachResult:
    """One device's probe by one method in one cycle: packets sent and answered, and the round trip."""

    address: str
    method: str  # icmp | snmp
    sent: int
    received: int
    rtt_ms: float | None = None  # average of the answered packets

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0


# --- the audit's input and output ---------------------------------------------------------------


class AuditState(StrEnum):
    ok = "ok"
    degraded = "degraded"
    down = "down"
    unknown = "unknown"


@dataclass
class LinkFacts:
    """One uplink as the audit sees it, gathered from the stored data at time ``BranchFacts.now_ms``."""

    interface_id: int
    device: str  # hostname
    interface: str  # interface name
    oper_status: str  # last polled; "unknown" when never polled
    oper_since_ms: int | None = None
    flaps_24h: int = 0  # transitions in the last 24 h (LinkStatusChange)
    error_pct: float | None = None  # errors as % of packets over the error window
    speed_bps: int | None = None  # running speed
    expected_speed_bps: int | None = None
    expected_speed_source: str = ""
    neighbor: str = ""  # seen now by LLDP/CDP ("" when none)
    expected_neighbor: str = ""
    expected_neighbor_source: str = ""
    util_p95_pct: float | None = None  # p95 of 5-minute utilisation over the utilisation window
    last_sample_ms: int | None = None  # last successful poll
    note: str = ""  # why the last sample gave no rate, if it did not


@dataclass
class ReachFacts:
    """One branch device's reachability over the loss window."""

    device: str
    icmp_loss_pct: float | None  # mean of the window's cycles; None: no ICMP probe in the window
    snmp_loss_pct: float | None  # same for the single-GET SNMP probe
    rtt_ms: float | None  # ICMP where answered, else SNMP
    probes: int  # probe cycles in the window
    last_sample_ms: int | None = None
    lossy_cycles: int = 0  # cycles of the window in which a probe went unanswered (either method)


@dataclass
class BranchFacts:
    site_code: str
    site_name_en: str
    site_name_ar: str
    now_ms: int
    links: list[LinkFacts] = field(default_factory=list)
    reach: list[ReachFacts] = field(default_factory=list)
    devices_without_uplink: list[str] = field(default_factory=list)  # hostnames: nothing of theirs is audited


class Reason(BaseModel):
    """One finding in words: a stable ``code`` with its ``params``; ``text`` is the English sentence.

    Pages render the sentence in the reader's language from the catalogue key ``audit.reason.<code>``
    with the same params, so the English text and the Arabic one never disagree on a number.
    """

    code: str  # link_down | flapping | errors | speed | neighbor | utilisation | loss | no_data | no_uplink
    severity: AuditState  # degraded or down (unknown for no data)
    text: str
    params: dict[str, Any] = {}
    interface_id: int | None = None
    device: str = ""


class BranchAudit(BaseModel):
    site_code: str
    site_name_en: str
    site_name_ar: str
    state: AuditState
    score: int  # 100 healthy … 0 down; ranks branches (lowest first)
    reasons: list[Reason]
    uplinks: int
