"""Factor-aware augmentation: shared flags, each augmentation against its formula, config validation, exact resume."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from disco.data.augment import AUGMENTATIONS, FactorAugmenter, augmenter_from_config, hue_matrix
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
    moved = aug._apply(x, {"translation": torch.tensor([[1 / 64, 0.0], [0.0, 1 / 64]])})  # fractions of the size
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
        FactorAugmenter({"colour": "sepia"})


ALL_KINDS: dict[str, str | dict[str, Any]] = {
    "colour": "hue",
    "orientation": "rotation",
    "position": {"kind": "translation", "range": [-0.1, 0.15]},
    "scale": {"kind": "zoom", "range": [0.7, 1.4]},
    "mirror": "hflip",
    "sharpness": {"kind": "blur", "range": [0.0, 1.5]},
    "lighting": {"kind": "brightness", "range": [-0.2, 0.4]},
    "gain": {"kind": "contrast", "range": [0.6, 1.8]},
}


def test_brightness_adds_an_offset_and_clamps() -> None:
    aug = FactorAugmenter({"lighting": "brightness"})
    for c in (1, 3):
        x = torch.full((2, c, 8, 8), 0.4)
        out = aug._apply(x, {"brightness": torch.tensor([[0.25], [-0.5]])})
        assert torch.allclose(out[0], torch.full_like(out[0], 0.65)) and torch.equal(out[1], torch.zeros_like(out[1]))


def test_contrast_scales_about_the_image_mean_over_pixels_and_channels() -> None:
    aug = FactorAugmenter({"lighting": "contrast"})
    x = torch.empty(2, 2, 4, 4)
    x[:, 0, :, :2], x[:, 0, :, 2:], x[:, 1] = 0.2, 0.6, 0.7  # image mean 0.55
    out = aug._apply(x, {"contrast": torch.tensor([[0.5], [3.0]])})
    # c = 0.5: (0.2 - 0.55) / 2 + 0.55 = 0.375, (0.6 - 0.55) / 2 + 0.55 = 0.575, (0.7 - 0.55) / 2 + 0.55 = 0.625
    assert torch.allclose(out[0, 0, :, :2], torch.tensor(0.375)) and torch.allclose(
        out[0, 0, :, 2:], torch.tensor(0.575)
    )
    assert torch.allclose(out[0, 1], torch.tensor(0.625))
    # c = 3: 0.55 - 1.05 -> 0 (clamped), 0.55 + 0.15 = 0.7, 0.55 + 0.45 = 1.0
    assert torch.equal(out[1, 0, :, :2], torch.zeros(4, 2)) and torch.allclose(out[1, 0, :, 2:], torch.tensor(0.7))
    assert torch.allclose(out[1, 1], torch.tensor(1.0))


def test_hflip_reverses_the_width_axis_in_exactly_one_view_of_a_changed_pair() -> None:
    aug = FactorAugmenter({"mirror": "hflip"}, p_change=0.5, seed=4)
    x = _images(64, c=1)
    out = aug._apply(x, {"hflip": torch.tensor([[1.0]] * 32 + [[0.0]] * 32)})
    assert torch.equal(out[:32], torch.flip(x[:32], dims=(3,))) and torch.equal(out[32:], x[32:])
    batch = aug.make_pairs(x)
    flip_a, flip_b = (p[:, 0] for p in aug.last_params["hflip"])
    assert set(flip_a.tolist()) == {0.0, 1.0} and torch.equal(flip_a != flip_b, ~batch.shared[:, 0])
    for view, flip in ((batch.x_a, flip_a), (batch.x_b, flip_b)):
        expected = torch.where(flip[:, None, None, None] > 0, x.flip(3), x)
        assert torch.equal(view, expected)


def test_blur_of_a_point_is_the_normalised_gaussian_and_zero_sigma_is_identity() -> None:
    aug = FactorAugmenter({"sharpness": {"kind": "blur", "range": [0.0, 2.0]}})  # radius ceil(3 * 2) = 6
    point = torch.zeros(1, 1, 21, 21)
    point[0, 0, 10, 10] = 1.0
    out = aug._apply(point, {"blur": torch.tensor([[1.0]])})
    g = torch.tensor([math.exp(-(k**2) / 2.0) for k in range(-6, 7)])
    g = g / g.sum()
    expected = torch.zeros(21, 21)
    expected[4:17, 4:17] = torch.outer(g, g)
    assert torch.allclose(out[0, 0], expected, atol=1e-7) and math.isclose(out.sum().item(), 1.0, rel_tol=1e-5)
    x = _images(2)
    blurred = aug._apply(x, {"blur": torch.tensor([[0.0], [1.5]])})
    assert torch.equal(blurred[0], x[0]) and not torch.allclose(blurred[1], x[1], atol=1e-3)
    with pytest.raises(ConfigError, match="blur radius 6"):
        aug.make_pairs(torch.rand(2, 1, 6, 6))


def test_shared_and_parameters_respect_changes_and_ranges() -> None:
    aug = augmenter_from_config({"factors": ALL_KINDS, "p_change": 0.5, "min_delta": 0.2, "content": "content"}, 5)
    assert aug.factor_names == (*ALL_KINDS, "content")
    batch = aug.make_pairs(_images(128))
    assert batch.shared.shape == (128, 9) and batch.shared[:, -1].all()
    for col, kind in enumerate(aug.factors.values()):
        a, b = aug.last_params[kind]
        assert a.shape == b.shape == (128, 2 if kind == "translation" else 1)
        same = batch.shared[:, col]
        assert 0 < same.sum() < 128 and torch.equal(a[same], b[same])
        if kind == "hflip":
            assert ((a == 0) | (a == 1)).all() and torch.equal(a[~same] + b[~same], torch.ones_like(a[~same]))
            continue
        lo, hi = aug.ranges[kind]
        for p in (a, b):
            assert (p >= lo - 1e-6).all() and (p <= hi + 1e-6).all()
        if kind in ("zoom", "contrast"):
            a, b, lo, hi = a.log(), b.log(), math.log(lo), math.log(hi)
        assert ((a[~same] - b[~same]).abs() >= 0.2 * (hi - lo) - 1e-5).all()


def test_forced_changes_are_respected() -> None:
    aug = FactorAugmenter(ALL_KINDS, content="content", seed=6)
    changed = torch.eye(8, dtype=torch.bool).repeat(4, 1)  # exactly one augmentation per pair
    batch = aug.make_pairs(_images(32), changed=changed)
    assert torch.equal(batch.shared[:, :-1], ~changed) and batch.shared[:, -1].all()
    for col, kind in enumerate(aug.factors.values()):
        a, b = aug.last_params[kind]
        assert torch.equal((a != b).any(1), changed[:, col])
    with pytest.raises(ConfigError, match=r"changed must be bool \(32, 8\)"):
        aug.make_pairs(_images(32), changed=changed[:, :7])
    with pytest.raises(ConfigError, match="changed must be bool"):
        aug.make_pairs(_images(32), changed=changed.float())


def test_one_and_three_channel_images() -> None:
    grey = {k: v for k, v in ALL_KINDS.items() if v != "hue"}
    for factors, c in ((grey, 1), (ALL_KINDS, 3)):
        x = _images(16, c=c)
        for dtype in (torch.float32, torch.float64):
            batch = FactorAugmenter(factors, p_change=1.0, seed=7).make_pairs(x.to(dtype))
            assert batch.x_a.shape == x.shape and batch.x_a.dtype == dtype
            assert batch.x_b.min() >= 0 and batch.x_b.max() <= 1 and not batch.shared.any()


def test_resume_from_state_dict_is_bit_identical() -> None:
    cfg = {"factors": ALL_KINDS, "content": "content"}
    aug = augmenter_from_config(cfg, seed=8)
    x = _images(16)
    for _ in range(3):
        aug.make_pairs(x)
    state = aug.state_dict()
    expected = [(aug.make_pairs(x), dict(aug.last_params)) for _ in range(2)]
    fresh = augmenter_from_config(cfg, seed=8)
    fresh.load_state_dict(state)
    for want, want_params in expected:
        got = fresh.make_pairs(x)
        assert (
            torch.equal(got.x_a, want.x_a) and torch.equal(got.x_b, want.x_b) and torch.equal(got.shared, want.shared)
        )
        assert all(torch.equal(fresh.last_params[k][i], want_params[k][i]) for k in want_params for i in (0, 1))


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            {"factors": {"o": "rotation"}, "colour": 1},
            "unknown augmentation key.*colour.*valid keys: factors, p_change",
        ),
        ({"factors": ["rotation"]}, "'factors' must map"),
        ({"factors": {"o": "spin"}}, "unknown augmentation 'spin' for factor 'o'; choose one of hue, rotation"),
        ({"factors": {"o": {"kind": "rotation", "span": 1}}}, "factor 'o': unknown key.*span.*valid keys: kind, range"),
        ({"factors": {"o": {"range": [0, 1]}}}, "factor 'o' needs key 'kind'"),
        ({"factors": {"m": {"kind": "hflip", "range": [0, 1]}}}, "hflip takes no range"),
        (
            {"factors": {"o": {"kind": "rotation", "range": [1, 0]}}},
            r"'o' \(rotation\): range \[1.0, 0.0\] must be two",
        ),
        ({"factors": {"o": {"kind": "rotation", "range": [0, 1, 2]}}}, "range must be two numbers"),
        ({"factors": {"o": {"kind": "rotation", "range": ["a", 1]}}}, "range must be two numbers"),
        ({"factors": {"s": {"kind": "zoom", "range": [0, 2]}}}, r"'s' \(zoom\).*must be positive"),
        ({"factors": {"s": {"kind": "contrast", "range": [-1, 2]}}}, "must be positive"),
        ({"factors": {"b": {"kind": "blur", "range": [-1, 2]}}}, "must be non-negative"),
        ({"factors": {"a": "hue", "b": "hue"}}, "'hue' is tagged with two factors"),
        ({"factors": {"o": "rotation"}, "content": "o"}, "content 'o' must be a non-empty name different"),
        ({"factors": {"o": "rotation"}, "content": 3}, "content 3 must be"),
        ({"p_change": "often"}, "'p_change' must be a number"),
        ({"min_delta": 0.7}, r"min_delta in \(0, 0.5\]"),
        ({"factors": {}}, "at least one factor"),
    ],
)
def test_config_errors(cfg: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        augmenter_from_config(cfg, seed=0)


def test_every_kind_is_covered() -> None:
    assert {v if isinstance(v, str) else v["kind"] for v in ALL_KINDS.values()} == set(AUGMENTATIONS)


def test_mass_centre_of_a_hand_made_image() -> None:
    from disco.data.augment import mass_centre

    x = torch.zeros(2, 1, 64, 64)
    x[0, 0, 10, 20] = 1.0  # row 10 (y), column 20 (x)
    x[1, 0, 0, 0] = 1.0
    x[1, 0, 63, 63] = 3.0
    c = mass_centre(x)
    assert torch.allclose(c[0], torch.tensor([(2 * 20 + 1) / 64 - 1, (2 * 10 + 1) / 64 - 1]))
    assert torch.allclose(c[1], torch.tensor([0.25 * (1 / 64 - 1) + 0.75 * (127 / 64 - 1)] * 2))
    assert torch.equal(mass_centre(torch.zeros(1, 3, 64, 64)), torch.zeros(1, 2))


@pytest.mark.parametrize("kind", ["rotation", "zoom"])
def test_mass_pivot_turns_and_grows_the_object_in_place(kind: str) -> None:
    from disco.data.augment import mass_centre

    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    blob = (((xx - 44) / 6) ** 2 + ((yy - 20) / 3) ** 2 < 1).float()  # an off-centre ellipse
    x = blob[None, None].repeat(32, 1, 1, 1)
    moved = {}
    for pivot in ("centre", "mass"):
        batch = FactorAugmenter({"f": kind}, p_change=1.0, pivot=pivot, seed=3).make_pairs(x)
        moved[pivot] = (mass_centre(batch.x_b) - mass_centre(batch.x_a)).norm(dim=1).amax().item()
    assert moved["mass"] < 0.02  # under half a pixel (one pixel is 2/64 = 0.031)
    assert moved["centre"] > 0.1  # about the image centre the sprite travels


def test_delta_is_each_pairs_parameter_difference() -> None:
    aug = FactorAugmenter(
        {
            "o": {"kind": "rotation", "range": [-math.pi, math.pi]},
            "p": {"kind": "translation", "range": [-0.2, 0.2]},
            "s": {"kind": "zoom", "range": [0.8, 1.25]},
        },
        p_change=0.5,
        seed=4,
    )
    batch = aug.make_pairs(_images(64, 1))
    assert batch.delta is not None and set(batch.delta) == {"o", "p", "s"}
    (ra, rb), (ta, tb), (za, zb) = (aug.last_params[k] for k in ("rotation", "translation", "zoom"))
    for b in range(64):
        wrapped = math.remainder(float(rb[b, 0] - ra[b, 0]), 2 * math.pi)
        assert batch.delta["o"][b, 0].item() == pytest.approx(wrapped, abs=1e-5)
        assert batch.delta["s"][b, 0].item() == pytest.approx(
            math.log(float(zb[b, 0]) / float(za[b, 0])) / math.log(1.25 / 0.8), abs=1e-5
        )
        for d in range(2):
            assert batch.delta["p"][b, d].item() == pytest.approx(float(tb[b, d] - ta[b, d]) / 0.4, abs=1e-5)
    assert torch.equal(batch.delta["p"].abs().sum(1) == 0, batch.shared[:, 1])  # unchanged pairs: zero delta
    sliced = batch.rows(3, 7)
    assert sliced.delta is not None and torch.equal(sliced.delta["p"], batch.delta["p"][3:7])


def test_unknown_pivot_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="pivot 'corner'; choose one of centre, mass"):
        augmenter_from_config({"pivot": "corner"}, seed=0)
