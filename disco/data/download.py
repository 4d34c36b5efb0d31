"""Download the official dataset files with checksum and HTTP Range resume.

dSprites (Matthey et al. 2017) from the raw file of github.com/deepmind/dsprites-dataset, 3D Shapes (Burgess & Kim 2018)
from its Google Cloud Storage bucket. Bytes go to ``<out>.part`` (resumed with a Range request when it exists) and the
file is moved to ``<out>`` only after its md5 matches. Offline machines fail fast (short timeout) with one line that
says how to make the offline replica instead.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from disco.data.checksum import KNOWN_MD5, write_sidecar
from disco.data.datasets import REPLICA_FILES, data_dir
from disco.errors import DataError


@dataclass(frozen=True)
class Source:
    url: str
    filename: str
    md5: str


SOURCES: dict[str, Source] = {
    "dsprites": Source(
        "https://github.com/deepmind/dsprites-dataset/raw/master/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        KNOWN_MD5["dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"],
    ),
    "shapes3d": Source("https://storage.googleapis.com/3d-shapes/3dshapes.h5", "3dshapes.h5", KNOWN_MD5["3dshapes.h5"]),
}


def _offline_hint(name: str | None) -> str:
    key = name if name in REPLICA_FILES else "dsprites"
    return f"make the offline replica instead: disco data make {key} --out {data_dir() / REPLICA_FILES[key]}"


def _hash_file(digest: hashlib._Hash, path: Path, chunk: int) -> None:
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)


def download(
    url: str,
    out_path: str | Path,
    md5: str,
    *,
    timeout: float = 10.0,
    chunk: int = 1 << 20,
    name: str | None = None,
) -> Path:
    """Fetch ``url`` to ``out_path`` via ``<out_path>.part`` (resumed if present), checking ``md5`` before renaming.

    A checksum failure deletes the partial file; a network failure keeps it so that the next call resumes.
    """
    out = Path(out_path)
    part = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = have > 0 and response.status == 206
            if resumed:
                _hash_file(digest, part, chunk)
            with open(part, "ab" if resumed else "wb") as fh:
                while block := response.read(chunk):
                    fh.write(block)
                    digest.update(block)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the partial file is already complete
            _hash_file(digest, part, chunk)
        else:
            raise DataError(
                f"download of {url} failed with HTTP {err.code} {err.reason}; {_offline_hint(name)}"
            ) from err
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DataError(
            f"cannot download {url} ({reason}); this machine looks offline — {_offline_hint(name)}"
        ) from err
    got = digest.hexdigest()
    if got != md5:
        part.unlink(missing_ok=True)
        raise DataError(
            f"downloaded {url} has md5 {got}, expected {md5}; the partial file was deleted — run the download again"
        )
    os.replace(part, out)
    write_sidecar(out, "file", got)
    return out


def download_dataset(name: str, out_dir: str | Path | None = None, *, timeout: float = 10.0) -> Path:
    """Download the official file of ``name`` ("dsprites" or "shapes3d") into ``out_dir`` (default the data folder)."""
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r} to download; choose one of {', '.join(SOURCES)}")
    src = SOURCES[name]
    folder = Path(out_dir) if out_dir is not None else data_dir()
    return download(src.url, folder / src.filename, src.md5, timeout=timeout, name=name)
