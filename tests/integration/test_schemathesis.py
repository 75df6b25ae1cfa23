"""Property-based API testing: schemathesis drives every operation of the OpenAPI document,
authenticated as an admin: no generated request may produce a 5xx, and every answer (errors
included) must have a status the document declares for that operation and a body of its declared
shape.

The same run from the command line, against a running server:
``schemathesis run http://127.0.0.1:8000/api/v1/openapi.json -H "Authorization: Bearer $TOKEN"
--checks not_a_server_error,status_code_conformance,response_schema_conformance --max-examples 50``
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.permissions import Role
from infra_mgr.auth.service import create_token, create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.models import Device, Interface, Prefix, Site

_tmp = Path(tempfile.mkdtemp(prefix="infra-mgr-schemathesis-"))
_url = f"sqlite:///{_tmp / 'fuzz.db'}"
upgrade(_url)
_engine = make_engine(_url)
with Session(_engine) as _s:
    _user = create_user(_s, UserCreate(username="fuzzer", password="fuzzing password", role=Role.admin))
    _, TOKEN = create_token(_s, _user, "schemathesis")
    _site = Site(code="JED-B01", name_en="Al Balad", name_ar="البلد")
    _s.add(_site)
    _s.flush()
    _dev = Device(site_id=_site.id or 0, hostname="jed-b01-rtr1", management_address="127.20.1.1")
    _s.add(_dev)
    _s.flush()
    _s.add(Interface(device_id=_dev.id or 0, name="Gi0/0"))
    _s.add(Prefix(prefix="10.64.1.0/24", site_id=_site.id))
    _s.commit()

app = create_app(Settings(data_dir=_tmp, database_url=_url, secret_key="schemathesis-secret"), _engine)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# Running a discovery would send SNMP to whatever addresses the fuzzer invents, and the live stream
# never ends by design: both are tested separately.
@schema.exclude(path="/api/v1/discovery/run").exclude(path="/api/v1/power/stream").parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call(headers=AUTH)
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error,
                                             schemathesis.checks.status_code_conformance,
                                             schemathesis.checks.content_type_conformance,
                                             schemathesis.checks.response_schema_conformance])
