"""Typed settings for the control room: read once from the environment, passed to create_app.

Secrets (SECRET_KEY, S3 read credentials) come from the environment or a 0600 file and are held
as SecretStr so they never appear in logs or reprs.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from control_room.errors import SettingsError

__all__ = ["Settings", "SettingsError", "load_settings", "secret_key"]

ENV_PREFIX = "CONTROL_ROOM_"
GB_AND_NI = "49.8,-8.7,60.9,1.8"  # Great Britain and Northern Ireland with their coasts


def _parse_box(text: str) -> tuple[float, float, float, float] | None:
    if not text.strip():
        return None
    try:
        south, west, north, east = (float(part) for part in text.split(","))
    except ValueError:
        raise ValueError("must be four numbers: south,west,north,east") from None
    if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
        raise ValueError("must be south,west,north,east with south < north and west < east")
    return south, west, north, east


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_dir: Path = Field(Path("instance"), description="SQLite file and generated secret key")
    database_url: str = Field("", description="SQLAlchemy URL; empty = SQLite file in instance_dir")
    secret_key: SecretStr | None = Field(None, description="session signing key; else secret_key_file")
    secret_key_file: Path | None = Field(None, description="0600 file holding the key; default instance/")
    heartbeat_interval_s: float = Field(60.0, ge=5, le=3600, description="units' status interval")
    offline_after_intervals: int = Field(3, ge=1, le=100, description="missed heartbeats = offline")
    sample_interval_s: float = Field(300.0, ge=0, le=86400, description="min gap of chart samples")
    sample_retention_days: int = Field(90, ge=1, le=3650, description="`prune` deletes older samples")
    max_body_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024, description="unit API body limit")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint for playback; None = AWS")
    s3_region: str = "eu-west-2"
    s3_bucket: str = Field("cctv-footage", description="footage bucket")
    s3_prefix: str = Field("units", description="units write under <prefix>/<unit-id>/ (agent upload.prefix)")
    s3_access_key_id: SecretStr | None = Field(None, description="read-only playback credentials")
    s3_secret_access_key: SecretStr | None = None
    presign_ttl_s: int = Field(300, ge=10, le=3600, description="lifetime of playback URLs")
    db_pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL pool per process")
    # web pages (control_room.web)
    secure_cookies: bool = Field(False, description="session cookie only over HTTPS (set behind TLS)")
    gps_far_m: float = Field(200.0, ge=10, le=100_000, description="flag a unit this far from its site")
    web_poll_s: float = Field(5.0, ge=0.2, le=300, description="how often pages fetch new state")
    map_tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png", max_length=500, pattern=r"^(https?://[^\s\"'<>]+)?$",
        description="street map tiles ({z}/{x}/{y}; a council's own server); empty = the offline map only",
    )
    map_tile_attribution: str = Field("© OpenStreetMap contributors", max_length=200,
                                      description="credit shown on the map, as the tile licence requires")
    map_max_zoom: int = Field(19, ge=1, le=22, description="deepest zoom the tile server offers")
    # sessions (control_room.sessions): sized for a 12-hour shift plus handover
    session_idle_minutes: float = Field(60.0, ge=1, le=24 * 60, description="no request this long ends it")
    session_lifetime_hours: float = Field(13.0, ge=0.1, le=72, description="ends this long after log-in")
    # log-in (control_room.hashing, control_room.login_limits)
    login_hash_workers: int = Field(1, ge=1, le=16, description="threads hashing passwords (scrypt)")
    login_hash_pending: int = Field(2, ge=0, le=64, description="log-ins waiting for a hash; more = 503")
    # evidence and disclosure (control_room.evidence)
    evidence_dir: Path | None = Field(None, description="evidence packages; default instance_dir/evidence")
    evidence_signing_key_file: Path | None = Field(None, description="Ed25519 PEM; default in instance_dir")
    evidence_org: str = Field("", max_length=200, description="producing organisation in packages")
    evidence_max_range_h: float = Field(24.0, gt=0, le=24 * 31, description="longest time-range request")
    share_default_days: int = Field(7, ge=1, le=90, description="share link lifetime by default")
    share_max_days: int = Field(14, ge=1, le=90, description="longest share link lifetime allowed")
    share_code_attempts: int = Field(5, ge=1, le=20, description="wrong codes before a link locks")
    evidence_bucket: str = Field("", description="also keep packages in this bucket; links then hand out "
                                 "presigned URLs (<= 5 min, minted per click); empty = served by the service")
    evidence_prefix: str = Field("evidence", description="key prefix of packages in evidence_bucket")
    smtp_host: str = Field("", description="SMTP server for access codes; empty = cannot send")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_starttls: bool = Field(True, description="STARTTLS with certificate verification")
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_from: str = Field("cctv-evidence@localhost", description="sender of access-code emails")
    # records (control_room.gps): a fix outside this box, at 0,0 or faster than a vehicle is flagged
    gps_bbox: str = Field(GB_AND_NI, description="south,west,north,east in degrees; empty = anywhere")
    gps_max_speed_kmh: float = Field(200.0, ge=10, le=2000, description="fastest believable move")

    @field_validator("gps_bbox")
    @classmethod
    def _check_bbox(cls, value: str) -> str:
        _parse_box(value)
        return value

    def gps_box(self) -> tuple[float, float, float, float] | None:
        return _parse_box(self.gps_bbox)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.instance_dir / 'control_room.db').resolve()}"

    def offline_after_s(self) -> float:
        return self.heartbeat_interval_s * self.offline_after_intervals


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from CONTROL_ROOM_* variables (e.g. CONTROL_ROOM_DATABASE_URL), then overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if env.get(key) not in (None, ""):
            values[name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        raise SettingsError(f"setting {ENV_PREFIX}{where.upper()}: {err['msg']}") from None


def secret_key(settings: Settings, create: bool = True) -> str:
    """The session key: from settings, else a 0600 file (created with a random key if allowed)."""
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        if len(value) < 16:
            raise SettingsError("setting CONTROL_ROOM_SECRET_KEY: must be at least 16 characters")
        return value
    path = settings.secret_key_file or settings.instance_dir / "secret_key"
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise SettingsError(f"secret key file {path} is readable by others (mode {mode:o}); chmod 600")
        value = path.read_text(encoding="utf-8").strip()
        if len(value) < 16:
            raise SettingsError(f"secret key file {path}: key must be at least 16 characters")
        return value
    if not create:
        raise SettingsError(f"no secret key: set CONTROL_ROOM_SECRET_KEY or create {path} (mode 600)")
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return value
