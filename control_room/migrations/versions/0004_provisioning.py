"""provisioning records: thefts, events outside the chain of custody, commissioning records

Revision ID: 0004_provisioning
Revises: 0005_operator_review
Create Date: 2026-11-29 00:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from control_room.models import UTCDateTime

revision: str = '0004_provisioning'
down_revision: str | None = '0005_operator_review'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'unit_thefts',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('unit_pk', sa.Integer(), sa.ForeignKey('units.id'), nullable=False, unique=True),
        sa.Column('since', UTCDateTime(), nullable=False),
        sa.Column('reported_at', UTCDateTime(), nullable=False),
        sa.Column('reported_by', sa.String(64), nullable=False),
    )
    op.create_table(
        'event_custody_flags',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('event_pk', sa.Integer(), sa.ForeignKey('events.id'), nullable=False, unique=True),
        sa.Column('reason', sa.String(200), nullable=False),
        sa.Column('flagged_at', UTCDateTime(), nullable=False),
    )
    op.create_table(
        'commissioning_records',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('unit_pk', sa.Integer(), sa.ForeignKey('units.id'), nullable=False, index=True),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('engineer', sa.String(64), nullable=False),
        sa.Column('passed', sa.Boolean(), nullable=False),
        sa.Column('checks', sa.JSON(), nullable=False),
        sa.Column('record_text', sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ('commissioning_records', 'event_custody_flags', 'unit_thefts'):
        op.drop_table(table)
