"""Agent test fixtures shared by several test modules: the fake picamera2 package (tests/fakes).

The fake films the real sample clip; see tests/fakes/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.agent.footage import VTEST, footage

FAKES = Path(__file__).resolve().parents[1] / "fakes"


@pytest.fixture
def fake_picamera2(monkeypatch):
    """`import picamera2` gets the fake, filming the forecourt sample clip."""
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
        monkeypatch.delitem(sys.modules, name)
    import picamera2

    monkeypatch.setattr(picamera2.Picamera2, "scene", footage(VTEST))
    monkeypatch.setattr(picamera2.Picamera2, "instances", [])
    monkeypatch.setattr(picamera2.Picamera2, "stall_after", None)
    yield picamera2
    for name in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
        sys.modules.pop(name, None)
