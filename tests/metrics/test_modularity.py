"""Modularity and explicitness (Ridgeway & Mozer 2018) as disentanglement_lib."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from metrics.modularity import explicitness, modularity, modularity_explicitness, modularity_from_mi
from metrics.types import MetricError


def test_modularity_formula_by_hand() -> None:
    mi = np.array([[0.8, 0.2, 0.0], [0.3, 0.3, 0.3], [0.0, 0.0, 0.0], [0.0, 0.5, 0.1]])
    expected = [
        1 - (0.2**2) / (0.8**2 * 2),
        1 - (2 * 0.3**2) / (0.3**2 * 2),
        0.0,
        1 - (0.1**2) / (0.5**2 * 2),
    ]
    score, per_code = modularity_from_mi(mi)
    np.testing.assert_allclose(per_code, expected, atol=1e-12)
    assert score == pytest.approx(np.mean(expected), abs=1e-12)


def test_perfect_code_on_a_full_grid_is_perfectly_modular() -> None:
    classes = np.indices((3, 4, 5)).reshape(3, -1).T
    result = modularity(np.repeat(classes, 4, axis=0) * 1.0, np.repeat(classes, 4, axis=0))
    assert result.score == pytest.approx(1.0, abs=1e-12)
    perm = [2, 0, 1]
    assert modularity(classes[:, perm] * 1.0, classes).score == pytest.approx(1.0, abs=1e-12)


def test_mixed_code_is_less_modular_and_permutation_invariant() -> None:
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 8, size=(4000, 3))
    codes = np.column_stack([factors[:, 0] + factors[:, 1], factors[:, 2], rng.normal(size=4000)]).astype(float)
    result = modularity(codes, factors)
    assert result.score < 0.9
    assert modularity(codes[:, [2, 0, 1]], factors).score == pytest.approx(result.score, abs=1e-12)


def _reference_explicitness(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray) -> float:
    """disentanglement_lib's explicitness_per_factor (test AUC) on normalised codes."""
    clf = LogisticRegression().fit(x_tr, y_tr)
    mlb = MultiLabelBinarizer()
    return float(roc_auc_score(mlb.fit_transform(np.expand_dims(y_te, 1)), clf.predict_proba(x_te)))


def test_explicitness_matches_reference() -> None:
    rng = np.random.default_rng(1)
    factors = np.stack([rng.integers(0, s, 1500) for s in (2, 4)], axis=1)
    codes = np.column_stack([factors + rng.normal(size=factors.shape), rng.normal(size=1500)])
    result = explicitness(codes, factors, num_train=1000, num_test=500, seed=3)
    perm = np.random.default_rng(3).permutation(1500)
    tr, te = perm[:1000], perm[1000:]
    mean, std = codes[tr].mean(axis=0), codes[tr].std(axis=0)
    for j in range(2):
        ref = _reference_explicitness(
            (codes[tr] - mean) / std, factors[tr, j], (codes[te] - mean) / std, factors[te, j]
        )
        assert result.details["per_factor_test"][j] == pytest.approx(ref, abs=1e-9)


def test_explicitness_ceiling_and_random_floor() -> None:
    rng = np.random.default_rng(2)
    factors = rng.integers(0, 2, size=(1500, 3))
    assert explicitness(factors * 2.0, factors, num_train=1000, num_test=500).score == pytest.approx(1.0)
    assert abs(explicitness(rng.normal(size=(1500, 4)), factors, num_train=1000, num_test=500).score - 0.5) < 0.05


def test_combined_protocol_and_errors() -> None:
    rng = np.random.default_rng(4)
    factors = rng.integers(0, 3, size=(600, 2))
    codes = factors + rng.normal(size=factors.shape) * 0.2
    both = modularity_explicitness(codes, factors, num_train=400, num_test=200, seed=5)
    tr = np.random.default_rng(5).permutation(600)[:400]
    assert both.score == pytest.approx(modularity(codes[tr], factors[tr]).score, abs=1e-12)
    assert both.details["explicitness_test"] == pytest.approx(
        explicitness(codes, factors, num_train=400, num_test=200, seed=5).score, abs=1e-12
    )
    with pytest.raises(MetricError, match="needs at least 15000 samples but got 600"):
        modularity_explicitness(codes, factors)
    with pytest.raises(MetricError, match="at least 2 factors"):
        modularity(codes, factors[:, :1])


def _reference_modularity(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> float:
    """disentanglement_lib's modularity: histogram bins per latent, sklearn's mutual_info_score per pair, template."""
    from sklearn.metrics import mutual_info_score

    binned = np.stack(
        [np.digitize(col, np.histogram(col, num_bins)[1][:-1]) for col in codes.T]
    )  # (latents, N) as dlib
    mi = np.array([[mutual_info_score(f, b) for f in factors.T] for b in binned])
    sq = mi**2
    top = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (sq.sum(axis=1) - top) / (top * (mi.shape[1] - 1.0))
    score[top == 0] = 0.0
    return float(score.mean())


@pytest.mark.parametrize("sizes", [(3, 6, 40, 32, 32), (10, 10, 10, 8, 4, 15)])
def test_exactly_constant_unit_counts_zero_as_in_the_reference(sizes: tuple[int, ...]) -> None:
    rng = np.random.default_rng(4)
    factors = np.stack([rng.integers(0, s, 3000) for s in sizes], axis=1)
    codes = np.column_stack([factors + 0.3 * rng.normal(size=factors.shape), np.full(3000, 0.7)])
    result = modularity(codes, factors)
    assert result.details["per_code"][-1] == 0.0
    assert result.details["mi_matrix"][-1].tolist() == [0.0] * len(sizes)
    assert result.score == pytest.approx(_reference_modularity(codes, factors), abs=1e-12)
    alive = modularity(codes[:, :-1], factors).score
    assert result.score == pytest.approx(alive * len(sizes) / (len(sizes) + 1), abs=1e-12)
