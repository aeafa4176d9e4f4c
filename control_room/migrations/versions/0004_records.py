"""records that cannot be rewritten: stale heartbeats kept as history, implausible GPS flagged,
events linked to the control room's deployment at event time

Revision ID: 0004_records
Revises: 0004_provisioning
Create Date: 2026-11-29 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from control_room.models import UTCDateTime

revision: str = '0004_records'
down_revision: str | None = '0004_provisioning'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'stale_heartbeats',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('unit_pk', sa.Integer(), nullable=False),
        sa.Column('received_at', UTCDateTime(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=True),
        sa.Column('boot_id', sa.String(length=64), nullable=True),
        sa.Column('sent_at', UTCDateTime(), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('state', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['unit_pk'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_stale_heartbeats_unit_received', 'stale_heartbeats', ['unit_pk', 'received_at'])
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gps_flag', sa.String(length=200), nullable=True))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deployment_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_events_deployment_id', ['deployment_id'], unique=False)
        batch_op.create_foreign_key('fk_events_deployment_id', 'deployments', ['deployment_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint('fk_events_deployment_id', type_='foreignkey')
        batch_op.drop_index('ix_events_deployment_id')
        batch_op.drop_column('deployment_id')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('gps_flag')
    op.drop_index('ix_stale_heartbeats_unit_received', table_name='stale_heartbeats')
    op.drop_table('stale_heartbeats')
