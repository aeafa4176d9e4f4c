"""A recording process for the kill -9 tests: records a looping clip until it is killed.

Usage: python -m tests.agent.record_child CONFIG.toml
"""

from __future__ import annotations

import sys

from agent.clock import ClockWatch, SystemClock
from agent.config import load_config
from agent.db import connect, db_path
from agent.detection.masks import PrivacyMasker
from agent.recording.segments import SegmentIndex, SegmentRecorder
from agent.sources import FrameTimeout, make_source
from agent.sources.supervisor import SupervisedSource
from agent.state import StateStore


def main(path: str) -> int:
    cfg = load_config(path)
    clock = ClockWatch(SystemClock())
    conn = connect(db_path(cfg.unit.data_dir))
    masker = PrivacyMasker([z.polygon for z in cfg.privacy.masks])
    recorder = SegmentRecorder(cfg, clock, SegmentIndex(conn), masker, StateStore(conn, clock))
    source = SupervisedSource(make_source(cfg.camera, clock), cfg.camera, clock)
    source.open()
    print("recording", flush=True)
    while True:
        try:
            frame = source.read(1.0)
        except FrameTimeout:
            continue
        if frame is None:
            break
        recorder.write(frame)
    recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
