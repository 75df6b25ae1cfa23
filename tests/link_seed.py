"""A small estate for the Links pages' tests: five branches whose uplinks tell five stories, written
as the link poller would leave them (Uplink, UplinkState, LinkStatusChange, DeviceReach rows and
interface telemetry through the store's own API).

* JED-B07 (down): its router's uplink went down 10 minutes ago, after going down and up 20 h ago;
* JED-B12 (degraded): its switch runs at 100 Mb/s instead of 1 Gb/s, cabled to the wrong neighbour;
* JED-B30 (degraded): errors on 1.2 % of packets, with the same traffic history as JED-B01;
* JED-B20 (unknown): its uplink has not answered a poll for an hour;
* JED-B01 (ok): healthy, with 26 hours of traffic every minute (and 5-minute roll-ups).

Headquarters and the data centre hold the far ends and are not audited.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.inventory.models import Device, Interface, Site
from infra_mgr.network.linkfacts import IF_SERIES_KIND, S_DISCARDS_PS, S_ERRORS_PS, S_IN_BPS, S_OUT_BPS, SERIES_UNITS
from infra_mgr.network.models import DeviceReach, LinkStatusChange, Uplink, UplinkState
from infra_mgr.telemetry.store import TelemetryStore

GBPS = 1_000_000_000
TRAFFIC_STEP_S = 60
TRAFFIC_HOURS = 26
RANKED = ["JED-B07", "JED-B12", "JED-B30", "JED-B20", "JED-B01"]
STATES = {"JED-B07": "down", "JED-B12": "degraded", "JED-B30": "degraded", "JED-B20": "unknown", "JED-B01": "ok"}


@dataclass
class Seeded:
    now: dt.datetime
    uplinks: dict[str, int] = field(default_factory=dict)  # site code → uplink interface id
    devices: dict[str, int] = field(default_factory=dict)  # hostname → device id
    traffic_points: int = 0  # raw samples per series of JED-B01's (and JED-B30's) uplink


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def seed(engine: Engine, username: str, password: str) -> Seeded:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out = Seeded(now=now)
    with Session(engine) as s:
        create_user(s, UserCreate(username=username, password=password, role="viewer"))
        hq = Site(code="JED-HQ", name_en="Headquarters", name_ar="المبنى الرئيسي", kind="hq")
        dc = Site(code="JED-DC1", name_en="Data centre", name_ar="مركز البيانات", kind="datacenter")
        branches = {
            "JED-B01": ("Al-Hamra branch", "فرع الحمراء"), "JED-B07": ("Al-Balad branch", "فرع البلد"),
            "JED-B12": ("Al-Rawdah branch", "فرع الروضة"), "JED-B20": ("Al-Safa branch", "فرع الصفا"),
            "JED-B30": ("Obhur branch", "فرع أبحر"),
        }
        sites = {code: Site(code=code, name_en=en, name_ar=ar, kind="branch") for code, (en, ar) in branches.items()}
        s.add_all([hq, dc, *sites.values()])
        s.flush()
        core = Device(site_id=hq.id or 0, hostname="jed-hq-core01", role="core")
        dist = Device(site_id=dc.id or 0, hostname="jed-dc1-dist01", role="distribution")
        s.add_all([core, dist])
        s.flush()
        out.devices.update({"jed-hq-core01": core.id or 0, "jed-dc1-dist01": dist.id or 0})
        last_ok = _ms(now - dt.timedelta(seconds=30))

        def branch(code: str, host: str, ifname: str, *, expected: str = "jed-hq-core01", **state: object) -> int:
            site = sites[code]
            dev = Device(site_id=site.id or 0, hostname=host, role="router")
            s.add(dev)
            s.flush()
            iface = Interface(device_id=dev.id or 0, name=ifname, oper_status=str(state.get("oper_status", "up")),
                              speed_bps=GBPS)
            s.add(iface)
            s.flush()
            s.add(Uplink(interface_id=iface.id or 0, device_id=dev.id or 0, site_id=site.id or 0, source="lldp",
                         expected_speed_bps=GBPS, expected_speed_source="port_name",
                         expected_neighbor=expected, expected_neighbor_source="first_seen"))
            values: dict[str, object] = {"oper_status": "up", "speed_bps": GBPS, "neighbor": expected,
                                         "poll_status": "ok", "last_ok_ms": last_ok, "ts_ms": last_ok,
                                         "oper_since": now - dt.timedelta(days=3), "in_bps": 2.0e8,
                                         "out_bps": 1.0e8, "util_pct": 20.0, "error_pct": 0.0}
            values.update(state)
            s.add(UplinkState(interface_id=iface.id or 0, **values))  # type: ignore[arg-type]
            s.add(DeviceReach(device_id=dev.id or 0, ts_ms=last_ok, icmp_sent=3, icmp_received=3, icmp_rtt_ms=4.0,
                              snmp_sent=3, snmp_received=3, snmp_rtt_ms=6.0))
            out.devices[host] = dev.id or 0
            out.uplinks[code] = iface.id or 0
            return iface.id or 0

        branch("JED-B01", "jed-b01-rtr01", "GigabitEthernet0/0")
        b07 = branch("JED-B07", "jed-b07-rtr01", "Gi0/1", oper_status="down",
                     oper_since=now - dt.timedelta(minutes=10))
        for hours_ago, status, previous in ((20, "down", "up"), (19, "up", "down")):
            s.add(LinkStatusChange(interface_id=b07, at=now - dt.timedelta(hours=hours_ago), status=status,
                                   previous=previous))
        s.add(LinkStatusChange(interface_id=b07, at=now - dt.timedelta(minutes=10), status="down", previous="up"))
        branch("JED-B12", "jed-b12-sw01", "Gi1/0/24", expected="jed-dc1-dist01", speed_bps=100_000_000,
               neighbor="jed-b13-sw01")
        branch("JED-B20", "jed-b20-rtr01", "Gi0/0", last_ok_ms=_ms(now - dt.timedelta(hours=1)),
               ts_ms=_ms(now - dt.timedelta(hours=1)))
        branch("JED-B30", "jed-b30-rtr01", "Gi0/0", error_pct=1.2, errors_ps=14.0)
        s.commit()

    # In/out traffic with a daily shape, a few errors and discards, every minute.
    store = TelemetryStore(engine)
    samples: list[tuple[int, int, float]] = []
    for code in ("JED-B01", "JED-B30"):
        iface = out.uplinks[code]
        ids = {name: store.series_id(IF_SERIES_KIND, iface, name, SERIES_UNITS[name])
               for name in (S_IN_BPS, S_OUT_BPS, S_ERRORS_PS, S_DISCARDS_PS)}
        out.traffic_points = 0
        when = now - dt.timedelta(hours=TRAFFIC_HOURS)
        while when <= now - dt.timedelta(seconds=TRAFFIC_STEP_S):
            ts = _ms(when)
            phase = math.sin(when.timestamp() / 86400 * 2 * math.pi)
            samples += [(ids[S_IN_BPS], ts, 3.0e8 + 2.0e8 * phase), (ids[S_OUT_BPS], ts, 1.2e8 + 0.6e8 * phase),
                        (ids[S_ERRORS_PS], ts, 0.2 + 0.1 * (when.minute % 3)), (ids[S_DISCARDS_PS], ts, 0.5)]
            out.traffic_points += 1
            when += dt.timedelta(seconds=TRAFFIC_STEP_S)
    store.write(samples)
    store.rollup(_ms(now))
    return out
