"""MIG (Chen et al. 2018) as disentanglement_lib, its kNN variant and the subspace-aware variant."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.feature_selection import mutual_info_classif

from metrics._knn_mi import knn_mi_columns, knn_mi_joint, prepare_continuous
from metrics.mig import mig, mig_continuous, mig_subspace
from metrics.types import MetricError

DSPRITES_SIZES = (1, 3, 6, 40, 32, 32)
SHAPES3D_SIZES = (10, 10, 10, 8, 4, 15)


def _grid(sizes: tuple[int, ...]) -> np.ndarray:
    return np.indices(sizes).reshape(len(sizes), -1).T


def _uniform(sizes: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def _binned_mi(x: np.ndarray, y: np.ndarray) -> float:
    """MI of two label vectors by the textbook formula (a reference independent of metrics._checks)."""
    total = 0.0
    for a in np.unique(x):
        for b in np.unique(y):
            p = np.mean((x == a) & (y == b))
            if p > 0:
                total += p * math.log(p / (np.mean(x == a) * np.mean(y == b)))
    return total


def test_hand_computed_case() -> None:
    f0 = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    f1 = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    z1 = np.array([0, 1, 0, 1, 0, 1, 0, 0])
    codes = np.stack([f0, z1], axis=1).astype(float)
    # joint (f0, z1): (0,0)=2 (0,1)=2 (1,0)=3 (1,1)=1; p(z1=0)=5/8, p(z1=1)=3/8
    mi_z1_f0 = (
        2 / 8 * math.log((2 / 8) / (0.5 * 5 / 8))
        + 2 / 8 * math.log((2 / 8) / (0.5 * 3 / 8))
        + 3 / 8 * math.log((3 / 8) / (0.5 * 5 / 8))
        + 1 / 8 * math.log((1 / 8) / (0.5 * 3 / 8))
    )
    # joint (f1, z1): (0,0)=4 (1,0)=1 (1,1)=3; MI(z0, f1) = 0
    mi_z1_f1 = (
        4 / 8 * math.log((4 / 8) / (0.5 * 5 / 8))
        + 1 / 8 * math.log((1 / 8) / (0.5 * 5 / 8))
        + 3 / 8 * math.log((3 / 8) / (0.5 * 3 / 8))
    )
    expected = 0.5 * ((math.log(2) - mi_z1_f0) / math.log(2) + mi_z1_f1 / math.log(2))
    result = mig(codes, np.stack([f0, f1], axis=1), num_bins=2)
    assert result.score == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(result.details["mi_matrix"], [[math.log(2), 0.0], [mi_z1_f0, mi_z1_f1]], atol=1e-12)


def test_mi_matrix_matches_textbook_formula() -> None:
    rng = np.random.default_rng(0)
    factors = _uniform((3, 5), 600, seed=1)
    codes = np.concatenate([factors + rng.normal(size=factors.shape) * 0.5, rng.normal(size=(600, 1))], axis=1)
    result = mig(codes, factors, num_bins=20)
    for i in range(3):
        binned = np.digitize(codes[:, i], np.histogram(codes[:, i], 20)[1][:-1])
        for j in range(2):
            assert result.details["mi_matrix"][i, j] == pytest.approx(_binned_mi(binned, factors[:, j]), abs=1e-9)


def test_full_dsprites_grid_perfect_code() -> None:
    classes = _grid(DSPRITES_SIZES)
    result = mig(classes.astype(float), classes)
    gaps = result.details["gaps"]
    assert result.details["skipped_factors"] == [0]
    assert gaps[1] == pytest.approx(1.0) and gaps[2] == pytest.approx(1.0)
    # 40 orientations fall two per bin: MI = log 20 of H = log 40
    assert gaps[3] == pytest.approx(math.log(20) / math.log(40), abs=1e-12)
    # 32 positions in 20 equal-width bins: MI = entropy of the bin occupancy
    occupancy = np.bincount(np.digitize(np.arange(32.0), np.histogram(np.arange(32.0), 20)[1][:-1]))[1:] / 32
    expected_pos = -np.sum(occupancy * np.log(occupancy)) / math.log(32)
    assert gaps[4] == pytest.approx(expected_pos, abs=1e-12)
    assert result.score == pytest.approx(0.9024, abs=1e-3)


def test_shapes3d_perfect_code() -> None:
    classes = _grid(SHAPES3D_SIZES)
    assert mig(classes.astype(float), classes).score == pytest.approx(1.0, abs=1e-9)
    sampled = _uniform(SHAPES3D_SIZES, 10000, seed=0)
    assert mig(sampled.astype(float), sampled).score == pytest.approx(0.996, abs=0.003)


def test_dsprites_perfect_code_under_the_sampled_protocol() -> None:
    sampled = _uniform(DSPRITES_SIZES, 10000, seed=0)
    assert mig(sampled.astype(float), sampled).score == pytest.approx(0.90, abs=0.01)


def test_affine_transform_and_column_permutation_invariance() -> None:
    factors = _uniform((3, 6, 4), 5000, seed=2)
    rng = np.random.default_rng(3)
    codes = np.concatenate([factors + rng.normal(size=factors.shape) * 0.7, rng.normal(size=(5000, 2))], axis=1)
    base = mig(codes, factors).score
    perm = rng.permutation(codes.shape[1])
    assert mig(codes[:, perm], factors).score == pytest.approx(base, abs=1e-12)
    assert mig(factors * -2.5 + 7.0, factors).score == pytest.approx(1.0, abs=1e-2)


def test_random_code_scores_near_zero() -> None:
    factors = _uniform((3, 6, 40, 32, 32), 10000, seed=4)
    codes = np.random.default_rng(5).normal(size=(10000, 10))
    assert mig(codes, factors).score < 0.01
    assert mig_continuous(codes, factors).score < 0.01


def test_subsampling_is_seeded() -> None:
    factors = _uniform((4, 5), 3000, seed=6)
    codes = factors + np.random.default_rng(7).normal(size=factors.shape)
    a = mig(codes, factors, num_train=1000, seed=1)
    assert a.score == mig(codes, factors, num_train=1000, seed=1).score
    assert a.settings["num_samples"] == 1000
    with pytest.raises(MetricError, match="MIG needs at least 5000 samples but got 3000"):
        mig(codes, factors, num_train=5000)


def test_knn_estimator_matches_sklearn() -> None:
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 6, 3000)
    codes = np.stack([labels + rng.normal(size=3000) * s for s in (0.2, 1.0, 5.0)], axis=1)
    ours = knn_mi_columns(prepare_continuous(codes, 0), labels, 3)
    ref = mutual_info_classif(codes, labels, n_neighbors=3, random_state=0)
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    joint = [knn_mi_joint(prepare_continuous(codes, 0)[:, [d]], labels, 3) for d in range(3)]
    np.testing.assert_allclose(joint, ref, atol=1e-9)


def test_mig_continuous_perfect_monotone_code_and_determinism() -> None:
    factors = _uniform((3, 6, 10), 5000, seed=9)
    codes = np.exp(factors / 3.0) + factors**3
    result = mig_continuous(codes, factors, seed=0)
    assert result.score > 0.97
    assert mig_continuous(codes, factors, seed=0).score == result.score
    assert mig_continuous(codes, factors, seed=1).score == pytest.approx(result.score, abs=1e-2)


def _angle_code(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]], list[str]]:
    factors = _uniform((3, 6, 40, 32), n, seed)
    angle = factors[:, 2] * 2 * np.pi / 40
    codes = np.column_stack([factors[:, 0], factors[:, 1], np.cos(angle), np.sin(angle), factors[:, 3]]).astype(float)
    return (
        codes,
        factors,
        [("shape", 1), ("scale", 1), ("orientation", 2), ("pos", 1)],
        [
            "shape",
            "scale",
            "orientation",
            "pos",
        ],
    )


def test_subspace_mig_keeps_a_factor_spread_over_two_dims() -> None:
    codes, factors, subspaces, names = _angle_code(10000, seed=10)
    standard = mig(codes, factors)
    binned = mig_subspace(codes, factors, subspaces, names)
    knn = mig_subspace(codes, factors, subspaces, names, estimator="knn")
    assert standard.details["gaps"][2] < 0.1
    assert binned.details["gaps"][2] > 0.8
    assert knn.details["gaps"][2] > 0.95
    assert binned.score > standard.score + 0.15
    assert binned.details["best_subspace"] == names
    assert binned.details["named_score"] == pytest.approx(binned.score)


def test_width_one_subspaces_reproduce_standard_mig() -> None:
    factors = _uniform((3, 6, 8), 4000, seed=11)
    codes = factors + np.random.default_rng(12).normal(size=factors.shape) * 0.8
    sub = mig_subspace(codes, factors, [("a", 1), ("b", 1), ("c", 1)])
    std = mig(codes, factors)
    assert sub.score == pytest.approx(std.score, abs=1e-12)
    np.testing.assert_allclose(sub.details["mi_matrix"], std.details["mi_matrix"], atol=1e-12)


def test_subspace_errors() -> None:
    codes, factors, subspaces, names = _angle_code(500, seed=13)
    with pytest.raises(MetricError, match="sum to 4 but the codes have 5 dims"):
        mig_subspace(codes, factors, [("a", 2), ("b", 2)])
    with pytest.raises(MetricError, match="unknown estimator"):
        mig_subspace(codes, factors, subspaces, names, estimator="kde")
    with pytest.raises(MetricError, match="factor names"):
        mig_subspace(codes, factors, subspaces, names[:2])


def test_invalid_inputs_raise_one_line_errors() -> None:
    factors = _uniform((3, 4), 100, seed=14)
    codes = np.random.default_rng(15).normal(size=(100, 3))
    bad = codes.copy()
    bad[3, 1] = np.inf
    for call, message in [
        (lambda: mig(bad, factors), "NaN or inf"),
        (lambda: mig(np.zeros((100, 3)), factors), "constant"),
        (lambda: mig(codes[:50], factors), "rows but factors have"),
        (lambda: mig(codes, factors + 0.5), "non-integer"),
        (lambda: mig(codes[:, :1], factors), "at least 2 latent units"),
        (lambda: mig(codes, np.zeros((100, 2), dtype=int)), "single class"),
    ]:
        with pytest.raises(MetricError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
