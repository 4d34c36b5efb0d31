"""Augmentation activity: the subspace share of each augmentation's code change, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metrics.augmentation_activity import augmentation_activity
from metrics.types import MetricError


def _pairs(deltas: dict[str, np.ndarray], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairs whose view b is view a (random codes) plus the given change."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, delta in deltas.items():
        za = rng.normal(size=delta.shape)
        out[name] = (za, za + delta)
    return out


def test_perfect_code_gives_exclusivity_one_and_identity_matrix() -> None:
    rng = np.random.default_rng(1)
    subspaces = [("orientation", 2), ("lighting", 1), ("mirror", 3)]
    bounds = {"orientation": (0, 2), "lighting": (2, 3), "mirror": (3, 6)}
    deltas = {}
    for name, (lo, hi) in bounds.items():
        delta = np.zeros((50, 6))
        delta[:, lo:hi] = rng.normal(size=(50, hi - lo))
        deltas[name] = delta
    result = augmentation_activity(_pairs(deltas), subspaces)
    assert result.name == "augmentation_activity" and result.score == 1.0
    np.testing.assert_allclose(result.details["subspace_matrix"], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(result.details["per_factor_exclusivity"], [1.0, 1.0, 1.0])
    dims = result.details["dimension_matrix"]
    np.testing.assert_allclose(dims.sum(axis=1), 1.0)
    assert np.all(dims[0, 2:] < 1e-12) and np.all(dims[1, [0, 1, 3, 4, 5]] < 1e-12) and np.all(dims[2, :3] < 1e-12)
    assert result.details["factor_names"] == ["orientation", "lighting", "mirror"]
    assert result.details["subspace_names"] == ["orientation", "lighting", "mirror"]


def test_two_factors_three_dims_by_hand() -> None:
    deltas = {
        "a": np.array([[3.0, 0.0, 4.0], [1.0, 0.0, 0.0]]),
        "b": np.array([[1.0, 6.0, 8.0], [-1.0, 0.0, 0.0]]),
    }
    result = augmentation_activity(_pairs(deltas, seed=2), [("a", 1), ("b", 2)])
    # factor a: subspace a = mean(|3|, |1|) = 2; subspace b = mean(‖(0, 4)‖, ‖(0, 0)‖) / √2 = 2 / √2 = √2
    # factor b: subspace a = mean(1, 1) = 1; subspace b = mean(‖(6, 8)‖, 0) / √2 = 5 / √2
    raw = np.array([[2.0, math.sqrt(2.0)], [1.0, 5.0 / math.sqrt(2.0)]])
    np.testing.assert_allclose(result.details["raw_matrix"], raw, rtol=1e-12)
    share_a = 2.0 / (2.0 + math.sqrt(2.0))  # 0.585786...
    share_b = (5.0 / math.sqrt(2.0)) / (1.0 + 5.0 / math.sqrt(2.0))  # 0.779519...
    np.testing.assert_allclose(result.details["subspace_matrix"], [[share_a, 1 - share_a], [1 - share_b, share_b]])
    np.testing.assert_allclose(result.details["per_factor_exclusivity"], [share_a, share_b])
    assert result.score == pytest.approx((share_a + share_b) / 2) == pytest.approx(0.682652, abs=1e-6)
    # mean |Δ| per dim: a -> (2, 0, 2) / 4; b -> (1, 3, 4) / 8
    np.testing.assert_allclose(result.details["dimension_matrix"], [[0.5, 0.0, 0.5], [1 / 8, 3 / 8, 4 / 8]])
    np.testing.assert_array_equal(result.details["pairs_per_factor"], [2, 2])


def test_every_factor_moving_every_dimension_equally_gives_uniform_shares() -> None:
    rng = np.random.default_rng(3)
    names = ["x", "y", "z"]
    deltas = {n: rng.uniform(0.5, 2.0, size=(40, 1)) * np.ones((1, 6)) for n in names}
    result = augmentation_activity(_pairs(deltas), [("x", 1), ("y", 2), ("z", 3)])
    np.testing.assert_allclose(result.details["subspace_matrix"], np.full((3, 3), 1 / 3))
    np.testing.assert_allclose(result.details["dimension_matrix"], np.full((3, 6), 1 / 6))
    assert result.score == pytest.approx(1 / 3)


def test_explicit_ties_untied_factors_and_still_factors() -> None:
    deltas = {
        "lighting": np.array([[0.0, 2.0, 0.0]]),
        "mirror": np.zeros((3, 3)),  # moves nothing: an all-zero row, share 0 in its own subspace
        "blur": np.array([[1.0, 1.0, 1.0]]),  # tied to no subspace: NaN, left out of the score
    }
    result = augmentation_activity(
        _pairs(deltas),
        [("z_light", 2), ("z_mirror", 1)],
        subspace_factors={"z_light": "lighting", "z_mirror": "mirror"},
    )
    np.testing.assert_array_equal(result.details["subspace_matrix"][1], [0.0, 0.0])
    np.testing.assert_array_equal(result.details["dimension_matrix"][1], [0.0, 0.0, 0.0])
    own = result.details["per_factor_exclusivity"]
    assert own[0] == 1.0 and own[1] == 0.0 and math.isnan(own[2])
    assert result.score == 0.5 == result.details["exclusivity"] and result.settings["score"] == "exclusivity"


def test_no_tied_subspace_falls_back_to_dimension_exclusivity() -> None:
    deltas = {"a": np.array([[3.0, 1.0, 0.0]]), "b": np.array([[0.0, 1.0, 1.0]])}
    no_ties: list[dict[str, str] | None] = [None, {}]
    for ties in no_ties:
        result = augmentation_activity(_pairs(deltas), [(f"z{d}", 1) for d in range(3)], subspace_factors=ties)
        # largest per-dimension shares: a -> 3 / 4, b -> 1 / 2
        assert result.score == pytest.approx(0.625) == result.details["dimension_exclusivity"]
        assert result.settings["score"] == "dimension_exclusivity" and math.isnan(result.details["exclusivity"])
        assert np.isnan(result.details["per_factor_exclusivity"]).all()


@pytest.mark.parametrize(
    ("pairs", "subspaces", "ties", "message"),
    [
        ({}, [("a", 2)], None, "pairs is empty"),
        ({"a": (np.zeros((2, 2)), np.zeros((3, 2)))}, [("a", 2)], None, r"pairs\['a'\]: codes must be two \(M, D\)"),
        ({"a": (np.zeros(2), np.zeros(2))}, [("a", 2)], None, "codes must be two"),
        ({"a": (np.zeros((2, 2)),)}, [("a", 2)], None, "must be a tuple"),
        ({"a": (np.zeros((0, 2)), np.zeros((0, 2)))}, [("a", 2)], None, "factor 'a' has no pairs"),
        ({"a": (np.full((1, 2), np.nan), np.zeros((1, 2)))}, [("a", 2)], None, "NaN or inf"),
        (
            {"a": (np.zeros((1, 2)), np.zeros((1, 2))), "b": (np.zeros((1, 3)), np.zeros((1, 3)))},
            [("a", 2)],
            None,
            "'b'] has codes of width 3, other factors 2",
        ),
        ({"a": (np.zeros((1, 2)), np.ones((1, 2)))}, [("a", 3)], None, r"widths \[3\] must be >= 1 and sum to .* 2"),
        ({"a": (np.zeros((1, 2)), np.ones((1, 2)))}, [("a", 0), ("b", 2)], None, "must be >= 1"),
        ({"a": (np.zeros((1, 2)), np.ones((1, 2)))}, [("z", 2)], {"q": "a"}, "unknown subspaces \\['q'\\]"),
        ({"a": (np.zeros((1, 2)), np.ones((1, 2)))}, [("z", 2)], {"z": "b"}, "tied to unknown factor 'b'"),
    ],
)
def test_errors(
    pairs: dict[str, tuple[np.ndarray, ...]],
    subspaces: list[tuple[str, int]],
    ties: dict[str, str] | None,
    message: str,
) -> None:
    with pytest.raises(MetricError, match=message):
        augmentation_activity(pairs, subspaces, subspace_factors=ties)  # type: ignore[arg-type]
