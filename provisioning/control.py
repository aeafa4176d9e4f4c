"""The control room's database as `cctv-provision` reaches it (CONTROL_ROOM_DATABASE_URL, as
`cctv-control-room`): checked reachable and at the newest schema before any change is made.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from control_room import migrate
from control_room.db import make_engine, normalise_url
from provisioning.settings import ProvisionError, Settings


def engine(settings: Settings) -> Engine:
    """An engine on the control room's database, or one line saying why it cannot be used."""
    if not settings.database_url:
        raise ProvisionError("no control room database: set CONTROL_ROOM_DATABASE_URL")
    url = normalise_url(settings.database_url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise ProvisionError(f"control room unreachable: no database file {parsed.database}")
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.update_query_dict({"connect_timeout": "10"})
    eng = make_engine(parsed.render_as_string(hide_password=False), pool_size=2)
    try:
        current = migrate.current_revision(eng)
    except SQLAlchemyError as exc:
        eng.dispose()
        raise ProvisionError(f"control room unreachable: {type(exc.orig or exc).__name__}: "
                             f"{str(exc.orig or exc).strip().splitlines()[0]}") from None
    if current != migrate.head_revision():
        eng.dispose()
        raise ProvisionError(f"control room database is at revision {current}, not "
                             f"{migrate.head_revision()}: run `cctv-control-room db upgrade`")
    return eng
