"""Crash-safe file writes shared by every stage that leaves files behind (segments, clips, outbox).

Write under a temporary name in the same folder, fsync the file, rename atomically, fsync the folder:
after a power cut a final name always holds a complete file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path_for(final: Path) -> Path:
    """Where to write a file before it is published under `final` (same folder, same filesystem)."""
    return final.with_name(f".{final.name}{TMP_SUFFIX}")


def publish(tmp: Path, final: Path) -> None:
    """fsync a finished temporary file and atomically rename it to its final name."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def atomic_write_bytes(final: Path, data: bytes, mode: int = 0o640) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(final)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, final)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_range(path: Path, offset: int, length: int, chunk: int = 1 << 20) -> bytes:
    """SHA-256 digest of the bytes [offset, offset+length) of a file, read a chunk at a time (an
    upload part is never held in memory whole)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        while length > 0 and (block := f.read(min(chunk, length))):
            h.update(block)
            length -= len(block)
    return h.digest()


def remove_stale_tmp(folder: Path) -> int:
    """Delete temporary files left by a crash (they were never published); return how many."""
    count = 0
    if folder.is_dir():
        for p in folder.rglob(f".*{TMP_SUFFIX}"):
            p.unlink(missing_ok=True)
            count += 1
    return count
