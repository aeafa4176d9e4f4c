"""`cctv-agent run --config FILE`: wires every stage of the unit explicitly and handles signals.

source -> recorder + detector -> events -> outbox (agent.pipeline), plus the upload and status
services when enabled. SIGTERM/SIGINT finish the open segment and event, then exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from agent.clock import Clock, ClockWatch, SystemClock, probe_timedatectl
from agent.config import Config, load_config
from agent.db import connect, db_path
from agent.detection.masks import LiveMasker
from agent.errors import AgentError, InputError
from agent.events.outbox import EVENTS_DIR, OUTBOX_DIR, EventRecord, read_event
from agent.events.writer import EventWriter
from agent.fsutil import remove_stale_tmp
from agent.memory import release_free_heap, tune_process
from agent.pipeline import Pipeline, Recorder
from agent.recording.gaps import record_lost_segments
from agent.recording.housekeeping import RetentionService, room_maker
from agent.recording.segments import SegmentIndex, make_recorder, recordings_dir
from agent.sources import FrameSource, make_source
from agent.sources.supervisor import SupervisedSource
from agent.state import StateStore
from agent.status.reload import ConfigWatcher
from agent.status.sdnotify import Notifier
from agent.threads import Service

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="unit config (TOML)")


# Footage and agent.db are personal data: nothing for other users, even when started by hand from a
# shell (umask 022) rather than by systemd (UMask=0027). Clips and snapshots also set 0640 themselves.
UMASK = 0o027


def main(args: argparse.Namespace) -> int:
    os.umask(UMASK)
    tune_process()  # malloc and huge pages, before any thread or frame exists (agent/memory.py)
    cfg = resolve_paths(load_config(args.config), Path.cwd())
    watcher = ConfigWatcher(args.config, cfg, transform=lambda c: resolve_paths(c, Path.cwd()))

    def on_pipeline(pipeline: Pipeline) -> None:  # config reload: a valid new file reaches the pipeline
        watcher.subscribe(pipeline.apply_config)
        watcher.start()

    try:
        result = run(cfg, ClockWatch(SystemClock(), probe_timedatectl), install_signals=True,
                     on_pipeline=on_pipeline, on_service=watcher.subscribe)
    finally:
        watcher.stop()
    print(summary(cfg, result))
    return 0


def resolve_paths(cfg: Config, base: Path) -> Config:
    """Relative paths in a config (data_dir, a file source's video) are taken from the directory the
    agent is started in (documented in firmware_config/agent.example.toml)."""
    unit = cfg.unit.model_copy(update={"data_dir": (base / cfg.unit.data_dir).resolve()})
    camera = cfg.camera
    if camera.source == "file" and camera.device:
        camera = camera.model_copy(update={"device": str((base / camera.device).resolve())})
    return cfg.model_copy(update={"unit": unit, "camera": camera})


@dataclass
class RunResult:
    events: list[EventRecord] = field(default_factory=list)
    outbox: list[Path] = field(default_factory=list)
    frames: int = 0
    first_frame: tuple[float, float] | None = None  # (monotonic, wall) of the first frame
    dropped: dict[str, int] = field(default_factory=dict)
    signalled: bool = False


def run(cfg: Config, clock: Clock, install_signals: bool = False, stop: threading.Event | None = None,
        on_pipeline: Callable[[Pipeline], None] | None = None,
        on_service: Callable[[Callable[[Config], None]], None] | None = None) -> RunResult:
    """Run the unit until the source ends (a non-looping file), a signal, or `stop` is set.
    `on_pipeline` gets the started pipeline (config reload subscribes its apply_config)."""
    check_source(cfg)
    data_dir = cfg.unit.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    for folder in (data_dir / EVENTS_DIR, data_dir / OUTBOX_DIR):
        remove_stale_tmp(folder)
    record_gaps(cfg, clock)  # before the recorder deletes the unfinished segment of a dead run
    recording_done = threading.Event()
    masker = LiveMasker([z.polygon for z in cfg.privacy.masks])  # shared: recording and snapshots
    writer = EventWriter(cfg, data_dir, clock, recording_done, masker=masker, room=room_maker(cfg, clock))
    # pipeline and writer are stopped by the pipeline (their own order: segment, event, files)
    live = cfg.camera.source != "file" or cfg.camera.pace == "realtime"
    retention = RetentionService(cfg, clock)  # woken after each segment: a filling disk is caught at once
    pipeline = Pipeline(cfg, data_dir, clock, source_factory(cfg, clock),
                        recorder_factory(cfg, clock, masker, retention.segment_done), writer, recording_done,
                        live=live, masker=masker)
    result = RunResult()
    restore = _install_signals(pipeline, result) if install_signals else None
    services: list[Service] = []
    try:
        pipeline.start()
        pipeline.wait_opened()  # nothing else starts for a unit that cannot record
        if on_pipeline is not None:
            on_pipeline(pipeline)
        retention.start()
        services = [retention, *start_services(cfg, clock, writer, on_service)]  # status last: READY=1
        release_free_heap()  # what start-up (imports, config, clients) freed goes back (agent/memory.py)
        while pipeline.is_alive():
            if stop is not None and stop.is_set():
                pipeline.stop()
            pipeline.join(0.2)
    finally:
        if restore:
            restore()
        stop_services(services)
        record_stopped(cfg, clock)
    if isinstance(pipeline.error, AgentError):
        raise pipeline.error
    if pipeline.error is not None:
        raise AgentError(f"pipeline failed: {pipeline.error}") from pipeline.error
    if pipeline.frames == 0:
        raise InputError("the camera source delivered no frames")
    result.outbox = list(writer.published)
    result.events = [read_event(p) for p in writer.published]
    result.frames, result.first_frame = pipeline.frames, pipeline.first_frame
    result.dropped = dict(pipeline.dropped)
    return result


def check_source(cfg: Config) -> None:
    """Fail fast (exit 2) on a missing video file or camera device node, before anything is created."""
    cam = cfg.camera
    if cam.source == "file" and not Path(cam.device).is_file():
        raise InputError(f"camera.device: video file not found: {cam.device}")
    if cam.source == "opencv" and cam.device.startswith("/dev/") and not Path(cam.device).exists():
        raise InputError(f"camera.device: camera device {cam.device} does not exist")


def source_factory(cfg: Config, clock: Clock) -> Callable[[StateStore], FrameSource]:
    """The configured camera, supervised (reopened on stalls), not yet opened. The pipeline needs
    no full frames from a camera with a hardware encoder (only the recorder would use them)."""
    def make(state: StateStore) -> FrameSource:
        return SupervisedSource(make_source(cfg.camera, clock, full_frames=False), cfg.camera, clock, state)
    return make


def recorder_factory(cfg: Config, clock: Clock, masker: LiveMasker,
                     on_segment: Callable[[], None] | None = None
                     ) -> Callable[[sqlite3.Connection, StateStore, FrameSource], Recorder]:
    """The hardware recorder for picamera2 (attached to the source), else the software one;
    `on_segment` is called (must not block) after each published segment."""
    def make(conn: sqlite3.Connection, state: StateStore, source: FrameSource) -> Recorder:
        return make_recorder(cfg, clock, SegmentIndex(conn), masker, source, state,
                             on_segment=(lambda _seg: on_segment()) if on_segment else None)
    return make


def record_gaps(cfg: Config, clock: Clock) -> None:
    """Footage a dead run lost (its segment in progress) becomes a recorded, reported gap; then this
    run is entered in the `agent` state row (pid, boot): `cctv-agent status` tells a stopped agent
    from a running one by it, and the next start tells a power cut from a killed process."""
    conn = connect(db_path(cfg.unit.data_dir))
    try:
        record_lost_segments(conn, recordings_dir(cfg.unit.data_dir), clock, boot_id())
    except (OSError, sqlite3.Error) as err:
        log.error("could not record the footage lost by the previous run: %s", err)
    try:
        StateStore(conn, clock).report("agent", state="running", pid=os.getpid(), boot_id=boot_id(),
                                       started_at=clock.time())
    finally:
        conn.close()


def record_stopped(cfg: Config, clock: Clock) -> None:
    """A clean stop: the `agent` row says so (a kill -9 leaves it `running`, with a dead pid)."""
    conn = connect(db_path(cfg.unit.data_dir))
    try:
        state = StateStore(conn, clock)
        row = state.read("agent")
        before = row.state if row else {}
        state.report("agent", **(before | {"state": "stopped", "stopped_at": clock.time()}))
    except sqlite3.Error as err:
        log.error("could not record the stop: %s", err)
    finally:
        conn.close()


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def start_services(cfg: Config, clock: Clock, writer: EventWriter,
                   on_service: Callable[[Callable[[Config], None]], None] | None = None) -> list[Service]:
    """The optional services, built explicitly: upload when enabled, then status (always: it sends
    READY=1 and feeds the watchdog; heartbeats only when enabled). Imported here so a unit that does
    not upload never loads boto3; a missing module is an error, never skipped."""
    services: list[Service] = []
    upload = None
    if cfg.upload.enabled:
        from agent.upload.worker import UploadService

        upload = UploadService(cfg, clock)
        upload.start()
        services.append(upload)
    from agent.status.service import StatusService

    status = StatusService(cfg, clock, on_instruction=upload.on_instruction if upload else None)
    writer.listeners.append(lambda _rec: status.trigger("event"))  # a heartbeat at once on an event
    if on_service is not None:
        on_service(status.apply_config)  # config reload reaches the status service too
    status.start()
    services.append(status)
    return services


def stop_services(services: list[Service]) -> None:
    for service in services:
        service.stop()
    for service in services:
        if not service.join(30.0):
            log.error("%s did not stop within 30 s", service.name)


def _install_signals(pipeline: Pipeline, result: RunResult) -> Callable[[], None]:
    notifier = Notifier()  # systemd learns at once that the stop has begun (no-op outside systemd)

    def handler(signum: int, _frame: FrameType | None) -> None:
        if not pipeline.stopping:
            log.info("%s: finishing the open segment and event, then stopping",
                     signal.Signals(signum).name)
            notifier.notify("STOPPING=1", "STATUS=stopping: finishing the open segment and event")
        result.signalled = True
        pipeline.stop()

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)
    return restore


def summary(cfg: Config, result: RunResult) -> str:
    """What `make demo` ends with: how many events and where their clips and snapshots are."""
    data_dir = cfg.unit.data_dir
    lines = [f"{result.frames} frames recorded: segments in {recordings_dir(data_dir)}",
             f"{len(result.events)} event(s): clips and snapshots in {data_dir / EVENTS_DIR}, "
             f"records in {data_dir / OUTBOX_DIR}"]
    for rec in result.events:
        link = f", continues {rec.previous_event_id}" if rec.previous_event_id else ""
        lines.append(f"  {rec.event_id}: motion {rec.start} .. {rec.end}, peak {rec.peak_score:.3f}{link}")
        lines.extend(f"    {f.role:<15} {data_dir / f.path}" for f in rec.files)
    return "\n".join(lines)
