"""`cctv-agent run` end to end on real footage: recording, events, clips, outbox; detect agrees with it;
SIGTERM mid-event finishes the open segment and event."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import av
import cv2
import pytest

from agent.clock import ManualClock, SystemClock
from agent.config import parse_config
from agent.db import connect, db_path
from agent.detect import detect_file
from agent.errors import InputError
from agent.events.outbox import read_event
from agent.fsutil import sha256_file
from agent.recording.index import SegmentIndex
from agent.runner import run
from agent.state import StateStore
from tests.agent.footage import T0, VTEST, footage, sample_start
from tests.once import once
from tests.waiting import wait_until

MASK = [[0.0, 0.0], [0.1, 0.0], [0.1, 1.0], [0.0, 1.0]]


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def unit_config(data_dir: Path, **camera):
    return parse_config({
        "unit": {"id": "test-unit", "data_dir": str(data_dir)},
        "camera": {"source": "file", "device": str(footage(VTEST)), "width": 480, "height": 360,
                   "fps": 10, "pace": "fast", **camera},
        "recording": {"bitrate_kbps": 400},
        "privacy": {"masks": [{"name": "left edge", "polygon": MASK}]},
        "upload": {"enabled": False}, "status": {"enabled": False},
    }, env={})


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    """The first 15 s of the sample clip: for tests that need some recorded footage and events, not
    all 79.5 s of it."""
    return sample_start(tmp_path_factory)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The whole sample clip run through the unit, once per test run (the tests only read it)."""
    def record(data_dir: Path):
        cfg = unit_config(data_dir)
        return cfg, run(cfg, ManualClock(wall=T0, mono=500.0))

    return once(tmp_path_factory, "run_recorded", record)


def test_run_records_the_clip_and_publishes_events(recorded) -> None:
    cfg, result = recorded
    data_dir = cfg.unit.data_dir
    assert result.frames == 795 and result.events and result.dropped == {"record": 0, "analyse": 0}
    segments = SegmentIndex(connect(db_path(data_dir))).all()
    assert segments[0].start == pytest.approx(T0) and segments[-1].end == pytest.approx(T0 + 79.5, abs=0.2)
    for rec in result.events:
        clip_path = data_dir / rec.file("clip").path
        for f in rec.files:
            assert (data_dir / f.path).stat().st_size == f.size and sha256_file(data_dir / f.path) == f.sha256
        # the clip covers the event with its pre-roll (none for a continuation; never before the
        # first frame), from the keyframe at or before that, and plays in full
        want = epoch(rec.start) - (0 if rec.previous_event_id else cfg.events.pre_roll_s)
        want = max(T0, want)
        assert want - cfg.recording.keyframe_interval_s - 1e-3 <= epoch(rec.clip_start) <= want + 1e-3
        assert epoch(rec.clip_end) >= epoch(rec.end) - 0.11
        data = clip_path.read_bytes()
        assert data.find(b"moov") < data.find(b"mdat")
        with av.open(str(clip_path)) as c:
            frames = list(c.decode(video=0))
        assert frames[0].key_frame
        assert len(frames) == pytest.approx((epoch(rec.clip_end) - epoch(rec.clip_start)) * 10, abs=1.5)
        assert frames[len(frames) // 2].to_ndarray(format="bgr24")[:, :40].mean() < 12  # masked
        snap = cv2.imread(str(data_dir / rec.file("snapshot").path))
        assert snap[:, :40].mean() < 12 < snap[:, 100:].mean()
        assert rec.clock_synced and rec.unit_id == "test-unit"
    state = StateStore(connect(db_path(data_dir)), ManualClock()).read("motion")
    assert state is not None and state.state["events_today"] == len(result.events)
    assert not list(data_dir.rglob(".*.tmp"))


def test_detect_agrees_with_run(recorded) -> None:
    cfg, result = recorded
    detected, frames = detect_file(cfg, VTEST)
    assert frames == result.frames
    assert result.first_frame is not None
    wall0 = result.first_frame[1]
    assert len(detected) == len(result.events)
    ids = [r.event_id for r in result.events]
    for det, rec in zip(detected, result.events, strict=True):
        assert epoch(rec.start) - wall0 == pytest.approx(det.start, abs=0.002)
        assert epoch(rec.end) - wall0 == pytest.approx(det.end, abs=0.002)
        assert rec.peak_score == pytest.approx(det.peak_score, abs=1e-6)
        assert rec.boxes == det.boxes
        assert rec.previous_event_id == (ids[det.previous] if det.previous is not None else None)


def _write_config(path: Path, data_dir: Path, **camera: str) -> Path:
    cam = "".join(f'{k} = "{v}"\n' for k, v in camera.items())
    path.write_text(f'[unit]\nid = "sig-unit"\ndata_dir = "{data_dir}"\n'
                    f'[camera]\nsource = "file"\nwidth = 480\nheight = 360\nfps = 10\n{cam}'
                    '[recording]\nsegment_seconds = 2\nbitrate_kbps = 300\n'
                    '[upload]\nenabled = false\n[status]\nenabled = false\n')
    return path


def test_sigterm_mid_event_finishes_segment_and_event(tmp_path) -> None:
    data_dir = tmp_path / "unit"
    cfg = _write_config(tmp_path / "unit.toml", data_dir, device=str(footage(VTEST)), pace="realtime")
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(list(data_dir.glob("recordings/*/*.mp4"))) >= 3, 60,  # 6 s in: event open
                   "three segments", interval=0.1, proc=proc,
                   detail=lambda: proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert not list(data_dir.rglob(".*.tmp"))
    segments = SegmentIndex(connect(db_path(data_dir))).all()
    records = [read_event(p) for p in sorted((data_dir / "outbox").glob("*.json"))]
    assert len(records) == 1 and records[0].extra["close_reason"] == "finished"
    rec = records[0]
    assert 4 < epoch(rec.end) - segments[0].start < 40
    # the open segment was finished and indexed, and the clip runs to the end of the footage
    assert epoch(rec.clip_end) == pytest.approx(segments[-1].end, abs=0.15)
    with av.open(str(data_dir / rec.file("clip").path)) as c:
        assert len(list(c.decode(video=0))) >= 60
    assert "1 event(s)" in out


def test_run_missing_video_is_one_line_exit_2(tmp_path) -> None:
    data_dir = tmp_path / "unit"
    cfg = _write_config(tmp_path / "unit.toml", data_dir, device=str(tmp_path / "missing.avi"))
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"cctv-agent run: error: camera.device: video file not found: {tmp_path / 'missing.avi'}"]
    assert not data_dir.exists()


def test_run_on_the_picamera2_hardware_path_until_stopped(tmp_path, fake_picamera2, monkeypatch) -> None:
    """The fake Pi camera films the sample clip; stop mid-event (as SIGTERM does) publishes it."""
    cfg = parse_config({
        "unit": {"id": "pi-unit", "data_dir": str(tmp_path)},
        "camera": {"source": "picamera2", "width": 640, "height": 360, "fps": 10},
        "recording": {"segment_seconds": 2, "keyframe_interval_s": 1},
        "privacy": {"masks": [{"polygon": MASK}]},
        "upload": {"enabled": False}, "status": {"enabled": False},
    }, env={})
    from agent.sources.picamera2 import Picamera2Source

    clock = ManualClock(wall=T0)
    read = Picamera2Source.read

    def one_frame_per_tick(self, timeout: float = 1.0):  # the real camera delivers at 10 fps
        clock.advance(0.1)
        return read(self, timeout)

    monkeypatch.setattr(Picamera2Source, "read", one_frame_per_tick)
    stop = threading.Event()

    def stop_after_segments() -> None:
        try:
            wait_until(lambda: len(list(tmp_path.glob("recordings/*/*.mp4"))) >= 4, 60, "four segments",
                       interval=0.1)
        finally:  # (a timeout still stops the run; the assertions below then fail)
            stop.set()

    threading.Thread(target=stop_after_segments, daemon=True).start()
    result = run(cfg, clock, stop=stop)
    assert len(result.events) == 1 and result.events[0].extra["close_reason"] == "finished"
    rec = result.events[0]
    segments = SegmentIndex(connect(db_path(tmp_path))).all()
    assert len(segments) >= 3 and epoch(rec.clip_end) == pytest.approx(segments[-1].end, abs=0.25)
    with av.open(str(tmp_path / rec.file("clip").path)) as c:
        frames = list(c.decode(video=0))
    assert frames[0].key_frame and len(frames) >= 40
    assert frames[-1].to_ndarray(format="bgr24")[:, :50].max() < 30  # masked by the hardware path
    snap = cv2.imread(str(tmp_path / rec.file("snapshot").path))
    assert snap.shape == (360, 640, 3) and snap[:, :50].mean() < 12


def test_stale_clock_after_reboot_events_follow_the_recording_timeline(tmp_path, short_clip) -> None:
    """A Pi without a real-time clock reboots reading a time before its last footage: the recorder
    holds segment times back (flagged unsynced); events must cut this run's footage, not older."""
    cfg = unit_config(tmp_path, device=str(short_clip))
    first = run(cfg, ManualClock(wall=T0 + 1000, mono=100.0))
    assert first.events
    last_end = SegmentIndex(connect(db_path(tmp_path))).all()[-1].end
    second = run(cfg, ManualClock(wall=T0, mono=5000.0))  # the clock now reads 1000 s too early
    assert len(second.events) == len(first.events)
    segments = SegmentIndex(connect(db_path(tmp_path))).all()
    new = [s for s in segments if s.start >= last_end - 1e-6]
    assert new and not any(s.clock_synced for s in new)
    for a, b in zip(first.events, second.events, strict=True):
        assert epoch(b.start) >= last_end and not b.clock_synced
        # same footage, same place in it: 1000 s + the hold-back later than the first run
        assert epoch(b.start) - new[0].start == pytest.approx(epoch(a.start) - T0 - 1000, abs=0.002)
        assert epoch(b.clip_start) >= new[0].start - 1e-3
        assert b.file("clip").size > 0


def test_run_missing_camera_device_is_one_line_exit_2(tmp_path) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(f'[unit]\nid = "u1"\ndata_dir = "{tmp_path / "unit"}"\n'
                   '[camera]\nsource = "opencv"\ndevice = "/dev/video99"\n')
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "cctv-agent run: error: camera.device: camera device /dev/video99 does not exist"]
    assert not (tmp_path / "unit").exists()


def test_run_without_a_pi_camera_starts_no_services(tmp_path, fake_picamera2, monkeypatch) -> None:
    monkeypatch.setattr(fake_picamera2.Picamera2, "cameras", [])
    started = []
    monkeypatch.setattr("agent.runner.start_services", lambda *args: started.append(1) or [])
    cfg = parse_config({"unit": {"id": "pi-unit", "data_dir": str(tmp_path)},
                        "camera": {"source": "picamera2"}}, env={})
    with pytest.raises(InputError, match="camera"):
        run(cfg, ManualClock())
    assert started == [] and not list(tmp_path.glob("outbox/*"))
    assert not [t for t in threading.enumerate() if t.name in ("capture", "record", "analyse")]


def test_kill_9_mid_event_the_next_start_publishes_it(tmp_path, short_clip) -> None:
    """Nothing is lost: an event open when the agent was killed is published at the next start
    from the footage recorded before the kill."""
    data_dir = tmp_path / "unit"
    cfg_path = _write_config(tmp_path / "unit.toml", data_dir, device=str(footage(VTEST)), pace="realtime")
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg_path)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(list(data_dir.glob("recordings/*/*.mp4"))) >= 4, 60,  # 8 s in: event open
                   "four segments", interval=0.1, proc=proc)
    finally:
        proc.kill()
        proc.wait(30)
    assert not list((data_dir / "outbox").glob("*.json"))
    conn = connect(db_path(data_dir))
    assert conn.execute("SELECT count(*) FROM event_journal WHERE closed = 0").fetchone()[0] == 1
    before = SegmentIndex(conn).all()
    result = run(unit_config(data_dir, device=str(short_clip)), SystemClock())  # the next start
    old = [r for r in result.events if r.extra.get("recovered")]
    assert len(old) == 1 and old[0].extra["close_reason"] == "interrupted"
    rec = old[0]
    assert before[0].start - 0.01 <= epoch(rec.clip_start) <= epoch(rec.start)
    assert epoch(rec.clip_end) == pytest.approx(before[-1].end, abs=0.15)  # up to the kill
    assert sorted(f.role for f in rec.files) == ["clip", "snapshot", "snapshot_boxes"]
    for f in rec.files:
        assert sha256_file(data_dir / f.path) == f.sha256
    assert conn.execute("SELECT count(*) FROM event_journal").fetchone()[0] == 0


def test_run_applies_retention_to_old_footage(tmp_path, short_clip) -> None:
    cfg = unit_config(tmp_path, device=str(short_clip))
    run(cfg, ManualClock(wall=T0, mono=100.0))
    old = SegmentIndex(connect(db_path(tmp_path))).all()
    assert old and all(s.path.exists() for s in old)
    run(cfg, ManualClock(wall=T0 + 40 * 86400, mono=100.0))  # 40 days later; retention is 31 days
    now = SegmentIndex(connect(db_path(tmp_path))).all()
    assert not any(s.path.exists() for s in old)
    assert now and all(s.start >= T0 + 40 * 86400 - 1 for s in now)


def test_run_started_by_hand_writes_nothing_world_readable(tmp_path, short_clip) -> None:
    """Commissioning: `cctv-agent run` from a root shell (umask 022), outside systemd's UMask=0027.
    Segments, clips, snapshots, records and agent.db are personal data: no file or folder for others."""
    import os
    import stat

    data_dir = tmp_path / "unit"
    cfg = _write_config(tmp_path / "unit.toml", data_dir, device=str(short_clip), pace="fast")
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.umask(0o022))
    assert out.returncode == 0, out.stderr
    paths = [data_dir, *data_dir.rglob("*")]
    assert any(p.suffix == ".mp4" and "recordings" in p.parts for p in paths)
    assert any(p.name == "agent.db" for p in paths) and any(p.parent.name == "outbox" for p in paths)
    open_to_others = [f"{p.relative_to(tmp_path)} {stat.filemode(p.stat().st_mode)}" for p in paths
                      if p.stat().st_mode & 0o007]
    assert open_to_others == []
