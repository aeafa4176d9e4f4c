"""operator workflow and officer reviews: events.review_state/by/at, event_actions, deployment_reviews,
deployments.updated_at

Revision ID: 0005_operator_review
Revises: 0010_evidence
Create Date: 2026-11-29 00:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from control_room.models import UTCDateTime

revision: str = '0005_operator_review'
down_revision: str | None = '0010_evidence'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_state', sa.Enum('new', 'acknowledged', 'reviewed',
                                      name='review_state', native_enum=False, length=32),
                                      nullable=False, server_default='new'))
        batch_op.add_column(sa.Column('review_by', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('review_at', UTCDateTime(), nullable=True))
        batch_op.create_index('ix_events_council_review', ['council_id', 'review_state'], unique=False)
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated_at', UTCDateTime(), nullable=True))
    op.create_table('event_actions',
    sa.Column('id', BIGINT_ID, nullable=False),
    sa.Column('event_pk', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['event_pk'], ['events.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_event_actions_event', 'event_actions', ['event_pk', 'id'], unique=False)
    op.create_table('deployment_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('next_review_date', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_deployment_reviews_deployment_id', 'deployment_reviews', ['deployment_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_deployment_reviews_deployment_id', table_name='deployment_reviews')
    op.drop_table('deployment_reviews')
    op.drop_index('ix_event_actions_event', table_name='event_actions')
    op.drop_table('event_actions')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_council_review')
        batch_op.drop_column('review_at')
        batch_op.drop_column('review_by')
        batch_op.drop_column('review_state')
