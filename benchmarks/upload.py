"""Upload benchmark: goodput through a throttled 4G-like link, snapshot latency, bytes re-sent after a cut.

Runs the real UploadService against moto's S3 server through tests/upload/faultproxy.py (2 Mbit/s and
512 kbit/s), with a plain boto3 upload_file through the same link as baseline; meanwhile, each on its
own link, three-part clips at 256 kbit/s, 512 kbit/s and 2 Mbit/s, clean and with a cut, with their
own boto3 baselines (upload_slow.py). Writes benchmarks/results/upload.json. Takes about 7.5 minutes
(the 256 kbit/s cases: 11 MB at 32 kB/s).
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import others_may_run_beside, write_results  # noqa: E402
from upload_slow import LINKS, PART, run_all, wait_ready  # noqa: E402

from agent.clock import SystemClock  # noqa: E402
from agent.events.outbox import publish_event  # noqa: E402
from agent.upload.intake import object_prefix  # noqa: E402
from agent.upload.link import choose_part_size  # noqa: E402
from agent.upload.worker import RetryPolicy, UploadService  # noqa: E402
from tests.upload.conftest import ADMIN, REGION, make_config, publish  # noqa: E402
from tests.upload.faultproxy import FaultProxy  # noqa: E402

MIB = 1024 * 1024
LATENCY_S = 0.025  # one-way, so a 50 ms round trip like a good 4G link
CUT_CLIP_BYTES = 40_000_000  # the clip of the cut case (resend_after_cut)
POLICY = RetryPolicy(transient_initial_s=0.2, transient_max_s=1.0, poll_s=0.5, status_s=0.5)
log = logging.getLogger("bench")


def wait_for(client: Any, bucket: str, key: str, timeout: float) -> float:
    """Poll the server directly (not through the link) until `key` exists; return the monotonic time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.head_object(Bucket=bucket, Key=key)
            return time.monotonic()
        except client.exceptions.ClientError:
            time.sleep(0.02)
    raise TimeoutError(f"{key} did not arrive within {timeout} s")


class Bench:
    def __init__(self, moto_url: str, proxy: FaultProxy, work: Path) -> None:
        self.s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION, **ADMIN)
        self.proxy = proxy
        self.work = work
        self.n = 0

    def bucket(self) -> str:
        self.n += 1
        name = f"bench-{self.n}-{os.getpid()}"
        self.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        return name

    def agent_goodput(self, rate_bps: float, clip_size: int, **upload: Any) -> dict[str, float]:
        """Publish one event to an idle agent; goodput = bytes delivered / time to the verified clip."""
        bucket, data = self.bucket(), self.work / f"agent-{self.n}"
        cfg = make_config(data, self.proxy.url, bucket, timeout_s=30, **upload)
        self.proxy.link.rate_bps, self.proxy.link.latency_s = rate_bps, LATENCY_S
        svc = UploadService(cfg, SystemClock(), POLICY)
        svc.start()
        try:
            wait_ready(data)  # an idle agent, watching the outbox
            rec = publish(data, time.time() - 60, os.urandom(clip_size), snapshot=os.urandom(30_000),
                          publish_record=False)  # footage written first, as the recorder does
            t0 = time.monotonic()
            publish_event(data, rec)  # goodput is timed from the record's publication
            snap = wait_for(self.s3, bucket, object_prefix(cfg, rec) + "snapshot.jpg", 60)
            done = wait_for(self.s3, bucket, object_prefix(cfg, rec) + "clip.mp4", 600)
        finally:
            svc.stop()
            svc.join(10)
        manifest = (data / Path(rec.files[0].path).parent / "manifest.json").stat().st_size
        payload = sum(f.size for f in rec.files) + manifest
        elapsed = done - t0
        return {
            "goodput_ratio": payload * 8 / elapsed / rate_bps,
            "elapsed_s": elapsed,
            "payload_bytes": payload,
            "snapshot_latency_s": snap - t0,
        }

    def baseline_goodput(self, rate_bps: float, size: int) -> dict[str, float]:
        """Plain boto3 upload_file of the same bytes through the same link."""
        bucket = self.bucket()
        path = self.work / f"baseline-{self.n}.bin"
        path.write_bytes(os.urandom(size))
        self.proxy.link.rate_bps, self.proxy.link.latency_s = rate_bps, LATENCY_S
        client = boto3.client("s3", endpoint_url=self.proxy.url, region_name=REGION, **ADMIN)
        t0 = time.monotonic()
        client.upload_file(
            str(path),
            bucket,
            "baseline.bin",
            Config=TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB),
        )
        elapsed = time.monotonic() - t0
        return {"goodput_ratio": size * 8 / elapsed / rate_bps, "elapsed_s": elapsed, "payload_bytes": size}

    def snapshot_latency(self, rate_bps: float, runs: int = 3) -> dict[str, float]:
        """Time from publication to snapshot in the bucket, with the bulk lane busy with an earlier clip."""
        bucket, data = self.bucket(), self.work / f"latency-{self.n}"
        cfg = make_config(data, self.proxy.url, bucket, timeout_s=30)
        self.proxy.link.rate_bps, self.proxy.link.latency_s = rate_bps, LATENCY_S
        svc = UploadService(cfg, SystemClock(), POLICY)
        svc.start()
        idle, busy = [], []
        try:
            wait_ready(data)
            base = time.time() - 3600
            for i in range(runs):
                t0 = time.monotonic()
                rec = publish(data, base + i * 60, os.urandom(200_000), snapshot=os.urandom(30_000))
                idle.append(wait_for(self.s3, bucket, object_prefix(cfg, rec) + "snapshot.jpg", 30) - t0)
                wait_for(self.s3, bucket, object_prefix(cfg, rec) + "clip.mp4", 60)
            publish(data, base + 1000, os.urandom(3 * MIB))  # a clip keeps the bulk lane busy
            time.sleep(1.0)
            for i in range(runs):
                t0 = time.monotonic()
                rec = publish(data, base + 2000 + i * 60, os.urandom(100_000), snapshot=os.urandom(30_000))
                busy.append(wait_for(self.s3, bucket, object_prefix(cfg, rec) + "snapshot.jpg", 30) - t0)
        finally:
            svc.stop()
            svc.join(10)
        return {"idle_s": statistics.median(idle), "busy_s": statistics.median(busy)}

    def resend_after_cut(self, part_mb: int = 8) -> dict[str, float]:
        """A 40 MB clip, every connection reset once 20 MiB have gone up: bytes sent beyond the payload.
        The agent starts on S3's smallest part (5 MiB) on a link it has not measured, so the reset comes
        as part 4's last bytes go up, before its answer: the worst case, the whole part is sent again."""
        bucket, data = self.bucket(), self.work / f"cut-{self.n}"
        cfg = make_config(data, self.proxy.url, bucket, part_size_mb=part_mb, multipart_threshold_mb=part_mb)
        self.proxy.link.rate_bps, self.proxy.link.latency_s = 0, 0
        rec = publish(data, time.time() - 60, os.urandom(CUT_CLIP_BYTES))
        start_up = self.proxy.link.bytes_up
        self.proxy.reset_after(20 * MIB)
        svc = UploadService(cfg, SystemClock(), POLICY)
        svc.start()
        try:
            wait_for(self.s3, bucket, object_prefix(cfg, rec) + "clip.mp4", 120)
            time.sleep(0.5)
        finally:
            svc.stop()
            svc.join(10)
        manifest = (data / Path(rec.files[0].path).parent / "manifest.json").stat().st_size
        payload = sum(f.size for f in rec.files) + manifest
        return {
            "resent_bytes": self.proxy.link.bytes_up - start_up - payload,
            # the part the agent chose (unmeasured link: S3's smallest), not the largest allowed
            "part_size_bytes": choose_part_size(CUT_CLIP_BYTES, None, part_mb * MIB),
        }

    def bandwidth_cap(self, cap_kbps: float = 1000.0, size: int = 1_200_000) -> dict[str, float]:
        """The agent's own cap (cfg.upload.bandwidth_limit_kbps) on an unthrottled link."""
        r = self.agent_goodput(1e12, size, bandwidth_limit_kbps=cap_kbps)
        rate = r["payload_bytes"] * 8 / r["elapsed_s"]
        return {"cap_bps": cap_kbps * 1000, "measured_bps": rate, "ratio": rate / (cap_kbps * 1000)}


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = FaultProxy(host, port).start()
    out: dict[str, Any] = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            b = Bench(f"http://{host}:{port}", proxy, Path(tmp))
            t = time.monotonic()
            slow: dict[str, Any] = {}
            slow_thread = threading.Thread(target=lambda: slow.update(run_all(Path(tmp))))
            slow_thread.start()  # the slow links run alongside the cases below, each on its own link
            a2 = b.agent_goodput(2e6, 6 * MIB, part_size_mb=5, multipart_threshold_mb=5)
            base2 = b.baseline_goodput(2e6, a2["payload_bytes"])
            a512 = b.agent_goodput(512e3, 1_400_000)
            base512 = b.baseline_goodput(512e3, a512["payload_bytes"])
            lat = b.snapshot_latency(2e6)
            cut = b.resend_after_cut()
            cap = b.bandwidth_cap()
            others_may_run_beside()  # only the throttled multipart links are left: mostly waiting
            slow_thread.join()
            for k in LINKS:
                out[f"multipart_goodput_ratio_{k.name}"] = slow[k.name]["agent"].get("goodput_ratio")
            out["multipart_resent_bytes_after_cut"] = max(
                slow[k.name]["agent_cut"].get("resent_bytes", 10**12) for k in LINKS
            )
            out["multipart_part_size_bytes"] = PART
            for k in LINKS:
                base = slow[k.name]["baseline"]
                out[f"baseline_boto3_multipart_goodput_ratio_{k.name}"] = base.get("goodput_ratio")
            out["multipart_links"] = {
                k.name: {"rate_bps": k.rate_bps, "rtt_ms": k.rtt_s * 1000, "clip_bytes": k.clip_bytes}
                for k in LINKS
            }
            out.update(
                {
                    "goodput_ratio_2mbit": round(a2["goodput_ratio"], 3),
                    "goodput_ratio_512kbit": round(a512["goodput_ratio"], 3),
                    "snapshot_latency_s_2mbit": round(lat["idle_s"], 3),
                    "snapshot_latency_s_2mbit_bulk_busy": round(lat["busy_s"], 3),
                    "resent_bytes_after_cut": int(cut["resent_bytes"]),
                    "part_size_bytes": int(cut["part_size_bytes"]),
                    "baseline_boto3_upload_file_goodput_ratio_2mbit": round(base2["goodput_ratio"], 3),
                    "baseline_boto3_upload_file_goodput_ratio_512kbit": round(base512["goodput_ratio"], 3),
                    "agent_bandwidth_cap_ratio": round(cap["ratio"], 3),
                    "details": {
                        "agent_2mbit": a2,
                        "agent_512kbit": a512,
                        "baseline_2mbit": base2,
                        "baseline_512kbit": base512,
                        "snapshot_latency": lat,
                        "cut": cut,
                        "cap": cap,
                        "multipart": slow,
                    },
                    "targets": {
                        "goodput_ratio": ">= 0.9",
                        "snapshot_latency_s_2mbit": "< 3",
                        "resent_bytes_after_cut": "<= part_size_bytes",
                        "multipart_goodput_ratio": ">= 0.95 (default settings)",
                        "multipart_resent_bytes_after_cut": "<= multipart_part_size_bytes (worst link)",
                    },
                    "link_rtt_ms": LATENCY_S * 2000,
                    "duration_s": round(time.monotonic() - t, 1),
                }
            )
    finally:
        proxy.stop()
        server.stop()
    write_results("upload", out, shown={k: v for k, v in out.items() if k != "details"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
