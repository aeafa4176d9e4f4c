"""Bad input to `cctv-provision unit add`: duplicate id, unknown council, storage or control room
unreachable, a wrong vault password, a failure after the first steps: one line on stderr, exit 2,
and nothing half-created (checked in IAM, in the control room and in the inventory).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.provisioning.conftest import Store, cr_units, snapshot_tree
from tests.upload.conftest import free_port

UNIT = "herts-mcu-009"


def state(store: Store, control_room: Any, inventory: Path) -> tuple[Any, ...]:
    return store.unit_users(), cr_units(control_room), snapshot_tree(inventory)


def refused(result: Any, *words: str) -> None:
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cctv-provision: "), result.err
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in result.err


@pytest.fixture
def existing(cli: Any) -> None:
    assert cli("unit", "add", "herts-mcu-001", "--council", "herts").code == 0


def test_duplicate_unit_id(cli: Any, existing: None, store: Store, control_room: Any,
                           inventory: Path) -> None:
    before = state(store, control_room, inventory)
    refused(cli("unit", "add", "herts-mcu-001", "--council", "herts"), "already exists")
    assert state(store, control_room, inventory) == before


def test_duplicate_in_the_control_room_only(cli: Any, existing: None, store: Store, control_room: Any,
                                            inventory: Path) -> None:
    """Made by hand with `cctv-control-room create-unit`: caught before the storage user is made."""
    from control_room import provision
    from control_room.db import get_engine, session_scope

    with session_scope(get_engine(control_room)) as s:
        provision.create_unit(s, UNIT, "herts")
    before = state(store, control_room, inventory)
    refused(cli("unit", "add", UNIT, "--council", "herts"), "already exists in the control room")
    assert state(store, control_room, inventory) == before


@pytest.mark.parametrize("argv, words", [
    (("--council", "nowhere"), ("unknown council", "nowhere")),
    (("--council", "Herts!"), ("council id",)),
    (("--council", "herts", "--site", "<script>"), ("site",)),
])
def test_unknown_council_and_bad_names(cli: Any, existing: None, store: Store, control_room: Any,
                                       inventory: Path, argv: tuple[str, ...],
                                       words: tuple[str, ...]) -> None:
    before = state(store, control_room, inventory)
    refused(cli("unit", "add", UNIT, *argv), *words)
    assert state(store, control_room, inventory) == before


def test_bad_unit_id(cli: Any, existing: None, store: Store, control_room: Any, inventory: Path) -> None:
    before = state(store, control_room, inventory)
    refused(cli("unit", "add", "../../etc", "--council", "herts"), "unit id")
    assert state(store, control_room, inventory) == before


def test_storage_unreachable(cli: Any, existing: None, store: Store, control_room: Any, inventory: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    before = state(store, control_room, inventory)
    monkeypatch.setenv("CCTV_PROVISION_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    refused(cli("unit", "add", UNIT, "--council", "herts"), "storage unreachable")
    assert state(store, control_room, inventory) == before


def test_control_room_unreachable(cli: Any, existing: None, store: Store, control_room: Any, inventory: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    before = state(store, control_room, inventory)
    monkeypatch.setenv("CONTROL_ROOM_DATABASE_URL", f"postgresql://cctv@127.0.0.1:{free_port()}/cctv")
    refused(cli("unit", "add", UNIT, "--council", "herts"), "control room unreachable")
    assert state(store, control_room, inventory) == before


def test_wrong_vault_password(cli: Any, existing: None, store: Store, control_room: Any, inventory: Path,
                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = state(store, control_room, inventory)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    wrong.chmod(0o600)
    monkeypatch.setenv("CCTV_VAULT_PASSWORD_FILE", str(wrong))
    refused(cli("unit", "add", UNIT, "--council", "herts"), "wrong vault password")
    wrong.chmod(0o644)
    refused(cli("unit", "add", UNIT, "--council", "herts"), "readable by others")
    monkeypatch.delenv("CCTV_VAULT_PASSWORD_FILE")
    refused(cli("unit", "add", UNIT, "--council", "herts"), "no vault password")
    assert state(store, control_room, inventory) == before


def test_a_failing_last_step_rolls_back_the_storage_user_and_the_control_room(
        cli: Any, existing: None, store: Store, control_room: Any, inventory: Path) -> None:
    """The inventory cannot be written (host_vars is a file): the storage user and the control
    room unit made before are undone."""
    hv = inventory / "host_vars"
    hv.rename(inventory / "host_vars.real")
    hv.write_text("not a folder\n")
    before = state(store, control_room, inventory)
    refused(cli("unit", "add", UNIT, "--council", "herts"))
    assert state(store, control_room, inventory) == before
    assert f"cctv-unit-{UNIT}" not in store.unit_users() and UNIT not in cr_units(control_room)


def test_console_script_exit_status(provision_env: dict[str, str], existing: None) -> None:
    """The installed command: exit 2 and one line, for a person at a terminal."""
    done = subprocess.run(["cctv-provision", "unit", "add", "herts-mcu-001", "--council", "herts"],
                          capture_output=True, text=True, timeout=60, env={**provision_env, "PATH":
                          str(Path(__import__("sys").executable).parent)})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
