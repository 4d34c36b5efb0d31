"""Factor-aware augmentation: shared flags, each augmentation against a reference transform, hue rotation maths."""

from __future__ import annotations

import math

import pytest
import torch

from disco.data.augment import FactorAugmenter, hue_matrix
from disco.errors import ConfigError


def _images(b: int = 8, c: int = 3) -> torch.Tensor:
    return torch.rand(b, c, 64, 64, generator=torch.Generator().manual_seed(0))


def test_shared_flags_mark_exactly_the_augmentations_that_differ() -> None:
    aug = FactorAugmenter(p_change=0.5, seed=1)
    x = _images(256)
    batch = aug.make_pairs(x)
    assert batch.factor_names == ("colour", "orientation", "position", "scale") and batch.classes_a is None
    assert batch.shared.shape == (256, 4) and batch.shared.dtype == torch.bool
    assert 0.35 < batch.shared.float().mean() < 0.65
    same = batch.shared.all(1)
    assert torch.allclose(batch.x_a[same], batch.x_b[same])  # nothing applied differently: identical views
    assert ((batch.x_a[~same] - batch.x_b[~same]).abs().amax((1, 2, 3)) > 1e-3).all()


def test_each_augmentation_alone_changes_what_it_says() -> None:
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    blob = ((xx - 40) ** 2 + (yy - 26) ** 2 < 36).float()
    x = torch.stack([blob * 0.9, blob * 0.2, blob * 0.1], 0)[None].repeat(64, 1, 1, 1)
    for name, kind in (("c", "hue"), ("o", "rotation"), ("p", "translation"), ("s", "zoom")):
        batch = FactorAugmenter({name: kind}, p_change=1.0, seed=2).make_pairs(x)
        assert not batch.shared.any()
        mass_a, mass_b = batch.x_a.sum((1, 2, 3)), batch.x_b.sum((1, 2, 3))
        colour_a = batch.x_a.sum((2, 3)) / mass_a[:, None]
        colour_b = batch.x_b.sum((2, 3)) / mass_b[:, None]
        if kind == "hue":  # the colour changes, the mask does not
            assert ((colour_a - colour_b).abs().amax(1) > 0.05).float().mean() > 0.9  # clipping can map two hues close
            assert torch.equal(batch.x_a.amax(1) > 0.05, batch.x_b.amax(1) > 0.05)
        if kind == "zoom":  # area changes, colour does not
            assert ((mass_a / mass_b - 1).abs() > 0.1).all()
            assert torch.allclose(colour_a, colour_b, atol=1e-4)
        if kind in ("rotation", "translation"):  # the blob moves (rotation is about the centre), area and colour stay
            centroid_a = (batch.x_a.sum(1) * xx).sum((1, 2)) / batch.x_a.sum((1, 2, 3))
            centroid_b = (batch.x_b.sum(1) * xx).sum((1, 2)) / batch.x_b.sum((1, 2, 3))
            moved = (centroid_a - centroid_b).abs() > 1.0
            assert moved.float().mean() > 0.7
            assert torch.allclose(colour_a, colour_b, atol=1e-4)


def test_rotation_by_quarter_turn_equals_rot90() -> None:
    aug = FactorAugmenter({"o": "rotation"})
    x = _images(2)
    turned = aug._apply(x, {"rotation": torch.full((2, 1), math.pi / 2)})
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5) or torch.allclose(
        turned, torch.rot90(x, -1, dims=(2, 3)), atol=1e-5
    )


def test_translation_by_one_pixel_equals_shift() -> None:
    aug = FactorAugmenter({"p": "translation"})
    x = _images(2)
    moved = aug._apply(x, {"translation": torch.tensor([[2 / 64, 0.0], [0.0, 2 / 64]])})
    assert torch.allclose(moved[0, :, :, 1:], x[0, :, :, :-1], atol=1e-5) and moved[0, :, :, 0].abs().max() < 1e-6
    assert torch.allclose(moved[1, :, 1:], x[1, :, :-1], atol=1e-5)


def test_hue_matrix_is_a_rotation_about_grey() -> None:
    angles = torch.tensor([0.0, 0.7, 2 * math.pi / 3])
    m = hue_matrix(angles)
    assert torch.allclose(m @ m.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6)
    assert torch.allclose(m @ torch.ones(3), torch.ones(3, 3), atol=1e-6)  # grey stays grey
    assert torch.allclose(m[0], torch.eye(3), atol=1e-6)
    red = torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(m[2] @ red, torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)  # a third of a turn: red -> green


def test_state_and_errors() -> None:
    aug = FactorAugmenter(seed=3)
    x = _images(4)
    aug.make_pairs(x)
    state = aug.state_dict()
    a = aug.make_pairs(x)
    other = FactorAugmenter(seed=99)
    other.load_state_dict(state)
    b = other.make_pairs(x)
    assert torch.equal(a.x_a, b.x_a) and torch.equal(a.shared, b.shared)
    with pytest.raises(ConfigError, match="RGB"):
        aug.make_pairs(_images(2, c=1))
    with pytest.raises(ConfigError, match="unknown augmentation"):
        FactorAugmenter({"colour": "blur"})
