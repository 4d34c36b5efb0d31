"""Input validation, discretisation and the vectorised plug-in MI / entropy kernels of metrics._checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score as sk_mutual_info_score

from metrics import defaults
from metrics._checks import (
    check_codes_factors,
    compact_labels,
    discrete_entropy,
    discrete_mutual_info,
    discretize,
    mutual_info_score,
    require_samples,
    subsample_rows,
)
from metrics.types import MetricError


def _loop_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in MI by a direct double loop over the joint table."""
    n = a.size
    total = 0.0
    for va in np.unique(a):
        for vb in np.unique(b):
            joint = np.sum((a == va) & (b == vb)) / n
            if joint > 0:
                total += joint * math.log(joint / (np.mean(a == va) * np.mean(b == vb)))
    return total


def test_mi_matches_sklearn_and_loop() -> None:
    rng = np.random.default_rng(0)
    codes = discretize(rng.normal(size=(2000, 5)) + rng.integers(0, 3, size=(2000, 1)), 20)
    factors = np.stack([rng.integers(0, s, 2000) for s in (2, 3, 7)], axis=1)
    factors[:, 1] = codes[:, 0] % 3
    mi = discrete_mutual_info(codes, factors)
    assert mi.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            assert mi[i, j] == pytest.approx(sk_mutual_info_score(factors[:, j], codes[:, i]), abs=1e-9)
            assert mi[i, j] == pytest.approx(_loop_mi(codes[:, i], factors[:, j]), abs=1e-9)


def test_mi_sparse_path_matches_dense() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5000, size=(6000, 2))
    b = rng.integers(0, 4000, size=(6000, 1))
    b[:, 0] = a[:, 0] // 2
    mi = discrete_mutual_info(a, b)
    for i in range(2):
        assert mi[i, 0] == pytest.approx(sk_mutual_info_score(b[:, 0], a[:, i]), abs=1e-9)


def test_hand_computed_mi_and_entropy() -> None:
    a = np.array([0, 0, 1, 1, 0, 1])
    b = np.array([0, 0, 1, 1, 1, 0])
    # joint counts (0,0)=2 (1,1)=2 (0,1)=1 (1,0)=1; marginals 1/2 each
    expected = 2 * (2 / 6) * math.log((2 / 6) / 0.25) + 2 * (1 / 6) * math.log((1 / 6) / 0.25)
    assert mutual_info_score(a, b) == pytest.approx(expected, abs=1e-12)
    assert mutual_info_score(a, a) == pytest.approx(math.log(2), abs=1e-12)
    labels = np.array([[0, 5], [0, 5], [1, 5], [2, 5]])
    h = discrete_entropy(labels)
    assert h[0] == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), abs=1e-12)
    assert h[1] == 0.0


def test_discretize_matches_reference_histogram() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(size=(500, 3)), np.full((500, 1), 4.0)], axis=1)
    out = discretize(x, 20)
    for d in range(4):
        ref = np.digitize(x[:, d], np.histogram(x[:, d], 20)[1][:-1])
        np.testing.assert_array_equal(out[:, d], ref)
    assert out[:, :3].min() == 1 and out[:, :3].max() == 20
    assert np.unique(out[:, 3]).size == 1


def test_compact_labels() -> None:
    lab, counts = compact_labels(np.array([[10, -3], [30, 7], [10, 10**12]]))
    np.testing.assert_array_equal(lab, [[0, 0], [1, 1], [0, 2]])
    np.testing.assert_array_equal(counts, [2, 3])


@pytest.mark.parametrize(
    ("codes", "factors", "message"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), np.array([[0], [1]]), "NaN or inf"),
        (np.ones((5, 3)), np.arange(5)[:, None], "constant"),
        (np.random.default_rng(0).normal(size=(5, 2)), np.arange(4)[:, None], "5 rows but factors have 4"),
        (np.random.default_rng(0).normal(size=(3, 2)), np.array([[0.5], [1.0], [2.0]]), "non-integer"),
        (np.zeros((0, 2)), np.zeros((0, 1), dtype=int), "non-empty"),
    ],
)
def test_invalid_inputs(codes: np.ndarray, factors: np.ndarray, message: str) -> None:
    with pytest.raises(MetricError, match=message) as info:
        check_codes_factors(codes, factors)
    assert "\n" not in str(info.value)


def test_float_integer_factors_accepted_and_sample_checks() -> None:
    codes, factors = check_codes_factors(np.arange(6.0).reshape(3, 2), np.array([[0.0], [1.0], [2.0]]))
    assert factors.dtype == np.int64 and codes.dtype == np.float64
    with pytest.raises(MetricError, match="MIG needs at least 100 samples but got 10"):
        require_samples(10, 100, "MIG")
    rows = subsample_rows(50, 20, seed=3, metric="x")
    assert isinstance(rows, np.ndarray)
    np.testing.assert_array_equal(rows, subsample_rows(50, 20, seed=3, metric="x"))
    assert np.unique(rows).size == 20
    assert subsample_rows(7, None, seed=0, metric="x") == slice(None)


def test_reference_defaults() -> None:
    assert (defaults.MIG.num_train, defaults.MIG.num_bins) == (10000, 20)
    assert (defaults.DCI.num_train, defaults.DCI.num_test) == (10000, 5000)
    assert (defaults.SAP.num_train, defaults.SAP.num_test, defaults.SAP.svm_c) == (10000, 5000, 0.01)
    fv = defaults.FACTOR_VAE
    assert (fv.batch_size, fv.num_train, fv.num_eval, fv.prune_dims_threshold, fv.num_variance_estimate) == (
        64,
        10000,
        5000,
        0.05,
        10000,
    )
    assert (defaults.BETA_VAE.batch_size, defaults.BETA_VAE.num_train, defaults.BETA_VAE.num_eval) == (64, 10000, 5000)
    assert defaults.PROBES.num_train == (10, 100, 1000, 10000) and defaults.PROBES.num_test == 5000
    assert defaults.ACTIVITY.threshold == 0.01
    assert (defaults.MODULARITY.num_train, defaults.MODULARITY.num_test) == (10000, 5000)
    assert defaults.UNSUPERVISED.num_train == 10000


def test_single_bin_labelling_has_exactly_zero_mi() -> None:
    from metrics._checks import _mi_sparse_pair, discrete_mutual_info

    rng = np.random.default_rng(0)
    b = rng.integers(0, 7, size=(997, 3))
    a = np.column_stack([np.full(997, 5), b[:, 0]])
    mi = discrete_mutual_info(a, b)
    assert mi[0].tolist() == [0.0, 0.0, 0.0]
    assert mi[1, 0] > 1.0
    assert discrete_mutual_info(b, np.zeros(997, dtype=int))[:, 0].tolist() == [0.0, 0.0, 0.0]
    assert _mi_sparse_pair(np.zeros(997, dtype=np.int64), 1, b[:, 1], 7) == 0.0
