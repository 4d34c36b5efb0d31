"""SAP (Kumar et al. 2018) as disentanglement_lib: against a direct loop of LinearSVCs, ceilings and invariances."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from metrics.sap import sap
from metrics.types import MetricError


def _data(n: int, seed: int, sizes: tuple[int, ...] = (2, 3, 5)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    codes = np.concatenate([factors + rng.normal(size=factors.shape) * 0.4, rng.normal(size=(n, 1))], axis=1)
    return codes, factors


def _reference_sap(codes: np.ndarray, factors: np.ndarray, tr: np.ndarray, te: np.ndarray) -> float:
    """The disentanglement_lib loop: one balanced LinearSVC (C=0.01) per (latent, factor) on that latent alone."""
    matrix = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            clf = LinearSVC(C=0.01, class_weight="balanced", dual=False).fit(codes[tr, i : i + 1], factors[tr, j])
            matrix[i, j] = np.mean(clf.predict(codes[te, i : i + 1]) == factors[te, j])
    ordered = np.sort(matrix, axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))


def test_matches_reference_loop() -> None:
    codes, factors = _data(900, seed=0)
    result = sap(codes, factors, num_train=600, num_test=300, seed=4)
    perm = np.random.default_rng(4).permutation(900)
    assert result.score == pytest.approx(_reference_sap(codes, factors, perm[:600], perm[600:900]), abs=1e-12)
    assert result.details["score_matrix"].shape == (4, 3)
    assert result.settings["svm_c"] == 0.01


def test_binary_perfect_code_has_perfect_best_accuracy() -> None:
    rng = np.random.default_rng(1)
    factors = rng.integers(0, 2, size=(1500, 3))
    result = sap(factors * 3.0 - 1.0, factors, num_train=1000, num_test=500)
    matrix = result.details["score_matrix"]
    np.testing.assert_array_equal(np.diag(matrix), 1.0)
    off = matrix[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off - 0.5) < 0.1)
    assert result.score == pytest.approx(np.mean(1.0 - np.sort(matrix, axis=0)[-2]), abs=1e-12)


def test_continuous_variant_ceiling_and_r2() -> None:
    rng = np.random.default_rng(2)
    factors = rng.integers(0, 10, size=(1500, 3))
    assert sap(factors * 0.1 + 2.0, factors, num_train=1000, num_test=500, continuous=True).score > 0.99
    codes = np.column_stack([factors[:, 0] + rng.normal(size=1500), rng.normal(size=1500)])
    result = sap(codes, factors[:, :1], num_train=1000, num_test=500, continuous=True)
    tr = np.random.default_rng(0).permutation(1500)[:1000]
    r = np.corrcoef(codes[tr, 0], factors[tr, 0])[0, 1]
    assert result.details["score_matrix"][0, 0] == pytest.approx(r**2, abs=1e-12)


def test_column_permutation_and_determinism() -> None:
    codes, factors = _data(1200, seed=3)
    base = sap(codes, factors, num_train=800, num_test=400, seed=1)
    perm = np.array([3, 1, 0, 2])
    assert sap(codes[:, perm], factors, num_train=800, num_test=400, seed=1).score == pytest.approx(base.score)
    assert sap(codes, factors, num_train=800, num_test=400, seed=1, n_jobs=1).score == base.score


def test_random_code_near_zero() -> None:
    rng = np.random.default_rng(5)
    factors = np.stack([rng.integers(0, s, 3000) for s in (3, 6, 10)], axis=1)
    assert sap(rng.normal(size=(3000, 6)), factors, num_train=2000, num_test=1000).score < 0.05


def test_errors() -> None:
    codes, factors = _data(100, seed=6)
    with pytest.raises(MetricError, match="SAP needs at least 15000 samples but got 100"):
        sap(codes, factors)
    with pytest.raises(MetricError, match="at least 2 latent dimensions"):
        sap(codes[:, :1], factors, num_train=50, num_test=50)
    constant = np.zeros_like(factors)
    with pytest.raises(MetricError, match="single class"):
        sap(codes, constant, num_train=50, num_test=50)
    skipped = sap(codes, np.column_stack([factors[:, 0], constant[:, 0]]), num_train=50, num_test=50)
    assert skipped.details["skipped_factors"] == [1] and np.isnan(skipped.details["gaps"][1])
