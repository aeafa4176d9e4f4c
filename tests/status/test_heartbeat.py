"""The heartbeat body: documented schema, null blocks for absent sources, under 2 KB at realistic
maxima; the response's instructions are parsed strictly."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from agent.clock import ManualClock
from agent.state import StateStore
from agent.status.heartbeat import MAX_ACKS, MAX_PAYLOAD_BYTES, build_payload, encode, payload_time
from agent.status.instructions import ConfigVersion, Ping, UploadRange, parse_instructions
from agent.status.probes import Probes
from tests.status.conftest import FIXTURES, RecordedRunner, make_config
from tests.status.schema import documented_heartbeat, schema_problems

RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def store_with(clock: ManualClock, rows: dict[str, dict]) -> StateStore:
    store = StateStore(sqlite3.connect(":memory:", isolation_level=None), clock)
    for component, fields in rows.items():
        store.report(component, **fields)
    return store


def typical_rows(t: float) -> dict[str, dict]:
    return {
        "camera": {"state": "ok", "fps": 10.0, "last_frame_at": t, "restarts": 1, "error": None},
        "recording": {"state": "recording", "segment_seconds": 10, "last_segment_at": t - 3},
        "retention": {"oldest_footage_at": t - 30 * 86400, "free_bytes": 5 * 10**9,
                      "total_bytes": 32 * 10**9, "deleted_segments": 120},
        "motion": {"last_event_at": "2026-01-01T00:00:00+00:00", "events_today": 12},
        "upload": {"alive_at": t, "pending": 3, "pending_bytes": 5242880, "oldest_pending_age_s": 42,
                   "failed": 0, "last_success_at": t - 60, "held_by_budget": 0, "used_bytes": 123456789,
                   "budget_bytes": 8 * 10**9, "period_start": "2026-01-01T00:00:00Z"},
        "clock": {"synced": True, "offset_s": 0.01, "source": "agent"},
    }


def pi_probes(pi_runner: RecordedRunner) -> Probes:
    return Probes(root=FIXTURES / "pi4", run=pi_runner, gpsd=None)


def test_payload_has_the_documented_schema(tmp_path: Path, pi_runner: RecordedRunner, fake_gpsd) -> None:
    clock = ManualClock()
    cfg = make_config(tmp_path, status={"config_version": "2026-11-20.1"})
    cfg.unit.data_dir.mkdir(parents=True)
    store = store_with(clock, typical_rows(clock.time()))
    store.increment("events_lost", 2)
    gps = fake_gpsd("fix3d.jsonl")
    probes = Probes(root=FIXTURES / "pi4", run=pi_runner, gpsd=gps.addr)
    payload = build_payload(cfg, store.read_all(), store.counters(), probes, clock,
                            seq=7, reason="interval", acked=["a1"])
    assert schema_problems(payload) == []
    # every block is filled from its source, nothing is silently null
    assert all(payload[k] is not None for k in documented_heartbeat())
    assert payload["camera"]["state"] == "ok" and payload["disk"]["events_lost"] == 2
    assert payload["modem"]["operator"] == "EE" and payload["gps"]["fix"] == "3d"
    assert payload["clock"] == {"synced": True, "offset_s": -0.000212, "source": "chrony"}
    assert payload["system"]["undervoltage"] is True
    assert payload["motion"]["last_event_at"] == "2026-01-01T00:00:00.000Z"
    assert payload["disk"]["oldest_footage_at"] == payload_time(clock.time() - 30 * 86400)
    for block, key in [("camera", "last_frame_at"), ("uploads", "last_success_at"), ("data", "period_start")]:
        assert payload[block][key].endswith("Z")
    assert json.loads(encode(payload)) == payload


def test_nothing_reported_and_no_hardware(tmp_path: Path) -> None:
    """A unit that just booted on a PC: blocks with no source are null, the schema still holds."""
    clock = ManualClock()
    cfg = make_config(tmp_path)
    probes = Probes(root=tmp_path, run=RecordedRunner({}), gpsd=None)
    payload = build_payload(cfg, {}, {}, probes, clock, seq=0, reason="startup", acked=[])
    assert schema_problems(payload) == []
    for block in ("camera", "recording", "motion", "uploads", "modem", "gps", "clock"):
        assert payload[block] is None
    assert payload["disk"]["total_bytes"] is None and payload["disk"]["events_lost"] == 0
    assert payload["data"]["budget_bytes"] == 8_000_000_000  # from the config


def test_hung_camera_is_reported_stalled(tmp_path: Path) -> None:
    clock = ManualClock()
    cfg = make_config(tmp_path)
    store = store_with(clock, {"camera": {"state": "ok", "fps": 10.0}})
    probes = Probes(root=tmp_path, run=RecordedRunner({}), gpsd=None)
    clock.advance(cfg.camera.stall_timeout_s + 1)  # the camera thread stopped reporting "ok"
    payload = build_payload(cfg, store.read_all(), {}, probes, clock, seq=0, reason="interval", acked=[])
    assert payload["camera"]["state"] == "stalled"


def test_payload_stays_under_2kb_at_realistic_maxima(tmp_path: Path) -> None:
    clock = ManualClock()
    long_id = "herts-" + "x" * 57  # the longest unit id the config accepts (63 characters)
    cfg = make_config(tmp_path, unit={"id": long_id}, status={"config_version": "v" * 64})
    t = clock.time()
    rows = typical_rows(t)
    rows["camera"].update(state="reopening", fps=59.999999, restarts=999999,
                          error="SourceError: " + "picamera2 timed out waiting for a frame " * 10)
    rows["motion"]["events_today"] = 99999
    rows["retention"].update(free_bytes=2**44, total_bytes=2**44)
    rows["upload"].update(pending=999999, pending_bytes=2**44, oldest_pending_age_s=31 * 86400,
                          failed=999999, held_by_budget=999999, used_bytes=2**44, budget_bytes=2**44)
    rows["clock"].update(offset_s=-123456.123456789)
    store = store_with(clock, rows)
    store.increment("events_lost", 10**9)

    class MaxProbes(Probes):
        def disk(self, data_dir: Path) -> dict[str, int]:
            return {"total_bytes": 2**44, "free_bytes": 2**44}

    runner = RecordedRunner({
        ("mmcli", "-J", "-L"): (FIXTURES / "mmcli/list.json").read_text(),
        ("mmcli", "-J", "-m", "0"): (FIXTURES / "mmcli/modem0.json").read_text()
        .replace('"EE"', json.dumps("Vodafone UK Roaming Partner Network Extra Long"))
        .replace('["lte"]', '["gsm", "umts", "hspa-plus", "lte", "5gnr"]'),
    })
    probes = MaxProbes(root=FIXTURES / "pi4", run=runner, gpsd=None)
    probes.gps = lambda: {"fix": "3d", "lat": -89.123456, "lon": -179.123456,  # type: ignore[method-assign]
                          "time": "2026-11-28T13:04:26.000Z"}
    acked = [f"{i}-" + "i" * 62 for i in range(10)]
    payload = build_payload(cfg, store.read_all(), store.counters(), probes, clock,
                            seq=2**40, reason="change", acked=acked)
    body = encode(payload)
    assert len(payload["acked"]) == MAX_ACKS
    assert payload["modem"]["operator"] is not None and len(payload["modem"]["operator"]) <= 32
    assert schema_problems(payload) == []
    assert len(body) < MAX_PAYLOAD_BYTES, len(body)


def test_instructions_are_parsed_strictly(caplog) -> None:
    body = {"ok": True, "instructions": [
        {"id": "r1", "type": "upload_range", "start": "2026-11-28T12:00:00Z", "end": "2026-11-28T12:05:00Z",
         "priority": "high"},
        {"id": "c1", "type": "config_version", "version": "2026-11-20.1"},
        {"id": "p1", "type": "ping"},
        {"id": "x1", "type": "reboot"},                                   # unknown type
        {"id": "r2", "type": "upload_range", "start": "2026-11-28T12:05:00Z",
         "end": "2026-11-28T12:00:00Z"},                                  # end before start
        {"id": "r3", "type": "upload_range", "start": "2026-11-28T12:00:00", "end": "2026-11-28T12:05:00"},
        {"id": "p2", "type": "ping", "extra": 1},                         # unexpected field
        {"type": "ping"},                                                 # no id
        {"id": "bad id with spaces", "type": "ping"},
        "ping", None, 42,
    ]}
    with caplog.at_level(logging.WARNING):
        got = parse_instructions(body)
    assert [i.id for i in got] == ["r1", "c1", "p1"]
    assert isinstance(got[0], UploadRange) and isinstance(got[1], ConfigVersion) and isinstance(got[2], Ping)
    assert got[0].start.isoformat() == "2026-11-28T12:00:00+00:00"
    ignored = [r for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 9  # one line per rejected instruction
    assert "end must be after start" in caplog.text and "'reboot'" in caplog.text


def test_malformed_instruction_lists_are_ignored(caplog) -> None:
    for body in (None, [], "text", {"instructions": "ping"}, {"instructions": {"id": "p"}}):
        assert parse_instructions(body) == []
    assert parse_instructions({"ok": True}) == []
