"""Autonomy and efficiency: how long batteries and fuel last at the present load, and PUE.

Fuel autonomy = usable litres ÷ litres per hour at the present load, the consumption interpolated
linearly on the engine's curve (e.g. 42/70/100/135 L/h at 25/50/75/100 % for a 500 kW set).
Usable litres exclude the part of the tank an engine cannot draw (``1 − usable_fraction``).
PUE = total facility power ÷ IT power (The Green Grid; ISO/IEC 30134-2), with the category of the
IT measurement point stated: 1 at UPS output, 2 at PDU output, 3 at the IT equipment input.
"""

from __future__ import annotations

from collections.abc import Sequence


def litres_per_hour(curve: dict[str, float], load_pct: float) -> float:
    """Consumption at ``load_pct`` by linear interpolation; beyond the ends, the end slopes continue
    (never below a quarter of the lightest point: an idling engine still burns fuel)."""
    points = sorted((float(k), float(v)) for k, v in curve.items())
    if len(points) < 2:
        raise ValueError("a consumption curve needs at least two points")
    load = max(0.0, load_pct)
    seg = next(((p0, p1) for p0, p1 in zip(points, points[1:], strict=False) if load <= p1[0]),
               (points[-2], points[-1]))
    (x0, y0), (x1, y1) = seg
    return max(points[0][1] * 0.25, y0 + (y1 - y0) / (x1 - x0) * (load - x0))


def usable_litres(capacity_l: float, level_pct: float, usable_fraction: float) -> float:
    return max(0.0, capacity_l * min(level_pct, 100.0) / 100.0 - capacity_l * (1.0 - usable_fraction))


def fuel_autonomy_h(capacity_l: float, level_pct: float, usable_fraction: float, curve: dict[str, float],
                    load_pct: float) -> float:
    return usable_litres(capacity_l, level_pct, usable_fraction) / litres_per_hour(curve, load_pct)


def battery_autonomy_h(runtime_s: float | None) -> float | None:
    if runtime_s is None or runtime_s < 0 or runtime_s >= 65535:  # NUT's known "no estimate" glitches
        return None
    return runtime_s / 3600.0


def pue(facility_kw: float | None, it_kw: float | None) -> float | None:
    if not facility_kw or not it_kw or it_kw <= 0 or facility_kw <= 0:
        return None
    return facility_kw / it_kw


def pue_category(categories: Sequence[int | None]) -> int | None:
    """The category a PUE is reported in: that of the least precise IT measurement point."""
    known = [c for c in categories if c]
    return min(known) if known else None
