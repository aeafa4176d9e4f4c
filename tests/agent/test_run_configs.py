"""The shipped configs: the example lists and documents every key and loads; the demo config loads."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from agent.config import Config, load_config
from agent.runner import resolve_paths

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "firmware_config" / "agent.example.toml"
DEMO = ROOT / "firmware_config" / "demo.toml"


def _sections(text: str) -> dict[str, str]:
    """Text of each [section] of the file (array tables like [[privacy.masks]] stay in their section)."""
    out: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        m = re.match(r"^\[([a-z_]+)\]\s*$", line)
        if m:
            current = m.group(1)
            continue
        out[current] = out.get(current, "") + line + "\n"
    return out


def test_example_config_loads_and_documents_every_key() -> None:
    cfg = load_config(EXAMPLE, env={})
    assert cfg.unit.id == "herts-mcu-001"
    sections = _sections(EXAMPLE.read_text())
    missing = []
    for name, field in Config.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        body = sections.get(name, "")
        for key in model.model_fields:
            # set (`key = ...`) or shown commented out (`# key = ...`), with a comment line above
            m = re.search(rf"^(# )?{key} = .*$", body, re.M)
            if m is None:
                missing.append(f"{name}.{key}")
                continue
            before = body[: m.start()].rstrip("\n").splitlines()
            while before and re.match(r"^[a-z_]+ = ", before[-1]):  # keys grouped under one comment
                before.pop()
            assert before and before[-1].startswith("#"), f"{name}.{key} has no comment"
    assert not missing, f"keys missing from {EXAMPLE.name}: {missing}"


def test_demo_config_loads_with_paths_from_the_repository_root() -> None:
    cfg = resolve_paths(load_config(DEMO, env={}), ROOT)
    assert cfg.camera.source == "file" and cfg.camera.pace == "fast" and not cfg.camera.loop
    assert Path(cfg.camera.device) == (ROOT / ".." / "shared" / "data" / "opencv_vtest_480x360.avi").resolve()
    assert cfg.unit.data_dir == ROOT / "demo-output"
    assert not cfg.upload.enabled and not cfg.status.enabled
