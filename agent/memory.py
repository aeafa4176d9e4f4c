"""Process memory settings for `cctv-agent run`: glibc malloc tuned for a long-running process that
passes multi-megabyte frames between threads (called once by agent.runner before any thread starts).

Without it glibc raises its mmap threshold after the first large free, so every later frame comes
from per-thread arenas that fragment and are never given back: RSS creeps up for minutes and
stays there. Fixed thresholds hand big buffers straight back to the kernel when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt() parameters from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 256 * 1024  # frames (hundreds of kB to MBs) are mmapped, freed at once
TRIM_THRESHOLD = 1024 * 1024  # give back free heap tops beyond 1 MiB
ARENA_MAX = 2  # threads share two arenas: less fragmentation, negligible contention here


def tune_malloc() -> bool:
    """Apply the settings above; False (and nothing changed) where the C library is not glibc.
    Settings given in the environment (MALLOC_ARENA_MAX and friends) are left alone."""
    import os

    if any(k.startswith("MALLOC_") for k in os.environ):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(p, v) == 1 for p, v in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                              (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                                              (M_ARENA_MAX, ARENA_MAX)))
    if not ok:
        log.debug("mallopt refused a setting; glibc defaults kept for it")
    return ok
