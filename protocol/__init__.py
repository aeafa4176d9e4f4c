"""The unit <-> control room wire contract: one owner for every message shape, id pattern and time form.

The agent builds its heartbeats, event notifications, outbox records and manifests from these models;
the control room validates what units send with the same models. docs/protocol.md documents version
VERSION and its JSON Schemas are generated from here (`python -m protocol.schema`).
"""

from __future__ import annotations

VERSION = 1
"""The schema version every message carries as `"schema": 1`."""
