"""Downstream probes (Locatello et al. 2019): a direct sklearn reference, ceilings, chance, tiny training sets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from metrics.probes import probes
from metrics.types import MetricError

SIZES = (3, 4, 6)


def _factors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.array(SIZES), size=(n, len(SIZES)))


def test_matches_direct_sklearn_probe() -> None:
    y = _factors(700)
    x = y @ np.random.default_rng(1).normal(size=(3, 4)) + np.random.default_rng(2).normal(size=(700, 4))
    result = probes(x, y, num_train=(200,), num_test=500, seed=5)
    perm = np.random.default_rng(5).permutation(700)
    test, train = perm[:500], perm[500:700]
    scaler = StandardScaler().fit(x[train])
    for k, name in enumerate(["factor_0", "factor_1", "factor_2"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegressionCV(
                Cs=[0.1, 10.0, 1000.0],
                cv=StratifiedKFold(3, shuffle=True, random_state=5),
                scoring="neg_log_loss",
                max_iter=100,
            ).fit(scaler.transform(x[train]), y[train, k])
        expected = np.mean(clf.predict(scaler.transform(x[test])) == y[test, k])
        assert result.details["accuracy"][name][200] == pytest.approx(expected, abs=1e-12)


def test_large_training_sets_use_the_weakest_regularisation() -> None:
    y = _factors(900)
    x = y @ np.random.default_rng(1).normal(size=(3, 4)) + np.random.default_rng(2).normal(size=(900, 4))
    result = probes(x, y, num_train=(100, 600), num_test=300, cv_max_train=500, seed=1)
    assert result.details["max_c"] == {f"factor_{k}": [600] for k in range(3)}
    perm = np.random.default_rng(1).permutation(900)
    test, train = perm[:300], perm[300:900]
    scaler = StandardScaler().fit(x[train])
    for k in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(C=1000.0, max_iter=100).fit(scaler.transform(x[train]), y[train, k])
        expected = np.mean(clf.predict(scaler.transform(x[test])) == y[test, k])
        assert result.details["accuracy"][f"factor_{k}"][600] == pytest.approx(expected, abs=1e-12)


def test_perfect_code_reaches_one_and_sample_efficiency() -> None:
    y = _factors(15000)
    result = probes(y.astype(float), y, factor_names=["a", "b", "c"])
    assert result.score == pytest.approx(1.0, abs=2e-3)
    assert result.details["mean_accuracy"][10000] == result.score
    acc = result.details["accuracy"]
    mean100 = np.mean([acc[n][100] for n in "abc"])
    assert result.details["sample_efficiency"] == pytest.approx(mean100 / result.score, abs=1e-12)
    assert result.details["sample_efficiency_per_factor"]["a"] == pytest.approx(acc["a"][100] / acc["a"][10000])
    assert result.details["min_accuracy"][10000] == min(acc[n][10000] for n in "abc")


def test_random_code_is_at_chance() -> None:
    y = _factors(3000)
    x = np.random.default_rng(3).normal(size=(3000, 5))
    result = probes(x, y, num_train=(1000,), num_test=2000)
    for k, name in enumerate(["factor_0", "factor_1", "factor_2"]):
        chance = result.details["chance_accuracy"][name]
        assert result.details["accuracy"][name][1000] < chance + 0.05
        assert chance == pytest.approx(1.0 / SIZES[k], abs=0.05)


def test_tiny_training_sets_fall_back_and_single_class_predicts_constant() -> None:
    y = _factors(600)
    y[:, 0] = 0  # a factor with a single class everywhere
    result = probes(y.astype(float), y, num_train=(5, 200), num_test=300)
    assert result.details["constant"] == {"factor_0": [5, 200]}
    assert result.details["accuracy"]["factor_0"][5] == 1.0
    assert 5 in result.details["fixed_c"]["factor_2"]  # 5 samples cannot fill 3 folds of 6 classes
    assert 200 not in result.details["fixed_c"].get("factor_2", [])


def test_subspace_matrix_is_diagonal_for_an_aligned_code() -> None:
    y = _factors(2000)
    rng = np.random.default_rng(4)
    x = np.concatenate([y[:, :1], rng.normal(size=(2000, 1)), y[:, 1:2], y[:, 2:], rng.normal(size=(2000, 1))], axis=1)
    result = probes(
        x, y, num_train=(100,), num_test=1000, subspaces=[("a", 2), ("b", 1), ("c", 2)], subspace_num_train=1000
    )
    matrix = result.details["subspace_accuracy"]
    for k, own in enumerate(["a", "b", "c"]):
        row = matrix[f"factor_{k}"]
        assert row[own] > 0.95
        for other in {"a", "b", "c"} - {own}:
            assert row[other] < 1.0 / SIZES[k] + 0.08


def test_mlp_probe() -> None:
    y = _factors(1500)
    x = np.concatenate([np.cos(2 * np.pi * y / 6), np.sin(2 * np.pi * y / 6)], axis=1)
    result = probes(x, y, num_train=(1000,), num_test=500, model="mlp")
    assert result.settings["model"] == "mlp"
    assert result.score > 0.95


def test_deterministic() -> None:
    y = _factors(800)
    x = y + np.random.default_rng(5).normal(size=y.shape)
    a = probes(x, y, num_train=(10, 300), num_test=500, seed=2)
    b = probes(x, y, num_train=(10, 300), num_test=500, seed=2)
    assert a.details == b.details


def test_errors() -> None:
    y = _factors(100)
    with pytest.raises(MetricError, match="needs at least 15000 samples"):
        probes(y.astype(float), y)
    with pytest.raises(MetricError, match="widths sum to 2"):
        probes(y.astype(float), y, num_train=(10,), num_test=50, subspaces=[("a", 1), ("b", 1)], subspace_num_train=10)
    with pytest.raises(MetricError, match="unknown probe model"):
        probes(y.astype(float), y, num_train=(10,), num_test=50, model="svm")
