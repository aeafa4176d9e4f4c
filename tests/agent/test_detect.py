"""`cctv-agent detect` on real footage, and its refusal of bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

from tests.agent.footage import VTEST, encode_segments, footage


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_detect_json_finds_the_pedestrians(tmp_path) -> None:
    out = cli(["detect", str(footage(VTEST)), "--json"], tmp_path)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events, "people walk through the whole clip"
    for ev in events:
        assert isinstance(ev["start"], float) and isinstance(ev["end"], float)
        assert 0.0 <= ev["start"] <= ev["end"] <= 79.5
        assert 0 < ev["peak_score"] <= 1 and ev["boxes"]
        assert all(len(b) == 4 and all(0 <= v <= 1 for v in b) for b in ev["boxes"])
    # the clip has people from the first seconds to the end: activity covers most of it
    assert events[0]["start"] < 5 and events[-1]["end"] > 70
    assert all(e["end"] - e["clip_start"] <= 60 + 1e-6 for e in events)  # max clip respected
    assert list(tmp_path.iterdir()) == []  # detect writes nothing


def test_detect_table_output(tmp_path) -> None:
    out = cli(["detect", str(footage(VTEST))], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "795 frames" in out.stdout.splitlines()[0] and "peak" in out.stdout


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _faststart_mp4(tmp: Path) -> Path:
    """An MP4 with its index first (like an event clip), so a cut-off copy still opens."""
    seg = encode_segments(footage(VTEST), tmp / "segs", seg_s=100, max_frames=60)[0]
    out = tmp / "faststart.mp4"
    with av.open(str(seg.path)) as inp, av.open(str(out), "w", options={"movflags": "+faststart"}) as o:
        stream = o.add_stream_from_template(inp.streams.video[0])
        for pkt in inp.demux(video=0):
            if pkt.dts is not None:
                pkt.stream = stream
                o.mux(pkt)
    return out


BAD = {
    "missing file": lambda d: d / "nope.mp4",
    "text file": lambda d: (d / "notes.mp4").write_text("not a video\n") and d / "notes.mp4",
    "empty file": lambda d: (d / "empty.avi").write_bytes(b"") or d / "empty.avi",
    "header only": lambda d: _truncate(footage(VTEST), d / "head.avi", 0.0002),
    "truncated avi": lambda d: _truncate(footage(VTEST), d / "half.avi", 0.5),
    "truncated mp4": lambda d: _truncate(_faststart_mp4(d), d / "cut.mp4", 0.6),
}


@pytest.mark.parametrize("name", list(BAD))
def test_detect_bad_input_one_line_exit_2(tmp_path, name: str) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = BAD[name](inputs)
    before = sorted(p.name for p in inputs.iterdir())
    work = tmp_path / "cwd"
    work.mkdir()
    out = cli(["detect", str(path), "--json"], work)
    assert out.returncode == 2
    assert out.stdout == ""
    # plain progress lines (every 10 s, when a loaded machine is slow) may come first; one error line ends it
    lines = [ln for ln in out.stderr.strip().splitlines() if not ln.startswith(f"detect {path.name} [")]
    assert len(lines) == 1 and lines[0].startswith("cctv-agent detect: error: ") and str(path) in lines[0]
    assert out.stderr.strip().splitlines()[-1] == lines[0]
    assert sorted(p.name for p in inputs.iterdir()) == before and list(work.iterdir()) == []


def test_detect_with_a_bad_config_is_exit_2(tmp_path) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text('[unit]\nid = "u1"\n[motion]\nsensitivty = 0.5\n')
    out = cli(["detect", str(footage(VTEST)), "--config", str(cfg)], tmp_path)
    assert out.returncode == 2 and "motion.sensitivty: unknown key" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
