"""OMES (Dapueto et al. 2024) against a loop transcription of the authors' formula, ceilings, a hand case, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.omes import association_matrix, omes, omes_from_pairs, one_factor_pairs
from metrics.types import MetricError

SIZES = (4, 5, 6, 7)


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
    # "dead": the perfect code with a constant unit in front and a unit below the activity threshold at the end
    perfect = factors + rng.normal(scale=1e-3, size=(n, k))
    return np.concatenate([np.full((n, 1), 0.3), perfect, 0.01 * rng.normal(size=(n, 1))], axis=1)


def loop_omes(pairs: list[tuple[np.ndarray, np.ndarray]], active: np.ndarray, alpha: float, pooling: str) -> float:
    """The authors' formula step by step: correlation of the pair sides, then per-latent loops, then pooling."""
    columns = []
    for x, y in pairs:
        d = x.shape[1]
        corr = np.corrcoef(x, y, rowvar=False)[:d, d:]
        corr = np.abs(np.where(corr > 0, 1 - corr, -1 - corr))
        columns.append(np.diag(corr))
    assoc = np.stack(columns, axis=1)[active]
    num_dims, num_factors = assoc.shape
    scores = []
    for k in range(num_factors):
        overlap, multiple = np.zeros(num_dims), np.zeros(num_dims)
        for d in range(num_dims):
            target_row = np.zeros(num_factors)
            target_row[k] = 1.0
            overlap[d] = 1.0 - np.mean(np.abs(target_row - assoc[d]))
            target_col = np.zeros(num_dims)
            target_col[d] = 1.0
            multiple[d] = 1.0 - np.mean(np.abs(target_col - assoc[:, k]))
        if pooling == "avg":
            o = np.average(overlap * assoc[:, k], weights=assoc[:, k])
            m = np.average(multiple * assoc[:, k], weights=assoc[:, k])
        else:
            o, m = np.max(overlap * assoc[:, k]), np.max(multiple * assoc[:, k])
        scores.append(alpha * o + (1 - alpha) * m)
    return float(np.mean(scores))


def loop_pair_count(factors: np.ndarray, k: int) -> int:
    """Pairs the authors' loop yields for factor k: every sampled grid point visits its line of m points, m // 2 pairs."""
    distinct = np.unique(factors, axis=0)
    total = 0
    for point in distinct:
        same_rest = np.all(np.delete(distinct, k, axis=1) == np.delete(point, k), axis=1)
        total += int(same_rest.sum()) // 2
    return total


@pytest.mark.parametrize("kind", ["perfect", "mixed", "noise", "dead"])
@pytest.mark.parametrize(("alpha", "pooling"), [(0.5, "avg"), (0.5, "max"), (0.0, "avg"), (1.0, "max"), (0.3, "avg")])
def test_agrees_with_loop_transcription(kind: str, alpha: float, pooling: str) -> None:
    factors = _sample(3000, seed=1)
    codes = _codes(kind, factors, seed=2)
    result = omes(codes, factors, num_train=None, num_pairs=2000, alpha=alpha, pooling=pooling, seed=5)
    pair_idx = one_factor_pairs(factors, np.random.default_rng(5), 2000)
    pairs = [(codes[p[:, 0]], codes[p[:, 1]]) for p in pair_idx]
    active = np.std(codes, axis=0, ddof=1) >= 0.05
    assert result.score == pytest.approx(loop_omes(pairs, active, alpha, pooling), abs=1e-10)
    assert result.details["num_active_dims"] == int(active.sum())
    if kind == "dead":
        assert result.details["active_dims"] == [1, 2, 3, 4]
    direct = omes_from_pairs(pairs, active=active, alpha=alpha, pooling=pooling)
    assert direct.score == pytest.approx(result.score, abs=1e-15)


def test_pairs_differ_in_one_factor_and_match_loop_count() -> None:
    base = _sample(400, seed=3, sizes=(3, 4, 5))
    factors = np.concatenate([base, base[:50]])  # repeated grid points count once
    pairs = one_factor_pairs(factors, np.random.default_rng(0))
    for k, p in enumerate(pairs):
        differ = factors[p[:, 0]] != factors[p[:, 1]]
        assert differ[:, k].all()
        assert differ.sum(axis=1).max() == 1
        assert p.shape[0] == loop_pair_count(factors, k)
    capped = one_factor_pairs(factors, np.random.default_rng(0), num_pairs=7)
    assert [p.shape[0] for p in capped] == [min(7, p.shape[0]) for p in pairs]


def test_perfect_code_at_ceiling_and_entangled_lower() -> None:
    factors = _sample(15000, seed=4)
    perfect = omes(factors.astype(np.float64), factors)
    # A perfect latent of an m-class factor has corr -1/(m-1) over pairs of distinct classes: A = c = 1 - 1/(m-1),
    # and, with A diagonal, factor k scores c * (1 - (1 - c) / K) for both components (here D = K).
    c = 1.0 - 1.0 / (np.array(SIZES) - 1.0)
    ceiling = float(np.mean(c * (1.0 - (1.0 - c) / len(SIZES))))
    assert perfect.score == pytest.approx(ceiling, abs=0.02)
    np.testing.assert_allclose(np.diag(perfect.details["association"]), c, atol=0.05)  # sampled pairs
    assert perfect.details["associated_dims"].tolist() == [0, 1, 2, 3]
    mixed = omes(_codes("mixed", factors, 5), factors)
    noise = omes(_codes("noise", factors, 5), factors)
    assert mixed.score < perfect.score - 0.2
    assert noise.score < perfect.score - 0.2


def test_hand_computed_case() -> None:
    # Factor 0: latent 0 uncorrelated across the pair (A = 1), latent 1 corr 0.5 (A = 0.5).
    # Factor 1: latent 0 equal on both sides (A = 0), latent 1 corr -0.5 (A = 0.5).
    x0 = np.array([[0.0, 1.0], [1.0, -1.0], [0.0, 0.0], [1.0, 0.0]])
    y0 = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, -1.0], [1.0, 0.0]])
    x1 = np.array([[0.0, 1.0], [1.0, -1.0], [2.0, 0.0], [3.0, 0.0]])
    y1 = np.array([[0.0, -1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    pairs = [(x0, y0), (x1, y1)]
    np.testing.assert_allclose(association_matrix(pairs), [[1.0, 0.0], [0.5, 0.5]], atol=1e-12)
    # overlap O = [[1, 0], [.5, .5]], multiple encoding M = [[.75, .25], [.25, .75]];
    # avg pooling: overlap (1.125 / 1.5, .125 / .5) = (.75, .25), multiple (.8125 / 1.5, .1875 / .5) = (13/24, 3/8).
    avg = omes_from_pairs(pairs)
    np.testing.assert_allclose(avg.details["overlap_scores"], [0.75, 0.25], atol=1e-12)
    np.testing.assert_allclose(avg.details["multiple_encoding_scores"], [13 / 24, 3 / 8], atol=1e-12)
    assert avg.score == pytest.approx(23 / 48, abs=1e-12)
    assert avg.details["overlap"] == pytest.approx(0.5, abs=1e-12)
    # max pooling: overlap (1, .25), multiple (.75, .375).
    assert omes_from_pairs(pairs, pooling="max").score == pytest.approx(0.59375, abs=1e-12)
    assert omes_from_pairs(pairs, alpha=1.0).score == pytest.approx(0.5, abs=1e-12)


def test_unencoded_factor_scores_zero() -> None:
    x = np.array([[0.0], [1.0], [2.0]])
    result = omes_from_pairs([(x, x + 0.5)])  # the latent is equal on both sides: A = 0, nothing encodes the factor
    assert result.score == 0.0


def test_bad_input() -> None:
    factors = _sample(500, seed=0)
    codes = _codes("mixed", factors, 0)
    bad = codes.copy()
    bad[3, 1] = np.inf
    with pytest.raises(MetricError, match="NaN or inf"):
        omes(bad, factors, num_train=None)
    with pytest.raises(MetricError, match="alpha"):
        omes(codes, factors, num_train=None, alpha=1.5)
    with pytest.raises(MetricError, match="pooling"):
        omes(codes, factors, num_train=None, pooling="mean")
    with pytest.raises(MetricError, match="num_pairs"):
        omes(codes, factors, num_train=None, num_pairs=1)
    with pytest.raises(MetricError, match="at least 15000 samples"):
        omes(codes, factors)
    with pytest.raises(MetricError, match="exactly one factor"):
        omes(np.eye(3), np.array([[0, 0], [1, 1], [2, 2]]), num_train=None)
    with pytest.raises(MetricError, match="active_threshold"):
        omes(1e-3 * codes, factors, num_train=None)
    with pytest.raises(MetricError, match="equal shape"):
        omes_from_pairs([(np.zeros((4, 2)), np.zeros((4, 3)))])
