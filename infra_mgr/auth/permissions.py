"""The one permission matrix. Routes declare the permission they need; roles grant permissions.

``docs/permissions.md`` is generated from this table (``infra-mgr docs permissions``) and a test
checks the two agree, so the documentation cannot drift from what the code enforces.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    netops = "netops"
    sysadmin = "sysadmin"
    facilities = "facilities"
    viewer = "viewer"


class Perm(StrEnum):
    inventory_read = "inventory.read"
    sites_write = "sites.write"
    devices_write = "devices.write"
    ipam_write = "ipam.write"
    ipam_manage = "ipam.manage"
    credentials_read = "credentials.read"
    credentials_write = "credentials.write"
    events_write = "events.write"
    tokens_own = "tokens.own"
    users_manage = "users.manage"
    audit_read = "audit.read"
    import_write = "import.write"
    discovery_run = "discovery.run"
    power_write = "power.write"
    config_manage = "config.manage"


PERM_DOC: dict[Perm, str] = {
    Perm.inventory_read: ("read sites, devices, interfaces, links, prefixes, IPs, events, history, "
                          "network topology and site health"),
    Perm.sites_write: "create, change and delete sites",
    Perm.devices_write: "create, change and delete devices, interfaces and links",
    Perm.ipam_write: "create prefixes and IP addresses, allocate the next free IP",
    Perm.ipam_manage: ("change and delete prefixes and IP addresses (a prefix that holds addresses only "
                       "with `?cascade=true`, which deletes them too)"),
    Perm.credentials_read: "list credentials (names and non-secret parameters only)",
    Perm.credentials_write: "create, change and delete credentials (secrets are write-only)",
    Perm.events_write: "record events in the event log",
    Perm.tokens_own: "create and revoke one's own API tokens",
    Perm.users_manage: "create users, set roles, deactivate users",
    Perm.audit_read: "read the audit log of every mutation",
    Perm.import_write: "bulk import sites and prefixes",
    Perm.discovery_run: "manage discovery targets and run a discovery",
    Perm.power_write: "configure power devices, the power chain and fuel tanks",
    Perm.config_manage: ("run configuration backups, accept a changed SSH host key, re-check the compliance "
                         "rules (reading configurations needs only `inventory.read`: every stored one is masked)"),
}

_ALL = frozenset(Perm)
MATRIX: dict[Role, frozenset[Perm]] = {
    Role.admin: _ALL,
    Role.netops: frozenset({
        Perm.inventory_read, Perm.sites_write, Perm.devices_write, Perm.ipam_write, Perm.ipam_manage,
        Perm.credentials_read, Perm.credentials_write, Perm.events_write, Perm.tokens_own,
        Perm.import_write, Perm.discovery_run, Perm.config_manage,
    }),
    Role.sysadmin: frozenset({
        Perm.inventory_read, Perm.ipam_write, Perm.credentials_read, Perm.events_write, Perm.tokens_own,
    }),
    Role.facilities: frozenset({Perm.inventory_read, Perm.events_write, Perm.tokens_own, Perm.power_write}),
    Role.viewer: frozenset({Perm.inventory_read, Perm.tokens_own}),
}


def allowed(role: str, perm: Perm) -> bool:
    try:
        return perm in MATRIX[Role(role)]
    except ValueError:
        return False


def matrix_markdown() -> str:
    """The matrix as a Markdown table (the body of ``docs/permissions.md``)."""
    roles = list(Role)
    lines = [
        "| permission | what it allows | " + " | ".join(r.value for r in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for perm in Perm:
        marks = " | ".join("✔" if perm in MATRIX[r] else "·" for r in roles)
        lines.append(f"| `{perm.value}` | {PERM_DOC[perm]} | {marks} |")
    return "\n".join(lines) + "\n"
