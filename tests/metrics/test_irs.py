"""IRS (Suter et al. 2019) against a loop transcription of disentanglement_lib, ceilings, a hand case and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.irs import group_quantiles, irs
from metrics.types import MetricError

SIZES = (3, 4, 6, 25)  # the last factor has more classes than the 20 bins of the reference's discretizer


def _sample(n: int, seed: int, sizes: tuple[int, ...] = SIZES) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def _codes(kind: str, factors: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n, k = factors.shape
    if kind == "perfect":
        return factors + rng.normal(scale=1e-3, size=(n, k))
    if kind == "mixed":
        return factors @ rng.normal(size=(k, 5)) + rng.normal(scale=0.2, size=(n, 5))
    if kind == "noise":
        return rng.normal(size=(n, 6))
    codes = factors[:, :2] + rng.normal(scale=0.1, size=(n, 2))  # "constant": one dead unit among three
    return np.concatenate([codes[:, :1], np.full((n, 1), 0.7), codes[:, 1:]], axis=1)


def loop_irs(codes: np.ndarray, factors: np.ndarray, q: float = 0.99, bins: int = 20) -> dict[str, np.ndarray]:
    """The reference's steps one by one: histogram-discretise factors, drop constant units, loop over classes.

    Constant units are found by max > min, the reference's ``var > 0`` in exact arithmetic (see test_dead_unit_dropped).
    """
    discrete = np.empty_like(factors)
    for k in range(factors.shape[1]):
        edges = np.histogram(factors[:, k], bins)[1]
        discrete[:, k] = np.digitize(factors[:, k], edges[:-1])
    z = codes[:, codes.max(axis=0) > codes.min(axis=0)]
    max_dev = np.max(np.abs(z - z.mean(axis=0)), axis=0)
    cum = np.zeros((z.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        classes = np.unique(discrete[:, k])
        for c in classes:
            group = z[discrete[:, k] == c]
            cum[:, k] += np.percentile(np.abs(group - group.mean(axis=0)), q * 100, axis=0)
        cum[:, k] /= classes.size
    matrix = 1.0 - cum / max_dev[:, None]
    per_latent = matrix.max(axis=1)
    return {
        "score": np.average(per_latent, weights=max_dev),
        "irs_matrix": matrix,
        "disentanglement_scores": per_latent,
        "parents": matrix.argmax(axis=1),
        "max_deviations": max_dev,
    }


@pytest.mark.parametrize("kind", ["perfect", "mixed", "noise", "constant"])
@pytest.mark.parametrize("q", [0.99, 0.5, 1.0])
def test_agrees_with_loop_transcription(kind: str, q: float) -> None:
    factors = _sample(3000, seed=1)
    codes = _codes(kind, factors, seed=2)
    result = irs(codes, factors, num_train=None, diff_quantile=q)
    ref = loop_irs(codes, factors, q)
    assert result.score == pytest.approx(float(ref["score"]), abs=1e-10)
    for key in ("irs_matrix", "disentanglement_scores", "max_deviations"):
        np.testing.assert_allclose(result.details[key], ref[key], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(result.details["parents"], ref["parents"])
    assert result.details["num_active_dims"] == ref["max_deviations"].size


def test_group_quantiles_equal_percentile() -> None:
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.zeros(1, np.int64), np.full(2, 1), np.full(7, 2), np.full(40, 3)])
    rng.shuffle(labels)
    values = rng.normal(size=(labels.size, 3))
    for q in (0.0, 0.37, 0.99, 1.0):
        got = group_quantiles(values, labels, 4, q)
        for g in range(4):
            np.testing.assert_allclose(got[g], np.percentile(values[labels == g], 100 * q, axis=0), atol=1e-12)


def test_perfect_code_near_one_and_noise_low() -> None:
    factors = _sample(10000, seed=3, sizes=(3, 6, 10, 8))
    perfect = irs(_codes("perfect", factors, 4), factors)
    noise = irs(_codes("noise", factors, 4), factors)
    assert perfect.score > 0.99
    assert perfect.details["parents"].tolist() == [0, 1, 2, 3]
    assert noise.score < 0.5
    assert noise.score < perfect.score - 0.5


def test_hand_computed_case() -> None:
    # Latent 0 follows factor 0 (groups {0, 2} and {10, 12}), latent 1 follows factor 1 (groups {0, 2} and {10, 12}).
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    codes = np.array([[0.0, 0.0], [2.0, 10.0], [10.0, 2.0], [12.0, 12.0]])
    result = irs(codes, factors, num_train=None)
    # Within-group deviations are all 1 (own factor) or 5 (other factor); max deviation from the mean 6 is 6.
    np.testing.assert_allclose(result.details["irs_matrix"], [[5 / 6, 1 / 6], [1 / 6, 5 / 6]], atol=1e-12)
    np.testing.assert_allclose(result.details["max_deviations"], [6.0, 6.0])
    assert result.details["parents"].tolist() == [0, 1]
    assert result.score == pytest.approx(5 / 6, abs=1e-12)


def test_dead_unit_dropped() -> None:
    factors = _sample(1000, seed=9)
    codes = _codes("constant", factors, 10)
    assert np.var(codes[:, 1]) > 0  # round-off: the reference's test would keep this dead unit
    result = irs(codes, factors, num_train=None)
    assert result.details["active_dims"] == [0, 2]
    assert result.score == pytest.approx(irs(codes[:, [0, 2]], factors, num_train=None).score, abs=1e-15)


def test_single_class_factor_is_skipped() -> None:
    factors = _sample(2000, seed=5)
    codes = _codes("mixed", factors, 6)
    with_const = np.concatenate([np.zeros((2000, 1), np.int64), factors], axis=1)
    result = irs(codes, with_const, num_train=None)
    assert result.details["skipped_factors"] == [0]
    assert result.score == pytest.approx(irs(codes, factors, num_train=None).score, abs=1e-12)
    assert set(result.details["parents"].tolist()) <= {1, 2, 3, 4}


def test_subsample_is_seeded() -> None:
    factors = _sample(5000, seed=7)
    codes = _codes("mixed", factors, 8)
    a = irs(codes, factors, num_train=2000, seed=1)
    assert a.score == irs(codes, factors, num_train=2000, seed=1).score
    assert a.score != irs(codes, factors, num_train=2000, seed=2).score


def test_bad_input() -> None:
    factors = _sample(100, seed=0)
    codes = _codes("mixed", factors, 0)
    bad = codes.copy()
    bad[3, 1] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        irs(bad, factors, num_train=None)
    with pytest.raises(MetricError, match="rows"):
        irs(codes[:50], factors, num_train=None)
    with pytest.raises(MetricError, match="diff_quantile"):
        irs(codes, factors, num_train=None, diff_quantile=99.0)
    with pytest.raises(MetricError, match="num_bins"):
        irs(codes, factors, num_train=None, num_bins=0)
    with pytest.raises(MetricError, match="at least 10000 samples"):
        irs(codes, factors)
    with pytest.raises(MetricError, match="single class"):
        irs(codes, np.zeros_like(factors), num_train=None)
