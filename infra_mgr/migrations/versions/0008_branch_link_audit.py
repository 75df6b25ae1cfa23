"""branch link audit

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 16:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('device_reach',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('ts_ms', sa.BigInteger(), nullable=False),
    sa.Column('icmp_sent', sa.Integer(), nullable=False),
    sa.Column('icmp_received', sa.Integer(), nullable=False),
    sa.Column('icmp_rtt_ms', sa.Float(), nullable=True),
    sa.Column('snmp_sent', sa.Integer(), nullable=False),
    sa.Column('snmp_received', sa.Integer(), nullable=False),
    sa.Column('snmp_rtt_ms', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('link_status_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interface_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('previous', sa.String(length=16), nullable=False),
    sa.Column('transitions', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['interface_id'], ['interface.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('link_status_change', schema=None) as batch_op:
        batch_op.create_index('ix_link_status_change_if_at', ['interface_id', 'at'], unique=False)

    op.create_table('uplink',
    sa.Column('interface_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('is_uplink', sa.Boolean(), nullable=False),
    sa.Column('manual', sa.Boolean(), nullable=False),
    sa.Column('expected_speed_bps', sa.BigInteger(), nullable=True),
    sa.Column('expected_speed_source', sa.String(length=16), nullable=False),
    sa.Column('expected_neighbor', sa.String(length=253), nullable=False),
    sa.Column('expected_neighbor_source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['interface_id'], ['interface.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('interface_id')
    )
    with op.batch_alter_table('uplink', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_uplink_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_uplink_site_id'), ['site_id'], unique=False)

    op.create_table('uplink_state',
    sa.Column('interface_id', sa.Integer(), nullable=False),
    sa.Column('ts_ms', sa.BigInteger(), nullable=False),
    sa.Column('uptime_cs', sa.BigInteger(), nullable=True),
    sa.Column('counter_bits', sa.Integer(), nullable=False),
    sa.Column('in_octets', sa.BigInteger(), nullable=True),
    sa.Column('out_octets', sa.BigInteger(), nullable=True),
    sa.Column('in_pkts', sa.BigInteger(), nullable=True),
    sa.Column('out_pkts', sa.BigInteger(), nullable=True),
    sa.Column('in_errors', sa.BigInteger(), nullable=True),
    sa.Column('out_errors', sa.BigInteger(), nullable=True),
    sa.Column('in_discards', sa.BigInteger(), nullable=True),
    sa.Column('out_discards', sa.BigInteger(), nullable=True),
    sa.Column('last_change_cs', sa.BigInteger(), nullable=True),
    sa.Column('oper_status', sa.String(length=16), nullable=False),
    sa.Column('oper_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('speed_bps', sa.BigInteger(), nullable=True),
    sa.Column('neighbor', sa.String(length=253), nullable=False),
    sa.Column('in_bps', sa.Float(), nullable=True),
    sa.Column('out_bps', sa.Float(), nullable=True),
    sa.Column('util_pct', sa.Float(), nullable=True),
    sa.Column('errors_ps', sa.Float(), nullable=True),
    sa.Column('discards_ps', sa.Float(), nullable=True),
    sa.Column('error_pct', sa.Float(), nullable=True),
    sa.Column('rx_dbm', sa.Float(), nullable=True),
    sa.Column('tx_dbm', sa.Float(), nullable=True),
    sa.Column('poll_status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=False),
    sa.Column('last_ok_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['interface_id'], ['interface.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('interface_id')
    )


def downgrade() -> None:
    op.drop_table('uplink_state')
    with op.batch_alter_table('uplink', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uplink_site_id'))
        batch_op.drop_index(batch_op.f('ix_uplink_device_id'))

    op.drop_table('uplink')
    with op.batch_alter_table('link_status_change', schema=None) as batch_op:
        batch_op.drop_index('ix_link_status_change_if_at')

    op.drop_table('link_status_change')
    op.drop_table('device_reach')
