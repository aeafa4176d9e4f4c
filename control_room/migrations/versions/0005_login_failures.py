"""login_failures: failed and throttled log-ins, read by the per-address, per-name and per-device limits

Revision ID: 0005_login_failures
Revises: 0004_records
Create Date: 2026-11-29 01:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from control_room.models import UTCDateTime

revision: str = '0005_login_failures'
down_revision: str | None = '0004_records'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'login_failures',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('device', sa.String(length=32), nullable=True),
        sa.Column('throttled', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_login_failures_at', 'login_failures', ['at'])
    op.create_index('ix_login_failures_username_at', 'login_failures', ['username', 'at'])
    op.create_index('ix_login_failures_ip_at', 'login_failures', ['ip', 'at'])
    op.create_index('ix_login_failures_device_at', 'login_failures', ['device', 'at'])


def downgrade() -> None:
    op.drop_table('login_failures')
