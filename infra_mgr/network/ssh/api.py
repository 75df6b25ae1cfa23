"""Configuration backup routes (``/api/v1/configs``, ``/compliance``, ``/backup``, ``/ssh``): each
device's backup state, its versions, one version's text, the diff of two versions, regex search
across the latest configurations, compliance findings, backup runs and SSH host keys.

Every answer is a read view of :mod:`infra_mgr.network.ssh.views` — the same models the dashboard
renders and ``infra-mgr backup|config|ssh … --json`` prints. Reading needs ``inventory.read``
(every stored configuration is masked, so a viewer sees masked text only); acting — running a
backup, accepting a changed host key, re-checking the rules — needs ``config.manage``.
A device in a path is its hostname or its id.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlalchemy import Engine
from sqlmodel import Session

from infra_mgr.api.deps import DbSession, perm_extra, require
from infra_mgr.api.pagination import Cursor, Limit, ObjId, Page, decode_cursor, encode_cursor
from infra_mgr.auth.permissions import Perm
from infra_mgr.common import ListPage
from infra_mgr.errors import Invalid, NotFound, ServiceError
from infra_mgr.events.models import Severity
from infra_mgr.network.ssh import views

log = logging.getLogger("infra_mgr.network.ssh")
router = APIRouter(tags=["config backup"])
R = Perm.inventory_read
M = Perm.config_manage
DeviceRef = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[^\x00-\x1f\x7f/]+$",
                                description="Device hostname or id")]
VersionNo = Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number (1 = first stored)")]
SiteQ = Annotated[str | None, Query(max_length=32, description="Site code, e.g. JED-B07")]
STARTED_WAIT_S = 10.0  # how long POST /backup/run waits for the run's row before answering


class Unavailable(ServiceError):
    status_code = 503


def _check_site(session: Session, site: str | None) -> str | None:
    """The site's code as stored (any case given), or NotFound naming ``site``."""
    from infra_mgr.inventory.views import site_by_code

    if site is None:
        return None
    found = site_by_code(session, site)
    if found is None:
        raise NotFound(f"no site with code {site!r}", field="site")
    return found.code


@router.get("/configs", response_model=ListPage[views.DeviceBackupRow], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="Every device's configuration backup state, by hostname",
            responses={404: {"description": "No site with that code"}})
def get_configs(session: DbSession, site: SiteQ = None,
                status: Annotated[str | None, Query(pattern="^(never|ok|failed)$",
                                                    description="never | ok | failed")] = None,
                page: Annotated[int, Query(ge=1, le=10**6)] = 1,
                size: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    _check_site(session, site)
    return views.backups(session, site_code=site, status=status, page=page, size=size)


@router.get("/configs/search", response_model=views.SearchResult, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R),
            summary="Lines matching a regular expression in every device's latest configuration",
            responses={404: {"description": "No site with that code"},
                       422: {"description": "The pattern does not compile, is too long or too slow"}})
def get_search(session: DbSession,
               pattern: Annotated[str, Query(min_length=1, max_length=views.MAX_PATTERN,
                                             description="Python regular expression, matched line by line")],
               site: SiteQ = None,
               context: Annotated[int, Query(ge=0, le=20, description="Lines shown around each match")] = 0,
               limit: Annotated[int, Query(ge=1, le=5000, description="Matching lines returned at most")] = 1000
               ) -> Any:
    _check_site(session, site)
    return views.search(session, pattern, site_code=site, context=context, limit=limit)


@router.get("/configs/{device}/versions", response_model=views.VersionList, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="A device's stored configuration versions, newest first (no text)",
            responses={404: {"description": "No such device"}})
def get_versions(device: DeviceRef, session: DbSession, page: Annotated[int, Query(ge=1, le=10**6)] = 1,
                 size: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
    return views.versions(session, device, page=page, size=size)


@router.get("/configs/{device}/versions/{number}", response_model=views.VersionText,
            dependencies=[Depends(require(R))], openapi_extra=perm_extra(R),
            summary="One stored configuration (masked)", responses={404: {"description": "No such device or version"}})
def get_version(device: DeviceRef, number: VersionNo, session: DbSession) -> Any:
    return views.version_text(session, device, number)


@router.get("/configs/{device}/latest", response_model=views.VersionText, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="A device's latest stored configuration (masked)",
            responses={404: {"description": "No such device, or nothing stored yet"}})
def get_latest(device: DeviceRef, session: DbSession) -> Any:
    return views.version_text(session, device, None)


@router.get("/configs/{device}/diff", response_model=views.ConfigDiff, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R),
            summary="Version a against version b, unified and side by side (default: the latest against the one "
                    "before)", responses={404: {"description": "No such device or version"},
                                          422: {"description": "A version is too large to diff"}})
def get_diff(device: DeviceRef, session: DbSession,
             a: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Old version number")] = None,
             b: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="New version number")] = None,
             context: Annotated[int, Query(ge=0, le=50, description="Unchanged lines kept around a change")] = 3
             ) -> Any:
    return views.diff(session, device, a, b, context=context)


@router.get("/compliance/findings", response_model=list[views.FindingRow], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="Compliance rules the latest configurations break, worst first",
            responses={404: {"description": "No such site or device"}})
def get_findings(session: DbSession, site: SiteQ = None,
                 device: Annotated[str | None, Query(min_length=1, max_length=253,
                                                     description="Device hostname or id")] = None,
                 severity: Annotated[Severity | None, Query(description="Only findings of this severity")] = None
                 ) -> Any:
    _check_site(session, site)
    return views.findings(session, site_code=site, device=device,
                          severity=severity.value if severity is not None else None)


@router.get("/compliance/sites", response_model=list[views.SiteCompliance], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R),
            summary="Per site: devices with a stored configuration, how many break no rule, findings by severity")
def get_site_compliance(session: DbSession) -> Any:
    return views.site_compliance(session)


@router.post("/compliance/check", response_model=views.ComplianceSummary, dependencies=[Depends(require(M))],
             openapi_extra=perm_extra(M),
             summary="Re-evaluate the compliance rules on every latest configuration (after the rules changed)")
def post_check(request: Request) -> Any:
    from infra_mgr.network.ssh.backup import check_all

    engine: Engine = request.app.state.engine
    done = check_all(engine)  # its own write sessions: this route holds no lock of its own meanwhile
    with Session(engine) as session:
        return views.ComplianceSummary(devices=done.devices, findings=done.findings, opened=done.opened,
                                       resolved=done.resolved, sites=views.site_compliance(session))


@router.get("/backup/runs", response_model=Page[views.BackupRunRow], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="Backup runs, newest first, with each failed device and its reason")
def get_runs(session: DbSession, limit: Limit = 50, cursor: Cursor = None) -> Any:
    rows = views.runs(session, limit=limit + 1, before=decode_cursor(cursor))
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {"results": rows[:limit], "next": nxt}


@router.get("/backup/runs/{obj_id}", response_model=views.BackupRunRow, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="One backup run (follow a run started with POST /backup/run)",
            responses={404: {"description": "No such run"}})
def get_run(obj_id: ObjId, session: DbSession) -> Any:
    return views.run(session, obj_id, field="obj_id")


class BackupRequest(BaseModel):
    """What to back up: one site, one device, or (neither given) every device."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = PField(default=None, min_length=1, max_length=32, description="Site code")
    device: str | None = PField(default=None, min_length=1, max_length=253, description="Device hostname or id")


class AcceptKey(BaseModel):
    """The fingerprint the engineer checked: only that exact key is trusted (a newer refused key
    replaces the offered one, and must be checked in its turn)."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str = PField(min_length=8, max_length=100, pattern=r"^SHA256:[A-Za-z0-9+/]+=*$",
                              description="The offered key's fingerprint, e.g. SHA256:…")


def start_backup(engine: Engine, master: bytes, *, site: str | None, device: str | None, actor: str,
                 trigger: str = "manual", wait_s: float = STARTED_WAIT_S) -> views.BackupStarted:
    """Check the scope, start the run in the background and answer with where to follow it.
    Unknown site or device → NotFound; a run that did not start → Unavailable."""
    hostname = None
    with Session(engine) as session:
        site = _check_site(session, site)
        if device is not None:
            dev, dev_site = views.resolve_device(session, device)
            hostname = dev.hostname
            if site is not None and dev_site.code.lower() != site.lower():
                raise Invalid(f"device {dev.hostname!r} is not at site {site!r}", field="device")
    from infra_mgr.network.ssh.backup import start_in_background

    run_id = start_in_background(engine, master, site_code=site, device=hostname, trigger=trigger, actor=actor,
                                 wait_s=wait_s)
    if run_id is None:
        raise Unavailable("the backup did not start; see the server log")
    scope = f"device {hostname}" if hostname else f"site {site}" if site else "all devices"
    return views.BackupStarted(run_id=run_id, url=f"/api/v1/backup/runs/{run_id}", scope=scope)


@router.post("/backup/run", response_model=views.BackupStarted, status_code=202,
             dependencies=[Depends(require(M))], openapi_extra=perm_extra(M),
             summary="Start a configuration backup (a site, a device or everything); follow it at the run's URL",
             responses={404: {"description": "No such site or device"},
                        503: {"description": "The backup could not start"}})
def post_run(data: BackupRequest, request: Request, session: DbSession) -> Any:
    session.commit()  # the caller's check may hold SQLite's write lock (a session cookie): the run needs it
    return start_backup(request.app.state.engine, request.app.state.master_key, site=data.site,
                        device=data.device, actor=request.state.principal.username)


@router.get("/ssh/host-keys", response_model=list[views.HostKeyRow], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="Recorded SSH host keys; pending: a different key was refused")
def get_host_keys(session: DbSession,
                  pending: Annotated[bool, Query(description="Only keys with a refused different key")] = False
                  ) -> Any:
    return views.host_keys(session, pending_only=pending)


@router.post("/ssh/host-keys/{obj_id}/accept", response_model=views.HostKeyRow,
             dependencies=[Depends(require(M))], openapi_extra=perm_extra(M),
             summary="Trust the different key a device offered (the next backup uses it)",
             responses={404: {"description": "No such host key"},
                        409: {"description": "No different key is waiting, or it is not the one given"}})
def post_accept(obj_id: ObjId, data: AcceptKey, request: Request, session: DbSession) -> Any:
    from infra_mgr.network.ssh.hostkeys import accept

    views.host_key(session, obj_id, field="obj_id")
    accept(session, obj_id, request.state.principal.username, data.fingerprint)
    session.flush()
    return views.host_key(session, obj_id, field="obj_id")
