"""Shared helpers for the recording tests: real clips from ../shared/data and unit configs."""

from __future__ import annotations

from pathlib import Path

import av

from agent.config import Config, parse_config
from tests.agent.footage import DATA, VTEST
from tests.agent.footage import footage as need

__all__ = ["HIGHWAY", "VTEST", "decode_all", "need", "unit_config"]

HIGHWAY = DATA / "cdnet_highway" / "highway_input_h264.mp4"


def unit_config(data_dir: Path, clip: Path | str = "", **sections: dict) -> Config:
    data = {
        "unit": {"id": "unit-1", "data_dir": str(data_dir)},
        "camera": {"source": "file", "device": str(clip), "pace": "fast", **sections.pop("camera", {})},
    }
    data.update(sections)
    return parse_config(data, env={})


def decode_all(path: Path) -> tuple[int, list[bool], str, str]:
    """(frames decoded, keyframe flag per packet, codec, pix_fmt) of a video file."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        codec, pix = stream.codec_context.name, stream.codec_context.pix_fmt
        keys = [p.is_keyframe for p in c.demux(stream) if p.size]
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    return frames, keys, codec, pix
