"""Typed unit configuration: one TOML file per unit, validated once at start and passed in.

Unknown keys, wrong types, out-of-range and non-finite values, and numbers given as strings are
refused with one message naming the key.
Secrets (S3 secret key, control-room token) may come from environment variables instead of the
file, so they never have to sit in a world-readable file; SecretStr keeps them out of logs.
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from agent.errors import ConfigError
from protocol.ids import UNIT_ID

Point = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]

# Environment variables that override secrets in the file: (section, key) -> variable name.
SECRET_ENV = {
    ("upload", "secret_access_key"): "CCTV_S3_SECRET_ACCESS_KEY",
    ("upload", "access_key_id"): "CCTV_S3_ACCESS_KEY_ID",
    ("status", "token"): "CCTV_STATUS_TOKEN",
}


def _numbers_only(annotation: Any) -> bool:
    """Is every value this annotation admits a number (int/float, or lists/tuples of them)?"""
    if annotation in (int, float):
        return True
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _numbers_only(args[0])
    if origin in (list, tuple):
        return bool(args) and all(_numbers_only(a) for a in args if a is not Ellipsis)
    return False


def _number_problem(value: Any, numbers_only: bool) -> str | None:
    """Why a raw (TOML) value cannot stand: a non-finite number anywhere, or a string or boolean
    where only numbers are allowed (pydantic would quietly turn "100" into 100)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, not {value}"
    if numbers_only and isinstance(value, str | bool):
        return f"must be a number, not {type(value).__name__} {value!r}"
    if isinstance(value, list | tuple):
        return next((p for v in value if (p := _number_problem(v, numbers_only))), None)
    return None


class Section(BaseModel):
    # Python's re for `pattern=`: pydantic-core's Rust regex built the site rule (Unicode \w,
    # {0,199}) into about 18 MB of automaton, for a check made once at start.
    model_config = ConfigDict(extra="forbid", frozen=True, regex_engine="python-re")

    @field_validator("*", mode="before")
    @classmethod
    def _plain_finite_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and (problem := _number_problem(value, _numbers_only(field.annotation))):
            raise ValueError(problem)
        return value


class UnitConfig(Section):
    id: str = Field(pattern=UNIT_ID.pattern, description="unit id, lower case, used in S3 keys")
    site: str = Field(
        "",
        pattern=r"^(?:[\w][\w .,'\u2019&()/#+:!?@\u2013\u2014-]{0,199})?$",
        description="site label (letters, digits, spaces, ordinary punctuation; the control room's "
        "display-name rule); the control room owns deployments",
    )
    data_dir: Path = Field(Path("/var/lib/cctv-agent"), description="recordings, events, outbox, agent.db")


class CameraConfig(Section):
    source: Literal["picamera2", "opencv", "file"] = "picamera2"
    device: str = Field("", description="opencv: /dev/videoN, index or rtsp:// URL; file: path to a video")
    width: int = Field(1280, ge=160, le=3840)
    height: int = Field(720, ge=120, le=2160)
    fps: float = Field(10.0, gt=0, le=60)
    analysis_width: int = Field(320, ge=64, le=1280)
    analysis_height: int = Field(240, ge=48, le=960)
    loop: bool = Field(False, description="file source: start again at the end")
    pace: Literal["realtime", "fast"] = Field("realtime", description="file: real rate or flat out")
    stall_timeout_s: float = Field(20.0, gt=0, le=600)
    reopen_backoff_max_s: float = Field(60.0, gt=0, le=3600)


class RecordingConfig(Section):
    segment_seconds: float = Field(10.0, ge=2, le=300)
    bitrate_kbps: int = Field(1500, ge=100, le=20000)
    keyframe_interval_s: float = Field(2.0, gt=0, le=10)


class Zone(Section):
    name: str = ""
    polygon: list[Point] = Field(min_length=3)


class MotionConfig(Section):
    analysis_fps: float = Field(5.0, gt=0, le=30)
    sensitivity: float = Field(0.5, ge=0.0, le=1.0, description="0 = least, 1 = most sensitive")
    hysteresis_frames: int = Field(
        2, ge=1, le=50, description="consecutive analysed frames with (or without) motion to switch"
    )
    include_zones: list[Zone] = Field(default_factory=list, description="empty = whole frame")
    exclude_zones: list[Zone] = Field(default_factory=list)
    work_height: int = Field(120, ge=48, le=480, description="analysis frames are shrunk to this height")
    background_tau_s: float = Field(
        8.0, ge=0.5, le=600, description="time constant of the running-average background"
    )
    moving_tau_factor: float = Field(
        6.0, ge=1, le=100, description="pixels in motion join the background this many times slower"
    )
    static_tau_s: float = Field(
        1.0, gt=0, le=60, description="still lighting changes (a light switched on) join the background"
    )
    persistence_margin: float = Field(
        0.1, ge=0, le=1, description="motion must recur within this distance (fraction of the frame)"
    )
    calibration_s: float = Field(
        2.0, ge=0, le=60, description="after start or a global light change: relearn, report nothing"
    )
    calibration_tau_s: float = Field(
        0.5, gt=0, le=30, description="background time constant while calibrating"
    )
    global_change_fraction: float = Field(
        0.5, gt=0.05, le=1.0, description="more of the area changing at once = lighting: recalibrate"
    )
    contrast_alpha: float = Field(
        0.05, gt=0, le=1, description="smoothing of the 4th/96th percentile contrast stretch per frame"
    )
    slow_window_s: float = Field(
        8.0, ge=0, le=60, description="slow movers: compare with the scene this long ago (0 = off)"
    )


class PrivacyConfig(Section):
    masks: list[Zone] = Field(default_factory=list, description="blanked in recordings and snapshots")


class EventsConfig(Section):
    pre_roll_s: float = Field(5.0, ge=0, le=60)
    post_roll_s: float = Field(10.0, ge=0, le=120)
    max_clip_s: float = Field(60.0, ge=5, le=600)


class RetentionConfig(Section):
    max_age_days: float = Field(31.0, gt=0, le=366)
    min_free_percent: float = Field(10.0, ge=1, le=90)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def https_only(v: str) -> str:
    """TLS is never optional on the wire: plain http only to this machine (tests, a local proxy).

    The host is judged as a URL parser sees it: "http://localhost:80@example.org/" goes to
    example.org, so user info (and a backslash, which parsers read differently) is refused."""
    if not v or v.startswith("https://"):
        return v
    parts = urlsplit(v)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or "@" in parts.netloc or "\\" in v:
        raise ValueError("must be an https:// URL (plain http only to 127.0.0.1/localhost)")
    return v


class UploadConfig(Section):
    enabled: bool = True
    endpoint_url: str | None = Field(None, description="None = AWS; else https://minio.example:9000")
    region: str = "eu-west-2"
    bucket: str = ""
    prefix: str = "units"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    ca_bundle: FilePath | None = Field(None, description="extra CA bundle (must exist); TLS always verified")
    multipart_threshold_mb: float = Field(8.0, ge=5, le=5000)
    part_size_mb: float = Field(
        8.0, ge=5, le=5000, description="largest part; parts follow the measured link (5 MiB on slow links)"
    )
    bandwidth_limit_kbps: float = Field(0.0, ge=0, description="0 = unlimited")
    monthly_budget_mb: float = Field(8000.0, ge=0, description="clips wait past this; 0 = unlimited")
    budget_reset_day: int = Field(1, ge=1, le=28)
    signing_key: FilePath | None = Field(None, description="Ed25519 private key (PEM) for manifests")
    timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="connect timeout, answer timeout of calls without a body, and the stall time of bodies: "
        "one is retried after nothing moved this long beyond its bytes' time at the measured link rate",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_https(cls, v: str | None) -> str | None:
        return https_only(v) if v else v


class StatusConfig(Section):
    enabled: bool = True
    url: str = Field("", description="control room base URL, https://...")
    token: SecretStr | None = None
    interval_s: float = Field(60.0, ge=5, le=3600)
    timeout_s: float = Field(10.0, gt=0, le=120)
    ca_bundle: FilePath | None = None  # a missing file is refused at load, not at every request
    config_version: str = Field("", max_length=64, description="set by Ansible; reported in heartbeats")
    gpsd: str = Field("127.0.0.1:2947", description="gpsd host:port; '' = no GPS")
    modem: bool = Field(True, description="ask ModemManager (mmcli) for the 4G modem state")

    @field_validator("url")
    @classmethod
    def _https_only(cls, v: str) -> str:
        return https_only(v)


class Config(Section):
    unit: UnitConfig
    camera: CameraConfig = CameraConfig()
    recording: RecordingConfig = RecordingConfig()
    motion: MotionConfig = MotionConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    events: EventsConfig = EventsConfig()
    retention: RetentionConfig = RetentionConfig()
    upload: UploadConfig = UploadConfig()
    status: StatusConfig = StatusConfig()

    @field_validator("upload")
    @classmethod
    def _parts_fit(cls, v: UploadConfig) -> UploadConfig:
        if v.part_size_mb > v.multipart_threshold_mb * 10:
            raise ValueError("part_size_mb is out of proportion to multipart_threshold_mb")
        return v


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{source}: {key}: {msg}"


def _apply_secret_env(data: dict, env: dict[str, str]) -> dict:
    for (section, key), var in SECRET_ENV.items():
        if env.get(var):
            data.setdefault(section, {})
            if isinstance(data[section], dict):
                data[section][key] = env[var]
    return data


def parse_config(data: dict, source: str = "<config>", env: dict[str, str] | None = None) -> Config:
    """Validate a config mapping (as read from TOML); raise ConfigError naming the bad key."""
    data = _apply_secret_env(dict(data), dict(os.environ) if env is None else env)
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


# Secrets that must not sit in a file every local user can read (the key id alone is not secret).
FILE_SECRETS = (("upload", "secret_access_key"), ("status", "token"))


def _refuse_world_readable_secrets(path: Path, data: dict, mode: int) -> None:
    if not mode & stat.S_IROTH:
        return
    for section, key in FILE_SECRETS:
        if isinstance(data.get(section), dict) and data[section].get(key):
            raise ConfigError(
                f"{path}: {section}.{key}: secret in a world-readable file (mode {stat.S_IMODE(mode):o}); "
                f"chmod 640 the file or set {SECRET_ENV[(section, key)]} in the environment instead"
            )


def load_config(path: Path | str, env: dict[str, str] | None = None) -> Config:
    """Read and validate a unit's TOML file; raise ConfigError with one clear line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror or err}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    _refuse_world_readable_secrets(path, data, mode)
    return parse_config(data, str(path), env)
