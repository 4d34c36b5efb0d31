"""DCI (Eastwood & Williams 2018): hand-computed importance matrices, the reference GBT, ceilings and chance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

from metrics.dci import (
    completeness,
    completeness_per_factor,
    dci,
    disentanglement,
    disentanglement_per_code,
    hist_predict,
    importance_matrix,
)
from metrics.types import MetricError


def reference_disentanglement(r: np.ndarray) -> float:
    """disentanglement_lib's formula, written with scipy.stats.entropy."""
    per_code = 1.0 - scipy.stats.entropy(r.T + 1e-11, base=r.shape[1])
    weights = np.ones_like(r) if r.sum() == 0 else r
    return float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))


def reference_completeness(r: np.ndarray) -> float:
    per_factor = 1.0 - scipy.stats.entropy(r + 1e-11, base=r.shape[0])
    weights = np.ones_like(r) if r.sum() == 0 else r
    return float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))


def test_identity_scores_one_and_uniform_scores_zero() -> None:
    assert disentanglement(np.eye(4)) == pytest.approx(1.0, abs=1e-8)
    assert completeness(np.eye(4)) == pytest.approx(1.0, abs=1e-8)
    assert disentanglement(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-12)
    assert completeness(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-12)


def test_hand_computed_matrix() -> None:
    # code 0 serves factor 0 only (1 - H = 1), code 1 both factors equally (1 - H_2 = 0); rho = (1/3, 2/3).
    r = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert disentanglement(r) == pytest.approx(1.0 / 3.0, abs=1e-9)
    # factor 0 is split over both codes (0), factor 1 sits in code 1 (1); factor weights (2/3, 1/3).
    assert completeness(r) == pytest.approx(1.0 / 3.0, abs=1e-9)
    np.testing.assert_allclose(disentanglement_per_code(r), [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(completeness_per_factor(r), [0.0, 1.0], atol=1e-9)


def test_matches_scipy_formula_on_random_matrices() -> None:
    rng = np.random.default_rng(0)
    for shape in [(10, 5), (3, 7), (6, 6)]:
        r = rng.random(shape) ** 3
        assert disentanglement(r) == pytest.approx(reference_disentanglement(r), abs=1e-12)
        assert completeness(r) == pytest.approx(reference_completeness(r), abs=1e-12)
    zero = np.zeros((3, 2))
    assert disentanglement(zero) == pytest.approx(reference_disentanglement(zero), abs=1e-12)
    assert completeness(zero) == pytest.approx(reference_completeness(zero), abs=1e-12)


def _data(n: int, sizes: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.array(sizes), size=(n, len(sizes)))


def test_reference_method_is_sklearn_gbt_exactly() -> None:
    y = _data(300, (2, 3))
    rng = np.random.default_rng(1)
    x = np.concatenate([y + 0.3 * rng.normal(size=y.shape), rng.normal(size=(300, 1))], axis=1)
    r, acc_train, acc_test = importance_matrix(x[:200], y[:200], x[200:], y[200:], method="reference", seed=0)
    for j in range(2):
        gbt = GradientBoostingClassifier(random_state=0).fit(x[:200], y[:200, j])
        np.testing.assert_array_equal(r[:, j], np.abs(gbt.feature_importances_))
        assert acc_test[j] == np.mean(gbt.predict(x[200:]) == y[200:, j])
        assert acc_train[j] == np.mean(gbt.predict(x[:200]) == y[:200, j])


@pytest.mark.parametrize("method", ["hist", "reference"])
def test_perfect_code_reaches_the_ceiling(method: str) -> None:
    y = _data(450, (1, 2, 3, 4))
    x = y + 0.05 * np.random.default_rng(2).normal(size=y.shape)
    result = dci(x, y, num_train=300, num_test=150, method=method)
    assert result.details["dropped_factors"] == [0]  # the single-class factor
    assert result.score > 0.9
    assert result.details["completeness"] > 0.9
    assert result.details["informativeness_test"] > 0.98


def test_random_code_scores_low() -> None:
    y = _data(600, (3, 4, 5))
    x = np.random.default_rng(3).normal(size=(600, 6))
    result = dci(x, y, num_train=400, num_test=200, method="hist")
    assert result.score < 0.15
    assert result.details["completeness"] < 0.15
    assert result.details["informativeness_test"] < 0.45


def test_entangled_code_scores_between() -> None:
    # codes 0 and 1 are factors 0 and 1; code 2 mixes factors 0 and 2, so factor 2 needs codes 0 and 2.
    y = _data(600, (3, 3, 3))
    x = np.stack([y[:, 0], y[:, 1], y[:, 2] + y[:, 0]], axis=1) + 0.01 * np.random.default_rng(4).normal(size=(600, 3))
    result = dci(x, y, num_train=400, num_test=200, method="hist")
    assert 0.3 < result.score < 0.9
    assert 0.3 < result.details["completeness"] < 0.9
    assert result.details["informativeness_test"] > 0.98


def test_deterministic() -> None:
    y = _data(300, (2, 3))
    x = y + 0.5 * np.random.default_rng(6).normal(size=y.shape)
    a = dci(x, y, num_train=200, num_test=100, method="hist", seed=3)
    b = dci(x, y, num_train=200, num_test=100, method="hist", seed=3)
    assert a.details == b.details


def test_errors() -> None:
    y = _data(100, (3, 4))
    with pytest.raises(MetricError, match="needs at least 15000 samples"):
        dci(y.astype(float), y)
    with pytest.raises(MetricError, match="unknown DCI method"):
        dci(y.astype(float), y, num_train=50, num_test=50, method="lasso")
    with pytest.raises(MetricError, match="at least two classes"):
        dci(np.random.default_rng(0).normal(size=(100, 2)), np.zeros((100, 2), dtype=int), num_train=50, num_test=50)


def test_hist_predict_equals_sklearn_predict() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(600, 4))
    for classes in (2, 5):
        y = rng.integers(0, classes, size=600)
        model = HistGradientBoostingClassifier(max_iter=15, max_depth=3, early_stopping=False, random_state=0)
        model.fit(x[:400], y[:400])
        unseen = np.concatenate([x, 3.0 * rng.normal(size=(200, 4))])  # also values outside the training range
        np.testing.assert_array_equal(hist_predict(model, unseen), model.predict(unseen))
