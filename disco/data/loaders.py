"""Readers for the dataset file layouts disco understands.

* dSprites (Matthey et al. 2017): the official ``.npz`` (``imgs``, ``latents_classes``, ``latents_values``; the pickled
  ``metadata`` member is never read) and ``.hdf5`` (``imgs``, ``latents/classes``, ``latents/values``), and disco's
  replica, which uses the ``.hdf5`` layout.
* 3D Shapes (Burgess & Kim 2018): ``3dshapes.h5`` (``images`` channels-last, ``labels`` float values) and the replica.
* A user's own labelled set: ``.h5``/``.npz`` with uint8 ``images`` and integer ``factors`` (+ optional
  ``factor_names``).
* A user's unlabelled set (as written by ``disco data import`` without ``--labels``): ``images`` and nothing else but an
  optional ``filenames`` array (ignored). It loads with an empty factor space and ``classes`` of shape ``(N, 0)``; a file
  with other extra arrays is refused rather than silently read as unlabelled (it may be a mistyped labelled file).

The factor grid is taken from the stored class/value columns (so subsampled files load with the same reader) and
checked against the grid a replica stores in its attributes. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from disco.data.checksum import KNOWN_MD5, array_md5, check_file_md5, mismatch_error, read_sidecar, write_sidecar
from disco.data.datasets import DSPRITES, SHAPES3D, SPACES, GroundTruthData
from disco.data.factors import FactorSpace
from disco.errors import DataError

_FIX = "delete it and download it again (`disco data download`) or remake the replica (`disco data make`)"
_LAYOUTS = (
    "dSprites (imgs, latents/classes, latents/values), 3D Shapes (images, labels), your own labelled (images, factors) "
    "or unlabelled (images [, filenames])"
)
_UNLABELLED_KEYS = {"images", "filenames"}


def read_dataset_file(path: Path, *, verify: bool = False) -> GroundTruthData:
    """Read any supported file into :class:`GroundTruthData` (see the module docstring for the layouts)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file {path} not found; check the path or make a replica with `disco data make`")
    expected = KNOWN_MD5.get(path.name)
    if expected is not None:
        check_file_md5(path, expected, force=verify, fix=_FIX)
    if path.suffix.lower() == ".npz":
        return _read_npz(path, verify)
    if path.suffix.lower() in {".h5", ".hdf5"}:
        return _read_h5(path, verify)
    raise DataError(f"{path}: unsupported file type {path.suffix!r}; give an .h5, .hdf5 or .npz file")


def _read_h5(path: Path, verify: bool) -> GroundTruthData:
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise DataError(
            f"{path} is not a readable HDF5 file ({_first_line(err)}); it may be truncated — {_FIX}"
        ) from err
    with fh:
        attrs = dict(fh.attrs)

        def get(key: str) -> np.ndarray:
            try:
                return np.asarray(fh[key][()])
            except (OSError, KeyError) as err:
                raise DataError(
                    f"{path}: cannot read {key!r} ({_first_line(err)}); the file is truncated — {_FIX}"
                ) from err

        if "imgs" in fh and "latents" in fh and "classes" in fh["latents"] and "values" in fh["latents"]:
            return _build_official(
                "dsprites", path, get("imgs"), get("latents/values"), get("latents/classes"), attrs, verify
            )
        if "images" in fh and "labels" in fh:
            return _build_official("shapes3d", path, get("images"), get("labels"), None, attrs, verify)
        if "images" in fh and "factors" in fh:
            names = get("factor_names") if "factor_names" in fh else None
            return _build_user(path, get("images"), get("factors"), names)
        if "images" in fh and set(fh.keys()) <= _UNLABELLED_KEYS:
            return _build_unlabelled(path, get("images"))
        raise DataError(f"{path} holds {sorted(fh.keys())}, not the layout of {_LAYOUTS}; rewrite it in one of these")


def _read_npz(path: Path, verify: bool) -> GroundTruthData:
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{path} is not a readable .npz file ({_first_line(err)}); it may be truncated — {_FIX}"
        ) from err
    with npz:
        keys = set(npz.files)

        def get(key: str) -> np.ndarray:
            try:
                return np.asarray(npz[key])
            except ValueError as err:
                raise DataError(
                    f"{path}: array {key!r} can only be read by unpickling, which disco refuses; save it as a plain numeric array"
                ) from err
            except (OSError, EOFError, zipfile.BadZipFile) as err:
                raise DataError(
                    f"{path}: cannot read {key!r} ({_first_line(err)}); the file is truncated — {_FIX}"
                ) from err

        if {"imgs", "latents_classes", "latents_values"} <= keys:
            return _build_official(
                "dsprites", path, get("imgs"), get("latents_values"), get("latents_classes"), {}, verify
            )
        if {"images", "labels"} <= keys:
            return _build_official("shapes3d", path, get("images"), get("labels"), None, {}, verify)
        if {"images", "factors"} <= keys:
            return _build_user(
                path, get("images"), get("factors"), get("factor_names") if "factor_names" in keys else None
            )
        if "images" in keys and keys <= _UNLABELLED_KEYS:
            return _build_unlabelled(path, get("images"))
        raise DataError(f"{path} holds {sorted(keys)}, not the layout of {_LAYOUTS}; rewrite it in one of these")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _build_official(
    name: str,
    path: Path,
    images: np.ndarray,
    values: np.ndarray,
    classes: np.ndarray | None,
    attrs: dict[str, Any],
    verify: bool,
) -> GroundTruthData:
    base = SPACES[name]
    expect_shape = (64, 64) if name == "dsprites" else (64, 64, 3)
    if images.dtype != np.uint8 or images.ndim != 1 + len(expect_shape) or images.shape[1:] != expect_shape:
        raise DataError(
            f"{path}: {name} images must be uint8 (N, {', '.join(map(str, expect_shape))}), got {images.dtype} {images.shape}; "
            f"the file has the wrong layout — {_FIX}"
        )
    n = len(images)
    if (
        values.ndim != 2
        or values.shape != (n, base.num_factors)
        or (classes is not None and classes.shape != values.shape)
    ):
        raise DataError(
            f"{path}: {name} labels must be ({n}, {base.num_factors}) (one row per image), got {values.shape}; "
            f"the file has the wrong layout — {_FIX}"
        )
    stored = attrs.get("images_md5")
    if isinstance(stored, bytes):
        stored = stored.decode()
    if isinstance(stored, str) and (verify or read_sidecar(path, "images") != stored):
        got = array_md5(images)
        if got != stored:
            raise mismatch_error(path, "image", got, stored, "remake it with `disco data make ... --force`")
        write_sidecar(path, "images", got)
    space, compact = infer_grid(base.names, values, classes)
    if "disco_subsample" in attrs:
        steps = json.loads(_text(attrs["disco_subsample"]))
        expected = base.subset([int(steps.get(k, 1)) for k in base.names])
        if expected.sizes != space.sizes:
            raise DataError(
                f"{path}: stored labels form a {space.sizes} grid but its attributes say {expected.sizes}; "
                f"the file is inconsistent — remake it with `disco data make ... --force`"
            )
    if name == "dsprites":
        if n and images.max() <= 1:
            np.multiply(images, 255, out=images)
        tensor = torch.from_numpy(images).unsqueeze(1)
    else:
        tensor = torch.from_numpy(images).permute(0, 3, 1, 2)
    return GroundTruthData(name, tensor, torch.from_numpy(compact), space, _is_on_grid(space, compact))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def infer_grid(
    names: Sequence[str], values: np.ndarray, classes: np.ndarray | None = None
) -> tuple[FactorSpace, np.ndarray]:
    """The factor space spanned by stored label columns and each row's compact class indices ``(N, K)``.

    Columns are grouped by their class column when given (official dSprites), else by their values rounded to 1e-9
    (3D Shapes stores values only); class ``j`` of a factor is its ``j``-th smallest stored value.
    """
    n, k = values.shape
    compact = np.empty((n, k), dtype=np.int64)
    sizes, grids = [], []
    for col in range(k):
        key = classes[:, col] if classes is not None else np.round(values[:, col].astype(np.float64), 9)
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        compact[:, col] = inverse.reshape(-1)
        sizes.append(len(uniq))
        grids.append(values[first, col].astype(np.float64))
    return FactorSpace(tuple(names), tuple(sizes), tuple(grids)), compact


def _is_on_grid(space: FactorSpace, classes: np.ndarray) -> bool:
    if len(classes) != space.size:
        return False
    index = space.classes_to_index(classes)
    return bool(np.array_equal(index, np.arange(space.size)))


def _build_user(path: Path, images: np.ndarray, factors: np.ndarray, names_arr: np.ndarray | None) -> GroundTruthData:
    tensor = _to_nchw(path, images)
    if not np.issubdtype(factors.dtype, np.integer) or factors.ndim != 2 or len(factors) != len(images):
        raise DataError(
            f"{path}: factors must be integer class indices of shape ({len(images)}, K), got {factors.dtype} {factors.shape}; "
            f"map each factor's values to 0..n-1 first"
        )
    k = factors.shape[1]
    if names_arr is None:
        names: tuple[str, ...] = tuple(f"factor_{i}" for i in range(k))
    else:
        names = tuple(_text(x) for x in np.asarray(names_arr).reshape(-1))
        if len(names) != k:
            raise DataError(f"{path}: {len(names)} factor_names for {k} factor columns; give one name per column")
    space, compact = infer_grid(names, factors.astype(np.float64))
    return GroundTruthData(path.stem, tensor, torch.from_numpy(compact), space, _is_on_grid(space, compact))


def _build_unlabelled(path: Path, images: np.ndarray) -> GroundTruthData:
    tensor = _to_nchw(path, images)
    classes = torch.zeros((len(tensor), 0), dtype=torch.long)
    return GroundTruthData(path.stem, tensor, classes, FactorSpace((), ()), False)


def _to_nchw(path: Path, images: np.ndarray) -> torch.Tensor:
    """A user's uint8 images as an ``(N, C, 64, 64)`` tensor (a view, no copy); other dtypes or shapes raise."""
    if images.dtype != np.uint8:
        raise DataError(
            f"{path}: images must be uint8 (0..255), got {images.dtype}; convert them with (x*255).round().astype('uint8')"
        )
    shape = images.shape
    layouts: list[tuple[bool, Callable[[torch.Tensor], torch.Tensor]]] = [
        (images.ndim == 3 and shape[1:] == (64, 64), lambda t: t.unsqueeze(1)),
        (images.ndim == 4 and shape[1:3] == (64, 64) and shape[3] in (1, 3), lambda t: t.permute(0, 3, 1, 2)),
        (images.ndim == 4 and shape[1] in (1, 3) and shape[2:] == (64, 64), lambda t: t),
    ]
    for ok, convert in layouts:
        if ok:
            return convert(torch.from_numpy(images))
    raise DataError(
        f"{path}: images have shape {shape}; disco needs 64×64 images as (N,64,64), (N,64,64,C) or (N,C,64,64) with C 1 or 3 "
        f"— resize them to 64×64 first (e.g. `disco data import FOLDER --out OUT.h5 --size 64` from image files)"
    )


__all__ = ["DSPRITES", "SHAPES3D", "infer_grid", "read_dataset_file"]
