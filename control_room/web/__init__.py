"""The control room's web pages: fleet, unit, events (with footage playback), locations.

`init_app(app)` is called by `control_room.create_app`; it sets up login and CSRF (control_room.auth),
registers one blueprint per area and the Jinja filters; templates live in control_room/templates/<area>/.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Response, request

from control_room import auth, sessions
from control_room.web import (
    account,
    auditlog,
    common,
    events,
    fleet,
    locations,
    maps,
    officer,
    review,
    units,
    users,
)

# Pages load nothing from elsewhere: scripts, styles, images and video all come from this service.
# The one exception: map tiles from the configured tile server (maps.tile_source).
CSP = (
    "default-src 'self'; img-src 'self' data:{tiles}; media-src 'self'; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


BLUEPRINTS = (fleet.bp, units.bp, events.bp, review.bp, locations.bp, officer.bp, auditlog.bp, users.bp,
              account.bp)
for _blueprint in (*BLUEPRINTS, auth.bp):  # once per process: blueprints are shared by every app
    common.add_error_pages(_blueprint)


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    app.url_map.converters["int"] = common.DbIntConverter  # before any page route is registered
    limits = sessions.Limits(timedelta(minutes=settings.session_idle_minutes),
                             timedelta(hours=settings.session_lifetime_hours))
    auth.init_app(app, secure_cookies=settings.secure_cookies, hash_workers=settings.login_hash_workers,
                  hash_pending=settings.login_hash_pending, limits=limits)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.jinja_env.filters.update(common.FILTERS)
    from control_room import evidence  # police evidence pages (docs/evidence.md)

    evidence.init_app(app)
    app.after_request(_security_headers)


def _security_headers(response: Response) -> Response:
    if request.path.startswith("/api/"):
        return response
    tiles = maps.tile_source(common.settings().map_tile_url)
    headers: dict[str, Any] = {
        "Content-Security-Policy": CSP.format(tiles=f" {tiles}" if tiles else ""),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }
    for name, value in headers.items():
        response.headers.setdefault(name, value)
    if request.endpoint and not request.endpoint.startswith("static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
