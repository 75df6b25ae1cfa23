"""Property-based API testing: schemathesis drives every operation of the OpenAPI document.

Three runs, each bounded so the file stays well under two minutes on a small machine:

* stateless, as an admin: every operation with generated parameters and bodies;
* stateful, as an admin: chains that follow the document's links (create → read / change /
  delete / allocate, list → one item), so operations also see ids that exist;
* stateless, as a viewer: the refusals (403) of what the role may not do are declared and shaped.

In every run no request may produce a 5xx, and every answer (errors included) must have a status
the document declares for that operation, its declared content type and a body of its shape.

The same run from the command line, against a running server:
``schemathesis run http://127.0.0.1:8000/api/v1/openapi.json -H "Authorization: Bearer $TOKEN"
--checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
--max-examples 50``
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky, FlakyStrategyDefinition
from schemathesis import GenerationMode
from sqlmodel import Session, select

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import ApiToken, User, UserCreate
from infra_mgr.auth.permissions import MATRIX, Perm, Role
from infra_mgr.auth.service import create_token, create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade, writer
from infra_mgr.inventory.models import Device, Interface, Prefix, Site

_tmp = Path(tempfile.mkdtemp(prefix="infra-mgr-schemathesis-"))
_url = f"sqlite:///{_tmp / 'fuzz.db'}"
upgrade(_url)
_engine = make_engine(_url)
with Session(_engine) as _s:
    _admin = create_user(_s, UserCreate(username="fuzzer", password="fuzzing password", role=Role.admin))
    _viewer = create_user(_s, UserCreate(username="fuzz_viewer", password="fuzzing password", role=Role.viewer))
    _, _admin_token = create_token(_s, _admin, "schemathesis")
    _, VIEWER_TOKEN = create_token(_s, _viewer, "schemathesis")
    _site = Site(code="JED-B01", name_en="Al Balad", name_ar="البلد")
    _s.add(_site)
    _s.flush()
    _dev = Device(site_id=_site.id or 0, hostname="jed-b01-rtr1", management_address="127.20.1.1")
    _s.add(_dev)
    _s.flush()
    _s.add(Interface(device_id=_dev.id or 0, name="Gi0/0"))
    _s.add(Prefix(prefix="10.64.1.0/24", site_id=_site.id))
    _s.commit()
    ADMIN_ID, VIEWER_ID = _admin.id or 0, _viewer.id or 0

# Sign-in throttling is tested on its own; here a generated login must be answered, not locked out,
# however many wrong passwords the fuzzer has already sent.
app = create_app(Settings(data_dir=_tmp, database_url=_url, secret_key="schemathesis-secret",
                          login_max_failures=1_000_000, login_max_failures_per_address=1_000_000), _engine)
_tokens = {ADMIN_ID: _admin_token, VIEWER_ID: VIEWER_TOKEN}

CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance]


def _op_ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


# Links schemathesis does not infer from the document's names and shapes: allocating in a prefix
# just created or read, and opening one item of a list whose items the inference does not follow.
_LINKS: list[tuple[str, str, str, str, str, str]] = [
    # (source path, method, status, target path, method, id expression)
    ("/api/v1/prefixes", "post", "201", "/api/v1/prefixes/{obj_id}/allocate", "post", "$response.body#/id"),
    ("/api/v1/prefixes/{obj_id}", "get", "200", "/api/v1/prefixes/{obj_id}/allocate", "post", "$response.body#/id"),
    ("/api/v1/prefixes", "get", "200", "/api/v1/prefixes/{obj_id}/allocate", "post",
     "$response.body#/results/0/id"),
    ("/api/v1/discovery/runs", "get", "200", "/api/v1/discovery/runs/{obj_id}", "get",
     "$response.body#/results/0/id"),
    ("/api/v1/power/outages", "get", "200", "/api/v1/power/outages/{obj_id}", "get", "$response.body#/results/0/id"),
    ("/api/v1/users", "get", "200", "/api/v1/users/{obj_id}", "patch", "$response.body#/results/0/id"),
    ("/api/v1/auth/tokens", "get", "200", "/api/v1/auth/tokens/{obj_id}", "delete", "$response.body#/0/id"),
]


def _document_with_links() -> dict[str, Any]:
    """The served document plus the links above, each only where both ends exist (a renamed
    route fails loudly here instead of silently dropping a chain)."""
    with TestClient(app) as client:
        doc: dict[str, Any] = client.get("/api/v1/openapi.json").json()
    paths = doc["paths"]
    for src, src_method, status, dst, dst_method, expr in _LINKS:
        assert dst_method in paths[dst], f"{dst_method.upper()} {dst} is not in the document"
        response = paths[src][src_method]["responses"][status]
        response.setdefault("links", {})[f"{dst_method}_{dst.strip('/').replace('/', '_')}"] = {
            "operationRef": _op_ref(dst, dst_method), "parameters": {"obj_id": expr}}
    return doc


schema = schemathesis.openapi.from_dict(_document_with_links())
schema.app = app
schema.location = "/api/v1/openapi.json"

# Running a discovery would send SNMP to whatever addresses the fuzzer invents, a backup run opens
# SSH sessions in the background, and the live stream never ends by design: each is tested
# separately (test_discovery_runs, test_config_api, the power stream tests).
fuzzed = (schema.exclude(path="/api/v1/discovery/run").exclude(path="/api/v1/backup/run")
          .exclude(path="/api/v1/power/stream"))


def _keep_alive(user_id: int, role: Role) -> dict[str, str]:
    """The user's headers, its token and account restored if a generated step took them away.

    The fuzzer may revoke the very token it calls with, deactivate or demote its own account, or
    change its password (which ends its sessions): each is a legitimate operation, and the run must
    go on exercising the API rather than collect 401s for the rest of the scenario."""
    # the audit row of the previous call is written after its answer: take the write lock first
    with Session(writer(_engine)) as s:
        user = s.get(User, user_id)
        assert user is not None
        token_alive = s.exec(select(ApiToken).where(ApiToken.user_id == user_id,
                                                    ApiToken.name == "schemathesis")).first() is not None
        if not user.is_active or user.role != role.value or not token_alive:
            user.is_active, user.role = True, role.value
            s.add(user)
            for old in s.exec(select(ApiToken).where(ApiToken.user_id == user_id)).all():
                s.delete(old)
            _, _tokens[user_id] = create_token(s, user, "schemathesis")
            s.commit()
    return {"Authorization": f"Bearer {_tokens[user_id]}"}


@fuzzed.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call(headers=_keep_alive(ADMIN_ID, Role.admin))
    case.validate_response(response, checks=CHECKS)


class APIWorkflow(fuzzed.as_state_machine()):  # type: ignore[misc]  # class built at runtime
    """Scenarios of linked calls as an admin whose token stays valid throughout.

    Failures are kept as they happen: the database outlives each scenario, so Hypothesis's replay
    of a scenario can meet other data and stop as "flaky" instead of re-raising what it found."""

    failures: list[str] = []
    scenarios = 0
    linked_steps = 0

    def setup(self) -> None:
        type(self).scenarios += 1

    def step(self, input: Any) -> Any:
        if input.transition is not None:
            type(self).linked_steps += 1
        return super().step(input)

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        return {"headers": _keep_alive(ADMIN_ID, Role.admin)}

    def validate_response(self, response: Any, case: schemathesis.Case,
                          additional_checks: Any = None, **kwargs: Any) -> None:
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:
            type(self).failures.append(f"{case.operation.label} -> {response.status_code}: {exc}\n"
                                       f"{case.as_curl_command()}")
            raise


def test_stateful_workflows() -> None:
    # Generation only (no shrinking): a replay would not meet the same database. A run that
    # Hypothesis ends early as flaky is followed by another until enough scenarios ran.
    run_settings = settings(max_examples=25, stateful_step_count=8, deadline=None, phases=[Phase.generate],
                            suppress_health_check=list(HealthCheck))
    for _ in range(4):
        try:
            APIWorkflow.run(settings=run_settings)
        except (Flaky, FlakyStrategyDefinition):
            pass
        except Exception:
            if not APIWorkflow.failures:
                raise
        if APIWorkflow.failures or APIWorkflow.scenarios >= 25:
            break
    assert not APIWorkflow.failures, "\n\n".join(APIWorkflow.failures)
    assert APIWorkflow.scenarios >= 25
    assert APIWorkflow.linked_steps > 0, "no step followed a link: the chains are not exercised"


_VIEWER_PERMS = {p.value for p in MATRIX[Role.viewer]}


def _viewer_refused(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """A valid request to an operation needing a permission the viewer lacks answers 403
    (declared, shaped): never its data, never whether the object exists. An invalid one may be
    refused as invalid (422) or unroutable (405) first; that tells nothing either."""
    needed = case.operation.definition.raw.get("x-permission")
    valid = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if valid and needed and needed not in _VIEWER_PERMS and response.status_code != 403:
        raise AssertionError(f"viewer got {response.status_code} from {case.operation.label} "
                             f"(needs {needed}): expected 403")
    return None


_viewer_refused_check = schemathesis.check(_viewer_refused)


@fuzzed.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_viewer_no_server_errors_and_refusals_conform(case: schemathesis.Case) -> None:
    response = case.call(headers=_keep_alive(VIEWER_ID, Role.viewer))
    case.validate_response(response, checks=[*CHECKS, _viewer_refused_check])


def test_viewer_permission_set_is_what_the_refusal_check_assumes() -> None:
    """The refusal check is only meaningful while the viewer lacks every write permission."""
    assert Perm.inventory_read in MATRIX[Role.viewer]
    assert Perm.sites_write not in MATRIX[Role.viewer] and Perm.users_manage not in MATRIX[Role.viewer]
