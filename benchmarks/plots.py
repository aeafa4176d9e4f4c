"""Benchmark plots: PNG files next to the JSON results they draw (matplotlib, Agg backend).

Run by `make bench` after the benchmarks; each plot reads only benchmarks/results/*.json, so it can be
redrawn alone (`python benchmarks/plots.py`). Needs the `bench` extra (matplotlib).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
OURS, BASE, OTHER = "#1f6f8b", "#b0b0b0", "#e07b39"
DPI = 90


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _save(fig: Any, name: str) -> Path:
    path = RESULTS / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: changes only with the data
    plt.close(fig)
    return path


def _bars(ax: Any, labels: list[str], values: list[float], fmt: str, colours: list[str]) -> None:
    bars = ax.bar(labels, values, color=colours)
    for bar, v in zip(bars, values, strict=True):
        ax.annotate(fmt.format(v), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)


def motion(r: dict[str, Any]) -> Any:
    names = [("ours", "ours"), ("mog2", "OpenCV MOG2"), ("frame_mse", "frame MSE\n(picamera2 example)")]
    labels = [label for _, label in names]
    colours = [OURS, BASE, BASE]
    slow = r.get("slow_movers")
    fig, axes = plt.subplots(1, 3 if slow else 2, figsize=(13.5 if slow else 9, 3.4))
    a, b = axes[0], axes[1]
    _bars(a, labels, [r[k]["f1"] for k, _ in names], "{:.2f}", colours)
    a.set_ylim(0, 1.1)
    a.set_title(f"event F1 over {r['ours']['true_events']} real-footage events")
    _bars(b, labels, [r[k]["ms_per_frame"] for k, _ in names], "{:.2f} ms", colours)
    b.set_title("cost per 320x240 frame (ms, lower is better)")
    if slow:
        c = axes[2]
        rows = [("ours", "ours"), ("ours_without_slow_path", "ours without\nslow path"), *names[1:]]
        _bars(c, [label for _, label in rows], [slow[k]["all"]["recall"] for k, _ in rows], "{:.2f}",
              [OURS, OTHER, BASE, BASE])
        for i, (k, _) in enumerate(rows):
            c.annotate(f"{slow[k]['all']['false_events']} false", (i, 0.03), ha="center", fontsize=8,
                       color="white")
        c.set_ylim(0, 1.1)
        c.tick_params(axis="x", labelsize=7)
        c.set_title(f"slow movers caught ({slow['ours']['all']['sequences']} at 1-4 px/s)")
    fig.suptitle("Motion detection: accuracy and cost against the baselines (motion.json)", fontsize=11)
    return fig


def upload(r: dict[str, Any]) -> Any:
    d = r["details"]
    rates = [0.512, 2.0]
    ours = [d["agent_512kbit"]["goodput_ratio"], d["agent_2mbit"]["goodput_ratio"]]
    base = [d["baseline_512kbit"]["goodput_ratio"], d["baseline_2mbit"]["goodput_ratio"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(rates, ours, "o-", color=OURS, label="agent (resumable, capped, budgeted)")
    a.plot(rates, base, "s--", color=BASE, label="plain boto3 upload_file")
    multi = {0.256: "multipart_goodput_ratio_256kbit", 0.512: "multipart_goodput_ratio_512kbit",
             2.0: "multipart_goodput_ratio_2mbit"}
    pts = [(rate, r[key]) for rate, key in multi.items() if key in r]
    if pts:
        a.plot(*zip(*pts, strict=True), "^:", color=OTHER, label="agent, multipart clips")
    base_pts = [(rate, r[f"baseline_boto3_{key}"]) for rate, key in multi.items()
                if f"baseline_boto3_{key}" in r]
    if base_pts:
        a.plot(*zip(*base_pts, strict=True), "v:", color=BASE, label="boto3, multipart clips")
    a.set_xscale("log")
    a.set_xticks([0.256, 0.512, 1, 2], ["256k", "512k", "1M", "2M"])
    a.set_xlim(0.2, 2.5)
    a.set_xlabel("link rate (bit/s)")
    values = ours + base + [v for _, v in pts] + [v for _, v in base_pts]
    a.set_ylim(max(0.0, min([0.8, *values]) - 0.05), 1.02)
    a.set_title("goodput (payload / link capacity)")
    a.legend(fontsize=7, loc="best")
    lat = [d["agent_512kbit"]["snapshot_latency_s"], d["agent_2mbit"]["snapshot_latency_s"]]
    b.plot(rates, lat, "o-", color=OURS, label="idle link")
    busy = d.get("snapshot_latency", {}).get("busy_s")
    if busy is not None:
        b.plot([2.0], [busy], "D", color=OTHER, label="while a clip is uploading")
    b.set_xscale("log")
    b.set_xticks([0.256, 0.512, 1, 2], ["256k", "512k", "1M", "2M"])
    b.set_xlim(0.2, 2.5)
    b.set_xlabel("link rate (bit/s)")
    b.set_ylim(0, max([*lat, busy or 0]) * 1.4)
    b.set_title("snapshot in the bucket after publication (s)")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("Upload over a throttled link (upload.json)", fontsize=11)
    return fig


def control_room(r: dict[str, Any]) -> Any:
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for db, colour in (("sqlite", OURS), ("postgresql", OTHER)):
        rows = sorted((x for x in r["results"] if x["database"] == db), key=lambda x: x["units"])
        if not rows:
            continue
        units = [x["units"] for x in rows]
        a.plot(units, [x["p50_ms"] for x in rows], "o-", color=colour, label=f"{db} p50")
        a.plot(units, [x["p99_ms"] for x in rows], "o--", color=colour, alpha=0.6, label=f"{db} p99")
        b.plot(units, [x["requests_per_s"] for x in rows], "o-", color=colour, label=f"{db} handled")
    sat = {x["database"]: x["requests_per_s"] for x in r.get("saturation_heartbeat", [])}
    for db, colour in (("sqlite", OURS), ("postgresql", OTHER)):
        if db in sat:
            b.axhline(sat[db], color=colour, ls=":", label=f"{db} flat out")
    interval = r["settings"]["interval_s"]
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel(f"fleet size (units, a heartbeat every {interval:g} s)")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=8)
    a.set_yscale("log")
    a.set_title("heartbeat intake latency (ms)")
    b.set_yscale("log")
    b.set_title("heartbeats per second")
    fig.suptitle("Control room heartbeat intake vs fleet size, SQLite and PostgreSQL (control_room.json)",
                 fontsize=11)
    return fig


def _resources() -> dict[str, Any] | None:
    """The hour-long result if there is one, else the newest shorter run (`make bench`)."""
    found = _load("agent_resources")
    if found is None:
        runs = sorted(RESULTS.glob("agent_resources_*s.json"), key=lambda p: p.stat().st_mtime)
        found = json.loads(runs[-1].read_text()) if runs else None
    return found


def agent_resources(r: dict[str, Any]) -> Any:
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    two = "after_file" in r  # Pi-shaped ("after") and file-source runs side by side
    labels = {"after": "Pi-shaped" if two else "after", "after_file": "file source",
              "before": "before, Pi-shaped" if two else "before"}
    for name, colour in (("after", OURS), ("after_file", OTHER), ("before", BASE)):
        series = (r.get(name) or {}).get("series")
        if not series:
            continue
        cols = series["columns"]
        rows = series["rows"]
        t = [row[cols.index("t_s")] / 60 for row in rows]
        a.plot(t, [row[cols.index("rss_mb")] for row in rows], color=colour, label=labels[name])
        if "cpu_s" in cols and len(rows) > 1:
            cpu = [row[cols.index("cpu_s")] for row in rows]
            secs = [row[cols.index("t_s")] for row in rows]
            pct = [100 * (cpu[i] - cpu[i - 1]) / max(1e-9, secs[i] - secs[i - 1])
                   for i in range(1, len(rows))]
            b.plot(t[1:], pct, color=colour, label=labels[name], lw=0.8)
    a.set_title("resident memory (MB)")
    b.set_title("CPU (% of one core)")
    for ax in (a, b):
        ax.set_xlabel("minutes")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=8)
    fig.suptitle("cctv-agent run recording 720p at 10 fps, upload and status on (agent_resources.json)",
                 fontsize=11)
    return fig


PLOTS: list[tuple[str, Callable[[], dict[str, Any] | None], Callable[[dict[str, Any]], Any]]] = [
    ("motion", lambda: _load("motion"), motion),
    ("upload", lambda: _load("upload"), upload),
    ("control_room", lambda: _load("control_room"), control_room),
    ("agent_resources", _resources, agent_resources),
]


def main() -> int:
    missing = []
    for name, load, draw in PLOTS:
        data = load()
        if data is None:
            missing.append(name)
            continue
        print(f"plot: {_save(draw(data), name).relative_to(RESULTS.parents[1])}")
    if missing:
        print(f"no results yet for: {', '.join(missing)} (run their benchmarks first)", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
