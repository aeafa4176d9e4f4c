"""The schema on SQLite and PostgreSQL: migrations up and down, the append-only audit log enforced
by the database, UTC times, password hashes; and the fleet rules (offline after 3 intervals, badges).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from control_room import fleet, migrate
from control_room.config import Settings
from control_room.db import make_engine, session_scope
from control_room.models import AuditLog, Deployment, Site, Unit, User
from tests.control_room import bodies

TABLES = {"councils", "users", "units", "heartbeat_samples", "sites", "deployments", "events", "audit_log",
          "instructions"}


@pytest.fixture
def empty_engine(request, tmp_path):
    """An empty database (no migrations run yet)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    else:
        engine = make_engine(request.getfixturevalue("postgres").create_database(migrated=False))
    yield engine
    engine.dispose()


@pytest.mark.parametrize("empty_engine", ["sqlite", "postgresql"], indirect=True)
def test_migrations_up_down_up(empty_engine):
    assert migrate.current_revision(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    assert TABLES <= set(inspect(empty_engine).get_table_names())
    migrate.upgrade(empty_engine)  # idempotent
    from alembic import command
    cfg = migrate.alembic_config()
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not TABLES & set(inspect(empty_engine).get_table_names())
    migrate.upgrade(empty_engine)
    assert TABLES <= set(inspect(empty_engine).get_table_names())


def test_audit_log_is_append_only_in_the_database(engine, factory):
    user = factory.user()
    with session_scope(engine) as s:
        s.add(AuditLog(user_id=user.id, username=user.username, action="clip_view", item_type="event",
                       item_id="e1", detail={"range": "bytes=0-"}))
    for statement in (update(AuditLog).values(action="nothing"), delete(AuditLog)):
        with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as s:
            s.execute(statement)
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
    columns = "id, at, user_id, username, action, item_type, item_id, detail"
    copy = "SELECT id, at, user_id, username, 'nothing', item_type, item_id, detail FROM audit_log"
    overwrite = (f"INSERT OR REPLACE INTO audit_log ({columns}) {copy}" if engine.dialect.name == "sqlite"
                 else f"INSERT INTO audit_log ({columns}) {copy} ON CONFLICT (id) DO UPDATE SET action = 'x'")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(overwrite))  # SQLite's REPLACE deletes without firing DELETE triggers
    with session_scope(engine) as s:
        rows = s.scalars(select(AuditLog)).all()
    assert [(r.action, r.item_id, r.detail) for r in rows] == [("clip_view", "e1", {"range": "bytes=0-"})]
    assert rows[0].at.tzinfo is not None


def test_times_come_back_as_utc(engine, factory):
    factory.unit()
    bst = datetime(2026, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=1)))  # 13:00 UTC
    with session_scope(engine) as s:
        s.execute(update(Unit).values(last_seen_at=bst))
    with session_scope(engine) as s:
        seen = s.scalar(select(Unit.last_seen_at))
    assert seen == bst and seen.utcoffset() == timedelta(0)
    with pytest.raises(Exception, match="naive"), session_scope(engine) as s:
        s.execute(update(Unit).values(last_seen_at=datetime(2026, 7, 1)))


def test_password_is_hashed_slowly_and_salted(engine, factory):
    a = factory.user("alice", password="same password here")
    b = factory.user("bob", password="same password here")
    assert a.password_hash.startswith("scrypt:") and a.password_hash != b.password_hash
    assert a.check_password("same password here") and not a.check_password("Same password here")
    assert not User(password_hash="").check_password("")


def test_shipped_password_hash_cost_is_werkzeugs_scrypt_default() -> None:
    """The suite hashes cheaply (tests/conftest.py); as shipped, a hash costs N=2**15, r=8, p=1."""
    code = ("from control_room.models import User; u = User(); u.set_password('x' * 12); "
            "print(u.password_hash); assert u.check_password('x' * 12)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.startswith("scrypt:32768:8:1$"), done.stdout


# ---------------------------------------------------------------- fleet rules (pure, no database)
SETTINGS = Settings(heartbeat_interval_s=60, offline_after_intervals=3, secret_key="x" * 32)
NOW = datetime(2026, 11, 28, 13, 5, tzinfo=UTC)


def unit_seen(seconds_ago: float | None, **state_changes) -> Unit:
    state = bodies.heartbeat()
    state.update(state_changes)
    return Unit(unit_id="herts-mcu-001", council_id=1, token_hash="0" * 64, last_state=state,
                last_seen_at=None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago))


@pytest.mark.parametrize("ago,online", [(0, True), (179, True), (180, True), (181, False), (None, False)])
def test_offline_after_three_missed_intervals(ago, online):
    status = fleet.unit_status(unit_seen(ago), NOW, SETTINGS)
    assert status.online is online
    assert ("offline" in [b.key for b in status.badges]) is (ago is not None and not online)


def test_a_healthy_unit_needs_no_attention():
    assert fleet.unit_status(unit_seen(10), NOW, SETTINGS).badges == []


@pytest.mark.parametrize("changes,badge", [
    ({"camera": {"state": "stalled"}}, "camera"),
    ({"recording": {"state": "error"}}, "recording"),
    ({"disk": {"oldest_footage_at": "2026-11-25T13:00:00Z", "retention_days": 31}}, "disk"),
    ({"disk": {"events_lost": 2}}, "events_lost"),
    ({"uploads": {"pending": 40, "oldest_pending_age_s": 7200}}, "backlog"),
    ({"data": {"used_bytes": 7_900_000_000, "budget_bytes": 8_000_000_000}}, "data_budget"),
    ({"clock": {"synced": False}}, "clock"),
    ({"modem": {"signal_percent": 12}}, "signal"),
    ({"system": {"cpu_temp_c": 81.0}}, "temperature"),
    ({"system": {"undervoltage": True}}, "power"),
])
def test_attention_badges(changes, badge):
    assert [b.key for b in fleet.unit_status(unit_seen(10, **changes), NOW, SETTINGS).badges] == [badge]


def test_revoked_and_never_seen_units():
    revoked = unit_seen(10)
    revoked.revoked_at = NOW
    assert [b.key for b in fleet.unit_status(revoked, NOW, SETTINGS).badges] == ["revoked"]
    assert fleet.unit_status(revoked, NOW, SETTINGS).online is False
    assert [b.key for b in fleet.unit_status(unit_seen(None), NOW, SETTINGS).badges] == ["never_seen"]


def test_deployment_flags():
    site = Site(name="High St north", lat=51.705, lon=-0.278, council_id=1)
    unit = unit_seen(10)
    unit.lat, unit.lon = 51.705, -0.278
    dep = Deployment(site=site, purpose="ASB", dpia_ref="D-1", signage_confirmed=True,
                     start=NOW - timedelta(days=40), review_date=date(2026, 12, 1), planned_end=None)
    assert fleet.deployment_flags(dep, unit, NOW.date()) == []
    unit.lat = 51.715  # ~1.1 km north
    dep.review_date = date(2026, 11, 1)
    dep.planned_end = NOW - timedelta(days=1)
    keys = [b.key for b in fleet.deployment_flags(dep, unit, NOW.date())]
    assert keys == ["review_overdue", "past_planned_end", "far_from_site"]
    assert 1000 < fleet.distance_m(51.705, -0.278, 51.715, -0.278) < 1200


def test_prune_deletes_only_old_samples_and_long_acked_instructions(engine, factory, monkeypatch):
    from control_room import maintenance
    from control_room.models import HeartbeatSample, Instruction, InstructionType, LoginFailure

    monkeypatch.setattr(maintenance, "BATCH", 3)  # several batches
    factory.unit()
    with session_scope(engine) as s:
        unit = s.scalar(select(Unit))
        for days in range(20):  # one sample a day for 20 days
            at = NOW - timedelta(days=days, minutes=1)
            s.add(HeartbeatSample(unit_pk=unit.id, at=at, signal_percent=days))
        for i, acked in enumerate([None, NOW - timedelta(days=40), NOW - timedelta(days=2)]):
            s.add(Instruction(instruction_id=f"i{i}", unit_pk=unit.id, type=InstructionType.PING,
                              acked_at=acked))
        s.add(LoginFailure(at=NOW - timedelta(days=8), username="x", ip="192.0.2.1"))
        s.add(LoginFailure(at=NOW - timedelta(days=1), username="x", ip="192.0.2.1"))
    assert maintenance.prune(engine, NOW, sample_days=7) == {
        "samples": 13, "instructions": 1, "login_failures": 1, "stale_heartbeats": 0, "sessions": 0}
    with session_scope(engine) as s:
        kept = sorted(s.scalars(select(HeartbeatSample.signal_percent)))
        left = sorted(s.scalars(select(Instruction.instruction_id)))
    assert kept == list(range(7)) and left == ["i0", "i2"]
