"""evidence: disclosure requests, packages, share links, police stores, deliveries, holds, the
disclosure register (append-only, like audit_log), per-council evidence roles, unit signing keys

Revision ID: 0010_evidence
Revises: 0003
Create Date: 2026-11-29 00:40:02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from control_room.models import UTCDateTime

revision: str = "0010_evidence"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_role_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("council_id", sa.Integer(), nullable=False),
        sa.Column("permission", sa.String(length=32), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["council_id"],
            ["councils.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("council_id", "permission", name="uq_evidence_role_grants"),
    )
    op.create_table(
        "police_stores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("force", sa.String(length=200), nullable=False),
        sa.Column("council_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("endpoint_url", sa.String(length=500), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=63), nullable=False),
        sa.Column("prefix", sa.String(length=200), nullable=False),
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("secret_file", sa.String(length=500), nullable=False),
        sa.Column("ca_bundle", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["council_id"],
            ["councils.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "disclosure_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("council_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("officer_name", sa.String(length=200), nullable=False),
        sa.Column("officer_force", sa.String(length=200), nullable=False),
        sa.Column("officer_collar", sa.String(length=32), nullable=False),
        sa.Column("officer_email", sa.String(length=254), nullable=False),
        sa.Column("authorising_name", sa.String(length=200), nullable=False),
        sa.Column("authorising_rank", sa.String(length=64), nullable=False),
        sa.Column("crime_ref", sa.String(length=100), nullable=False),
        sa.Column(
            "lawful_basis",
            sa.Enum(
                "dpa_sch2_para2",
                "part3_law_enforcement",
                "court_order",
                "subject_access",
                "other",
                name="lawful_basis",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("lawful_basis_other", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("unit_pk", sa.Integer(), nullable=True),
        sa.Column("range_start", UTCDateTime(), nullable=True),
        sa.Column("range_end", UTCDateTime(), nullable=True),
        sa.Column("event_ids", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "received",
                "approved",
                "refused",
                "packaged",
                name="request_state",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("instruction_ids", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["council_id"],
            ["councils.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_pk"],
            ["units.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    with op.batch_alter_table("disclosure_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_disclosure_requests_council_created", ["council_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_disclosure_requests_crime_ref"), ["crime_ref"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_disclosure_requests_officer_force"), ["officer_force"], unique=False
        )

    op.create_table(
        "unit_signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_pk", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_pk"],
            ["units.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit_pk"),
    )
    op.create_table(
        "disclosure_register",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("council_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=False),
        sa.Column("recipient_org", sa.String(length=200), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["council_id"],
            ["councils.id"],
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["disclosure_requests.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("disclosure_register", schema=None) as batch_op:
        batch_op.create_index("ix_disclosure_register_council_at", ["council_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_disclosure_register_request_id"), ["request_id"], unique=False)

    op.create_table(
        "evidence_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("council_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("unit_pk", sa.Integer(), nullable=True),
        sa.Column("start", UTCDateTime(), nullable=True),
        sa.Column("end", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("review_date", sa.Date(), nullable=False),
        sa.Column("objects", sa.JSON(), nullable=False),
        sa.Column("instruction_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("released_by_id", sa.Integer(), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["council_id"],
            ["councils.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["released_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["disclosure_requests.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_pk"],
            ["units.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evidence_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_holds_council_id"), ["council_id"], unique=False)

    op.create_table(
        "evidence_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("exhibit_ref", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("tagmanifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("master_files", sa.Integer(), nullable=False),
        sa.Column("objects", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["disclosure_requests.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("exhibit_ref"),
    )
    with op.batch_alter_table("evidence_packages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_packages_request_id"), ["request_id"], unique=False)

    op.create_table(
        "evidence_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("objects", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["evidence_packages.id"],
        ),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["police_stores.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evidence_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_deliveries_package_id"), ["package_id"], unique=False)

    op.create_table(
        "share_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=False),
        sa.Column("recipient_org", sa.String(length=200), nullable=False),
        sa.Column("recipient_email", sa.String(length=254), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_sent_at", UTCDateTime(), nullable=True),
        sa.Column("failed_codes", sa.Integer(), nullable=False),
        sa.Column("locked_at", UTCDateTime(), nullable=True),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("receipt_at", UTCDateTime(), nullable=True),
        sa.Column("receipt", sa.JSON(), nullable=False),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["evidence_packages.id"],
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_share_links_package_id"), ["package_id"], unique=False)

    _triggers()


def downgrade() -> None:
    _drop_triggers()
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_links_package_id"))

    op.drop_table("share_links")
    with op.batch_alter_table("evidence_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_deliveries_package_id"))

    op.drop_table("evidence_deliveries")
    with op.batch_alter_table("evidence_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_packages_request_id"))

    op.drop_table("evidence_packages")
    with op.batch_alter_table("evidence_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_holds_council_id"))

    op.drop_table("evidence_holds")
    with op.batch_alter_table("disclosure_register", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disclosure_register_request_id"))
        batch_op.drop_index("ix_disclosure_register_council_at")

    op.drop_table("disclosure_register")
    op.drop_table("unit_signing_keys")
    with op.batch_alter_table("disclosure_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disclosure_requests_officer_force"))
        batch_op.drop_index(batch_op.f("ix_disclosure_requests_crime_ref"))
        batch_op.drop_index("ix_disclosure_requests_council_created")

    op.drop_table("disclosure_requests")
    op.drop_table("police_stores")
    op.drop_table("evidence_role_grants")


SQLITE_TRIGGERS = [
    "CREATE TRIGGER disclosure_register_no_update BEFORE UPDATE ON disclosure_register "
    "BEGIN SELECT RAISE(ABORT, 'disclosure_register is append-only'); END",
    "CREATE TRIGGER disclosure_register_no_delete BEFORE DELETE ON disclosure_register "
    "BEGIN SELECT RAISE(ABORT, 'disclosure_register is append-only'); END",
]
POSTGRESQL_TRIGGERS = [
    "CREATE FUNCTION disclosure_register_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'disclosure_register is append-only'; END $$",
    "CREATE TRIGGER disclosure_register_no_change BEFORE UPDATE OR DELETE ON disclosure_register "
    "FOR EACH ROW EXECUTE FUNCTION disclosure_register_refuse()",
]


def _triggers() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS disclosure_register_no_update")
        op.execute("DROP TRIGGER IF EXISTS disclosure_register_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS disclosure_register_no_change ON disclosure_register")
        op.execute("DROP FUNCTION IF EXISTS disclosure_register_refuse()")
