"""UDR (Duan et al. 2020) against a loop transcription of disentanglement_lib's ``compute_udr_sklearn``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
from sklearn.linear_model import Lasso

from metrics.types import MetricError
from metrics.udr import spearman_similarity, udr, udr_pair_score


def _reference_udr(reps: list[np.ndarray], kl: list[np.ndarray], method: str) -> tuple[np.ndarray, np.ndarray]:
    """disentanglement_lib's protocol written out pair by pair: (model scores, pairwise scores)."""
    m = len(reps)
    prepared, masks = [], []
    for x, k in zip(reps, kl, strict=True):
        std = x.std(axis=0)
        z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
        prepared.append(z * (k > 0.01))
        masks.append(k > 0.01)
    pairwise = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            x, y = prepared[i], prepared[j]
            if method == "lasso":
                coef = Lasso(alpha=0.1, random_state=np.random.RandomState(0)).fit(x, y).coef_
                corr = np.abs(coef).T
            else:
                corr = np.zeros((x.shape[1], y.shape[1]))
                for a in range(x.shape[1]):
                    for b in range(y.shape[1]):
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
                            corr[a, b] = abs(scipy.stats.spearmanr(x[:, a], y[:, b])[0])
            corr = corr[masks[i]][:, masks[j]]
            with np.errstate(divide="ignore", invalid="ignore"):
                cols = np.nan_to_num(corr.max(axis=0) ** 2 / corr.sum(axis=0))
                rows = np.nan_to_num(corr.max(axis=1) ** 2 / corr.sum(axis=1))
            pairwise[i, j] = (np.nanmean(cols) + np.nanmean(rows)) / 2
    scores = np.array([np.median(np.delete(pairwise[:, j], j)) for j in range(m)])
    return scores, pairwise


def _models(seed: int, n: int = 800) -> list[np.ndarray]:
    """Three 5-wide models of 4 shared sources: mixed to various degrees, each with one nearly dead latent."""
    rng = np.random.default_rng(seed)
    sources = rng.uniform(-1, 1, size=(n, 4))
    out = []
    for mix in (0.0, 0.3, 1.0):
        w = np.eye(4) + mix * rng.normal(size=(4, 4))
        code = np.column_stack([sources @ w + 0.1 * rng.normal(size=(n, 4)), 0.01 * rng.normal(size=n)])
        out.append(code[:, rng.permutation(5)])
    return out


@pytest.mark.parametrize("method", ["spearman", "lasso"])
def test_matches_reference_loop(method: str) -> None:
    codes = _models(0)
    kl = [
        (0.02 + np.abs(np.random.default_rng(m).normal(size=5))) * (c.var(axis=0) > 0.01) for m, c in enumerate(codes)
    ]
    kl[1][np.argmax(kl[1])] = 0.005  # a live latent the KL calls uninformative: models keep 4, 3 and 4 latents
    result = udr(codes, method=method, kl=kl)
    assert result.details["num_informative"] == [4, 3, 4]
    scores, pairwise = _reference_udr(codes, kl, method)
    np.testing.assert_allclose(result.details["model_scores"], scores, atol=1e-10)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(result.details["pairwise"][off], pairwise[off], atol=1e-10)
    assert result.score == pytest.approx(scores.mean(), abs=1e-10)
    # Without KL: the relative-variance filter is the reference filter on var / max var.
    rel = [c.var(axis=0) / c.var(axis=0).max() for c in codes]
    plain = udr(codes, method=method)
    np.testing.assert_allclose(plain.details["model_scores"], _reference_udr(codes, rel, method)[0], atol=1e-10)
    assert plain.details["num_informative"] == [4, 4, 4]


def test_spearman_similarity_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    y = np.column_stack([np.round(x[:, 0] * 2), -(x[:, 1] ** 3), rng.normal(size=300)])
    expected = np.abs(scipy.stats.spearmanr(x, y)[0][:3, 3:])
    np.testing.assert_allclose(spearman_similarity(x, y), expected, atol=1e-12)


def test_permuted_sign_flipped_copies_score_about_one() -> None:
    rng = np.random.default_rng(2)
    a = rng.uniform(-1, 1, size=(10000, 5))
    b = (a[:, [3, 0, 4, 1, 2]] * np.array([-1.0, 2.0, -0.5, 1.0, 3.0]))[:, :] + 7.0
    spearman = udr([a, b], method="spearman")
    assert spearman.score > 0.96
    np.testing.assert_allclose(spearman.details["model_scores"], spearman.score, atol=1e-12)
    # Orthogonal standardised inputs: the Lasso weight of the match is soft-thresholded to 1 - alpha, the others to 0.
    assert udr([a, b], method="lasso").score == pytest.approx(0.9, abs=0.01)
    rotated = a @ np.linalg.qr(rng.normal(size=(5, 5)))[0]
    assert udr([a, rotated]).score < 0.75


@pytest.mark.parametrize("method", ["spearman", "lasso"])
def test_independent_codes_score_low(method: str) -> None:
    rng = np.random.default_rng(3)
    codes = [rng.normal(size=(5000, 6)) for _ in range(3)]
    assert udr(codes, method=method).score < 0.05


def test_pair_score_by_hand() -> None:
    sim = np.array([[0.8, 0.2], [0.4, 0.6]])
    # Columns: 0.8²/1.2 = 8/15, 0.6²/0.8 = 0.45; rows: 0.8²/1.0 = 0.64, 0.6²/1.0 = 0.36.
    expected = 0.5 * ((8 / 15 + 0.45) / 2 + (0.64 + 0.36) / 2)
    assert udr_pair_score(sim) == pytest.approx(expected, abs=1e-12)
    assert udr_pair_score(sim, weighting="paper") == pytest.approx(expected, abs=1e-12)
    # Second latent of b uninformative: column 8/15; rows 0.8²/0.8 = 0.8 and 0.4²/0.4 = 0.4.
    mask_b = np.array([True, False])
    assert udr_pair_score(sim, None, mask_b) == pytest.approx(0.5 * (8 / 15 + 0.6), abs=1e-12)
    assert udr_pair_score(sim, None, mask_b, weighting="paper") == pytest.approx((8 / 15 + 1.2) / 3, abs=1e-12)
    assert udr_pair_score(np.zeros((2, 2))) == 0.0
    assert udr_pair_score(sim, np.array([False, False])) == 0.0


def test_subsampling_and_lasso_direction() -> None:
    codes = _models(4, n=1200)
    sub = udr(codes, num_samples=500, seed=7)
    rows = np.sort(np.random.default_rng(7).choice(1200, size=500, replace=False))
    assert sub.score == pytest.approx(udr([c[rows] for c in codes]).score, abs=1e-12)
    assert udr(codes, num_samples=1200).score == udr(codes).score
    lasso = udr(codes, method="lasso")
    assert lasso.details["similarity"][0][1].shape == (5, 5)
    assert not np.allclose(lasso.details["pairwise"], lasso.details["pairwise"].T, equal_nan=True)


def test_errors_are_one_line() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(100, 3))
    cases = [
        (lambda: udr([a]), "at least 2 models"),
        (lambda: udr([a, a[:90]]), "codes\\[1\\] has 90 rows but codes\\[0\\] has 100"),
        (lambda: udr([a, a], kl=[np.ones(3)]), "kl has 1 entries"),
        (lambda: udr([a, a], kl=[np.ones(3), np.ones(2)]), "kl\\[1\\] must hold 3 finite values"),
        (lambda: udr([a, a], method="pearson"), "method must be one of"),
        (lambda: udr([a, a], num_samples=500), "needs at least 500 samples"),
        (lambda: udr([a, np.full((100, 2), np.nan)]), "codes\\[1\\] contain NaN"),
    ]
    for call, message in cases:
        with pytest.raises(MetricError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
