"""Agent resources benchmark, its measuring side: one `cctv-agent run` process sampled from /proc (RSS and
its parts, CPU, the fake hardware edge's children apart) and the summary of its samples.

Used by benchmarks/agent_resources.py, which starts the services and the agents and writes the result
(export_revision also by snapshot_memory.py).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np

HW_CHILD = b"_hw_child.py"  # the fake picamera2's hardware-mode child processes (sensor, encoder)
TICKS = os.sysconf("SC_CLK_TCK")

RSS_PARTS = ("RssAnon:", "RssFile:", "RssShmem:")


def _rss_cpu(pid: int) -> tuple[float, float, list[float]] | None:
    """(VmRSS in MB, user+system CPU seconds, [RssAnon, RssFile, RssShmem] in MB) of a process from
    /proc, None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    kb = {line.split()[0]: int(line.split()[1]) for line in status.splitlines()
          if line.startswith(("VmRSS:", *RSS_PARTS))}
    return (kb.get("VmRSS:", 0) / 1024, (int(stat[11]) + int(stat[12])) / TICKS,
            [round(kb.get(k, 0) / 1024, 2) for k in RSS_PARTS])


class Agent:
    """One `cctv-agent run` process, sampled from /proc."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self._log = log.open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=log.parent)
        self.t0 = time.monotonic()
        self.samples: list[list[float]] = []  # [t_s, rss_mb, cpu_s, anon_mb, file_mb, shmem_mb]

        self.edge: dict[int, tuple[float, float]] = {}  # child pid -> (rss_mb, cpu_s): the fake's hardware
        self.edge_alive: set[int] = set()  # its children at the last sample

    def sample(self) -> None:
        got = _rss_cpu(self.proc.pid)
        if got is None:
            return
        t = round(time.monotonic() - self.t0, 1)
        self.samples.append([t, round(got[0], 2), round(got[1], 2), *got[2]])
        try:
            kids = {int(p) for f in Path(f"/proc/{self.proc.pid}/task").glob("*/children")
                    for p in f.read_text().split()}
        except OSError:
            kids = set()
        alive = set()
        for pid in kids:
            try:
                if HW_CHILD not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue  # not the fake camera or encoder (e.g. a status probe's command)
            except OSError:
                continue
            if (child := _rss_cpu(pid)) is not None:
                self.edge[pid] = child[:2]
                alive.add(pid)
        self.edge_alive = alive

    def edge_summary(self, seconds: float) -> dict:
        """The hardware edge's child processes (fake sensor and encoder; more if the camera was
        reopened): not the agent's memory. CPU over all of them, RSS of those alive at the end."""
        if not self.edge:
            return {}
        return {"processes": len(self.edge),
                "rss_mb_last": round(sum(self.edge[p][0] for p in self.edge_alive), 1),
                "cpu_percent_of_one_core": round(sum(c for _, c in self.edge.values()) / seconds * 100, 1)}

    def peak_mb(self) -> float:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return max((s[1] for s in self.samples), default=0.0)
        return int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("VmHWM:"))) / 1024

    def rollup(self) -> dict[str, float]:
        """/proc/PID/smaps_rollup in MB (Rss, Pss, Anonymous, Private_Dirty...)."""
        try:
            lines = Path(f"/proc/{self.proc.pid}/smaps_rollup").read_text().splitlines()[1:]
        except OSError:
            return {}
        return {p[0].rstrip(":"): round(int(p[1]) / 1024, 1) for p in map(str.split, lines)
                if len(p) == 3 and p[2] == "kB" and int(p[1])}

    def smaps(self, top: int = 12) -> list[list]:
        """Resident memory by mapping (a library, [heap], [anon]...), largest first, in MB."""
        sizes: dict[str, int] = {}
        name = "[anon]"
        try:
            lines = Path(f"/proc/{self.proc.pid}/smaps").read_text().splitlines()
        except OSError:
            return []
        for line in lines:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                name = Path(parts[5]).name if len(parts) > 5 else "[anon]"
            elif parts and parts[0] == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(parts[1])
        return [[k, round(v / 1024, 1)] for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:top]]

    def stop(self, timeout: float = 120.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._log.close()


def summarise(agent: Agent, peak: float, code: int, duration: float) -> dict:
    s = np.array(agent.samples) if agent.samples else np.zeros((0, 6))
    half = s[s[:, 0] >= s[-1, 0] / 2] if len(s) else s
    slope = float(np.polyfit(half[:, 0] / 3600, half[:, 1], 1)[0]) if len(half) >= 3 else float("nan")
    warm = s[s[:, 0] >= min(60.0, duration / 4)] if len(s) else s
    cpu = (float((warm[-1, 2] - warm[0, 2]) / (warm[-1, 0] - warm[0, 0])) * 100
           if len(warm) >= 2 and warm[-1, 0] > warm[0, 0] else float("nan"))
    return {
        "rss_mb": round(peak, 1),
        "rss_growth_mb_per_hour": round(slope, 2),
        "cpu_percent_of_one_core": round(cpu, 1),
        "rss_mb_median_second_half": round(float(np.median(half[:, 1])), 1) if len(half) else None,
        "rss_mb_at_end": float(s[-1, 1]) if len(s) else None,
        "exit_code": code,
        "rss_parts_mb_at_peak_sample": (dict(zip(("anon", "file", "shmem"),
                                                 s[int(np.argmax(s[:, 1])), 3:].tolist(), strict=True))
                                        if len(s) else {}),
        "series": {"columns": ["t_s", "rss_mb", "cpu_s", "rss_anon_mb", "rss_file_mb", "rss_shmem_mb"],
                   "rows": s.tolist()},
    }


def export_revision(rev: str, folder: Path, root: Path) -> Path:
    """The `agent/` package of git revision `rev` in repository `root`, unpacked into
    folder/rev-<rev>/ (for PYTHONPATH): the "before" side of a side-by-side run."""
    dest = folder / f"rev-{rev}"
    data = subprocess.run(["git", "-C", str(root), "archive", rev, "agent"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest
