"""Benchmark: building and verifying an evidence package for one hour of continuous footage.

The hardest case the issue names is a time-range request (at most 24 h) for footage with no motion
event: every segment of the range is packaged. One hour of 10 s segments (360 real H.264 segments,
~480x360 at ~400 kbit/s) signed by a unit is put in a moto S3 server; then, in the same run:
  - baseline: reading every object from S3 and hashing it (the least any export must do);
  - the package build (read + check against the signed manifest and S3, BagIt sha256+sha512
    manifests, joined working copy, continuity, zip, Ed25519 signature);
  - verify.py on the unzipped package, against the baseline `sha256sum -c` + `sha512sum -c`.
Writes benchmarks/results/evidence.json.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from report import write_results  # noqa: E402

from agent.clock import ManualClock  # noqa: E402
from control_room import create_app, provision  # noqa: E402
from control_room.config import Settings  # noqa: E402
from control_room.db import get_engine, session_scope  # noqa: E402
from control_room.evidence import disclosure, package, signing, sources  # noqa: E402
from control_room.evidence.models import DisclosureRequest  # noqa: E402
from control_room.models import Instruction, User  # noqa: E402
from tests.evidence.unitsim import SOURCE_CLIP, make_segments, upload_record  # noqa: E402

UNIT = "herts-mcu-001"
SEGMENT_S = 10
HOUR_SEGMENTS = 360
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "eu-west-2"}


def main() -> int:
    if not SOURCE_CLIP.exists():
        print(f"real footage not found at {SOURCE_CLIP}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="cctv-evidence-bench-"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        return run(work, url)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, url: str) -> int:
    t0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    distinct = make_segments(work / "distinct", UNIT, t0, count=6, seconds=SEGMENT_S)
    segs = []
    (work / "hour").mkdir()
    for i in range(HOUR_SEGMENTS):  # the six real segments, repeated under the hour's names
        t = t0 + timedelta(seconds=i * SEGMENT_S)
        path = work / "hour" / f"{UNIT}_{t:%Y%m%dT%H%M%S}.000Z.mp4"
        shutil.copyfile(distinct[i % len(distinct)], path)
        segs.append(path)
    payload = sum(p.stat().st_size for p in segs)
    client = boto3.client("s3", endpoint_url=url, **KEYS)
    client.create_bucket(Bucket="cctv-footage", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"},
                         ObjectLockEnabledForBucket=True)
    settings = Settings(instance_dir=work / "instance", database_url=f"sqlite:///{work / 'cr.db'}",
                        secret_key="benchmark-secret-key-0123456789", s3_endpoint_url=url,
                        s3_access_key_id="testing", s3_secret_access_key="testing")
    clock = ManualClock(wall=(t0 + timedelta(hours=2)).timestamp())
    app = create_app(settings, migrate=True, clock=clock)
    engine = get_engine(app)
    with session_scope(engine) as s:
        provision.create_council(s, "herts", "Hertfordshire")
        provision.create_unit(s, UNIT, "herts")
        user = provision.create_user(s, "admin1", "admin", "benchmark password 1", "herts")
    with session_scope(engine) as s:
        user = s.get(User, user.id)
        form = disclosure.RequestForm(
            officer_name="PC Jane Smith", officer_force="Hertfordshire Constabulary", officer_collar="4321",
            officer_email="jane.smith@herts.police.invalid", authorising_name="Alan Jones",
            authorising_rank="Inspector", crime_ref="41/12345/26", lawful_basis="dpa_sch2_para2",
            reason="benchmark", unit_id=UNIT, range_start=t0, range_end=t0 + timedelta(hours=1))
        req = disclosure.create(s, form, user, clock.now(), timedelta(hours=24), None)
        disclosure.approve(s, req, user, clock.now())
        rid = req.id
        ins = s.scalars(select_instruction(req.instruction_ids[0])).one()
        event_id = sources.range_event_id(UNIT, ins.instruction_id)
    upload_record(client, "cctv-footage", UNIT, event_id, t0, t0 + timedelta(hours=1), segs,
                  Ed25519PrivateKey.generate())

    start = time.perf_counter()
    for seg in segs:  # baseline: read and hash every object once
        key = f"units/{UNIT}/2026/11/18/{event_id}/{seg.name}"
        body = client.get_object(Bucket="cctv-footage", Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
    baseline_read_s = time.perf_counter() - start

    with app.app_context(), session_scope(engine) as s:
        cfg = package.BuildConfig(client=client, bucket="cctv-footage", s3_prefix="units",
                                  evidence_dir=work / "evidence",
                                  key=signing.load_or_create_key(work / "cr.pem"), organisation="Herts")
        start = time.perf_counter()
        pkg = package.build(s, s.get(DisclosureRequest, rid), s.get(User, user.id), clock.now(), cfg)
        build_s = time.perf_counter() - start
        zip_path = package.package_path(cfg.evidence_dir, pkg)
        zip_size = pkg.size

    out = work / "unzipped"
    shutil.unpack_archive(str(zip_path), str(out))
    bag = next(out.iterdir())
    start = time.perf_counter()
    verified = subprocess.run([sys.executable, "-I", "verify.py"], cwd=bag, capture_output=True, text=True,
                              check=False)
    verify_s = time.perf_counter() - start
    assert verified.returncode == 0, verified.stdout
    start = time.perf_counter()
    for tool, manifest in (("sha256sum", "manifest-sha256.txt"), ("sha512sum", "manifest-sha512.txt")):
        subprocess.run([tool, "--quiet", "-c", manifest], cwd=bag, check=True)
    coreutils_s = time.perf_counter() - start

    from control_room.evidence.standalone_verify import ed25519_verify

    key = Ed25519PrivateKey.generate()
    raw = signing.raw_public(key)
    message = b"x" * 1000
    sig = key.sign(message)
    start = time.perf_counter()
    for _ in range(5):
        assert ed25519_verify(raw, message, sig)
    ed_ms = (time.perf_counter() - start) / 5 * 1000

    mb = payload / 1e6
    results = {
        "benchmark": "evidence package for 1 h of continuous footage (a no-motion time-range request)",
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "case": {"segments": HOUR_SEGMENTS, "segment_s": SEGMENT_S, "payload_mb": round(mb, 1),
                 "zip_mb": round(zip_size / 1e6, 1)},
        "baseline_s3_read_and_sha256_s": round(baseline_read_s, 2),
        "package_build_s": round(build_s, 2),
        "package_build_mb_per_s": round(mb / build_s, 1),
        "build_vs_baseline": round(build_s / baseline_read_s, 2),
        "verify_py_s": round(verify_s, 2),
        "baseline_sha256sum_sha512sum_s": round(coreutils_s, 2),
        "verify_vs_coreutils": round(verify_s / coreutils_s, 2),
        "pure_python_ed25519_verify_ms": round(ed_ms, 1),
        "extrapolated_24h_build_min": round(build_s * 24 / 60, 1),
    }
    write_results("evidence", results)
    return 0


def select_instruction(instruction_id: str):  # noqa: ANN201
    from sqlalchemy import select

    return select(Instruction).where(Instruction.instruction_id == instruction_id)


if __name__ == "__main__":
    sys.exit(main())
