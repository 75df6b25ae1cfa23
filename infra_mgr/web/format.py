"""How the dashboard writes values for people: times, speeds, durations, numbers, bidi isolation.

Only presentation lives here; what a value *means* (a state, a load) is decided by the domains'
read views and arrives ready to be written.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from infra_mgr.common import speed_parts
from infra_mgr.web.i18n import Translator

_IF_BADGE = {"up": "success", "down": "danger", "lowerLayerDown": "danger", "testing": "warning", "dormant": "info"}


def isolate(text: str) -> str:
    """Wrap a code or hostname in Unicode isolates so it keeps its order inside an Arabic sentence."""
    return f"\u2068{text}\u2069"


def fmt_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def fmt_utc(value: dt.datetime | None) -> str:
    """A stored time with its zone (``2026-12-03 19:33 UTC``): a reader in Jeddah (UTC+3) must not
    take it for local time."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


speed = speed_parts  # the dashboard's name for it (templates call ``speed(bps)``)


def if_badge(admin: str, oper: str) -> str:
    """An interface shut on purpose (admin down) is grey, not an alarm; otherwise colour by oper status."""
    return "secondary" if admin == "down" else _IF_BADGE.get(oper, "secondary")


def fmt_duration(t: Translator, seconds: float | None) -> str:
    """8.4 s, 2 min 05 s, 1 h 12 min, 3 d 4 h (power.js formats ages the same way)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return t("dur.s", n=f"{seconds:.1f}".removesuffix(".0"))
    total = int(round(seconds))
    if total < 3600:
        return t("dur.min", m=total // 60, s=f"{total % 60:02d}")
    if total < 86400:
        return t("dur.h", h=total // 3600, m=f"{total % 3600 // 60:02d}")
    return t("dur.d", d=total // 86400, h=total % 86400 // 3600)


def fmt_num(value: float | None, digits: int = 1) -> str:
    """A reading for people: 45.2, 45 (not 45.0); halves round up, as power.js's Math.round does."""
    if value is None:
        return ""
    if not digits:
        return str(math.floor(value + 0.5))
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def fmt_iso(value: str | None, with_seconds: bool = True) -> str:
    """An ISO time from the power payload as UTC ``YYYY-MM-DD HH:MM:SS``."""
    if not value:
        return ""
    when = dt.datetime.fromisoformat(value).astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
