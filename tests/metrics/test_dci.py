"""DCI (Eastwood & Williams 2018): hand-computed importance matrices, the reference GBT, ceilings and chance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.tree import DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from metrics._gbt import GradientBoostingExact, grow_regression_trees
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


@pytest.mark.parametrize("method", ["exact", "hist", "reference"])
def test_perfect_code_reaches_the_ceiling(method: str) -> None:
    y = _data(450, (1, 2, 3, 4))
    x = y + 0.05 * np.random.default_rng(2).normal(size=y.shape)
    result = dci(x, y, num_train=300, num_test=150, method=method)
    assert result.details["dropped_factors"] == [0]  # the single-class factor
    assert result.score > 0.9
    assert result.details["completeness"] > 0.9
    assert result.details["informativeness_test"] > 0.98


@pytest.mark.parametrize("method", ["exact", "hist"])
def test_random_code_scores_low(method: str) -> None:
    y = _data(600, (3, 4, 5))
    x = np.random.default_rng(3).normal(size=(600, 6))
    result = dci(x, y, num_train=400, num_test=200, method=method)
    assert result.score < 0.15
    assert result.details["completeness"] < 0.15
    assert result.details["informativeness_test"] < 0.45


@pytest.mark.parametrize("method", ["exact", "hist"])
def test_entangled_code_scores_between(method: str) -> None:
    # codes 0 and 1 are factors 0 and 1; code 2 mixes factors 0 and 2, so factor 2 needs codes 0 and 2.
    y = _data(600, (3, 3, 3))
    x = np.stack([y[:, 0], y[:, 1], y[:, 2] + y[:, 0]], axis=1) + 0.01 * np.random.default_rng(4).normal(size=(600, 3))
    result = dci(x, y, num_train=400, num_test=200, method=method)
    assert 0.3 < result.score < 0.9
    assert 0.3 < result.details["completeness"] < 0.9
    assert result.details["informativeness_test"] > 0.98


@pytest.mark.parametrize("method", ["exact", "hist"])
def test_deterministic(method: str) -> None:
    y = _data(300, (2, 3))
    x = y + 0.5 * np.random.default_rng(6).normal(size=y.shape)
    a = dci(x, y, num_train=200, num_test=100, method=method, seed=3)
    b = dci(x, y, num_train=200, num_test=100, method=method, seed=3, n_jobs=2)
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


def _heap_tree(tree: DecisionTreeRegressor) -> tuple[np.ndarray, np.ndarray]:
    """A fitted depth-3 tree's split features and thresholds in heap order (leaves: feature -1, threshold inf)."""
    t = tree.tree_
    features, thresholds = np.full(7, -1), np.full(7, np.inf)

    def visit(node: int, heap: int) -> None:
        if heap < 7 and t.children_left[node] != -1:
            features[heap], thresholds[heap] = t.feature[node], t.threshold[node]
            visit(t.children_left[node], 2 * heap + 1)
            visit(t.children_right[node], 2 * heap + 2)

    visit(0, 0)
    return features, thresholds


def _awkward_codes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Continuous, integer, near-collapsed (gaps below sklearn's 1e-7 tie threshold), stepped and constant columns."""
    return np.column_stack(
        [
            rng.normal(size=n),
            rng.integers(0, 5, size=n),
            1e-6 * rng.normal(size=n),  # chains of near-ties: splits only where a node skips enough samples
            np.zeros(n),
            rng.normal(size=n) ** 3,
            1 + 1e-7 * rng.integers(0, 4, size=n),  # float32 steps of ~1.2e-7, some of them ties
        ]
    )


@pytest.mark.parametrize("max_bins", [4, 256])
def test_exact_trees_equal_sklearn_regression_trees(max_bins: int) -> None:
    # The split search of the exact GBT (histograms, bounds, scans of the runs left) against scikit-learn's exhaustive
    # one, on continuous targets (no ties): the same features, thresholds and impurity importances. max_bins=4
    # leaves most positions to the scans and cuts long chains of near-ties at soft cuts.
    rng = np.random.default_rng(0)
    n = 3000
    x = _awkward_codes(n, rng)
    targets = rng.normal(size=(24, n)) + np.sin(3 * x[:, 0]) + 1e6 * x[:, 2] * (np.arange(24)[:, None] % 2)
    features, thresholds, _, importance = grow_regression_trees(x, targets, max_bins=max_bins)
    for k in range(targets.shape[0]):
        tree = DecisionTreeRegressor(max_depth=3, random_state=0).fit(x, targets[k])
        ref_features, ref_thresholds = _heap_tree(tree)
        ours = np.where(np.isfinite(thresholds[k]), features[k], -1)
        np.testing.assert_array_equal(ours, ref_features)
        np.testing.assert_array_equal(thresholds[k], ref_thresholds)
        ref_importance = tree.tree_.compute_feature_importances(normalize=False) * n
        np.testing.assert_allclose(importance[k], ref_importance, rtol=1e-9, atol=1e-9 * ref_importance.sum())


@pytest.mark.parametrize(("seed", "classes", "stages"), [(5, 2, 40), (0, 3, 20)])
def test_exact_gbt_equals_sklearn_gbt(seed: int, classes: int, stages: int) -> None:
    # GradientBoostingClassifier() itself (init, gradients, Newton leaf values, MDI importances, predictions) on data
    # where every tree of the first `stages` stages is the same: no two splits of a node tie. (Ties, frequent in
    # small nodes and at the first stage where the gradients take two values only, are broken by scikit-learn's
    # random feature order and rounding; these data first tie at stages 43 and 22.)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1300, 4))
    logits = np.stack([x @ rng.normal(size=4) for _ in range(classes)], axis=1) * 1.5
    y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    x_train, y_train, x_test, y_test = x[:1000], y[:1000], x[1000:], y[1000:]
    ref = GradientBoostingClassifier(n_estimators=stages, random_state=0).fit(x_train, y_train)
    ours = GradientBoostingExact(n_estimators=stages).fit(x_train, y_train)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, rtol=1e-9, atol=1e-12)
    raw = ours.decision_function(x_test)
    np.testing.assert_allclose(raw[:, 0] if classes == 2 else raw, ref.decision_function(x_test), atol=1e-9)
    train_raw = ours.train_raw_[:, 0] if classes == 2 else ours.train_raw_
    np.testing.assert_allclose(train_raw, ref.decision_function(x_train), atol=1e-9)
    np.testing.assert_array_equal(ours.predict(x_test), ref.predict(x_test))
    np.testing.assert_array_equal(ours.predict_from_raw(ours.train_raw_), ref.predict(x_train))
    assert 0.5 < np.mean(ours.predict(x_test) == y_test) < 1.0  # a fit that is neither trivial nor perfect


def test_exact_method_agrees_with_reference() -> None:
    # On a small grid with a noisy mixing code, D, C and I of the default method are the reference's up to ties.
    y = _data(2400, (4, 5, 6))
    rng = np.random.default_rng(8)
    x = ((y + 0.5) / np.array([4, 5, 6])) @ rng.normal(size=(3, 4)) + 0.05 * rng.normal(size=(2400, 4))
    exact = dci(x, y, num_train=1600, num_test=800, method="exact")
    reference = dci(x, y, num_train=1600, num_test=800, method="reference")
    for key in ("disentanglement", "completeness", "informativeness_test", "informativeness_train"):
        assert exact.details[key] == pytest.approx(reference.details[key], abs=0.005), key


def test_exact_respects_sklearn_tie_threshold() -> None:
    # A dimension that encodes the factor perfectly, but in steps of one float32 ulp at 0.5 (6e-8): scikit-learn
    # counts values within 1e-7 as ties, so for it the dimension is constant and never split; histogram boosting
    # bins the three values apart and puts all the importance there.
    rng = np.random.default_rng(9)
    y = rng.integers(0, 3, size=900)
    step = np.spacing(np.float32(0.5))
    x = np.column_stack([y + rng.normal(size=900), np.float32(0.5) + y.astype(np.float32) * step])
    assert np.unique(x[:, 1].astype(np.float32)).size == 3
    for model in (GradientBoostingExact(n_estimators=10), GradientBoostingClassifier(n_estimators=10, random_state=0)):
        model.fit(x[:600], y[:600])
        assert model.feature_importances_[1] == 0.0
    with threadpool_limits(limits=1):
        hist = HistGradientBoostingClassifier(max_iter=10, early_stopping=False).fit(x[:600], y[:600])
    assert np.mean(hist.predict(x[600:]) == y[600:]) == 1.0
