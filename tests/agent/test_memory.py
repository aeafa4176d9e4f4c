"""Memory of `cctv-agent run`: what is imported, malloc settings, no full frames held for events.

The figures over an hour are in benchmarks/agent_resources.py; these are the rules behind them.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.config import parse_config
from agent.detection.analyser import Analyser
from agent.memory import optimized_argv, tune_malloc
from agent.sources.base import Frame
from tests.fresh import fresh_python


@pytest.mark.parametrize("command,absent", [
    ("status", ["cv2", "boto3", "agent.runner"]),
    ("uploads", ["cv2", "agent.runner", "agent.detection.motion"]),
    ("run", ["boto3", "cryptography", "agent.upload.worker"]),  # only loaded when upload is on
])
def test_a_subcommand_imports_only_what_it_uses(command: str, absent: list[str]) -> None:
    code = (f"import sys; from agent.cli import build_parser; build_parser([{command!r}, '--help'][:1]); "
            f"print(' '.join(m for m in {absent!r} if m in sys.modules))")
    assert fresh_python("-c", code).stdout.strip() == ""


def test_run_reexecutes_itself_without_docstrings() -> None:
    """`cctv-agent run` from the command line runs under python -OO (agent.cli): once, and never
    where the operator set PYTHONOPTIMIZE; the re-executed agent starts and answers as before."""
    again = optimized_argv(["run", "--config", "x.toml"], env={})
    if sys.flags.optimize >= 2:
        assert again is None
    else:
        assert again == [sys.executable, "-OO", "-m", "agent.cli", "run", "--config", "x.toml"]
    assert optimized_argv(["run"], env={"PYTHONOPTIMIZE": "0"}) is None
    probe = ("import sys, agent.memory as m; print(sys.flags.optimize, m.optimized_argv(['run'], env={}))")
    assert fresh_python("-OO", "-c", probe).stdout.split() == ["2", "None"]  # -OO already: no second exec
    out = fresh_python("-m", "agent.cli", "run", "--config", "/nonexistent/agent.toml", check=False,
                       drop_env=("PYTHONOPTIMIZE",))
    assert out.returncode == 2 and out.stderr.startswith("cctv-agent run: error: /nonexistent/agent.toml")


def test_malloc_tuning_applies_on_glibc_only() -> None:
    assert tune_malloc(env={}) == (platform.libc_ver()[0] == "glibc")
    # an operator's own setting wins (the systemd unit sets MALLOC_ARENA_MAX): the rest still apply
    assert tune_malloc(env={"MALLOC_ARENA_MAX": "2"}) == (platform.libc_ver()[0] == "glibc")
    every = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "262144", "MALLOC_TRIM_THRESHOLD_": "1"}
    assert tune_malloc(env=every) is False
    assert tune_malloc(env={"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) is False


@pytest.mark.skipif(platform.system() != "Linux", reason="transparent huge pages are a Linux feature")
def test_the_run_process_opts_out_of_huge_pages() -> None:
    """libx264 and NumPy ask for huge pages on big buffers; a 2 MiB page is resident whole."""
    code = ("from agent.memory import tune_process; tune_process(); "
            "print(next((l.split()[1] for l in open('/proc/self/status') if l.startswith('THP_enabled')), "
            "'unknown'))")
    out = fresh_python("-c", code)
    if out.stdout.strip() == "unknown":
        pytest.skip("this kernel does not report THP_enabled in /proc/self/status (before 5.0)")
    assert out.stdout.strip() == "0"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_heap_pages_go_back_to_the_kernel() -> None:
    """Many small blocks freed in the middle of the heap (as import and event garbage is) stay
    resident under the trim threshold, which only trims the top; release_free_heap returns them."""
    code = ("import ctypes; from agent.memory import release_free_heap, tune_process; tune_process(); "
            "libc = ctypes.CDLL('libc.so.6'); libc.malloc.restype = ctypes.c_void_p; "
            "libc.free.argtypes = [ctypes.c_void_p]; "
            "rss = lambda: int(next(l.split()[1] for l in open('/proc/self/status') "
            "if l.startswith('VmRSS'))); blocks = [libc.malloc(4000) for _ in range(20000)]; "
            "[ctypes.memset(b, 1, 4000) for b in blocks]; "
            "keep = libc.malloc(64); ctypes.memset(keep, 1, 64); [libc.free(b) for b in blocks]; "
            "before = rss(); ok = release_free_heap(); print(ok, before - rss())")
    out = fresh_python("-c", code)
    ok, freed_kib = out.stdout.split()
    assert ok == "True" and int(freed_kib) > 40_000  # most of the 80 MB freed below `keep`


def test_the_systemd_unit_caps_malloc_arenas_and_math_threads() -> None:
    unit = (Path(__file__).resolve().parents[2] / "firmware_config/systemd/cctv-agent.service").read_text()
    assert "Environment=MALLOC_ARENA_MAX=2" in unit
    assert "Environment=OPENBLAS_NUM_THREADS=1" in unit


def test_the_analyser_needs_no_full_frames_and_keeps_none() -> None:
    """The analysis queue carries frames without their full image (agent.pipeline); events come
    out with boxes and scores only, the snapshot is cut from the footage by the event writer."""
    cfg = parse_config({"unit": {"id": "u1"}, "events": {"pre_roll_s": 0, "post_roll_s": 1}}, env={})
    analyser = Analyser(cfg, "u1")
    rng = np.random.default_rng(1)
    base = rng.integers(60, 200, (120, 160), dtype=np.uint8)
    no_image = np.zeros((0, 0, 3), np.uint8)
    closed = []
    for i in range(120):
        gray = base.copy()
        if 30 <= i < 60:
            x = 10 + 3 * (i - 30)
            gray[40:80, x:x + 20] = 10
        closed += analyser.feed(Frame(i, i / 10, 1_767_225_600 + i / 10, no_image, gray))
    closed += analyser.finish()
    assert closed and all(c.image is None for c in closed)
    assert closed[0].event.peak_boxes and closed[0].event.peak_score > 0


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_a_snapshot_decode_leaves_only_its_frame_resident(tmp_path) -> None:
    """frame_at gives the heap its decoders freed back before the BGR conversion (issue 8): once it
    returns, the 720p BGR frame is all it added (the decoders' chroma planes and tables, 3-5 MB
    below the mmap threshold, used to stay resident under the frame until the event was written)."""
    from tests.agent.footage import VTEST, encode_segments, footage

    # the first 30 frames of the real sample clip, scaled to 1280x720 H.264 as a Pi records it
    clip = encode_segments(footage(VTEST), tmp_path, seg_s=60, max_frames=30, size=(1280, 720))[0].path
    code = ("import sys; from pathlib import Path; from agent.memory import release_free_heap, tune_process; "
            "tune_process(); from agent.events.clips import frame_at; "
            "rss = lambda: int(next(l.split()[1] for l in open('/proc/self/status') "
            "if l.startswith('VmRSS'))) * 1024; clip = Path(sys.argv[1]); "
            "frame_at(clip, 0.5); release_free_heap(); before = rss(); img = frame_at(clip, 2.5); "
            "print(rss() - before, img.nbytes, img.shape)")
    out = fresh_python("-c", code, str(clip))
    added, nbytes, shape = out.stdout.split(maxsplit=2)
    assert shape.strip() == "(720, 1280, 3)"
    assert int(added) < int(nbytes) + 2**20
