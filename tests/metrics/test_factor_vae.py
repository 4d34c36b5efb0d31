"""FactorVAE score (Kim & Mnih 2018) against a per-vote loop, ceilings, chance level and the active-dims trap."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.factor_vae import batch_variance_ratios, factor_vae_score
from metrics.sampling import grid_index, sample_factors, sample_fixed_factor_batches
from metrics.types import MetricError

SIZES = (1, 3, 4, 5, 6)
SMALL = {"num_train": 400, "num_eval": 200, "batch_size": 32, "num_variance_estimate": 1000}


def perfect(classes: np.ndarray) -> np.ndarray:
    """The factor classes themselves as the code (dimension k encodes factor k)."""
    return classes.astype(np.float64)


def linear_representer(seed: int, dim: int = 7) -> tuple[np.ndarray, object]:
    """A fixed random linear map of the classes plus deterministic per-grid-point noise."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(len(SIZES), dim))
    noise_table = rng.normal(scale=0.3, size=(int(np.prod(SIZES)), dim))

    def represent(classes: np.ndarray) -> np.ndarray:
        return classes @ w + noise_table[grid_index(classes, SIZES)]

    return w, represent


def loop_score(represent: object, seed: int, threshold: float = 0.05) -> tuple[float, float, np.ndarray, int]:
    """Straightforward port of disentanglement_lib's loop on the same random draws as the bulk implementation."""
    rng = np.random.default_rng(seed)
    n_var, n_tr, n_ev, bs = (SMALL[k] for k in ("num_variance_estimate", "num_train", "num_eval", "batch_size"))
    global_var = np.var(represent(sample_factors(SIZES, n_var, rng)), axis=0, ddof=1)  # type: ignore[operator]
    active = np.sqrt(global_var) >= threshold
    fixed, classes = sample_fixed_factor_batches(SIZES, n_tr + n_ev, bs, rng)
    dims = np.flatnonzero(active)
    votes = np.zeros((2, global_var.size, len(SIZES)), dtype=np.int64)
    for v in range(n_tr + n_ev):
        codes = represent(classes[v])  # type: ignore[operator]
        local = np.var(codes, axis=0, ddof=1)
        d = dims[np.argmin(local[active] / global_var[active])]
        votes[int(v >= n_tr), d, fixed[v]] += 1
    classifier = np.argmax(votes[0], axis=1)
    rows = np.arange(global_var.size)
    train_acc = votes[0][rows, classifier].sum() / votes[0].sum()
    eval_acc = votes[1][rows, classifier].sum() / votes[1].sum()
    return float(train_acc), float(eval_acc), votes, int(active.sum())


def test_bulk_votes_equal_per_vote_loop() -> None:
    _, represent = linear_representer(1)
    result = factor_vae_score(represent, SIZES, seed=3, **SMALL)
    train_acc, eval_acc, votes, n_active = loop_score(represent, seed=3)
    assert result.score == pytest.approx(eval_acc, abs=1e-12)
    assert result.details["train_accuracy"] == pytest.approx(train_acc, abs=1e-12)
    np.testing.assert_array_equal(np.array(result.details["votes_train"]), votes[0])
    np.testing.assert_array_equal(np.array(result.details["votes_eval"]), votes[1])
    assert result.details["num_active_dims"] == n_active


def test_bulk_variance_ratios_equal_loop_within_1e9() -> None:
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(50, 16, 6)) * rng.uniform(0.1, 3.0, size=6)
    variances = rng.uniform(0.5, 2.0, size=6)
    active = np.array([True, False, True, True, False, True])
    bulk = batch_variance_ratios(codes, variances, active)
    for v in range(codes.shape[0]):
        loop = np.var(codes[v], axis=0, ddof=1)[active] / variances[active]
        np.testing.assert_allclose(bulk[v], loop, rtol=0, atol=1e-9)


def test_perfect_code_scores_one() -> None:
    result = factor_vae_score(perfect, SIZES, **SMALL)
    assert result.score == 1.0
    assert result.details["train_accuracy"] == 1.0
    assert result.details["num_active_dims"] == 4  # the single-class colour factor gives a constant dimension


def test_active_dims_counted_and_excluded() -> None:
    """Constant and near-constant dims must be pruned by their STD (>= 0.05) and not counted as active.

    A naive port that skips pruning divides 0/0 (NaN wins argmin), one that reports len(mask) counts 9 dims, and one
    that thresholds the variance instead of the std prunes the genuine dims of std ~0.1 and scores 0.
    """
    rng = np.random.default_rng(0)
    noise_table = rng.normal(size=(int(np.prod(SIZES)), 2))

    def represent(classes: np.ndarray) -> np.ndarray:
        informative = 0.1 * (classes[:, 1:] - np.array(SIZES[1:]) / 2) / np.array(SIZES[1:])
        n = classes.shape[0]
        noise = noise_table[grid_index(classes, SIZES)]
        constant = np.full((n, 2), 3.0)
        tiny = 0.01 * noise[:, :1]
        return np.concatenate([informative * 3, constant, tiny, noise[:, 1:] * 0.03], axis=1)

    result = factor_vae_score(represent, SIZES, **SMALL)
    std = np.sqrt(np.array(result.details["global_variances"]))
    assert np.all(std[:4] < 0.23) and np.all(std[:4] >= 0.05)
    assert result.details["num_active_dims"] == 4
    assert result.details["active_dims"] == [0, 1, 2, 3]
    assert result.score == 1.0


def test_random_code_near_chance() -> None:
    table = np.random.default_rng(5).normal(size=(int(np.prod(SIZES)), 6))
    result = factor_vae_score(lambda c: table[grid_index(c, SIZES)], SIZES, **SMALL)
    assert result.score < 0.4  # chance is 1/4 (four varying factors)


def test_no_active_dims_scores_zero() -> None:
    result = factor_vae_score(lambda c: np.zeros((c.shape[0], 3)), SIZES, **SMALL)
    assert result.score == 0.0
    assert result.details["num_active_dims"] == 0


def test_deterministic_and_one_call_with_shared_variance_codes() -> None:
    calls: list[int] = []

    def counting(classes: np.ndarray) -> np.ndarray:
        calls.append(classes.shape[0])
        return perfect(classes) + 0.01 * np.sin(grid_index(classes, SIZES))[:, None]

    a = factor_vae_score(counting, SIZES, seed=7, **SMALL)
    b = factor_vae_score(counting, SIZES, seed=7, **SMALL)
    assert a.score == b.score and a.details["votes_eval"] == b.details["votes_eval"]
    assert calls == [1000, 600 * 32] * 2
    variance_codes = counting(sample_factors(SIZES, 1000, np.random.default_rng(1)))
    calls.clear()
    factor_vae_score(counting, SIZES, variance_codes=variance_codes, **SMALL)
    assert calls == [600 * 32]


def test_fixed_factor_batches_fix_exactly_the_drawn_varying_factor() -> None:
    fixed, classes = sample_fixed_factor_batches(SIZES, 300, 8, np.random.default_rng(0))
    assert classes.shape == (300, 8, 5) and set(np.unique(fixed)) == {1, 2, 3, 4}
    for v in range(300):
        assert np.unique(classes[v, :, fixed[v]]).size == 1
    assert np.all(classes < np.array(SIZES)) and np.all(classes >= 0)


def test_errors() -> None:
    with pytest.raises(MetricError, match="batch_size"):
        factor_vae_score(perfect, SIZES, batch_size=1)
    with pytest.raises(MetricError, match="more than one class"):
        factor_vae_score(perfect, (1, 1))
    with pytest.raises(MetricError, match="NaN"):
        factor_vae_score(lambda c: np.full((c.shape[0], 2), np.nan), SIZES, **SMALL)
