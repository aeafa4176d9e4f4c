"""agent.db opened by several threads at once on a fresh unit (pipeline, retention, upload and status
all start together): switching the new file to WAL must not fail with 'database is locked'."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from agent.db import connect


def test_threads_opening_a_new_database_together(tmp_path: Path) -> None:
    errors: list[str] = []
    for run in range(100):
        path = tmp_path / f"{run}" / "agent.db"
        start = threading.Barrier(4)

        def open_it(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                conn = connect(path)
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                conn.close()
            except sqlite3.OperationalError as err:
                errors.append(str(err))

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []
