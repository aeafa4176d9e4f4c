"""Police evidence: disclosure requests, signed BagIt evidence packages, share links and pushes to a
police store, the disclosure register and evidential holds (docs/evidence.md).

`init_app(app)` is called by control_room.web.init_app: it registers the staff, register and recipient pages.
"""

from __future__ import annotations

from flask import Blueprint, Flask

_prepared: set[str] = set()


def _error_pages(blueprint: Blueprint) -> None:
    """Once per process (a blueprint refuses new handlers after its first registration)."""
    from flask import render_template

    from control_room.web import common

    if blueprint.name in _prepared:
        return
    _prepared.add(blueprint.name)
    common.add_error_pages(blueprint)
    blueprint.register_error_handler(410, lambda e: (render_template("error.html", error=e), 410))


def init_app(app: Flask) -> None:
    from control_room.evidence import (
        models,  # noqa: F401 (maps the tables)
        web,
        web_delivery,  # noqa: F401 (its routes are on web.bp)
        web_register,
        web_share,
    )

    for blueprint in (web.bp, web_register.bp, web_share.bp):
        _error_pages(blueprint)
        app.register_blueprint(blueprint)
    app.jinja_env.globals["evidence_nav"] = True
