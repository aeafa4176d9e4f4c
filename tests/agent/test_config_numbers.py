"""Config numbers: non-finite values (TOML inf/nan) and numbers written as strings are refused at load,
in every section, with one line naming the key; a command exits 2 and creates nothing."""

from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_config
from agent.errors import ConfigError

UNIT = '[unit]\nid = "herts-mcu-001"\ndata_dir = "{data}"\n'


def write(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(UNIT.replace("{data}", str(tmp_path / "data")) + extra)
    return p


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("[upload]\nmonthly_budget_mb = inf\n", "upload.monthly_budget_mb: must be a finite number, not inf"),
        (
            '[upload]\nmonthly_budget_mb = "100"\n',
            "upload.monthly_budget_mb: must be a number, not str '100'",
        ),
        ("[upload]\ntimeout_s = nan\n", "upload.timeout_s: must be a finite number"),
        ("[upload]\nbandwidth_limit_kbps = -inf\n", "upload.bandwidth_limit_kbps: must be a finite number"),
        ('[upload]\nbudget_reset_day = "3"\n', "upload.budget_reset_day: must be a number"),
        ('[camera]\nfps = "10"\n', "camera.fps: must be a number"),
        ("[recording]\nbitrate_kbps = true\n", "recording.bitrate_kbps: must be a number, not bool"),
        ("[retention]\nmax_age_days = inf\n", "retention.max_age_days: must be a finite number"),
        ('[status]\ninterval_s = "60"\n', "status.interval_s: must be a number"),
        ("[motion]\nsensitivity = nan\n", "motion.sensitivity: must be a finite number"),
        (
            '[privacy]\nmasks = [{polygon = [[0, 0], ["0.5", 1], [1, 1]]}]\n',
            "privacy.masks.0.polygon: must be a number",
        ),
        (
            "[privacy]\nmasks = [{polygon = [[0, 0], [nan, 1], [1, 1]]}]\n",
            "privacy.masks.0.polygon: must be a finite",
        ),
    ],
)
def test_non_finite_and_quoted_numbers_are_refused_naming_the_key(
    tmp_path: Path, extra: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, extra), env={})
    assert needle in str(exc.value)
    assert len(str(exc.value).splitlines()) == 1


def test_strings_stay_strings_and_integers_stay_good_floats(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, '[camera]\nsource = "file"\ndevice = "0"\nfps = 10\n[upload]\nregion = "inf"\n'),
        env={},
    )
    assert cfg.camera.device == "0" and cfg.camera.fps == 10.0 and cfg.upload.region == "inf"


@pytest.mark.parametrize("command", ["run", "uploads", "status"])
def test_a_command_exits_2_with_one_line_and_creates_nothing(tmp_path: Path, capsys, command: str) -> None:
    path = write(tmp_path, "[upload]\nmonthly_budget_mb = inf\n")
    rc = main([command, "--config", str(path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.splitlines() == [err] and "upload.monthly_budget_mb" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()
