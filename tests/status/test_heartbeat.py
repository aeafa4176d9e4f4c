"""The heartbeat body: documented schema, null blocks for absent sources, under 2 KB at realistic
maxima; the response's instructions are parsed strictly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from agent.clock import ManualClock
from agent.status.heartbeat import MAX_ACKS, MAX_PAYLOAD_BYTES, build_payload, encode, payload_time
from agent.status.instructions import ConfigVersion, Ping, UploadRange, parse_instructions
from agent.status.probes import Probes
from tests.status.conftest import FIXTURES, RecordedRunner, make_config
from tests.status.payloads import maximal_payload, store_with, typical_rows
from tests.status.schema import documented_heartbeat, schema_problems

RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


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
    payload = maximal_payload(tmp_path)
    body = encode(payload)
    assert len(payload["acked"]) == MAX_ACKS
    assert payload["modem"]["operator"] is not None and len(payload["modem"]["operator"]) <= 32
    assert len(payload["camera"]["error"]) <= 120
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


def test_odd_readings_become_null_not_a_refused_heartbeat(tmp_path: Path) -> None:
    """A clock step can make an age negative, a broken sensor can read NaN: those fields go out as
    null so the control room's strict schema still takes the rest."""
    clock = ManualClock()
    cfg = make_config(tmp_path)
    store = store_with(clock, {
        "camera": {"state": "ok", "fps": float("nan"), "restarts": -1},
        "upload": {"alive_at": 1, "pending": 2.0, "oldest_pending_age_s": -3600.0,
                   "used_bytes": float("inf")},
        "clock": {"synced": "yes", "offset_s": 1e12, "source": "agent"},
    })

    class OddProbes(Probes):
        def system(self) -> dict:
            return {"cpu_temp_c": -273.0, "undervoltage": None, "throttled": None, "throttled_flags": None,
                    "load1": 1e6, "mem_total_bytes": -5, "mem_available_bytes": 1.5}

        def gps(self) -> dict:
            return {"fix": "3d", "lat": 200.0, "lon": -0.1, "time": "28/11/2026 13:04"}

    probes = OddProbes(root=tmp_path, run=RecordedRunner({}), gpsd=None)
    payload = build_payload(cfg, store.read_all(), {}, probes, clock, seq=0, reason="interval", acked=[])
    assert payload["camera"]["fps"] is None and payload["camera"]["restarts"] is None
    assert payload["uploads"]["pending"] == 2 and payload["uploads"]["oldest_pending_age_s"] is None
    assert payload["data"]["used_bytes"] is None
    assert payload["clock"] == {"synced": None, "offset_s": None, "source": "agent"}
    assert payload["system"]["cpu_temp_c"] is None and payload["system"]["load1"] is None
    assert payload["system"]["mem_total_bytes"] is None and payload["system"]["mem_available_bytes"] == 2
    assert payload["gps"] == {"fix": "3d", "lat": None, "lon": -0.1, "time": None}
    assert "NaN" not in encode(payload).decode() and "Infinity" not in encode(payload).decode()
