"""Replicas: official layout readable by plain h5py and the loader, sensible images, atomic writes, bad options."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from disco.data.datasets import DSPRITES, SHAPES3D, load_dataset
from disco.data.replicas import dsprites as ds_mod
from disco.data.replicas import make_replica
from disco.data.replicas.dsprites import render_dsprites, sprite_centre
from disco.data.replicas.shapes3d import geometry_maps, shapes3d_chunks
from disco.errors import ConfigError, DataError

DS_STEPS = {"orientation": 8, "pos_x": 4, "pos_y": 4}  # as in conftest.py
S3_STEPS = {"floor_hue": 5, "wall_hue": 5, "object_hue": 5, "orientation": 5, "scale": 2}


def test_dsprites_replica_official_layout(dsprites_small: Path) -> None:
    steps = [DS_STEPS.get(n, 1) for n in DSPRITES.names]
    sub = DSPRITES.subset(steps)
    with h5py.File(dsprites_small, "r") as fh:
        assert fh["imgs"].dtype == np.uint8 and fh["imgs"].shape == (sub.size, 64, 64)
        assert set(np.unique(fh["imgs"][:200])) <= {0, 1}
        classes, values = fh["latents/classes"][()], fh["latents/values"][()]
        assert classes.dtype == np.int64 and values.dtype == np.float64
        assert json.loads(fh.attrs["factor_names"]) == list(DSPRITES.names)
        assert json.loads(fh.attrs["factor_sizes"]) == list(sub.sizes)
        assert fh.attrs["disco_generator_version"] == "1" and len(fh.attrs["images_md5"]) == 32
    np.testing.assert_allclose(values, DSPRITES.classes_to_values(classes))  # official class indices and values
    assert classes[:, 3].max() == 32 and classes[:, 4].max() == 28
    data = load_dataset(str(dsprites_small))
    assert data.on_grid and data.factors.sizes == sub.sizes
    np.testing.assert_allclose(data.factors.values[3], sub.values[3])


def test_shapes3d_replica_official_layout(shapes3d_small: Path) -> None:
    steps = [S3_STEPS.get(n, 1) for n in SHAPES3D.names]
    sub = SHAPES3D.subset(steps)
    with h5py.File(shapes3d_small, "r") as fh:
        assert fh["images"].dtype == np.uint8 and fh["images"].shape == (sub.size, 64, 64, 3)
        labels = fh["labels"][()]
    assert labels.dtype == np.float64 and labels.shape == (sub.size, 6)
    np.testing.assert_allclose(np.unique(labels[:, 3]), SHAPES3D.values[3][::2])
    data = load_dataset(str(shapes3d_small))
    assert data.on_grid and data.factors.sizes == sub.sizes and data.num_channels == 3


def _render(shape: float, scale: float, angle: float, x: float, y: float) -> np.ndarray:
    return render_dsprites(np.array([shape]), np.array([scale]), np.array([angle]), np.array([x]), np.array([y]))[0]


@pytest.mark.parametrize("shape", [1.0, 2.0, 3.0])
def test_dsprites_area_grows_with_scale(shape: float) -> None:
    areas = [int(_render(shape, s, 0.3, 0.5, 0.5).sum()) for s in DSPRITES.values[2]]
    assert all(a < b for a, b in itertools.pairwise(areas))
    assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.2)  # area ∝ scale²


def test_dsprites_centroid_follows_position_and_stays_inside() -> None:
    for px in (0.0, 0.3, 1.0):
        for py in (0.0, 0.7, 1.0):
            img = _render(1.0, 1.0, 0.0, px, py)
            rows, cols = np.nonzero(img)
            assert cols.mean() + 0.5 == pytest.approx(float(sprite_centre(torch.tensor(px))), abs=0.5)
            assert rows.mean() + 0.5 == pytest.approx(float(sprite_centre(torch.tensor(py))), abs=0.5)
    for shape in (1.0, 2.0, 3.0):  # largest sprite in a corner, at any angle: no pixel touches the border
        for angle in np.linspace(0, 2 * np.pi, 17):
            img = _render(shape, 1.0, angle, 1.0, 0.0)
            assert img.sum() > 0 and img[0].sum() == img[-1].sum() == img[:, 0].sum() == img[:, -1].sum() == 0


def test_dsprites_symmetries() -> None:
    square = _render(1.0, 0.8, 0.0, 0.5, 0.5)
    assert np.array_equal(_render(1.0, 0.8, np.pi / 2, 0.5, 0.5), square)
    assert not np.array_equal(_render(1.0, 0.8, np.pi / 4, 0.5, 0.5), square)
    ellipse = _render(2.0, 1.0, 0.0, 0.5, 0.5)
    assert np.array_equal(_render(2.0, 1.0, np.pi, 0.5, 0.5), ellipse)
    assert np.array_equal(_render(2.0, 1.0, np.pi / 2, 0.5, 0.5), ellipse.T)  # centred at a pixel corner: exact
    heart = _render(3.0, 1.0, 0.0, 0.5, 0.5)
    assert np.array_equal(heart, heart[:, ::-1])  # mirror-symmetric about the vertical axis
    rows = np.nonzero(heart)[0]
    widths = heart.sum(1)[rows.min() : rows.max() + 1]
    assert widths[:3].max() < widths.max()  # lobes on top: narrow, then wide...
    assert widths[-1] <= 3  # ...down to the tip
    assert not np.array_equal(_render(3.0, 1.0, np.pi, 0.5, 0.5), heart)


def test_shapes3d_hues_change_only_their_surface() -> None:
    steps = (5, 5, 5, 8, 1, 15)  # hue values 0 and 0.5 of each surface, one geometry per shape
    maps = geometry_maps(SHAPES3D, steps)  # (G, P, [floor, wall, object])
    imgs = np.concatenate(list(shapes3d_chunks(SHAPES3D, steps))).reshape(2, 2, 2, 4, 64 * 64, 3).astype(int)
    for axis, surface in ((0, 0), (1, 1), (2, 2)):
        a = np.take(imgs, 0, axis=axis)
        b = np.take(imgs, 1, axis=axis)
        changed = (a != b).any(-1)  # (..., G, P)
        covered = maps[:, :, surface] > 0
        assert np.all(changed <= covered), f"surface {surface}: pixels changed outside it"
        assert changed.mean() > 0.2 * covered.mean()
    obj = maps[:, :, 2] > 0
    assert 0.02 < obj.mean() < 0.4  # the object is a visible part of the scene
    assert (maps[:, :, 0] > 0).mean() > 0.2 and (maps[:, :, 1] > 0).mean() > 0.2


def test_shapes3d_orientation_and_scale_change_the_object() -> None:
    maps = geometry_maps(SHAPES3D, (1, 1, 1, 4, 1, 5))  # 2 scales, 4 shapes, 3 angles
    cover = (maps[:, :, 2] > 0).reshape(2, 4, 3, -1).sum(-1)
    assert np.all(cover[1] > cover[0])  # larger scale, larger object
    turned = np.abs(maps.reshape(2, 4, 3, -1, 3)[:, :, 0] - maps.reshape(2, 4, 3, -1, 3)[:, :, 1]).max(axis=(-1, -2))
    assert np.all(turned[:, [0, 1, 3]] > 0.1)  # cube, cylinder, capsule visibly turn
    assert np.all(turned[:, 2] < 1e-6)  # a sphere looks the same at any angle


def test_interrupted_generation_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ds_mod.dsprites_chunks

    def broken(classes: np.ndarray, chunk: int = 4096) -> Iterator[np.ndarray]:
        it = real(classes, 64)
        yield next(it)
        raise KeyboardInterrupt

    monkeypatch.setattr(ds_mod, "dsprites_chunks", broken)
    out = tmp_path / "x.h5"
    with pytest.raises(KeyboardInterrupt):
        make_replica("dsprites", out, {"orientation": 8, "pos_x": 4, "pos_y": 4})
    assert list(tmp_path.iterdir()) == []


def test_bad_options(tmp_path: Path, dsprites_small: Path) -> None:
    with pytest.raises(DataError, match="--force"):
        make_replica("dsprites", dsprites_small, DS_STEPS)
    with pytest.raises(ConfigError, match="does not divide"):
        make_replica("dsprites", tmp_path / "a.h5", {"scale": 4})
    with pytest.raises(ConfigError, match="unknown factor 'size'"):
        make_replica("shapes3d", tmp_path / "a.h5", {"size": 2})
    with pytest.raises(DataError, match="unknown dataset"):
        make_replica("mnist", tmp_path / "a.h5")
    with pytest.raises(ConfigError, match=r"\.h5"):
        make_replica("dsprites", tmp_path / "a.npz", DS_STEPS)
    assert list(tmp_path.iterdir()) == []


def test_force_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    make_replica("dsprites", out, {"orientation": 40, "pos_x": 32, "pos_y": 32})
    make_replica("dsprites", out, {"orientation": 20, "pos_x": 32, "pos_y": 32}, force=True)
    assert len(load_dataset(str(out))) == 3 * 6 * 2
