"""Point a database at the running lab: discovery credentials and seeds, power devices and chain.

The lab's peers listen on ports chosen at start, so this configuration is written from the lab's
state file each time (``infra-mgr lab configure``; ``make demo`` does it). It goes through the same
services an operator uses — credentials are encrypted, every change keeps its history — and it is
idempotent: objects are matched by name.

The discovery credentials deliberately leave out the community of the city's wrong-community
branch router, so a discovery reports it by name as "answers, but no credential works".
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from infra_mgr.inventory.credentials import CredentialCreate, build
from infra_mgr.inventory.models import Credential, CredentialKind, Site
from infra_mgr.lab.city import RunningCity
from infra_mgr.lab.power_peers import ModbusEndpoint, NutEndpoint, SnmpUpsAgents
from infra_mgr.lab.power_scenario import PLANT, UPS_PROFILES
from infra_mgr.lab.supervisor import Lab
from infra_mgr.network.models import DiscoveryTarget, TargetRole
from infra_mgr.power.config import import_power_yaml

CITY_ALLOW = ("127.1.0.0/16", "127.2.0.0/16")
DC_SITE = "JED-DC"


def _credential(session: Session, master: bytes, data: CredentialCreate) -> Credential:
    """Create or refresh a credential by name (its secret and parameters replaced)."""
    fresh = build(master, data)
    cred = session.exec(select(Credential).where(Credential.name == data.name)).first()
    if cred is None:
        session.add(fresh)
        session.flush()
        return fresh
    cred.kind, cred.username, cred.params = fresh.kind, fresh.username, fresh.params
    cred.secret_ciphertext, cred.description = fresh.secret_ciphertext, fresh.description
    session.add(cred)
    session.flush()
    return cred


def configure_discovery(session: Session, master: bytes, city: RunningCity) -> dict[str, Any]:
    """Credentials to try (v2c ``public``, then the SNMPv3 user) and a seed at the HQ core."""
    v3 = next(d["snmp"] for d in city.devices if d["snmp"]["version"] == "3")
    _credential(session, master, CredentialCreate(
        name="lab-v2c-public", kind=CredentialKind.snmp_v2c, community="public", port=city.port,
        description="the lab city's read-only community", priority=10))
    _credential(session, master, CredentialCreate(
        name="lab-v3-noc", kind=CredentialKind.snmp_v3, username=v3["user"], auth_proto=v3["auth_proto"],
        auth_key=v3["auth_key"], priv_proto=v3["priv_proto"], priv_key=v3["priv_key"], port=city.port,
        description="the lab city's SNMPv3 user", priority=20))
    core = city.device("jed-hq-core1")
    hq = session.exec(select(Site).where(Site.code == core["site"])).first()
    wanted = [(f"{core['address']}/32", TargetRole.seed, hq.id if hq else None, "HQ core switch")]
    wanted += [(cidr, TargetRole.allow, None, "lab city loopback range") for cidr in CITY_ALLOW]
    existing = {(t.cidr, t.role) for t in session.exec(select(DiscoveryTarget)).all()}
    for cidr, role, site_id, description in wanted:
        if (cidr, role.value) not in existing:
            session.add(DiscoveryTarget(cidr=cidr, role=role.value, site_id=site_id, description=description))
    session.flush()
    return {"seed": core["address"], "port": city.port, "allow": list(CITY_ALLOW)}


def configure_branch_seeds(session: Session, city: RunningCity) -> list[str]:
    """A seed at every branch router, as a NOC lists its branch gateways: a branch whose WAN link is
    down cannot be reached by a crawl from headquarters (no LLDP crosses a dead link), yet its
    router still answers on its management address — and the link audit must say the link is down,
    not that the branch is unknown."""
    sites = {site.code: site.id for site in session.exec(select(Site)).all()}
    existing = {(t.cidr, t.role) for t in session.exec(select(DiscoveryTarget)).all()}
    added = []
    for device in city.devices:
        if device["role"] != "wan-router":
            continue
        cidr = f"{device['address']}/32"
        if (cidr, TargetRole.seed.value) not in existing:
            session.add(DiscoveryTarget(cidr=cidr, role=TargetRole.seed.value, site_id=sites.get(device["site"]),
                                        description=f"{device['hostname']}: branch gateway"))
            added.append(device["hostname"])
    session.flush()
    return added


def power_yaml(lab: Lab) -> dict[str, Any]:
    """The data centre's power devices, chain and fuel tanks as they run in this lab: capacities
    are the simulated plant's (:mod:`infra_mgr.lab.power_scenario`), and the chain is wired as it
    runs there (DRUPS on the intake, static UPSs behind the ATS), IT power taken at the UPS outputs."""
    ups_kw = {name: u.capacity_w / 1000.0 for name, u in UPS_PROFILES.items()}
    rec = {name: lab.record(name) for name in ("nut", "modbus-dse", "modbus-drups", "modbus-meter", "snmp-ups")}
    devices: list[dict[str, Any]] = []
    if rec["nut"]:
        nut = NutEndpoint.from_record(rec["nut"])
        devices.append({"name": "dc-ups1", "kind": "ups", "source": f"nut://{nut.host}:{nut.port}/{nut.ups}",
                        "credential": "lab-nut-monitor", "capacity_kw": ups_kw["dc-ups1"]})
    if rec["snmp-ups"]:
        ups = SnmpUpsAgents.from_record(rec["snmp-ups"])
        devices.append({"name": "dc-ups2", "kind": "ups", "source": f"snmp://{ups.apc.host}:{ups.apc.port}",
                        "credential": "lab-ups-snmp", "capacity_kw": ups_kw["dc-ups2"]})
        devices.append({"name": "dc-ups3", "kind": "ups", "source": f"snmp://{ups.rfc1628.host}:{ups.rfc1628.port}",
                        "credential": "lab-ups-snmp", "capacity_kw": ups_kw["dc-ups3"]})
    if rec["modbus-drups"]:
        m = ModbusEndpoint.from_record(rec["modbus-drups"])
        devices.append({"name": "dc-drups1", "kind": "drups", "capacity_kw": PLANT.drups_rated_kw,
                        "source": f"modbus://{m.host}:{m.port}/{m.unit}?map=drups-eurodiesel"})
    if rec["modbus-dse"]:
        m = ModbusEndpoint.from_record(rec["modbus-dse"])
        devices.append({"name": "dc-gen1", "kind": "genset", "capacity_kw": PLANT.genset_rated_kw, "critical": True,
                        "source": f"modbus://{m.host}:{m.port}/{m.unit}?map=dse-gencomm"})
    if rec["modbus-meter"]:
        m = ModbusEndpoint.from_record(rec["modbus-meter"])
        facility = m.units.get("meter-facility", m.unit)
        it = m.units.get("meter-it", m.unit + 1)
        devices.append({"name": "dc-intake-meter", "kind": "meter",
                        "source": f"modbus://{m.host}:{m.port}/{facility}?map=power-meter"})
        devices.append({"name": "dc-it-meter", "kind": "meter",
                        "source": f"modbus://{m.host}:{m.port}/{it}?map=power-meter"})
    for d in devices:
        d.setdefault("site", DC_SITE)
        d.setdefault("poll_interval_s", 1.0)
    names = {d["name"] for d in devices}
    nodes: list[dict[str, Any]] = [
        {"name": "utility-feed-a", "kind": "utility", "site": DC_SITE, "capacity_kw": 1500},
        {"name": "intake-meter", "kind": "meter", "site": DC_SITE, "device": "dc-intake-meter", "pue_role": "facility"},
        {"name": "ats-1", "kind": "ats", "site": DC_SITE, "capacity_kw": 1500},
        {"name": "genset-1", "kind": "genset", "site": DC_SITE, "device": "dc-gen1",
         "capacity_kw": PLANT.genset_rated_kw},
        {"name": "drups-1", "kind": "drups", "site": DC_SITE, "device": "dc-drups1",
         "capacity_kw": PLANT.drups_rated_kw, "pue_role": "it", "it_category": 1},
        *({"name": f"ups-{i}", "kind": "ups", "site": DC_SITE, "device": f"dc-ups{i}",
           "capacity_kw": ups_kw[f"dc-ups{i}"], "pue_role": "it", "it_category": 1} for i in (1, 2, 3)),
        {"name": "it-meter", "kind": "meter", "site": DC_SITE, "device": "dc-it-meter"},
        {"name": "panel-a", "kind": "panel", "site": DC_SITE, "capacity_kw": 400},
        {"name": "panel-b", "kind": "panel", "site": DC_SITE, "capacity_kw": 400},
        {"name": "pdu-a1", "kind": "pdu", "site": DC_SITE, "capacity_kw": 22},
        {"name": "pdu-b1", "kind": "pdu", "site": DC_SITE, "capacity_kw": 22},
        {"name": "rack-c01", "kind": "rack", "site": DC_SITE, "capacity_kw": 15},
    ]
    nodes = [n for n in nodes if "device" not in n or n["device"] in names]
    present = {n["name"] for n in nodes}
    edges = [[a, b] for a, b in (
        ("utility-feed-a", "intake-meter"), ("intake-meter", "drups-1"), ("intake-meter", "ats-1"),
        ("genset-1", "ats-1"), ("ats-1", "ups-1"), ("ats-1", "ups-2"), ("ats-1", "ups-3"), ("drups-1", "it-meter"),
        ("ups-1", "it-meter"), ("ups-2", "it-meter"), ("ups-3", "it-meter"), ("it-meter", "panel-a"),
        ("it-meter", "panel-b"), ("panel-a", "pdu-a1"), ("panel-b", "pdu-b1"),
        ("pdu-a1", "rack-c01"), ("pdu-b1", "rack-c01"),
    ) if a in present and b in present]
    tanks = []
    if "dc-drups1" in names:
        tanks.append({"name": "drups-day-tank", "device": "dc-drups1", "capacity_l": 1000, "rated_kw": 500,
                      "level_reading": "fuel.day.level", "curve": {"25": 42, "50": 70, "75": 100, "100": 135}})
    if "dc-gen1" in names:
        tanks.append({"name": "genset-tank", "device": "dc-gen1", "capacity_l": 2000, "rated_kw": 500,
                      "level_reading": "fuel.level", "curve": {"25": 42, "50": 70, "75": 100, "100": 135}})
    return {"devices": devices, "nodes": nodes, "edges": edges, "fuel_tanks": tanks}


def configure_power(session: Session, master: bytes, lab: Lab) -> dict[str, int]:
    """Power devices of the lab data centre (with their credentials), its chain and fuel tanks."""
    if nut_record := lab.record("nut"):
        nut = NutEndpoint.from_record(nut_record)
        _credential(session, master, CredentialCreate(
            name="lab-nut-monitor", kind=CredentialKind.nut, username=nut.user, password=nut.password,
            description="NUT upsd monitor user of the lab", discovery=False))
    if ups_record := lab.record("snmp-ups"):
        ups = SnmpUpsAgents.from_record(ups_record)
        _credential(session, master, CredentialCreate(
            name="lab-ups-snmp", kind=CredentialKind.snmp_v2c, community=ups.apc.community, port=ups.apc.port,
            description="the lab UPS agents' community", discovery=False))
    doc = power_yaml(lab)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh, allow_unicode=True)
        path = Path(fh.name)
    try:
        return import_power_yaml(session, path, master)
    finally:
        path.unlink(missing_ok=True)
