"""The fault-injecting TCP proxy now lives in demo/faultproxy.py (shared by tests, benchmarks and
`make demo`); this name stays so existing imports keep working."""

from demo.faultproxy import CHUNK, FaultProxy, LinkState

__all__ = ["CHUNK", "FaultProxy", "LinkState"]
