"""mobile-cctv control room: receives unit status and events, shows them to people, shares footage.

Stateless web processes over SQLite (one machine) or PostgreSQL (a partnership-wide deployment).
`create_app(settings)` is the Flask app factory; `cctv-control-room serve` runs it under waitress.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flask import Flask

    from control_room.clock import Clock
    from control_room.config import Settings


def create_app(settings: Settings | None = None, *, migrate: bool = False, clock: Clock | None = None,
               pages: bool = True, **overrides: Any) -> Flask:
    """Build the app: settings (from CONTROL_ROOM_* env when None), the database, the blueprints.

    `clock` (control_room.clock.Clock: anything with now()) gives every time the app stores
    (app.extensions["cctv_clock"] and each database session's info["clock"]);
    `migrate=True` upgrades the schema first (serve does this). The web pages (control_room.web,
    if present) are registered through its `init_app(app)`; settings are app.config["SETTINGS"].
    `pages=False` builds the unit API alone (/api/v1: no pages, log-in or static files), for a
    process of its own that units never share with people (`serve --unit-api-only`).
    """
    from flask import Flask

    from control_room import api, db
    from control_room import migrate as migrations
    from control_room.clock import SYSTEM
    from control_room.config import load_settings, secret_key

    if settings is None:
        settings = load_settings(**overrides)
    elif overrides:
        settings = settings.model_copy(update=overrides)
    app = Flask(__name__, static_folder="static" if pages else None)
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SETTINGS=settings,
    )
    engine = db.make_engine(settings.resolved_database_url(), pool_size=settings.db_pool_size)
    if migrate:
        migrations.upgrade(engine)
    app.extensions["cctv_clock"] = clock = clock or SYSTEM
    db.init_app(app, engine, clock)
    api.init_app(app)
    if pages and importlib.util.find_spec("control_room.web") is not None:
        importlib.import_module("control_room.web").init_app(app)
    return app
