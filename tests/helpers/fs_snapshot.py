"""What a folder looks like on disk, to prove that a command left an input folder (a bundle) as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry of ``folder`` and below (the folder itself too): mode, mtime in ns, and the SHA-256 of files.

    Two equal snapshots mean nothing was added, removed, renamed, rewritten or touched.
    """
    out = {".": (folder.stat().st_mode, folder.stat().st_mtime_ns, "")}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(folder))] = (st.st_mode, st.st_mtime_ns,
                                           hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
    return out
