"""Rates from two readings of an interface's counters, and status changes from two readings of its status.

Pure arithmetic, no I/O: the poller stores a :class:`~infra_mgr.network.linkfacts.CounterSnapshot`
per uplink and hands the previous one and the new one to :func:`rates`. The hard part is saying
*no* at the right time. A counter that went back is either a 32-bit wrap (add 2³²) or a reset
(the agent restarted the counter: no rate); a restarted agent (sysUpTime back) gives no rate at
all. Guessing wrong either way draws a spike of terabits or a false zero on the chart, and the
audit would then report saturation or silence that never happened. So every sample that cannot
give an honest rate carries a :class:`~infra_mgr.network.linkfacts.NoRate` note instead.

Time base: the agent's own sysUpTime when both readings have it, so the poller's scheduling
jitter (a cycle started 3 s late, a slow answer) does not turn into a rate error; wall time
otherwise.
"""

from __future__ import annotations

from infra_mgr.network.linkfacts import COUNTERS, CounterSnapshot, NoRate, RateResult

WRAP32 = 2**32
# sysUpTime is TimeTicks (1/100 s) in 32 bits: it wraps after ~497 days of uptime.
UPTIME_WRAP_CS = 2**32
# A 32-bit wrap is believed only when the rate it implies stays below the interface speed by
# this factor (agent time is exact; the slack covers speeds rounded down by agents).
WRAP_MARGIN = 1.2
# Smallest Ethernet frame on the wire (64 bytes + preamble and gap): the most packets per second
# a link of a given speed can carry, to judge wraps of packet, error and discard counters.
MIN_FRAME_BITS = 84 * 8
# How far the agent's clock and ours may disagree over one interval before the readings are
# judged to come from different runs of the agent (seconds, plus a share of the interval).
CLOCK_SLACK_S = 2.0
CLOCK_SLACK_SHARE = 0.1

_OCTETS = frozenset({"in_octets", "out_octets"})


def _slack(interval_s: float) -> float:
    return CLOCK_SLACK_S + CLOCK_SLACK_SHARE * abs(interval_s)


def restarted(prev_uptime_cs: int | None, cur_uptime_cs: int | None, wall_s: float | None = None, *,
              max_gap_s: float = 1800) -> bool:
    """Whether two readings come from different runs of the agent: the one reboot rule that both
    the rates and the status transitions follow, so a restart voids a rate exactly when it also
    voids the ifLastChange comparison (a false flap otherwise).

    sysUpTime back is a restart unless it wrapped at 2^32 ticks: the wrapped interval must be at
    most ``max_gap_s`` and, where our clock's interval ``wall_s`` is known, agree with it. sysUpTime
    ahead is a restart when far less agent time than wall time passed: the agent restarted in
    between and has already counted past its old sysUpTime (its counters restarted with it).
    Without both sysUpTimes nothing can be told: not a restart.
    """
    if prev_uptime_cs is None or cur_uptime_cs is None:
        return False
    delta_cs = cur_uptime_cs - prev_uptime_cs
    if delta_cs < 0:
        wrapped_s = (delta_cs + UPTIME_WRAP_CS) / 100.0
        if wrapped_s > max_gap_s:
            return True
        return wall_s is not None and abs(wrapped_s - wall_s) > _slack(wall_s)
    return wall_s is not None and wall_s > 0 and delta_cs / 100.0 < wall_s - _slack(wall_s)


def _interval(prev: CounterSnapshot, cur: CounterSnapshot, max_gap_s: float) -> tuple[float | None, NoRate | None]:
    """(seconds between the readings, or why there is no usable interval)."""
    wall_s = (cur.ts_ms - prev.ts_ms) / 1000.0
    if prev.uptime_cs is None or cur.uptime_cs is None:
        return (wall_s, None) if wall_s > 0 else (None, NoRate.same_time)
    if restarted(prev.uptime_cs, cur.uptime_cs, wall_s, max_gap_s=max_gap_s):
        return None, NoRate.reboot
    delta_cs = cur.uptime_cs - prev.uptime_cs
    if delta_cs < 0:  # sysUpTime wrapped at 2^32 ticks (restarted() ruled out a restart)
        return (delta_cs + UPTIME_WRAP_CS) / 100.0, None
    if delta_cs == 0:
        return None, NoRate.same_time
    return delta_cs / 100.0, None


def _max_per_s(name: str, speed_bps: int | None) -> float | None:
    """The most a counter can plausibly grow per second on a link of this speed."""
    if not speed_bps:
        return None
    return speed_bps / 8.0 if name in _OCTETS else speed_bps / MIN_FRAME_BITS


def rates(prev: CounterSnapshot | None, cur: CounterSnapshot, speed_bps: int | None, *,
          max_gap_s: float = 1800) -> RateResult:
    """Rates between two readings of one interface, or a note saying why there are none.

    ``speed_bps`` is the running speed (utilisation is the busier direction as a share of it;
    it also judges whether a 32-bit counter that went back wrapped or was reset). Any counter
    that was reset voids the whole sample: the others were probably reset with it.
    """
    if prev is None:
        return RateResult(note=NoRate.first)
    if all(cur.counters.get(n) is None for n in _OCTETS) or all(prev.counters.get(n) is None for n in _OCTETS):
        return RateResult(note=NoRate.missing)
    interval_s, note = _interval(prev, cur, max_gap_s)
    if note is not None or interval_s is None:
        return RateResult(note=note or NoRate.same_time)
    if interval_s > max_gap_s:
        return RateResult(interval_s=interval_s, note=NoRate.gap)
    if prev.hc != cur.hc:  # the agent switched between 32- and 64-bit counters: not comparable
        return RateResult(interval_s=interval_s, note=NoRate.reset)

    deltas: dict[str, int | None] = {}
    wrapped: list[str] = []
    for name in COUNTERS:
        before, now = prev.counters.get(name), cur.counters.get(name)
        if before is None or now is None:
            deltas[name] = None
            continue
        limit = _max_per_s(name, speed_bps)
        if not cur.hc and limit is not None and limit * interval_s >= WRAP32:
            # At this speed a 32-bit counter can wrap in the interval without showing it (a
            # delta d could as well be d + 2^32): any rate is a guess. Too long between readings
            # for this counter (a 1 Gb/s port with 32-bit counters needs polls under 34 s).
            return RateResult(interval_s=interval_s, note=NoRate.gap)
        if now >= before:
            deltas[name] = now - before
            continue
        if cur.hc:
            return RateResult(interval_s=interval_s, note=NoRate.reset)
        candidate = now - before + WRAP32
        plausible = candidate * 2 < WRAP32 if limit is None else candidate <= limit * interval_s * WRAP_MARGIN
        if not plausible:
            return RateResult(interval_s=interval_s, note=NoRate.reset)
        deltas[name] = candidate
        wrapped.append(name)

    def per_s(*names: str) -> float | None:
        known = [deltas[n] for n in names if deltas[n] is not None]
        return sum(v for v in known if v is not None) / interval_s if known else None

    in_bps = None if deltas["in_octets"] is None else deltas["in_octets"] * 8 / interval_s
    out_bps = None if deltas["out_octets"] is None else deltas["out_octets"] * 8 / interval_s
    busier = max((v for v in (in_bps, out_bps) if v is not None), default=None)
    util_pct = 100.0 * busier / speed_bps if busier is not None and speed_bps else None
    errors = [deltas[n] for n in ("in_errors", "out_errors") if deltas[n] is not None]
    packets = [deltas[n] for n in ("in_pkts", "out_pkts") if deltas[n] is not None]
    pkts_ps = per_s("in_pkts", "out_pkts")
    error_pct: float | None = None
    if errors and packets:
        total_errors = sum(e for e in errors if e is not None)
        total = sum(p for p in packets if p is not None) + total_errors
        error_pct = 100.0 * total_errors / total if total else 0.0
    return RateResult(
        interval_s=interval_s, in_bps=in_bps, out_bps=out_bps, util_pct=util_pct,
        errors_ps=per_s("in_errors", "out_errors"), discards_ps=per_s("in_discards", "out_discards"),
        error_pct=error_pct, pkts_ps=pkts_ps, wrapped=wrapped,
    )


# How far past the 2^32-tick wrap of sysUpTime a reading may be and still count as a wrap rather
# than a restart (without wall time, the longest gap between polls that gives a rate).
UPTIME_WRAP_WINDOW_CS = 1800 * 100


def rebooted(prev_uptime_cs: int | None, cur_uptime_cs: int | None, prev_ts_ms: int | None = None,
             cur_ts_ms: int | None = None) -> bool:
    """Whether the agent restarted between two readings, by the same rule :func:`rates` uses
    (:func:`restarted`), with wall time when both readings carry it."""
    wall_s = (cur_ts_ms - prev_ts_ms) / 1000.0 if prev_ts_ms is not None and cur_ts_ms is not None else None
    return restarted(prev_uptime_cs, cur_uptime_cs, wall_s, max_gap_s=UPTIME_WRAP_WINDOW_CS / 100.0)


def transitions(prev_status: str | None, prev_last_change_cs: int | None, cur_status: str | None,
                cur_last_change_cs: int | None, prev_uptime_cs: int | None, cur_uptime_cs: int | None,
                prev_ts_ms: int | None = None, cur_ts_ms: int | None = None) -> int:
    """Oper-status transitions seen between two polls: at least how many times the link changed.

    0: none (or nothing to compare with); 1: the status differs; 2: the status is the same but
    ifLastChange moved, so the link went away and came back between the polls (a flap the poll
    alone would miss). An agent restart resets ifLastChange: it is never counted as flaps; only a
    status that differs across it counts. ``prev_ts_ms``/``cur_ts_ms`` (when the readings were
    taken) let a restart be told the way :func:`rates` tells it.
    """
    if prev_status is None or cur_status is None:
        return 0
    if prev_status != cur_status:
        return 1
    if rebooted(prev_uptime_cs, cur_uptime_cs, prev_ts_ms, cur_ts_ms):
        return 0
    if prev_last_change_cs is None or cur_last_change_cs is None or prev_last_change_cs == cur_last_change_cs:
        return 0
    return 2
