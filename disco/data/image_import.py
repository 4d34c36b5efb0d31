"""``disco data import``: turn a folder of image files (and optionally a labels CSV) into a dataset ``.h5``.

Decisions, in the order the work happens:

* Files: the folder is walked recursively; files whose extension (any case) is one of :data:`IMAGE_EXTENSIONS` are
  imported in sorted order of their relative path (``/``-separated), every other file is ignored and counted.
* Validation first: ``--out`` (``.h5``/``.hdf5``, not a folder, not existing unless ``force``), the folder and the
  labels CSV are checked and the temporary output file is created next to ``--out`` before any pixel is decoded.
  Each problem is one :class:`~disco.errors.DiscoError` line naming the fix.
* Channels: ``channels=None`` gives 1 when every image's header reports a greyscale mode (``1``, ``L``, ``LA``, ``I``,
  ``I;16``, ``F``) and 3 otherwise (palette images count as colour). RGB→grey uses Pillow's ITU-R 601-2 luma.
* Pixels: EXIF orientation is applied, transparency is composited onto black, 16-bit greyscale is scaled to 8 bits,
  the centred square of side ``min(w, h)`` is cut out and resized to ``size`` with LANCZOS (when shrinking by more
  than 3×, Pillow first reduces by an integer factor with a box filter: ``reducing_gap=3``). A ``size``×``size`` image
  is copied bit-exactly.
* Unreadable image files (truncated, corrupt, not really an image) are skipped and listed in the result; when none
  can be read the import fails. Labels of skipped images are dropped before classes are numbered.
* Labels CSV: a header row; one column ``file``/``filename``/``path`` (any case) names each image by its relative path
  or, when unambiguous, its bare file name; every other column is a factor. A factor's distinct values become class
  indices ``0..n-1`` in numeric order when all parse as finite numbers, else in string order.
* Output: ``images`` uint8 ``(N, S, S)`` or ``(N, S, S, 3)``, ``filenames`` (UTF-8), JSON attribute ``disco_import``
  and, with labels, ``factors`` int64 ``(N, K)``, ``factor_names`` and JSON attribute ``factor_values`` (values in class
  order). It is written under a temporary name and renamed at the end; any failure (or Ctrl-C) removes it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from disco.errors import ConfigError, DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
FILE_COLUMNS = ("file", "filename", "path")
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
Value = int | float | str


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_folder` wrote: image count, geometry, skipped/ignored files and ``(factor, classes)``."""

    out: Path
    count: int
    size: int
    channels: int
    skipped: tuple[str, ...]
    ignored: int
    factors: tuple[tuple[str, int], ...]


def find_images(folder: Path) -> tuple[list[str], int]:
    """Relative paths (sorted, ``/``-separated) of the image files under ``folder`` and the number of other files."""
    images, ignored = [], 0
    for root, _, names in os.walk(folder):
        for name in names:
            rel = (Path(root) / name).relative_to(folder).as_posix()
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                images.append(rel)
            else:
                ignored += 1
    return sorted(images), ignored


def read_labels(csv_path: Path, files: Sequence[str]) -> tuple[tuple[str, ...], list[list[str]]]:
    """Factor names and each file's raw CSV values (in the order of ``files``); every inconsistency raises."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = [(n, row) for n, row in enumerate(csv.reader(fh), start=1) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read labels {csv_path} ({err}); give a UTF-8 CSV file with a header row") from err
    header = [cell.strip() for cell in rows[0][1]] if rows else []
    if len(header) < 2:
        raise DataError(
            f"{csv_path} has {len(header)} column(s); it needs a header with a file column and at least one factor "
            f"column, e.g. `file,colour`"
        )
    file_cols = [i for i, name in enumerate(header) if name.lower() in FILE_COLUMNS]
    if len(file_cols) != 1:
        raise DataError(
            f"{csv_path} has {'no' if not file_cols else 'several'} file column(s) (header: {', '.join(header)}); "
            f"name exactly one column `file`, `filename` or `path`"
        )
    if len(set(header)) != len(header):
        raise DataError(
            f"{csv_path} repeats a column name (header: {', '.join(header)}); give each column its own name"
        )
    col = file_cols[0]
    index = {rel: i for i, rel in enumerate(files)}
    by_name: dict[str, list[int]] = {}
    for i, rel in enumerate(files):
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(i)
    found: dict[int, tuple[int, list[str]]] = {}
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"{csv_path} line {line} has {len(row)} fields, the header {len(header)}; fix that row")
        cells = [cell.strip() for cell in row]
        if "" in cells:
            name = header[cells.index("")]
            raise DataError(f"{csv_path} line {line}: empty value in column {name!r}; fill it in or delete the row")
        key = cells[col].replace("\\", "/").removeprefix("./")
        hits = [index[key]] if key in index else by_name.get(key, [])  # a relative path, else a bare file name
        if len(hits) != 1:
            problem = (
                f"matches {', '.join(files[i] for i in hits[:3])}" if hits else "is not an image file in the folder"
            )
            raise DataError(
                f"{csv_path} line {line} names {key!r}, which {problem}; give each image's path relative to the folder"
            )
        if hits[0] in found:
            raise DataError(
                f"{csv_path} lines {found[hits[0]][0]} and {line} both label {files[hits[0]]}; keep one row per image"
            )
        found[hits[0]] = (line, cells[:col] + cells[col + 1 :])
    missing = [rel for i, rel in enumerate(files) if i not in found]
    if missing:
        raise DataError(
            f"{missing[0]} (and {len(missing) - 1} more image(s)) has no row in {csv_path}; add a row for every image "
            f"or move unlabelled images out of the folder"
        )
    return tuple(header[:col] + header[col + 1 :]), [found[i][1] for i in range(len(files))]


def _numbers(values: Sequence[str]) -> list[int] | list[float] | None:
    """The values as ints (all integers), floats (all finite numbers) or None (some value is not a number)."""
    try:
        floats = [float(v) for v in values]
    except ValueError:
        return None
    if not all(math.isfinite(f) for f in floats):
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        return floats


def encode_column(values: Sequence[str]) -> tuple[np.ndarray, list[Value]]:
    """Class indices ``(N,)`` of a factor's raw values and the distinct values in class order (numeric if possible)."""
    numbers = _numbers(values)
    parsed: Sequence[Value] = values if numbers is None else numbers
    distinct = sorted(set(parsed), key=str if numbers is None else float)
    lookup = {v: i for i, v in enumerate(distinct)}
    return np.array([lookup[v] for v in parsed], dtype=np.int64), distinct


def is_colour(path: Path) -> bool:
    """Whether the file's header reports a non-greyscale mode (False for unreadable files: they are skipped later)."""
    try:
        with Image.open(path) as im:
            return im.mode not in _GREY_MODES
    except _UNREADABLE:
        return False


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """Decode one file as uint8 ``(size, size)`` (1 channel) or ``(size, size, 3)``; see the module docstring."""
    with Image.open(path) as raw:
        im = ImageOps.exif_transpose(raw)
        if im.mode.startswith("I;16"):
            im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257.0).round().astype(np.uint8))
        if im.mode in {"RGBA", "LA", "La", "RGBa", "PA"} or "transparency" in im.info:
            im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im.convert("RGBA"))
        im = im.convert("L" if channels == 1 else "RGB")
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side))
        im = im.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        return np.asarray(im, dtype=np.uint8)


def _check_out(out: Path, force: bool) -> None:
    """Refuse an ``--out`` that is not ``.h5``/``.hdf5``, is a folder, or exists (unless ``force``)."""
    if out.suffix.lower() not in {".h5", ".hdf5"}:
        raise ConfigError(f"--out {out} must end in .h5 or .hdf5 (the dataset is written as HDF5)")
    if out.is_dir():
        raise DataError(f"--out {out} is a directory; give a file path such as {out / 'mine.h5'}")
    if out.exists() and not force:
        raise DataError(f"{out} already exists; pass --force to overwrite it or choose another --out")


def import_folder(
    folder: Path,
    out: Path,
    *,
    size: int = 64,
    channels: int | None = None,
    labels: Path | None = None,
    force: bool = False,
) -> ImportResult:
    """Import the image files under ``folder`` (labelled by the ``labels`` CSV if given) into ``out`` atomically."""
    folder, out = Path(folder), Path(out)
    _check_out(out, force)
    if size < 1:
        raise ConfigError(f"--size {size} must be a positive number of pixels, e.g. 64")
    if channels not in (None, 1, 3):
        raise ConfigError(f"--channels {channels} must be 1 (grey) or 3 (RGB)")
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found or not a folder; give the folder holding the images")
    files, ignored = find_images(folder)
    if not files:
        raise DataError(
            f"no image files under {folder} ({ignored} other file(s) ignored); disco data import reads "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))} files"
        )
    names, raw = read_labels(labels, files) if labels is not None else ((), [])
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(tmp, "w") as fh:
            if channels is None:
                channels = 3 if any(is_colour(folder / rel) for rel in files) else 1
            kept = _write(fh, folder, files, size, channels)
            if not kept:
                raise DataError(
                    f"none of the {len(files)} image file(s) under {folder} could be read (first: {files[0]}); "
                    f"check that they are valid image files"
                )
            read = set(kept)
            skipped = tuple(rel for i, rel in enumerate(files) if i not in read)
            factors = _write_factors(fh, names, [raw[i] for i in kept]) if names else ()
            fh.attrs["disco_import"] = json.dumps(
                {
                    "source": str(folder.resolve()),
                    "size": size,
                    "channels": channels,
                    "images": len(kept),
                    "skipped_unreadable": len(skipped),
                    "ignored_non_image": ignored,
                }
            )
        os.replace(tmp, out)
    except OSError as err:
        reason = (err.strerror or str(err).strip().splitlines()[0]) + (f": {err.filename}" if err.filename else "")
        raise DataError(f"cannot write {out} ({reason}); choose an --out in a writable folder with free space") from err
    finally:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            tmp.unlink()
    return ImportResult(out, len(kept), size, channels, skipped, ignored, factors)


def _write(fh: h5py.File, folder: Path, files: list[str], size: int, channels: int) -> list[int]:
    """Decode every file into ``images`` (block by block, one HDF5 chunk per block) and ``filenames``; the indices
    (into ``files``) of the files that could be read."""
    shape = (size, size) if channels == 1 else (size, size, 3)
    block = max(1, min(len(files), (4 << 20) // int(np.prod(shape))))
    images = fh.create_dataset(
        "images", shape=(len(files), *shape), maxshape=(None, *shape), dtype=np.uint8, chunks=(block, *shape)
    )
    kept: list[int] = []
    buffer: list[np.ndarray] = []
    for i, rel in enumerate(tqdm(files, desc="import", unit="img", file=sys.stderr, disable=not sys.stderr.isatty())):
        try:
            buffer.append(load_image(folder / rel, size, channels))
        except _UNREADABLE:
            continue
        kept.append(i)
        if len(buffer) == block:
            images[len(kept) - block : len(kept)] = np.stack(buffer)
            buffer.clear()
    if buffer:
        images[len(kept) - len(buffer) : len(kept)] = np.stack(buffer)
    images.resize(len(kept), axis=0)
    names = np.array([files[i] for i in kept], dtype=object)
    fh.create_dataset("filenames", data=names, dtype=h5py.string_dtype("utf-8"))
    return kept


def _write_factors(fh: h5py.File, names: tuple[str, ...], raw: list[list[str]]) -> tuple[tuple[str, int], ...]:
    """Number each factor's classes over the images actually imported and store them; ``(name, classes)`` pairs."""
    columns = [encode_column([row[k] for row in raw]) for k in range(len(names))]
    fh.create_dataset("factors", data=np.stack([classes for classes, _ in columns], axis=1))
    fh.create_dataset("factor_names", data=np.array(names, dtype=object), dtype=h5py.string_dtype("utf-8"))
    fh.attrs["factor_values"] = json.dumps({name: values for name, (_, values) in zip(names, columns, strict=True)})
    return tuple((name, len(values)) for name, (_, values) in zip(names, columns, strict=True))
