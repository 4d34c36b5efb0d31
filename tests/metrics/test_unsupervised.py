"""Unsupervised scores (disentanglement_lib unsupervised_metrics): closed forms and a reference loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from sklearn.metrics import mutual_info_score as sk_mutual_info_score

from metrics.types import MetricError
from metrics.unsupervised import gaussian_total_correlation, gaussian_wasserstein_correlation, unsupervised


def test_gaussian_total_correlation_closed_form() -> None:
    rho = 0.6
    cov = np.array([[4.0, rho * 2 * 3], [rho * 2 * 3, 9.0]])
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=1e-12)
    assert gaussian_total_correlation(np.diag([1.0, 5.0, 0.3])) == pytest.approx(0.0, abs=1e-12)


def test_wasserstein_matches_reference_formula() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + np.eye(4)
    ref = 2 * np.trace(cov) - 2 * np.trace(scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1)))
    assert gaussian_wasserstein_correlation(cov) == pytest.approx(float(np.real(ref)), abs=1e-9)
    assert gaussian_wasserstein_correlation(np.diag([2.0, 3.0])) == pytest.approx(0.0, abs=1e-9)


def test_scores_against_reference_loop() -> None:
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(3000, 4)) @ rng.normal(size=(4, 4))
    result = unsupervised(codes)
    cov = np.cov(codes.T)
    assert result.score == pytest.approx(0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1]), abs=1e-9)
    binned = [np.digitize(codes[:, i], np.histogram(codes[:, i], 20)[1][:-1]) for i in range(4)]
    off = [sk_mutual_info_score(binned[i], binned[j]) for i in range(4) for j in range(4) if i != j]
    assert result.details["mutual_info_score"] == pytest.approx(np.mean(off), abs=1e-9)
    assert result.details["gaussian_wasserstein_correlation_norm"] == pytest.approx(
        result.details["gaussian_wasserstein_correlation"] / np.trace(cov), abs=1e-12
    )


def test_independent_code_near_zero_and_constant_dims_dropped() -> None:
    rng = np.random.default_rng(2)
    codes = np.column_stack([rng.normal(size=(10000, 3)), np.full(10000, 2.0)])
    result = unsupervised(codes, np.zeros((10000, 1), dtype=int))
    assert result.details["constant_dims"] == [3]
    assert 0.0 <= result.score < 0.005
    assert result.details["mutual_info_score"] < 0.02
    assert unsupervised(codes, num_train=5000, seed=3).score == unsupervised(codes, num_train=5000, seed=3).score


def test_errors() -> None:
    with pytest.raises(MetricError, match="at least 2 latent dimensions"):
        unsupervised(np.arange(10.0)[:, None])
    with pytest.raises(MetricError, match="rows but factors have"):
        unsupervised(np.random.default_rng(0).normal(size=(10, 3)), np.zeros((9, 1), dtype=int))
