"""power device source secrets kept encrypted

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:05:00

A power device's source URL may carry a community or a password. From here on the ``source``
column holds the URL masked (``snmp://***@host``, ``nut://user:***@host/ups``) and
``source_secret`` the masked part, encrypted under the master key. Existing rows are converted;
the key comes from the caller (``db.upgrade(..., master=...)``) or the configured settings, and
is only asked for when a row holds a secret.
"""
from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _master_key() -> Callable[[], bytes]:
    cached: list[bytes] = []

    def get() -> bytes:
        if not cached:
            given = context.config.attributes.get("master_key")
            if given is None:
                from infra_mgr.config import get_settings

                given = get_settings().secret()
            cached.append(given)
        return cached[0]

    return get


def _devices() -> sa.TableClause:
    return sa.table("power_device", sa.column("id", sa.Integer), sa.column("source", sa.String),
                    sa.column("source_secret", sa.String))


def upgrade() -> None:
    from infra_mgr.power.sources import seal
    from infra_mgr.url_secrets import MASK, split_source

    with op.batch_alter_table("power_device") as batch:
        batch.add_column(sa.Column("source_secret", sa.String(length=1024), nullable=False, server_default=""))
    conn = op.get_bind()
    table = _devices()
    key = _master_key()
    for dev_id, source in conn.execute(sa.select(table.c.id, table.c.source)).all():
        masked, secret = split_source(source)
        if secret is None or secret == MASK:
            continue
        conn.execute(table.update().where(table.c.id == dev_id).values(source=masked,
                                                                       source_secret=seal(key(), secret)))


def downgrade() -> None:
    from infra_mgr.power.sources import full_source

    conn = op.get_bind()
    table = _devices()
    key = _master_key()
    rows = conn.execute(sa.select(table.c.id, table.c.source, table.c.source_secret)
                        .where(table.c.source_secret != "")).all()
    for dev_id, source, sealed in rows:
        conn.execute(table.update().where(table.c.id == dev_id).values(source=full_source(key(), source, sealed)))
    with op.batch_alter_table("power_device") as batch:
        batch.drop_column("source_secret")
