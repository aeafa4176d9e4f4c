"""A first run of `cctv-control-room` as the quick start in docs/control_room.md goes: on an empty
database a command creates the schema and says so (no `no such table`); a database left at an older
revision is refused with the command that upgrades it, and nothing is changed."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from control_room import migrate
from control_room.cli import main
from control_room.db import make_engine, session_scope
from control_room.models import Council


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # noqa: ANN201
    url = f"sqlite:///{tmp_path / 'cr.db'}"
    monkeypatch.setenv("CONTROL_ROOM_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("CONTROL_ROOM_DATABASE_URL", url)

    def call(*args: str, stdin: str = "") -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    call.url = url  # type: ignore[attr-defined]
    return call


def test_quick_start_on_an_empty_database_creates_the_schema_first(run) -> None:  # noqa: ANN001
    code, out, err = run("create-council", "herts", "Hertfordshire County Council")
    assert (code, out) == (0, "council herts created\n")
    assert "the database is empty: creating its schema first" in err
    assert "no such table" not in err
    code, _, err = run("create-user", "alice", "--role", "operator", "--council", "herts",
                       stdin="correct horse battery\n")
    assert code == 0 and "empty" not in err  # only the first command says it
    engine = make_engine(run.url)
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_an_older_schema_is_refused_with_how_to_upgrade_and_nothing_changes(run) -> None:  # noqa: ANN001
    engine = make_engine(run.url)
    migrate.upgrade(engine, "0001")
    code, out, err = run("create-council", "herts", "Hertfordshire County Council")
    assert code == 2 and out == ""
    assert err.strip().endswith("run `cctv-control-room db upgrade` first")
    assert len(err.strip().splitlines()) == 1
    assert migrate.current_revision(engine).startswith("0001")
    assert run("db", "upgrade")[0] == 0
    assert run("create-council", "herts", "Hertfordshire County Council")[0] == 0
    with session_scope(engine) as s:
        assert s.scalars(select(Council.slug)).all() == ["herts"]
