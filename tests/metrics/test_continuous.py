"""KSG mutual information and the MIG, DCI and probes variants for continuous factors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.special import digamma
from sklearn.feature_selection import mutual_info_regression
from sklearn.feature_selection._mutual_info import _compute_mi_cc

from metrics._ksg import ksg_mi, ksg_prepared, prepare
from metrics.continuous import (
    check_continuous_factors,
    dci_regression,
    is_continuous,
    mig_regression,
    probes_regression,
)
from metrics.types import MetricError

SMALL: dict[str, Any] = {"num_train": 2000, "num_test": 1000, "n_jobs": 1}


def _uniform_factors(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, (n, k))


# --- KSG estimator -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k", "seed"), [(40, 1, 0), (300, 3, 1), (2000, 3, 2), (1000, 7, 3)])
def test_ksg_equals_sklearn_mutual_info_regression(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = np.sin(x[:, 0]) + 0.3 * x[:, 1] + 0.2 * rng.standard_normal(n)
    x[:, 2] = np.round(x[:, 2])  # ties: the jitter decides, and it is reproduced
    for target in (y, np.round(y, 1)):
        expected = mutual_info_regression(x, target, n_neighbors=k, random_state=seed)
        np.testing.assert_allclose(ksg_mi(x, target, n_neighbors=k, seed=seed), expected, rtol=0, atol=1e-10)


def test_ksg_core_equals_sklearn_kernel_on_the_same_prepared_arrays() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((800, 3))
    y = x[:, 0] ** 2 + rng.standard_normal(800)
    state = np.random.RandomState(0)
    px, py = prepare(x, state), prepare(y[:, None], state)[:, 0]
    for k in (1, 3, 5):
        expected = [_compute_mi_cc(px[:, j], py, k) for j in range(3)]
        np.testing.assert_allclose(ksg_prepared(px, py, k), expected, rtol=0, atol=1e-12)


def test_ksg_one_dimensional_input() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(500)
    assert ksg_mi(x, x + rng.standard_normal(500)).shape == (1,)


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("seed", [0, 1])
def test_ksg_bivariate_gaussian_closed_form(rho: float, seed: int) -> None:
    # At N = 5000, k = 3 the estimate's spread over samples is ~0.015 nats (measured); 0.05 is about 3 sigma.
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], 5000)
    assert ksg_mi(z[:, 0], z[:, 1], seed=seed)[0] == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.05)


def test_ksg_independent_is_about_zero() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((5000, 5)), rng.uniform(size=5000)
    assert np.all(ksg_mi(x, y) < 0.02)


def test_ksg_self_information_is_psi_n_minus_psi_k_plus_1() -> None:
    # Y = X with independent jitter: n_x, n_y are k - 1 and k (in some order) at every sample.
    rng = np.random.default_rng(0)
    x = rng.standard_normal(3000)
    for k in (1, 3, 6):
        assert ksg_mi(x, x, n_neighbors=k)[0] == pytest.approx(digamma(3000) - digamma(k + 1), abs=1e-12)


def test_ksg_bad_input() -> None:
    with pytest.raises(MetricError, match="n_neighbors"):
        ksg_mi(np.arange(5.0), np.arange(5.0), n_neighbors=5)
    with pytest.raises(MetricError, match="shape"):
        ksg_mi(np.zeros((4, 2)), np.zeros(5))


# --- factor type and checks -----------------------------------------------------------------------------------------


def test_is_continuous() -> None:
    assert is_continuous(np.array([[0.5, 1.0], [2.0, 3.0]]))
    assert not is_continuous(np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert not is_continuous(np.array([[0, 1], [2, 3]]))
    assert not is_continuous(np.array([[0.0, np.nan], [2.0, 3.0]]))
    assert is_continuous(np.array([0.0, np.nan, 0.25], dtype=np.float32))


def test_check_continuous_factors() -> None:
    codes = np.random.default_rng(0).standard_normal((10, 3))
    x, y = check_continuous_factors(codes, np.linspace(0, 1, 10))
    assert x.shape == (10, 3) and y.shape == (10, 1) and y.dtype == np.float64
    with pytest.raises(MetricError, match="NaN or inf in 1 of 10 rows"):
        check_continuous_factors(codes, np.r_[np.nan, np.ones(9)])
    with pytest.raises(MetricError, match="codes have 10 rows but factors have 9"):
        check_continuous_factors(codes, np.ones(9))
    with pytest.raises(MetricError, match="2-D"):
        check_continuous_factors(codes, np.ones((10, 2, 2)))
    with pytest.raises(MetricError, match="real numbers"):
        check_continuous_factors(codes, np.array(["a"] * 10))
    with pytest.raises(MetricError, match="NaN or inf"):
        check_continuous_factors(np.r_[codes[:9], [[np.inf, 0, 0]]], np.ones(10))


# --- MIG ------------------------------------------------------------------------------------------------------------


def test_mig_perfect_monotone_code_scores_one() -> None:
    f = _uniform_factors(3000, 3, 0)
    noise = np.random.default_rng(1).standard_normal((3000, 2))
    codes = np.column_stack([np.exp(3 * f[:, 0]), -(f[:, 1] ** 3), np.tanh(4 * f[:, 2]), noise])
    result = mig_regression(codes, f, num_train=None, normalise="self")
    assert result.name == "mig" and result.settings["factors"] == "continuous"
    assert result.score > 0.98
    np.testing.assert_array_equal(result.details["best_latent"], [0, 1, 2])
    np.testing.assert_allclose(result.details["mi_ceiling"], digamma(3000) - digamma(4), atol=1e-12)
    binned = mig_regression(codes, f, num_train=None)  # default: equal-frequency bins of the factor
    assert binned.score > 0.95
    np.testing.assert_array_equal(binned.details["best_latent"], [0, 1, 2])
    np.testing.assert_allclose(binned.details["mi_ceiling"], np.log(20), atol=1e-12)  # 3000 rows: 150 per bin


def test_binned_normaliser_does_not_drift_with_the_sample_count() -> None:
    # The same noisy code (1% of the factor's range) at 1000 and 8000 rows: the bins score stays, the KSG
    # self-information ceiling grows like log N while the code's MI does not, so the "self" score falls.
    f = _uniform_factors(8000, 2, 3)
    codes = f + 0.01 * np.random.default_rng(5).standard_normal(f.shape)
    small, large = (mig_regression(codes[:n], f[:n], num_train=None).score for n in (1000, 8000))
    assert abs(small - large) < 0.03 and large > 0.8
    self_small, self_large = (
        mig_regression(codes[:n], f[:n], num_train=None, normalise="self").score for n in (1000, 8000)
    )
    assert self_small - self_large > 0.1


def test_mig_random_code_scores_zero() -> None:
    f = _uniform_factors(3000, 3, 0)
    codes = np.random.default_rng(2).standard_normal((3000, 5))
    assert mig_regression(codes, f, num_train=None).score < 0.02


def test_mig_hand_computed_cases() -> None:
    rng = np.random.default_rng(4)
    n, rho = 5000, 0.8
    f = rng.standard_normal(n)
    # Two identical copies of the factor: both MIs hit the ceiling exactly, so the gap is exactly 0.
    assert mig_regression(np.column_stack([f, f]), f, num_train=None).score == pytest.approx(0.0, abs=1e-12)
    assert mig_regression(np.column_stack([f, f]), f, num_train=None, normalise="self").score == pytest.approx(
        0.0, abs=1e-12
    )
    # A code correlated rho with a Gaussian factor and an independent one (no ranks: the Gaussian closed form holds):
    # MIG = (-0.5 log(1 - rho^2) - ~0) / (psi(N) - psi(k + 1)).
    code = rho * f + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    result = mig_regression(
        np.column_stack([code, rng.standard_normal(n)]), f, num_train=None, ranks=False, normalise="self"
    )
    expected = -0.5 * math.log(1 - rho**2) / (digamma(n) - digamma(4))
    assert result.score == pytest.approx(expected, abs=0.05 / (digamma(n) - digamma(4)))


def test_mig_tied_factor_uses_its_own_ceiling() -> None:
    rng = np.random.default_rng(0)
    f = rng.integers(0, 4, (4000, 1)) + 0.5  # four levels: MI with anything is at most log 4
    result = mig_regression(np.column_stack([f, rng.standard_normal(4000)]), f, num_train=None)
    assert result.details["mi_ceiling"][0] == pytest.approx(math.log(4), abs=0.05)
    assert result.score > 0.95


def test_mig_skips_constant_factor_and_subsamples() -> None:
    f = np.column_stack([_uniform_factors(3000, 1, 0)[:, 0], np.full(3000, 0.5)])
    codes = np.column_stack([f[:, 0], np.random.default_rng(1).standard_normal(3000)])
    result = mig_regression(codes, f, num_train=2000)
    assert result.details["skipped_factors"] == [1] and result.settings["num_samples"] == 2000
    assert result.score > 0.98
    with pytest.raises(MetricError, match="needs at least 4000 samples"):
        mig_regression(codes, f, num_train=4000)
    with pytest.raises(MetricError, match="n_neighbors"):
        mig_regression(codes, f, n_neighbors=0, num_train=None)
    with pytest.raises(MetricError, match="normalise must be"):
        mig_regression(codes, f, normalise="entropy", num_train=None)


# --- DCI ------------------------------------------------------------------------------------------------------------


def test_dci_perfect_and_noise() -> None:
    f = _uniform_factors(3000, 3, 0)
    rng = np.random.default_rng(1)
    perfect = dci_regression(np.column_stack([np.exp(2 * f), rng.standard_normal((3000, 2))]), f, **SMALL)
    assert perfect.name == "dci" and perfect.settings["factors"] == "continuous"
    assert perfect.score > 0.95 and perfect.details["completeness"] > 0.95
    assert perfect.details["informativeness_test"] > 0.99
    noise = dci_regression(rng.standard_normal((3000, 5)), f, **SMALL)
    assert noise.score < 0.15 and noise.details["completeness"] < 0.15
    assert noise.details["informativeness_test"] < 0.05


def test_dci_hand_made_importance_structure() -> None:
    # Codes f0, f1, f2 + f3, f2 - f3: factors 2 and 3 are each read equally from codes 2 and 3.
    # Importance rows: c0 = (1, 0, 0, 0), c1 = (0, 1, 0, 0), c2 = c3 = (0, 0, 1/2, 1/2), each row weighing 1/4.
    # D = 1/4 + 1/4 + 2 * 1/4 * (1 - log 2 / log 4) = 0.75, and C = 0.75 by the same count over factors.
    f = np.random.default_rng(0).standard_normal((3000, 4))
    codes = np.column_stack([f[:, 0], f[:, 1], f[:, 2] + f[:, 3], f[:, 2] - f[:, 3]])
    result = dci_regression(codes, f, **SMALL)
    assert result.score == pytest.approx(0.75, abs=0.02)
    assert result.details["completeness"] == pytest.approx(0.75, abs=0.02)
    r = np.asarray(result.details["importance_matrix"])
    np.testing.assert_allclose(r[:2, :2], np.eye(2), atol=0.01)
    np.testing.assert_allclose(r[2:, 2:], 0.5, atol=0.05)
    np.testing.assert_allclose(result.details["disentanglement_per_code"], [1, 1, 0.5, 0.5], atol=0.02)


def test_dci_drops_constant_factor_and_needs_samples() -> None:
    f = np.column_stack([_uniform_factors(3000, 1, 0)[:, 0], np.full(3000, 0.5)])
    result = dci_regression(np.column_stack([f[:, 0], np.ones(3000)]), f, **SMALL)
    assert result.details["dropped_factors"] == [1] and result.details["factors"] == [0]
    with pytest.raises(MetricError, match="needs 3000 samples"):
        dci_regression(np.random.default_rng(0).standard_normal((100, 2)), np.linspace(0, 1, 100), **SMALL)


# --- probes ---------------------------------------------------------------------------------------------------------


def test_probes_linear_nonlinear_and_noise() -> None:
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (3000, 3))
    noise = np.random.default_rng(1).standard_normal(3000)
    factors = np.column_stack([2 * x[:, 0] + 1, np.cos(3 * x[:, 1]), np.abs(x[:, 2]), noise])
    result = probes_regression(x, factors, **SMALL)
    assert result.name == "probes" and result.settings["factors"] == "continuous"
    lin, mlp = result.details["r2_linear"], result.details["r2_mlp"]
    assert lin[0] > 0.999 and mlp[0] > 0.99
    for k in (1, 2):  # symmetric relations: no linear trend, but an MLP reads them
        assert lin[k] < 0.05 and mlp[k] > 0.95
    assert lin[3] < 0.02 and mlp[3] < 0.02
    assert result.score == pytest.approx(np.mean(list(lin.values())))
