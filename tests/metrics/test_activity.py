"""Active units (Burda et al. 2016) and the interventional factor-activity matrices."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.activity import InterventionPairs, active_units, activity_matrix, sample_intervention_pairs
from metrics.types import MetricError

SIZES = (1, 3, 6, 40, 32, 32)
NAMES = ["color", "shape", "scale", "orientation", "pos_x", "pos_y"]


def _identity(classes: np.ndarray) -> np.ndarray:
    return classes.astype(np.float64)


def test_active_units_against_numpy_variance() -> None:
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(2000, 4)) * np.array([1.0, 0.05, 0.2, 0.0])
    result = active_units(codes)
    np.testing.assert_allclose(result.details["variances"], codes.var(axis=0), atol=1e-15)
    np.testing.assert_array_equal(result.details["active"], codes.var(axis=0) > 0.01)
    assert result.score == 2.0
    assert active_units(codes, threshold=0.001).score == 3.0


def test_perfect_code_gives_identity_matrices() -> None:
    result = activity_matrix(_identity, SIZES, num_samples=2000, subspaces=[(n, 1) for n in NAMES], factor_names=NAMES)
    dims = result.details["dimension_matrix"]
    assert np.all(np.isnan(dims[0]))
    np.testing.assert_allclose(dims[1:], np.eye(6)[1:], atol=0)
    np.testing.assert_allclose(result.details["subspace_matrix"][1:], np.eye(6)[1:], atol=0)
    assert result.score == 1.0 and result.settings["score"] == "exclusivity"
    assert result.details["dimension_exclusivity"] == 1.0
    # mean |Δ| of a uniform change to a different class of a factor with s classes is (s + 1) / 3
    np.testing.assert_allclose(result.details["raw_dimension_change"][3, 3], 41 / 3, rtol=0.05)


def test_mixing_two_factors_into_one_dim_scores_lower() -> None:
    def mixed(classes: np.ndarray) -> np.ndarray:
        codes = classes.astype(np.float64)
        codes[:, 4] = classes[:, 4] + classes[:, 5]
        codes[:, 5] = 0.0
        return codes

    result = activity_matrix(mixed, SIZES, num_samples=2000, subspaces=[(n, 1) for n in NAMES], factor_names=NAMES)
    np.testing.assert_allclose(result.details["per_factor_exclusivity"][1:], [1, 1, 1, 1, 0])
    assert result.score == pytest.approx(0.8)


def test_random_code_gives_uniform_rows() -> None:
    rng = np.random.default_rng(1)
    result = activity_matrix(lambda c: rng.normal(size=(c.shape[0], 8)), SIZES, num_samples=20000, seed=2)
    rows = result.details["dimension_matrix"][1:]
    np.testing.assert_allclose(rows, 1 / 8, atol=0.02)
    assert result.score < 1 / 8 + 0.02 and result.settings["score"] == "dimension_exclusivity"


def test_subspace_change_is_rms_per_dim_and_angle_subspace_is_exclusive() -> None:
    def angle_code(classes: np.ndarray) -> np.ndarray:
        angle = classes[:, 3] * 2 * np.pi / 40
        return np.column_stack([classes[:, 1:3], np.cos(angle), np.sin(angle), classes[:, 4:]]).astype(np.float64)

    subspaces = [("shape", 1), ("scale", 1), ("orientation", 2), ("pos_x", 1), ("pos_y", 1)]
    pairs = sample_intervention_pairs(angle_code, SIZES, num_samples=1000, seed=3)
    result = activity_matrix(None, SIZES, pairs=pairs, subspaces=subspaces, factor_names=NAMES)
    assert result.score == pytest.approx(1.0)
    delta = pairs.codes_b - pairs.codes_a
    rows = pairs.changed == 3
    expected = np.mean(np.linalg.norm(delta[rows][:, 2:4], axis=1)) / np.sqrt(2)
    assert result.details["raw_subspace_change"][3, 2] == pytest.approx(expected, abs=1e-12)


def test_precomputed_pairs_equal_the_representer_path_and_explicit_mapping() -> None:
    def code(classes: np.ndarray) -> np.ndarray:
        return np.column_stack([classes[:, 1] + 0.3 * classes[:, 2], classes[:, 2], classes[:, 3:].sum(axis=1)]) * 1.0

    subspaces = [("a", 1), ("b", 1), ("free", 1)]
    mapping = {"a": "shape", "b": "scale"}
    direct = activity_matrix(
        code, SIZES, num_samples=600, seed=4, subspaces=subspaces, subspace_factors=mapping, factor_names=NAMES
    )
    pairs = sample_intervention_pairs(code, SIZES, num_samples=600, seed=4)
    again = activity_matrix(None, SIZES, pairs=pairs, subspaces=subspaces, subspace_factors=mapping, factor_names=NAMES)
    np.testing.assert_array_equal(direct.details["subspace_matrix"], again.details["subspace_matrix"])
    assert direct.score == again.score
    own = direct.details["per_factor_exclusivity"]
    assert own[1] == 1.0 and 0.5 < own[2] < 1.0 and np.isnan(own[3])


def test_errors() -> None:
    with pytest.raises(MetricError, match="represent returned shape"):
        activity_matrix(lambda c: np.zeros(c.shape[0]), SIZES, num_samples=100)
    with pytest.raises(MetricError, match="NaN or inf"):
        activity_matrix(lambda c: np.full((c.shape[0], 2), np.nan), SIZES, num_samples=100)
    with pytest.raises(MetricError, match="representer or precomputed pairs"):
        activity_matrix(None, SIZES)
    with pytest.raises(MetricError, match="sum to the code width"):
        activity_matrix(_identity, SIZES, num_samples=100, subspaces=[("a", 2)])
    with pytest.raises(MetricError, match="unknown factor"):
        activity_matrix(_identity, SIZES, num_samples=100, subspaces=[("a", 6)], subspace_factors={"a": "hue"})
    bad = InterventionPairs(np.arange(8.0).reshape(4, 2), np.zeros((4, 2)), np.array([0, 1, 9, 1]))
    with pytest.raises(MetricError, match="changed factor indices"):
        activity_matrix(None, SIZES, pairs=bad)
    with pytest.raises(MetricError, match="no factor has more than one class"):
        activity_matrix(_identity, (1, 1), num_samples=10)
