"""Cross-seed consistency: held-out R² of identity, permutation/sign, linear and affine maps between two runs."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.consistency import MAPS, consistency_matrix, cross_seed_consistency, map_r2, split_rows
from metrics.types import MetricError


def _rotation(d: int, seed: int) -> np.ndarray:
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))[0]


def test_hand_case_two_dims() -> None:
    # Training A: uncorrelated, mean 0; B = (3 a1 + 1, -2 a0) exactly, on both splits.
    a_tr = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    a_te = np.array([[2.0, 1.0], [-2.0, -1.0]])

    def to_b(a: np.ndarray) -> np.ndarray:
        return np.column_stack([3 * a[:, 1] + 1, -2 * a[:, 0]])

    per_dim, matching = map_r2(a_tr, a_te, to_b(a_tr), to_b(a_te))
    # identity: train correlations of matching indices are 0, so B is predicted by its training mean (1, 0),
    # which is also its test mean.
    np.testing.assert_allclose(per_dim["identity"], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(per_dim["permutation_sign"], [1.0, 1.0], atol=1e-12)
    assert sorted(matching["pairs"]) == [(0, 1), (1, 0)]
    assert dict(zip(matching["pairs"], matching["signs"], strict=True)) == {(0, 1): -1, (1, 0): 1}
    # linear (no intercept): A's training columns sum to 0, so the offset 1 of b0 is lost. Test b0 = (4, -2),
    # predicted (3, -3): R² = 1 - 2/18.
    np.testing.assert_allclose(per_dim["linear"], [8 / 9, 1.0], atol=1e-12)
    np.testing.assert_allclose(per_dim["affine"], [1.0, 1.0], atol=1e-12)
    assert matching["mcc"] == pytest.approx(1.0, abs=1e-12)


def test_permuted_flipped_rescaled_copy() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(10000, 6))
    b = a[:, [1, 2, 3, 4, 5, 0]] * np.array([-1.0, 2.0, 0.5, -3.0, 1.0, 10.0]) + 4.0
    result = cross_seed_consistency(a, b)
    assert result.score == pytest.approx(1.0, abs=1e-9)
    assert result.details["r2"]["permutation_sign"] == pytest.approx(1.0, abs=1e-9)
    assert result.details["r2_weighted"]["affine"] == pytest.approx(1.0, abs=1e-9)
    assert result.details["r2"]["identity"] < 0.05
    assert result.details["matching"]["mcc"] == pytest.approx(1.0, abs=1e-9)
    assert result.settings == {"num_train": 5000, "num_test": 5000, "seed": 0}


def test_rotation_is_linear_but_not_a_permutation() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4000, 6))
    b = a @ _rotation(6, 2)
    result = cross_seed_consistency(a, b, num_train=2000, num_test=2000)
    assert result.details["r2_symmetric"]["linear"] == pytest.approx(1.0, abs=1e-9)
    assert result.details["r2_symmetric"]["permutation_sign"] < 0.8
    # With an offset only the affine map is exact; the linear one (through the origin) pays for it.
    shifted = cross_seed_consistency(a, b + 5.0, num_train=2000, num_test=2000)
    assert shifted.details["r2"]["affine"] == pytest.approx(1.0, abs=1e-9)
    assert shifted.details["r2_reverse"]["affine"] == pytest.approx(1.0, abs=1e-9)
    assert shifted.details["r2"]["linear"] < 0.5
    assert shifted.score == pytest.approx(result.score, abs=1e-9)


def test_independent_codes_score_about_zero() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(10000, 10)), (rng.uniform(size=(10000, 10)) - 0.5) * 3
    result = cross_seed_consistency(a, b)
    for key in ("r2", "r2_reverse", "r2_symmetric", "r2_weighted"):
        for name in MAPS:
            assert -0.05 <= result.details[key][name] <= 0.05, (key, name)
    assert result.details["matching"]["mcc"] < 0.05
    # An offset between the runs: the linear map through the origin cannot produce it (far below 0), the rest stay ~0.
    shifted = cross_seed_consistency(a, b + 2.0)
    assert shifted.details["r2"]["linear"] < -1.0
    assert max(shifted.details["r2"][name] for name in MAPS) <= 0.05


def test_unequal_widths() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=(2000, 3))
    b = np.column_stack([a[:, [2, 0]], rng.normal(size=2000), a[:, 1] * -2])
    result = cross_seed_consistency(a, b, num_train=None, num_test=None)
    assert result.settings["num_train"] == result.settings["num_test"] == 1000
    assert (
        np.isnan(result.details["r2"]["identity"])
        and "identity needs equal widths" in result.details["reasons"]["identity"]
    )
    per_dim = result.details["per_dim"]["permutation_sign"]
    np.testing.assert_allclose(per_dim[[0, 1, 3]], 1.0, atol=1e-9)
    assert abs(per_dim[2]) < 0.01  # unmatched: predicted by its training mean
    assert result.details["r2_reverse"]["permutation_sign"] > 0.99  # every dimension of A has a partner


def test_matrix_agrees_with_pairs() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(size=(1000, 4))
    runs = [base, base[:, ::-1] * -1.0, base @ _rotation(4, 6), rng.normal(size=(1000, 4))]
    result = consistency_matrix(runs, num_train=500, num_test=500, seed=2)
    pair = cross_seed_consistency(runs[0], runs[2], num_train=500, num_test=500, seed=2)
    for name in MAPS:
        assert result.details["directional"][name][0, 2] == pair.details["r2"][name]
        assert result.details["directional"][name][2, 0] == pair.details["r2_reverse"][name]
        assert result.details["symmetric"][name][2, 0] == pair.details["r2_symmetric"][name]
        assert np.isnan(np.diag(result.details["symmetric"][name])).all()
    sym = result.details["symmetric"]["permutation_sign"]
    assert sym[0, 1] == pytest.approx(1.0, abs=1e-9)
    assert result.score == pytest.approx(sym[np.triu_indices(4, 1)].mean(), abs=1e-12)


def test_split_and_errors_are_one_line() -> None:
    tr, te = split_rows(10, 4, None, seed=1)
    assert tr.size == 4 and te.size == 6 and not set(tr) & set(te)
    rng = np.random.default_rng(6)
    a = rng.normal(size=(100, 3))
    cases = [
        (lambda: cross_seed_consistency(a, a[:90]), "codes_a has 100 rows but codes_b has 90"),
        (lambda: cross_seed_consistency(a, a), "needs at least 10000 samples but got 100"),
        (lambda: cross_seed_consistency(a, np.zeros((100, 2))), "codes_b dimensions are constant"),
        (lambda: consistency_matrix([a]), "at least 2 runs"),
        (lambda: consistency_matrix([a, a[:50]], num_train=None, num_test=None), "codes\\[1\\] has 50 rows"),
    ]
    for call, message in cases:
        with pytest.raises(MetricError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
