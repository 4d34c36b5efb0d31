"""Official layouts (hand-made tiny files), user data, checksums and every bad-input path of the loader."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from disco.cli import main as disco_main
from disco.data import checksum
from disco.data.datasets import DSPRITES, SHAPES3D, load_dataset
from disco.data.factors import FactorSpace
from disco.data.replicas.common import grid_classes
from disco.errors import DataError

DS_STEPS = [1, 1, 3, 8, 8, 8]
S3_STEPS = [5, 5, 5, 4, 2, 5]


def _official_dsprites_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes = grid_classes(DSPRITES, DS_STEPS)  # official class indices of a sub-grid, storage order
    values = DSPRITES.classes_to_values(classes)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 2, (len(classes), 64, 64), dtype=np.uint8)
    return imgs, classes.astype(np.int64), values


def test_official_dsprites_npz_loads_without_unpickling(tmp_path: Path) -> None:
    imgs, classes, values = _official_dsprites_arrays()
    path = tmp_path / "dsprites_tiny.npz"
    metadata = np.array({"description": "pickled dict as in the official file"}, dtype=object)
    np.savez_compressed(path, imgs=imgs, latents_classes=classes, latents_values=values, metadata=metadata)
    data = load_dataset(str(path))
    expected = DSPRITES.subset(DS_STEPS)
    assert data.name == "dsprites" and data.on_grid
    assert data.factors.names == DSPRITES.names and data.factors.sizes == expected.sizes
    for got, want in zip(data.factors.values, expected.values, strict=True):
        np.testing.assert_allclose(got, want)
    assert data.images.shape == (len(imgs), 1, 64, 64) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], torch.from_numpy(imgs) * 255)
    assert torch.equal(data.classes, torch.from_numpy(classes // np.asarray(DS_STEPS)))


def test_official_dsprites_hdf5_layout(tmp_path: Path) -> None:
    imgs, classes, values = _official_dsprites_arrays()
    path = tmp_path / "dsprites_tiny.hdf5"
    with h5py.File(path, "w") as fh:
        fh["imgs"] = imgs
        fh["latents/classes"] = classes
        fh["latents/values"] = values
    data = load_dataset(str(path))
    assert data.on_grid and data.factors.sizes == DSPRITES.subset(DS_STEPS).sizes
    assert int(data.images.max()) == 255


def test_official_3dshapes_h5_layout_infers_grid_from_values(tmp_path: Path) -> None:
    classes = grid_classes(SHAPES3D, S3_STEPS)
    labels = SHAPES3D.classes_to_values(classes)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (len(labels), 64, 64, 3), dtype=np.uint8)
    path = tmp_path / "3dshapes_tiny.h5"
    with h5py.File(path, "w") as fh:
        fh["images"] = images
        fh["labels"] = labels
    data = load_dataset(str(path))
    assert data.name == "shapes3d" and data.on_grid
    assert data.factors.sizes == SHAPES3D.subset(S3_STEPS).sizes
    np.testing.assert_allclose(data.factors.values[3], SHAPES3D.values[3][::4])
    assert data.images.shape == (len(labels), 3, 64, 64)
    assert torch.equal(data.images[7], torch.from_numpy(images[7]).permute(2, 0, 1))
    assert torch.equal(data.classes, torch.from_numpy(classes // np.asarray(S3_STEPS)))


def test_shuffled_rows_are_off_grid(tmp_path: Path) -> None:
    classes = grid_classes(SHAPES3D, S3_STEPS)[::-1]
    path = tmp_path / "rev.h5"
    with h5py.File(path, "w") as fh:
        fh["images"] = np.zeros((len(classes), 64, 64, 3), np.uint8)
        fh["labels"] = SHAPES3D.classes_to_values(classes)
    assert not load_dataset(str(path)).on_grid


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
def test_user_data_layouts(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(2)
    shape = {"nhw": (12, 64, 64), "nhwc": (12, 64, 64, 3), "nchw": (12, 3, 64, 64)}[layout]
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    factors = np.stack([np.arange(12) % 3 * 10, np.arange(12) // 3 + 5], 1)  # arbitrary integer labels
    path = tmp_path / "mine.npz"
    np.savez(path, images=images, factors=factors, factor_names=np.array(["colour", "size"]))
    data = load_dataset(str(path))
    assert data.name == "mine" and data.factors.names == ("colour", "size") and data.factors.sizes == (3, 4)
    assert data.images.shape[2:] == (64, 64) and data.images.dtype == torch.uint8
    assert torch.equal(data.classes, torch.from_numpy(np.stack([np.arange(12) % 3, np.arange(12) // 3], 1)))
    assert not data.on_grid  # first factor varies fastest here: not the storage order


def test_user_data_in_grid_order_is_on_grid(tmp_path: Path) -> None:
    factors = np.stack([np.arange(12) // 4, np.arange(12) % 4], 1)
    path = tmp_path / "grid.h5"
    with h5py.File(path, "w") as fh:
        fh["images"] = np.zeros((12, 64, 64), np.uint8)
        fh["factors"] = factors
        fh["factor_names"] = np.array([b"a", b"b"])
    data = load_dataset(str(path))
    assert data.on_grid and data.factors.names == ("a", "b") and data.num_channels == 1


def _write_user(path: Path, images: np.ndarray, factors: np.ndarray, extra: dict[str, np.ndarray]) -> str:
    np.savez(path, images=images, factors=factors, **extra)  # type: ignore[arg-type]
    return str(path)


@pytest.mark.parametrize(
    ("images", "factors", "extra", "message"),
    [
        (np.zeros((4, 32, 32), np.uint8), np.zeros((4, 2), np.int64), {}, "64×64"),
        (np.zeros((4, 64, 64), np.float32), np.zeros((4, 2), np.int64), {}, "uint8"),
        (np.zeros((4, 64, 64), np.uint8), np.zeros((4, 2), np.float64), {}, "integer"),
        (np.zeros((4, 64, 64), np.uint8), np.zeros((4, 2), np.int64), {"factor_names": np.array(["a"])}, "one name"),
        (np.zeros((4, 64, 64), np.uint8), np.zeros((4, 2), object), {}, "unpickling"),
    ],
)
def test_bad_user_data(tmp_path: Path, images: np.ndarray, factors: np.ndarray, extra: dict, message: str) -> None:
    if factors.dtype == object:
        path = tmp_path / "bad.npz"
        np.savez(path, images=images, factors=factors)
    else:
        path = Path(_write_user(tmp_path / "bad.npz", images, factors, extra))
    with pytest.raises(DataError, match=message) as err:
        load_dataset(str(path))
    assert "\n" not in str(err.value)


def test_missing_unknown_truncated_and_wrong_layout(
    tmp_path: Path, dsprites_small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(str(tmp_path / "nope.h5"))
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("mnist")
    monkeypatch.setenv("DISCO_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="disco data make dsprites"):
        load_dataset("dsprites")
    truncated = tmp_path / "trunc.h5"
    truncated.write_bytes(dsprites_small.read_bytes()[:5000])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(str(truncated))
    bad_zip = tmp_path / "trunc.npz"
    bad_zip.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="truncated"):
        load_dataset(str(bad_zip))
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as fh:
        fh["pictures"] = np.zeros((2, 64, 64), np.uint8)
    with pytest.raises(DataError, match="not the layout"):
        load_dataset(str(wrong))
    short = tmp_path / "short.h5"
    with h5py.File(short, "w") as fh:
        fh["images"] = np.zeros((3, 64, 64, 3), np.uint8)
        fh["labels"] = np.zeros((2, 6))
    with pytest.raises(DataError, match="one row per image"):
        load_dataset(str(short))


def test_name_resolves_under_data_dir(tmp_path: Path, dsprites_small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dsprites.h5").write_bytes(dsprites_small.read_bytes())
    monkeypatch.setenv("DISCO_DATA_DIR", str(tmp_path))
    data = load_dataset("dsprites")
    assert data.name == "dsprites" and data.on_grid


def test_official_md5_checked_once_and_mismatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    imgs, classes, values = _official_dsprites_arrays()
    path = tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    np.savez(path, imgs=imgs, latents_classes=classes, latents_values=values)
    with pytest.raises(DataError, match="does not match"):
        load_dataset(str(path))  # md5 of this tiny file is not the official one
    monkeypatch.setitem(checksum.KNOWN_MD5, path.name, checksum.file_md5(path))
    calls: list[Path] = []
    real = checksum.file_md5

    def counting(p: Path, chunk: int = 1 << 22) -> str:
        calls.append(p)
        return real(p, chunk)

    monkeypatch.setattr(checksum, "file_md5", counting)
    load_dataset(str(path))
    load_dataset(str(path))
    assert len(calls) == 1 and checksum.sidecar_path(path).exists()  # cached in the sidecar
    load_dataset(str(path), verify=True)
    assert len(calls) == 2  # verify=True recomputes


def test_replica_image_checksum_detects_tampering(tmp_path: Path, dsprites_small: Path) -> None:
    copy = tmp_path / "copy.h5"
    copy.write_bytes(dsprites_small.read_bytes())
    load_dataset(str(copy), verify=True)
    with h5py.File(copy, "r+") as fh:
        fh["imgs"][0, 0, 0] = 1 - fh["imgs"][0, 0, 0]
    with pytest.raises(DataError, match="image md5"):
        load_dataset(str(copy))  # the sidecar no longer matches the file's mtime/size, so it is rechecked


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
def test_unlabelled_user_data(tmp_path: Path, suffix: str, layout: str) -> None:
    shape = {"nhw": (5, 64, 64), "nhwc": (5, 64, 64, 3), "nchw": (5, 3, 64, 64)}[layout]
    images = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    filenames = np.array([f"img_{i}.png" for i in range(5)])
    path = tmp_path / f"photos{suffix}"
    if suffix == ".npz":
        np.savez(path, images=images, filenames=filenames)
    else:
        with h5py.File(path, "w") as fh:
            fh["images"] = images
            fh.create_dataset("filenames", data=filenames.astype(object), dtype=h5py.string_dtype("utf-8"))
    data = load_dataset(str(path))
    assert data.name == "photos" and not data.has_factors and not data.on_grid and len(data) == 5
    assert data.classes.shape == (5, 0) and data.classes.dtype == torch.long
    assert data.factors == FactorSpace((), ()) and data.factors.size == 1 and data.factors.strides == ()
    assert data.images.shape == (5, 1 if layout == "nhw" else 3, 64, 64)


def test_unlabelled_info_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "photos.npz"
    np.savez(path, images=np.zeros((4, 64, 64, 3), np.uint8))
    assert disco_main(["data", "info", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: photos, 4 images (3, 64, 64) uint8, unlabelled (no factors)\n"
    names_only = tmp_path / "names_only.npz"  # factor_names without factors: a broken labelled file, not unlabelled
    np.savez(names_only, images=np.zeros((4, 64, 64), np.uint8), factor_names=np.array(["a"]))
    with pytest.raises(DataError, match=r"not the layout.*unlabelled"):
        load_dataset(str(names_only))
    small = tmp_path / "small.h5"
    with h5py.File(small, "w") as fh:
        fh["images"] = np.zeros((4, 32, 32), np.uint8)
    with pytest.raises(DataError, match=r"64×64.*disco data import .* --size 64"):
        load_dataset(str(small))
