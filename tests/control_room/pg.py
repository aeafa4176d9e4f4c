"""A throwaway PostgreSQL server (initdb + pg_ctl, fsync off) in a private temp folder, for the
control room tests and benchmarks/control_room.py. As root it runs as the postgres user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from control_room import migrate
from control_room.db import make_engine
from tests.servers import free_port


class PostgresUnavailable(Exception):
    """No PostgreSQL server binaries here (or no way to run them): the caller skips, saying why."""


@dataclass
class PostgresServer:
    host: str
    port: int
    template: str | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def create_database(self, migrated: bool = True) -> str:
        """A new empty database; `migrated` copies a template already at the newest schema (fast)."""
        if migrated and self.template is None:
            self.template = self.create_database(migrated=False).rsplit("/", 1)[1]
            engine = make_engine(self.url(self.template))
            migrate.upgrade(engine)
            engine.dispose()
        name = "t_" + uuid.uuid4().hex[:12]
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        engine = make_engine(self.url())
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        engine.dispose()
        return self.url(name)


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def throwaway_postgres(fsync: bool = False) -> Iterator[PostgresServer]:
    bindir = postgres_bin()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL server binaries not found in /usr/lib/postgresql "
                                  "(make system-deps as root installs them)")
    as_postgres: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="cr-pg-"))
    if os.geteuid() == 0:  # initdb refuses root: run as the postgres user in a folder it owns
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root without runuser: cannot start PostgreSQL as postgres")
        shutil.chown(folder, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    run = {"check": True, "capture_output": True, "timeout": 60}
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                    "--no-sync"], **run)
    opts = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            f"-c fsync={'on' if fsync else 'off'}")
    subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
                    "-o", opts, "start"], **run)
    try:
        yield PostgresServer("127.0.0.1", port)
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
