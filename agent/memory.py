"""Process memory settings for `cctv-agent run`: glibc malloc tuned for a long-running process that
passes multi-megabyte frames between threads (called once by agent.runner before any thread starts).

Without it glibc raises its mmap threshold after the first large free, so every later frame comes
from per-thread arenas that fragment and are never given back: RSS creeps up for minutes and
stays there. Fixed thresholds hand big buffers straight back to the kernel when freed.
Transparent huge pages are turned off for the process: libx264 and NumPy ask for them on large
buffers, and a 2 MiB page is resident whole however little of it is used (about 10-20 MB at 720p).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys

log = logging.getLogger(__name__)

# mallopt() parameters from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
PR_SET_THP_DISABLE = 41  # prctl(), Linux >= 3.15; inherited by children

MMAP_THRESHOLD = 256 * 1024  # frames (hundreds of kB to MBs) are mmapped, freed at once
TRIM_THRESHOLD = 1024 * 1024  # give back free heap tops beyond 1 MiB
ARENA_MAX = 2  # threads share two arenas: less fragmentation, negligible contention here

# Each setting and the environment variable of glibc's that overrides it (an operator's own wins,
# e.g. MALLOC_ARENA_MAX in the systemd unit).
SETTINGS = (
    (M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"),
    (M_TRIM_THRESHOLD, TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_"),
    (M_ARENA_MAX, ARENA_MAX, "MALLOC_ARENA_MAX"),
)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def tune_malloc(env: dict[str, str] | None = None) -> bool:
    """Apply the settings above; False (and nothing changed) where the C library is not glibc or
    every setting is already given in the environment. A setting given in the environment
    (MALLOC_ARENA_MAX and friends) is left alone; GLIBC_TUNABLES leaves all of them alone."""
    env = dict(os.environ) if env is None else env
    wanted = [(p, v) for p, v, var in SETTINGS if var not in env]
    if "GLIBC_TUNABLES" in env or not wanted:
        return False
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all([mallopt(p, v) == 1 for p, v in wanted])
    if not ok:
        log.debug("mallopt refused a setting; glibc defaults kept for it")
    return ok


def disable_huge_pages() -> bool:
    """No transparent huge pages for this process (prctl PR_SET_THP_DISABLE); False where the
    kernel or C library does not offer it (nothing changed)."""
    libc = _libc()
    prctl = getattr(libc, "prctl", None)
    if prctl is None:
        return False
    prctl.restype = ctypes.c_int
    try:
        return prctl(PR_SET_THP_DISABLE, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
                     ctypes.c_ulong(0)) == 0
    except OSError:
        return False


# Thread pools of the BLAS libraries bundled with NumPy and OpenCV: the agent does no linear algebra,
# and each pool starts a thread per core at import. Read once, when the library loads.
MATH_THREADS = {"OPENBLAS_NUM_THREADS": "1"}


def optimized_argv(argv: list[str], env: dict[str, str] | None = None) -> list[str] | None:
    """The command line that runs `cctv-agent <argv>` again under `python -OO`, or None where it
    already does (or the operator chose PYTHONOPTIMIZE, or there is no interpreter to exec).

    -OO leaves docstrings out of every code object the agent loads (NumPy, botocore and pydantic
    carry megabytes of them): about 3.4 MB less resident memory for `run`, nothing else changes
    (the agent reads no docstring; its asserts only narrow types). Called by agent.cli before any
    import of weight, so the exec costs a fresh interpreter start and nothing more."""
    env = os.environ if env is None else env
    if sys.flags.optimize >= 2 or "PYTHONOPTIMIZE" in env or not sys.executable:
        return None
    return [sys.executable, "-OO", "-m", "agent.cli", *argv]


def limit_math_threads(env: dict[str, str] | None = None) -> None:
    """Before NumPy or OpenCV is imported (agent.cli, for `run`): one BLAS thread unless the
    environment says otherwise."""
    env = os.environ if env is None else env
    for key, value in MATH_THREADS.items():
        env.setdefault(key, value)


def release_free_heap() -> bool:
    """Give the free pages inside glibc's heaps back to the kernel (malloc_trim(0)); False where the
    C library is not glibc. Called when a burst of work is over (an event's files written, uploads
    drained, start-up done): the thresholds above only trim the top of the heap, and the free
    chunks left between live objects by imports and each event's work stay resident otherwise.
    Nothing is moved; takes well under a millisecond on the agent's heap."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


def tune_process() -> None:
    """Everything above, once, before any thread or frame exists."""
    tune_malloc()
    if not disable_huge_pages():
        log.debug("transparent huge pages left as the kernel sets them")
