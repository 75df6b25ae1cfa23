"""Power configuration from YAML: devices, chain nodes, edges and fuel tanks, matched by name.

All-or-nothing like the inventory import: every entry is validated first and every problem is
reported (``file: devices[2].source: reason``); a file with a problem writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, select

from infra_mgr.inventory.importer import ImportFailed
from infra_mgr.inventory.models import Credential, Site
from infra_mgr.power.models import (
    FuelTank,
    FuelTankCreate,
    PowerDevice,
    PowerDeviceCreate,
    PowerEdge,
    PowerNode,
    PowerNodeCreate,
)
from infra_mgr.power.sources import store_source


def _validate(schema: type[BaseModel], data: dict[str, Any], where: str, problems: list[str]) -> BaseModel | None:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            problems.append(f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        return None


def import_power_yaml(session: Session, path: Path, master: bytes | None = None) -> dict[str, int]:
    """Apply a power YAML file; a source URL's secret is stored encrypted under ``master`` (the
    configured master key when not given), the URL itself masked."""
    if master is None:
        from infra_mgr.config import get_settings

        master = get_settings().secret()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ImportFailed([f"{path}: file: {exc}"]) from exc
    if not isinstance(doc, dict):
        raise ImportFailed([f"{path}: file: expected a mapping of devices, nodes, edges, fuel_tanks"])
    problems: list[str] = []
    sites = {s.code: s.id for s in session.exec(select(Site)).all()}
    creds = {c.name: c.id for c in session.exec(select(Credential)).all()}

    def ref(entry: dict[str, Any], key: str, table: dict[str, Any], field: str, where: str) -> None:
        if key in entry:
            name = entry.pop(key)
            if name not in table:
                problems.append(f"{path}: {where}.{key}: no {key} named {name!r}")
            else:
                entry[field] = table[name]

    devices: list[tuple[str, PowerDeviceCreate]] = []
    for i, raw in enumerate(doc.get("devices") or []):
        entry, where = dict(raw), f"devices[{i}]"
        ref(entry, "site", sites, "site_id", where)
        ref(entry, "credential", creds, "credential_id", where)
        model = _validate(PowerDeviceCreate, entry, f"{path}: {where}", problems)
        if isinstance(model, PowerDeviceCreate):
            devices.append((where, model))
    if problems:
        raise ImportFailed(problems)
    counts = {"devices": 0, "nodes": 0, "edges": 0, "fuel tanks": 0}
    by_name = {d.name: d for d in session.exec(select(PowerDevice)).all()}
    for _where, model in devices:
        obj = by_name.get(model.name)
        values = model.model_dump(mode="json")
        values["source"], values["source_secret"] = store_source(master, model.source,
                                                                 obj.source_secret if obj else "")
        if obj is None:
            obj = PowerDevice(**values)
            by_name[model.name] = obj
        else:
            for k, v in values.items():
                setattr(obj, k, v)
        session.add(obj)
        counts["devices"] += 1
    session.flush()
    dev_ids = {n: d.id for n, d in by_name.items()}

    nodes: list[PowerNodeCreate] = []
    for i, raw in enumerate(doc.get("nodes") or []):
        entry, where = dict(raw), f"nodes[{i}]"
        ref(entry, "site", sites, "site_id", where)
        ref(entry, "device", dev_ids, "power_device_id", where)
        model = _validate(PowerNodeCreate, entry, f"{path}: {where}", problems)
        if isinstance(model, PowerNodeCreate):
            nodes.append(model)
    tanks: list[FuelTankCreate] = []
    for i, raw in enumerate(doc.get("fuel_tanks") or []):
        entry, where = dict(raw), f"fuel_tanks[{i}]"
        ref(entry, "device", dev_ids, "power_device_id", where)
        model = _validate(FuelTankCreate, entry, f"{path}: {where}", problems)
        if isinstance(model, FuelTankCreate):
            tanks.append(model)
    if problems:
        session.rollback()
        raise ImportFailed(problems)
    node_by_name = {n.name: n for n in session.exec(select(PowerNode)).all()}
    for model in nodes:
        node = node_by_name.get(model.name) or PowerNode(name=model.name, kind=model.kind.value)
        for k, v in model.model_dump(mode="json").items():
            setattr(node, k, v)
        session.add(node)
        node_by_name[model.name] = node
        counts["nodes"] += 1
    tank_by_name = {t.name: t for t in session.exec(select(FuelTank)).all()}
    for tmodel in tanks:
        tobj = tank_by_name.get(tmodel.name) or FuelTank(**tmodel.model_dump(mode="json"))
        for k, v in tmodel.model_dump(mode="json").items():
            setattr(tobj, k, v)
        session.add(tobj)
        counts["fuel tanks"] += 1
    session.flush()
    existing = {(e.from_node_id, e.to_node_id) for e in session.exec(select(PowerEdge)).all()}
    for i, pair in enumerate(doc.get("edges") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in node_by_name for p in pair)):
            problems.append(f"{path}: edges[{i}]: expected [from node, to node] naming defined nodes")
            continue
        a, b = (node_by_name[p].id for p in pair)
        if (a, b) not in existing:
            session.add(PowerEdge(from_node_id=a or 0, to_node_id=b or 0))
            existing.add((a or 0, b or 0))
        counts["edges"] += 1
    if problems:
        session.rollback()
        raise ImportFailed(problems)
    session.flush()
    return counts
