"""The upload service alone in a process, for the power-cut test (killed with SIGKILL, restarted).

Usage: python -m tests.upload.uploader_proc CONFIG.json ; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

from agent.clock import SystemClock
from agent.config import parse_config
from agent.upload.worker import RetryPolicy, UploadService


def main(path: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    cfg = parse_config(json.loads(Path(path).read_text()), path, env={})
    policy = RetryPolicy(
        transient_initial_s=0.1, transient_max_s=0.5, refused_initial_s=0.5, poll_s=0.2, status_s=0.2
    )
    svc = UploadService(cfg, SystemClock(), policy)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    svc.start()
    done.wait()
    svc.stop()
    return 0 if svc.join(10) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
