"""Config loading: valid files load, every kind of bad input gives one clear error naming the key."""

from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_config, parse_config
from agent.errors import ConfigError

GOOD = """
[unit]
id = "herts-mcu-001"
data_dir = "{data}"

[camera]
source = "file"
device = "clip.mp4"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(text.replace("{data}", str(tmp_path / "data")))
    return p


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert cfg.unit.id == "herts-mcu-001"
    assert cfg.camera.source == "file"
    assert cfg.events.pre_roll_s == 5.0
    assert cfg.retention.max_age_days == 31.0


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("[camera]\nfsp = 3\n", "camera.fsp: unknown key"),
        ("[motion]\nsensitivity = 7\n", "motion.sensitivity"),
        ("[recording]\nsegment_seconds = 'ten'\n", "recording.segment_seconds"),
        ("[events]\npre_roll_s = -1\n", "events.pre_roll_s"),
        ("[privacy]\nmasks = [{polygon = [[0, 0], [1, 0]]}]\n", "privacy.masks.0.polygon"),
        ("[bogus]\nx = 1\n", "bogus: unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, extra: str, needle: str) -> None:
    text = GOOD.replace('[camera]\nsource = "file"\ndevice = "clip.mp4"\n', "") + extra
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    assert needle in str(exc.value)
    assert str(tmp_path / "agent.toml") in str(exc.value)


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[unit\nid="))


def test_secrets_from_environment_are_hidden() -> None:
    cfg = parse_config(
        {"unit": {"id": "herts-mcu-001"}},
        env={"CCTV_S3_SECRET_ACCESS_KEY": "s3cr3t-value", "CCTV_STATUS_TOKEN": "tok-value"},
    )
    assert cfg.upload.secret_access_key is not None
    assert cfg.upload.secret_access_key.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(cfg) and "tok-value" not in str(cfg.model_dump())


def test_command_with_config_typo_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD + "fsp = 3\n")
    rc = main(["status", "--config", str(path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("site", ["High St <script>", 'Car park "A"', "x; DROP TABLE", "a\x07b"])
def test_site_label_refused_at_load_like_the_control_room_does(site: str) -> None:
    from control_room.names import DISPLAY_NAME

    assert not DISPLAY_NAME.fullmatch(site)
    with pytest.raises(ConfigError, match="unit.site"):
        parse_config({"unit": {"id": "herts-mcu-001", "site": site}}, env={})


@pytest.mark.parametrize("site", ["", "High St north (car park)", "St Albans: Market Place #2"])
def test_ordinary_site_labels_load_and_pass_the_control_room_rule(site: str) -> None:
    from control_room.names import DISPLAY_NAME

    assert parse_config({"unit": {"id": "herts-mcu-001", "site": site}}, env={}).unit.site == site
    assert site == "" or DISPLAY_NAME.fullmatch(site)


def test_secret_in_world_readable_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '\n[status]\nurl = "https://cr.example"\ntoken = "unit-token-123"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert "status.token: secret in a world-readable file (mode 644)" in str(exc.value)
    assert "unit-token-123" not in str(exc.value)
    path.chmod(0o640)
    cfg = load_config(path, env={})
    assert cfg.status.token is not None and cfg.status.token.get_secret_value() == "unit-token-123"


def test_world_readable_file_without_secrets_loads(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    path.chmod(0o644)
    assert load_config(path, env={}).unit.id == "herts-mcu-001"


@pytest.mark.parametrize("url", ["http://localhost:443@cr.example.org/", "http://127.0.0.1:8080@cr.example.org"])
def test_status_url_cannot_smuggle_a_remote_host_past_the_loopback_exception(url: str) -> None:
    # the bearer token would go to cr.example.org over plain http
    with pytest.raises(ConfigError, match="status.url: .*https://"):
        parse_config({"unit": {"id": "herts-mcu-001"}, "status": {"url": url}}, env={})


@pytest.mark.parametrize(("section", "key"), [("upload", "ca_bundle"), ("status", "ca_bundle"),
                                              ("upload", "signing_key")])
def test_a_missing_ca_bundle_or_key_file_is_refused_at_load(tmp_path: Path, section: str, key: str) -> None:
    """Not found later at every request (heartbeats: a traceback a minute; uploads: retried forever)."""
    missing = tmp_path / "missing.pem"
    raw = {"unit": {"id": "herts-mcu-001"}, section: {key: str(missing)}}
    with pytest.raises(ConfigError, match=f"{section}.{key}: "):
        parse_config(raw, env={})
    missing.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    assert getattr(getattr(parse_config(raw, env={}), section), key) == missing
