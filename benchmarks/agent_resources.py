"""Agent resources benchmark: RSS, heap and CPU of `cctv-agent run` recording 720p at 10 fps with
upload (local moto S3) and status (local control room) on; writes results/agent_resources.json.

Method (also in docs/architecture.md, "Memory"):
- Footage. The forecourt clip (../shared/data/opencv_vtest_480x360.avi, real pedestrians, 79.5 s at
  10 fps) upscaled to 1280x720 and encoded as H.264 at run time, then played by the agent's file
  source in a loop at real time (`pace = "realtime"`, so the capture path behaves like a camera:
  full queues drop frames instead of waiting). People walk in every frame, so events run back to
  back up to `max_clip_s` and every clip (60 s, about 11 MB, multipart) and snapshot is uploaded.
- Services. Upload to a moto S3 server over HTTP and heartbeats to the real control room app
  (SQLite, waitress), both in this process; the agent is a separate process (`cctv-agent run`).
  `retention.min_free_percent = 2`: the shared machine's disk is about 90 % full, where the default
  10 % reserve would have retention delete all footage (and the events lose their clips).
- Measures. Every `--interval` seconds: VmRSS (and its parts RssAnon, RssFile: library pages,
  RssShmem: mapped camera buffers) and user+system CPU time of the agent process from /proc;
  /proc/PID/smaps_rollup and the resident memory by mapping at the end. `rss_mb` is the peak
  (VmHWM); `rss_growth_mb_per_hour` is the least-squares slope of RSS over the second half of the
  run (after start-up and the first events), per hour;
  `cpu_percent_of_one_core` is CPU seconds over wall seconds after the first minute.
- Heap. A second, shorter agent process runs the same command under tracemalloc (one frame per
  trace; tracemalloc itself costs memory, so this one is not used for RSS): traced Python and NumPy
  memory over time and the top allocation sites at its end.
- Before. With `--before REV` the agent of git revision REV (its `agent/` package exported to a
  temporary folder) runs side by side over the same footage and services, for the same duration
  (`--after REV` likewise pins the measured agent to a revision).
- Configurations (`--sources`, default both, side by side): `picamera2` is what a Pi unit runs
  (the issue's `rss_mb`): the agent's picamera2 path against the fake picamera2 (tests/fakes) in its
  hardware mode, which has a Pi's memory placement: a "sensor" child process writes the clip's
  frames into shared buffers the agent maps (the ISP's dmabufs) and an "encoder" child reads the
  main stream from them and returns H.264 (the VPU behind V4L2 M2M). Their CPU and memory are
  reported apart (`hardware_edge`): on a Pi that work is done by the ISP and VPU, not the agent.
  `file` is the file source decoding the clip in the agent process and libx264 encoding in it
  (tests and the demo; `file_source_*` keys). `--before` runs the revision with each source, or
  with those `--before-sources` names (2 cores hold four agents with their hardware edges, not more).
- `--duration` (default 120 s, what `make bench` runs) sets the length; the committed
  results/agent_resources.json is from `--duration 3600 --before <main before this work>`; a run
  shorter than an hour writes results/agent_resources_<N>s.json (not committed) instead, unless
  `--out` names the file (the JSON says the run's length in `_meta.duration_s`).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import av
import boto3
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_procs import Agent, export_revision, summarise  # noqa: E402
from report import RESULTS_DIR, write_results  # noqa: E402

from tests.agent.footage import VTEST  # noqa: E402

REGION = "eu-west-2"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
SIZE, FPS = (1280, 720), 10
FAKES = ROOT / "tests" / "fakes"  # the fake picamera2 package

CLI = "import sys; from agent.cli import main; sys.exit(main())"
TRACE_CHILD = """
import sys, threading, time, tracemalloc, json
tracemalloc.start(1)
out, every = sys.argv[1], float(sys.argv[2])
def dump():
    t0 = time.monotonic()
    while True:
        time.sleep(every)
        cur, peak = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().statistics("lineno")[:15]
        rec = {"t": round(time.monotonic() - t0, 1), "traced_mb": round(cur / 2**20, 2),
               "traced_peak_mb": round(peak / 2**20, 2),
               "top": [[str(s.traceback[0]), round(s.size / 2**20, 3), s.count] for s in top]}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\\n")
threading.Thread(target=dump, daemon=True).start()
from agent.cli import main
sys.exit(main(sys.argv[3:]))
"""


def make_footage(folder: Path) -> Path:
    """The real forecourt clip upscaled to 1280x720 H.264 at 10 fps (made at run time)."""
    out_path = folder / "forecourt_720p.mp4"
    cap = cv2.VideoCapture(str(VTEST))
    with av.open(str(out_path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20", "g": "20"}
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            big = cv2.resize(frame, SIZE, interpolation=cv2.INTER_CUBIC)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="bgr24")))
        out.mux(stream.encode())
    cap.release()
    return out_path


class Services:
    """moto S3 and the control room, both over HTTP on 127.0.0.1 in this process."""

    def __init__(self, folder: Path) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

        self.s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.s3.start()
        host, port = self.s3.get_host_and_port()
        self.s3_url = f"http://{host}:{port}"
        self.client = boto3.client("s3", endpoint_url=self.s3_url, region_name=REGION, **KEYS)
        from control_room import create_app, provision
        from control_room.config import Settings
        from control_room.db import get_engine, session_scope
        from tests.control_room.conftest import serve_in_thread

        settings = Settings(instance_dir=folder, database_url=f"sqlite:///{folder / 'cr.db'}",
                            secret_key=uuid.uuid4().hex * 2, heartbeat_interval_s=60, sample_interval_s=0)
        app = create_app(settings, migrate=True)
        self.engine = get_engine(app)
        with session_scope(self.engine) as s:
            provision.create_council(s, "bench", "Bench")
        self._session_scope, self._provision = session_scope, provision
        self.room = serve_in_thread(app)
        self.room_url = f"http://127.0.0.1:{self.room.port}"

    def unit(self, unit_id: str) -> tuple[str, str]:
        """A bucket and a control-room token for one agent."""
        bucket = f"bench-{unit_id}"
        self.client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        with self._session_scope(self.engine) as s:
            _, token = self._provision.create_unit(s, unit_id, "bench")
        return bucket, token

    def heartbeats(self, unit_id: str) -> int:
        from sqlalchemy import text

        with self._session_scope(self.engine) as s:
            sql = text("SELECT count(*) FROM heartbeat_samples h JOIN units u ON u.id = h.unit_pk "
                       "WHERE u.unit_id = :u")
            return int(s.scalar(sql, {"u": unit_id}) or 0)

    def objects(self, bucket: str) -> tuple[int, int]:
        n = size = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                n, size = n + 1, size + obj["Size"]
        return n, size

    def stop(self) -> None:
        self.room.stop()
        self.s3.stop()


def write_config(folder: Path, unit_id: str, video: Path, services: Services, source: str = "file") -> Path:
    bucket, token = services.unit(unit_id)
    cfg = folder / f"{unit_id}.toml"
    camera = (f'source = "file"\ndevice = "{video}"\nloop = true\npace = "realtime"' if source == "file"
              else 'source = "picamera2"\ndevice = ""')
    cfg.write_text(f"""
[unit]
id = "{unit_id}"
data_dir = "{folder / unit_id}"
[camera]
{camera}
width = {SIZE[0]}
height = {SIZE[1]}
fps = {FPS}
[retention]
min_free_percent = 2
[upload]
endpoint_url = "{services.s3_url}"
region = "{REGION}"
bucket = "{bucket}"
access_key_id = "{KEYS['aws_access_key_id']}"
secret_access_key = "{KEYS['aws_secret_access_key']}"
monthly_budget_mb = 0
[status]
url = "{services.room_url}"
token = "{token}"
gpsd = ""
modem = false
""")
    cfg.chmod(0o600)
    return cfg


CONFIGURATIONS = {
    "picamera2": "a Pi unit: the agent's picamera2 path; camera frames mapped from a sensor child process, "
                 "H.264 encoded by an encoder child (the ISP and VPU of a Pi), neither in the agent",
    "file": "file source: H.264 decoder and libx264 encoder both in the agent process (tests, demo)",
}


def unit_name(name: str) -> str:
    return name.replace("_", "-")



def read_trace(path: Path) -> dict:
    import json

    text = path.read_text() if path.exists() else ""
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not rows:
        return {}
    half = [r for r in rows if r["t"] >= rows[-1]["t"] / 2]
    slope = (float(np.polyfit([r["t"] / 3600 for r in half], [r["traced_mb"] for r in half], 1)[0])
             if len(half) >= 3 else float("nan"))
    return {"traced_mb_at_end": rows[-1]["traced_mb"], "traced_peak_mb": rows[-1]["traced_peak_mb"],
            "traced_growth_mb_per_hour": round(slope, 2), "top_sites_at_end": rows[-1]["top"],
            "series": {"columns": ["t_s", "traced_mb"], "rows": [[r["t"], r["traced_mb"]] for r in rows]}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=120.0,
                    help="seconds of recording (default 120, for make bench; the committed result: 3600)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--trace-duration", type=float, default=None,
                    help="seconds of the tracemalloc run (default: min(duration, 900); 0 = none)")
    ap.add_argument("--before", metavar="REV", help="also run the agent of this git revision side by side")
    ap.add_argument("--after", metavar="REV",
                    help="measure this git revision's agent instead of the working tree "
                         "(edits during a long run then cannot leak into it)")
    ap.add_argument("--video", type=Path, help="a 1280x720 10 fps video to play instead of making one")
    ap.add_argument("--out", type=Path, help="result file (default: by duration, see the docstring)")
    ap.add_argument("--sources", default="picamera2,file",
                    help="comma-separated configurations run side by side: picamera2 (a Pi: the "
                         "headline figures), file (file source and libx264 in the agent)")
    ap.add_argument("--before-sources", help="configurations of the --before agent (default: --sources)")
    args = ap.parse_args()
    sources = [v.strip() for v in args.sources.split(",") if v.strip()]
    before_sources = ([v.strip() for v in args.before_sources.split(",") if v.strip()]
                      if args.before_sources is not None else sources)
    for given, got in ((args.sources, sources), (args.before_sources, before_sources)):
        if not got or set(got) - {"picamera2", "file"} or len(set(got)) < len(got):
            print(f"benchmarks/agent_resources.py: want picamera2 and/or file, got {given!r}",
                  file=sys.stderr)
            return 2
    if not VTEST.is_file():
        print(f"benchmarks/agent_resources.py: footage missing: {VTEST}", file=sys.stderr)
        return 2
    if args.duration <= 0 or args.interval <= 0:
        print("benchmarks/agent_resources.py: --duration and --interval must be positive", file=sys.stderr)
        return 2
    trace_s = min(args.duration, 900.0) if args.trace_duration is None else args.trace_duration
    out = args.out or (RESULTS_DIR / ("agent_resources.json" if args.duration >= 3600
                                      else f"agent_resources_{int(args.duration)}s.json"))
    work = Path(tempfile.mkdtemp(prefix="cctv-resources-"))
    os.chmod(work, 0o700)
    video = args.video.resolve() if args.video else make_footage(work)
    services = Services(work)
    agent_bin = Path(sys.executable).with_name("cctv-agent")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    agents: dict[str, Agent] = {}
    try:
        paths = {rev: [str(export_revision(rev, work, ROOT))] if rev else []
                 for rev in {args.after, args.before}}

        def env_for(rev: str | None, source: str) -> dict[str, str]:
            if source == "file":
                return {**env, "PYTHONPATH": paths[rev][0]} if paths[rev] else env
            # `import picamera2` gets the fake, in hardware mode, filming the same footage
            return {**env, "PYTHONPATH": os.pathsep.join([*paths[rev], str(FAKES)]),
                    "PICAMERA2_FAKE_HARDWARE": "1", "PICAMERA2_FAKE_SCENE": str(video)}

        for who, rev in (("after", args.after), ("before", args.before)):
            if who == "before" and not rev:
                continue
            for source in sources if who == "after" else before_sources:
                name = who if source == "picamera2" else f"{who}_file"
                cfg = str(write_config(work, unit_name(name), video, services, source))
                # `cctv-agent run`; for a revision the same entry point from that revision's package
                argv = [sys.executable, "-c", CLI] if rev else [str(agent_bin)]
                agents[name] = Agent(name, [*argv, "run", "--config", cfg], env_for(rev, source),
                                     work / f"{name}.log")
        trace = None
        if trace_s > 0:
            trace = Agent("trace", [sys.executable, "-c", TRACE_CHILD, str(work / "trace.jsonl"),
                                    str(max(10.0, trace_s / 60)), "run", "--config",
                                    str(write_config(work, "traced", video, services, sources[0]))],
                          env_for(args.after, sources[0]), work / "trace.log")
        end = time.monotonic() + args.duration
        stop_trace = time.monotonic() + trace_s
        tick = threading.Event()
        while time.monotonic() < end:
            for a in agents.values():
                a.sample()
            dead = [a.name for a in agents.values() if a.proc.poll() is not None]
            if dead:
                print(f"agent(s) {', '.join(dead)} exited early; see {work}", file=sys.stderr)
                break
            if trace is not None and time.monotonic() >= stop_trace:
                trace.stop()
            tick.wait(args.interval)
        results: dict = {}
        for name, a in agents.items():
            peak, maps, rollup = a.peak_mb(), a.smaps(), a.rollup()
            ran = time.monotonic() - a.t0
            code = a.stop()
            unit = unit_name(name)
            results[name] = {**summarise(a, peak, code, args.duration), "resident_by_mapping_at_end": maps,
                             "smaps_rollup_at_end_mb": rollup,
                             "configuration": CONFIGURATIONS["file" if "_file" in name else "picamera2"],
                             "hardware_edge": a.edge_summary(ran),
                             "objects_uploaded": services.objects(f"bench-{unit}")[0],
                             "heartbeats_stored": services.heartbeats(unit),
                             "events_published": len(list((work / unit / "outbox").glob("*.json")))
                             + len(list((work / unit / "outbox").glob("*/*.json")))}
        if trace is not None:
            trace.stop()
            results["tracemalloc"] = {"duration_s": trace_s, "configuration": sources[0],
                                      **read_trace(work / "trace.jsonl")}
    finally:
        for a in agents.values():
            a.stop(30)
        services.stop()
    keys3 = ("rss_mb", "rss_growth_mb_per_hour", "cpu_percent_of_one_core")
    first = "after" if "after" in results else "after_file"
    head = {k: results[first][k] for k in keys3}
    head["configuration"] = results[first]["configuration"]
    if first == "after" and "after_file" in results:
        head |= {f"file_source_{k}": results["after_file"][k] for k in keys3}
    results = {**head, **results, "_meta": {
        "method": "see the module docstring of benchmarks/agent_resources.py",
        "duration_s": args.duration, "interval_s": args.interval,
        "video": "forecourt 1280x720 10 fps H.264, loop", "sources": sources,
        "before_sources": before_sources if args.before else [],
        "before_revision": args.before, "after_revision": args.after or "working tree", "work_dir": str(work),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
                    "note": "shared 2-core machine; several agents and other work ran at once"},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    shown = {k: v for k, v in results.items() if k in head}
    for name in ("after", "after_file", "before", "before_file"):
        if name in results:
            keys = ("rss_mb", "rss_growth_mb_per_hour", "cpu_percent_of_one_core", "objects_uploaded",
                    "heartbeats_stored", "events_published", "exit_code")
            shown[name] = {k: results[name][k] for k in keys}
    write_results(out, results, shown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
