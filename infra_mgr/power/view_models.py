"""The typed models of the power domain's read side (:mod:`infra_mgr.power.views` computes them):
what the API serves, the dashboard renders, the CLI prints and the live stream sends."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Gauges(BaseModel):
    """A device's gauges (% each, ``None`` when not reported), which of them it shows, and its autonomy."""

    battery: float | None = None
    kinetic: float | None = None
    fuel: float | None = None
    load: float | None = None
    shown: list[str] = []
    battery_h: float | None = None
    fuel_h: float | None = None
    # the load fuel_h is for: "present" (what the generator carries now) or "rated" (it carries
    # nothing now, so its autonomy at its rating; never an idle engine's 100 h)
    fuel_at: str | None = None


class DeviceLive(BaseModel):
    """One device's live state: the same shape in ``/power/status``, the dashboard and the stream.

    ``live`` is false once the data is older than ``grace_s`` or the device stopped answering;
    then ``state`` is ``unknown`` and ``tone`` is ``stale`` (``unknown`` if never read).
    ``stale_tone`` is the tone a client shows when the data outgrows ``grace_s`` before it hears more."""

    id: int
    name: str
    kind: str
    site_id: int | None
    status: str
    state: str
    flags: list[str]
    live: bool
    tone: str
    stale_tone: str
    last_ok: dt.datetime | None
    data_age_s: float | None
    grace_s: float
    readings: dict[str, Any]
    kw: float | None
    load_pct: float | None
    gauges: Gauges
    battery_autonomy_h: float | None
    fuel_autonomy_h: float | None
    fuel_load_pct: float | None = None


class PowerViewDevice(DeviceLive):
    """A device on the dashboard: its live state and what the page shows around it."""

    site_code: str | None
    last_state: str
    capacity_kw: float | None
    message: str
    fuel_reading: str | None


class NodeLive(BaseModel):
    """The live part of a chain node: its state, colour and load."""

    id: int
    state: str
    tone: str
    live: bool
    kw: float | None
    pct: float | None


class ChainNode(NodeLive):
    name: str
    kind: str
    site_id: int | None
    device_id: int | None
    device: str | None
    capacity_kw: float | None
    pue_role: str
    it_category: int | None
    col: int
    row: int
    x: int
    y: int
    derived_from: list[int]


class ChainEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: int
    from_: int = Field(alias="from")
    to: int
    path: str


class ChainBox(BaseModel):
    width: int
    height: int
    node_w: int
    node_h: int


class SiteLive(BaseModel):
    """What a site runs on, from its live devices."""

    id: int | None
    code: str | None
    name_en: str
    name_ar: str
    state: str
    tone: str
    not_live: int
    devices: int


class PueNow(BaseModel):
    """PUE now; ``facility_kw`` is ``grid_kw`` (the intake meters) plus ``generation_kw`` (DRUPS
    and gensets running on their engines), each ``None`` when that source gives nothing."""

    pue: float | None
    facility_kw: float | None
    it_kw: float | None
    category: int | None
    grid_kw: float | None = None
    generation_kw: float | None = None


class OpenOutage(BaseModel):
    id: int
    started_at: dt.datetime


class PowerEvent(BaseModel):
    time: dt.datetime | None
    kind: str
    severity: str
    message: str
    device: str
    data: dict[str, Any] = {}  # the event's data: what its sentence in the reader's language is made of


class OutageSummary(BaseModel):
    id: int
    site_id: int | None
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: float | None
    seconds_to_diesel: float | None
    min_battery_charge: float | None
    min_kinetic_level: float | None
    diesel_run_s: float | None
    fuel_used_l: float | None


class TimelineItem(BaseModel):
    time: dt.datetime | None
    offset_s: float | None
    kind: str
    device: str
    message: str
    data: dict[str, Any] = {}  # as PowerEvent's


class OutagePhase(BaseModel):
    phase: str
    time: dt.datetime | None
    offset_s: float | None


class OutageDetail(OutageSummary):
    timeline: list[TimelineItem]
    ride_through: str | None
    phases: list[OutagePhase]


class PowerView(BaseModel):
    """Everything the power dashboard shows (``/api/v1/power/view``, ``/power/chain.json``)."""

    time: dt.datetime
    devices: list[PowerViewDevice]
    nodes: list[ChainNode]
    edges: list[ChainEdge]
    sites: list[SiteLive]
    pue: PueNow
    chain: ChainBox
    open_outage: OpenOutage | None
    events: list[PowerEvent] | None = None
    outages: list[OutageSummary] | None = None
    outage: OutageDetail | None = None


class PowerStatus(BaseModel):
    """Every device's live state and PUE now (``/api/v1/power/status``, ``infra-mgr power status``)."""

    devices: list[DeviceLive]
    pue: PueNow
    time: dt.datetime


class LiveMessage(DeviceLive):
    """The stream's ``device`` message: the device's live state, the chain nodes it colours (its
    own and the utility feeds judged from it) and its site's state."""

    type: Literal["device"] = "device"
    time: dt.datetime
    nodes: list[NodeLive] = []
    site: SiteLive | None = None


class Series(BaseModel):
    """A reading over time: ``[ms, min, avg, max]`` points at ``resolution_s`` (0: raw samples)."""

    resolution_s: int
    unit: str
    points: list[tuple[int, float | None, float, float | None]]


class PueDay(BaseModel):
    """One day's PUE and mean kW of each side; ``None`` where no reading was stored (never 0)."""

    day: dt.date
    pue: float | None
    facility_kw_avg: float | None
    it_kw_avg: float | None
    grid_kw_avg: float | None = None  # of the facility figure: the grid intake's mean
    generation_kw_avg: float | None = None  # and the mean generated on site (an outage day)


class PueDaily(BaseModel):
    """PUE per day; ``has_data`` is false when no day has a value (the page shows "no data")."""

    days: list[PueDay]
    category: int | None
    has_data: bool = False
