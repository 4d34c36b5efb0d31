"""md5 checksums of dataset files, remembered in a small ``<file>.md5ok`` sidecar so they are computed once.

The official dSprites file (Matthey et al. 2017) and 3D Shapes file (Burgess & Kim 2018) are checked against the md5
sums the community uses; disco's replicas store the md5 of their image bytes as an HDF5 attribute.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from disco.errors import DataError

KNOWN_MD5: dict[str, str] = {
    "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz": "7da33b31b13a06f4b04a70402ce90c2e",
    "3dshapes.h5": "099a2078d58cec4daad0702c55d06868",
}


def file_md5(path: Path, chunk: int = 1 << 22) -> str:
    """md5 hex digest of a whole file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def array_md5(array: np.ndarray, rows: int = 4096) -> str:
    """md5 of an array's C-order bytes, hashed ``rows`` rows at a time (equal to hashing the file's image bytes)."""
    digest = hashlib.md5()
    for start in range(0, len(array), rows):
        digest.update(np.ascontiguousarray(array[start : start + rows]).data)
    return digest.hexdigest()


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".md5ok")


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_sidecar(path: Path, kind: str) -> str | None:
    """The md5 remembered for ``path`` if its sidecar matches the file's current size and mtime, else None."""
    side = sidecar_path(path)
    try:
        record = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("kind") != kind or record.get("stamp") != _stamp(path):
        return None
    md5 = record.get("md5")
    return md5 if isinstance(md5, str) else None


def write_sidecar(path: Path, kind: str, md5: str) -> None:
    """Remember that ``path`` was verified (atomic write; a read-only folder is silently skipped)."""
    side = sidecar_path(path)
    tmp = side.with_name(side.name + f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"kind": kind, "md5": md5, "stamp": _stamp(path)}))
        os.replace(tmp, side)
    except OSError:
        tmp.unlink(missing_ok=True)


def mismatch_error(path: Path, what: str, got: str, expected: str, fix: str) -> DataError:
    return DataError(
        f"{path}: {what} md5 {got} does not match the expected {expected}; the file is corrupt or truncated — {fix}"
    )


def check_file_md5(path: Path, expected: str, *, force: bool, fix: str) -> bool:
    """Check a whole file's md5 against ``expected`` (once, then remembered); returns True when it was recomputed."""
    if not force and read_sidecar(path, "file") == expected:
        return False
    got = file_md5(path)
    if got != expected:
        raise mismatch_error(path, "file", got, expected, fix)
    write_sidecar(path, "file", got)
    return True
