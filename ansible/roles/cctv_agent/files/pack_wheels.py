"""Controller side of role cctv_agent: the unit's dependency wheels as one tar with fixed metadata.
Ansible then checks and copies one file instead of one per wheel (a stat round trip each).

Same wheels, same bytes: names sorted, owner root, mode 0644, a fixed time, no compression (wheels
are zip files already). Written beside and renamed, so the tar on the controller is never half done.
Usage: python3 pack_wheels.py WHEEL_DIR DEST_TAR
"""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

FIXED_MTIME = 315532800  # 1980-01-01, as SOURCE_DATE_EPOCH for the agent's own wheel


def pack(wheels: Path, dest: Path) -> None:
    found = sorted(wheels.glob("*.whl"))
    if not found:
        raise SystemExit(f"no wheels in {wheels}")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for wheel in found:
            info = tarfile.TarInfo(wheel.name)
            info.size = wheel.stat().st_size
            info.mtime, info.mode, info.uid, info.gid = FIXED_MTIME, 0o644, 0, 0
            info.uname = info.gname = "root"
            with wheel.open("rb") as f:
                tar.addfile(info, f)
    os.replace(tmp, dest)


if __name__ == "__main__":
    pack(Path(sys.argv[1]), Path(sys.argv[2]))
