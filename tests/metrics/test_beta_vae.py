"""BetaVAE score (Higgins et al. 2017) against a per-batch loop, ceilings and chance level."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from metrics.beta_vae import beta_vae_score
from metrics.sampling import grid_index, sample_shared_factor_pairs
from metrics.types import MetricError

SIZES = (1, 3, 4, 5, 6)
SMALL = {"num_train": 300, "num_eval": 150, "batch_size": 16}


def perfect(classes: np.ndarray) -> np.ndarray:
    return classes.astype(np.float64)


def noisy_linear(classes: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(len(SIZES), 6))
    table = rng.normal(scale=0.5, size=(int(np.prod(SIZES)), 6))
    return classes @ w + table[grid_index(classes, SIZES)]


@pytest.mark.filterwarnings("ignore:lbfgs failed to converge")
def test_equals_per_batch_loop_on_same_draws() -> None:
    result = beta_vae_score(noisy_linear, SIZES, seed=4, **SMALL)
    rng = np.random.default_rng(4)
    shared, ca, cb = sample_shared_factor_pairs(SIZES, 450, 16, rng)
    feats = np.stack([np.mean(np.abs(noisy_linear(ca[v]) - noisy_linear(cb[v])), axis=0) for v in range(450)])
    model = LogisticRegression(random_state=4).fit(feats[:300], shared[:300])
    assert result.score == pytest.approx(model.score(feats[300:], shared[300:]), abs=1e-12)
    assert result.details["train_accuracy"] == pytest.approx(model.score(feats[:300], shared[:300]), abs=1e-12)


def test_perfect_code_scores_one() -> None:
    result = beta_vae_score(perfect, SIZES, **SMALL)
    assert result.score == 1.0
    assert result.details["num_points_per_factor"][0] == 0  # the single-class factor is never the shared one


def test_random_code_near_chance() -> None:
    table = np.random.default_rng(2).normal(size=(int(np.prod(SIZES)), 5))
    result = beta_vae_score(lambda c: table[grid_index(c, SIZES)], SIZES, **SMALL)
    assert result.score < 0.45  # chance is 1/4


def test_chunking_does_not_change_the_score_and_is_deterministic() -> None:
    calls: list[int] = []

    def counting(classes: np.ndarray) -> np.ndarray:
        calls.append(classes.shape[0])
        return noisy_linear(classes)

    whole = beta_vae_score(counting, SIZES, seed=1, **SMALL)
    assert calls == [2 * 450 * 16]
    calls.clear()
    chunked = beta_vae_score(counting, SIZES, seed=1, max_rows_per_call=2 * 16 * 100, **SMALL)
    assert calls == [3200, 3200, 3200, 3200, 1600]
    assert chunked.score == whole.score and chunked.details == whole.details


def test_pairs_share_exactly_the_drawn_factor() -> None:
    shared, ca, cb = sample_shared_factor_pairs(SIZES, 200, 8, np.random.default_rng(0))
    assert set(np.unique(shared)) == {1, 2, 3, 4}
    for v in range(200):
        np.testing.assert_array_equal(ca[v, :, shared[v]], cb[v, :, shared[v]])
    assert (ca != cb).any(axis=(0, 1))[1:].all()


def test_errors() -> None:
    with pytest.raises(MetricError, match="more than one class"):
        beta_vae_score(perfect, (1,), **SMALL)
    with pytest.raises(MetricError, match=">= 1"):
        beta_vae_score(perfect, SIZES, num_train=0)
    with pytest.raises(MetricError, match="shape"):
        beta_vae_score(lambda c: np.zeros(c.shape[0]), SIZES, **SMALL)
