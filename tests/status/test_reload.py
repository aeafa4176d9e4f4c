"""Config reload with the watchdog library on a real folder: a valid change (in place or by atomic
rename, as Ansible does) reaches the subscribers once; an invalid one is refused with one log line
and the running config stays."""

from __future__ import annotations

import logging
import os
import queue
from pathlib import Path

import pytest

from agent.config import Config, load_config
from agent.status.reload import ConfigWatcher, changed_sections
from tests.waiting import wait_until

BASE = """
[unit]
id = "herts-mcu-001"
data_dir = "{data}"

[motion]
sensitivity = {sensitivity}
"""


def write(path: Path, sensitivity: object, atomic: bool = True, extra: str = "") -> None:
    text = BASE.format(data=path.parent / "data", sensitivity=sensitivity) + extra
    if atomic:  # Ansible's template module: a temp file in the same folder, then rename
        tmp = path.with_name(".agent.toml.ansible-tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)


@pytest.fixture
def watched(tmp_path: Path):
    path = tmp_path / "agent.toml"
    write(path, 0.5)
    got: queue.Queue[Config] = queue.Queue()
    watcher = ConfigWatcher(path, load_config(path, env={}), [got.put], env={}, settle_s=0.1)
    watcher.start()
    yield path, watcher, got
    watcher.stop()
    assert watcher.join(5)


def test_valid_change_is_published(watched) -> None:
    path, watcher, got = watched
    write(path, 0.8)
    new = got.get(timeout=10)
    assert new.motion.sensitivity == 0.8
    assert watcher.current is new
    write(path, 0.3, atomic=False)  # edited in place
    assert got.get(timeout=10).motion.sensitivity == 0.3


def test_invalid_change_is_refused_and_the_running_config_kept(watched, caplog) -> None:
    path, watcher, got = watched
    before = watcher.current
    with caplog.at_level(logging.ERROR):
        write(path, 7)  # out of range
        wait_until(lambda: watcher.refused == 1, timeout=10, what="the change refused")
    assert watcher.refused == 1 and got.empty() and watcher.current is before
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "motion.sensitivity" in refusals[0].getMessage()
    assert len(refusals[0].getMessage().splitlines()) == 1

    write(path, 0.9, extra="[camera]\nfsp = 3\n")  # a typo: unknown key
    wait_until(lambda: watcher.refused == 2, timeout=10, what="the typo refused")
    assert got.empty() and watcher.current is before

    write(path, 0.6)  # fixed by the next push
    assert got.get(timeout=10).motion.sensitivity == 0.6


def test_other_files_and_identical_rewrites_are_ignored(watched) -> None:
    path, watcher, got = watched
    (path.parent / "notes.txt").write_text("hello")
    write(path, 0.5)  # same content as running
    wait_until(lambda: watcher.checks >= 1, timeout=10, what="the rewrite looked at")
    assert got.empty() and watcher.published == 0


def test_changed_sections(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    write(path, 0.5)
    old = load_config(path, env={})
    write(path, 0.7, extra='[status]\nconfig_version = "v2"\n')
    assert changed_sections(old, load_config(path, env={})) == {"motion", "status"}
