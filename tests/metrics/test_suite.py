"""The metric suite: shared encodings, the caching representer, standalone equality, errors and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.continuous import dci_regression, mig_regression
from metrics.dci import dci
from metrics.mig import mig
from metrics.sampling import grid_index, sample_factors
from metrics.suite import AVAILABLE, INTERVENTIONAL, OBSERVATIONAL, CachingRepresenter, run_suite
from metrics.types import MetricError

SIZES = (1, 3, 4, 5, 6)
NAMES = ["color", "shape", "scale", "x", "y"]
SUBSPACES = [("shape", 1), ("scale", 1), ("x", 1), ("y", 1), ("free", 2)]
SMALL = {
    "mig": {"num_train": 600},
    "mig_subspace": {"num_train": 600},
    "mig_continuous": {"num_train": 600},
    "modularity": {"num_train": 600},
    "unsupervised": {"num_train": 600},
    "activity": {"num_samples": 400},
    "dci": {"num_train": 400, "num_test": 200},
    "dci_es": {"num_train": 400, "num_test": 200, "capacities": (1, 2, 4), "num_trees": 3},
    "irs": {"num_train": 600},
    "omes": {"num_train": 600},
    "sap": {"num_train": 400, "num_test": 200},
    "explicitness": {"num_train": 400, "num_test": 200},
    "probes": {"num_train": (10, 100), "num_test": 300, "subspace_num_train": 300},
    "factor_vae": {"num_train": 200, "num_eval": 100, "batch_size": 16, "num_variance_estimate": 500},
    "beta_vae": {"num_train": 200, "num_eval": 100, "batch_size": 16},
}


class Counting:
    """A deterministic code of the grid (near-perfect: dimension k is factor k, plus two noise dims) that counts calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.points: list[np.ndarray] = []
        self.noise = np.random.default_rng(0).normal(scale=0.1, size=(int(np.prod(SIZES)), 6))

    def __call__(self, classes: np.ndarray) -> np.ndarray:
        self.calls.append(classes.shape[0])
        self.points.append(grid_index(classes, SIZES))
        code = np.concatenate([classes[:, 1:].astype(float), np.zeros((classes.shape[0], 2))], axis=1)
        return code + self.noise[grid_index(classes, SIZES)]


def test_names_partition() -> None:
    assert set(AVAILABLE) == OBSERVATIONAL | INTERVENTIONAL
    assert INTERVENTIONAL == {"factor_vae", "beta_vae"}
    assert len(AVAILABLE) == 15


def test_caching_representer_encodes_each_point_once_and_is_exact() -> None:
    inner = Counting()
    cached = CachingRepresenter(inner, SIZES)
    rng = np.random.default_rng(1)
    first = sample_factors(SIZES, 500, rng)
    second = np.concatenate([first[:100], sample_factors(SIZES, 300, rng)])
    np.testing.assert_array_equal(cached(first), inner(first))
    np.testing.assert_array_equal(cached(second), inner(second))
    encoded = np.concatenate(inner.points[0::2])  # the calls made by the cache (the others are the direct ones)
    all_points = np.unique(grid_index(np.concatenate([first, second]), SIZES))
    assert cached.rows_encoded == all_points.size
    assert np.unique(encoded).size == encoded.size
    assert cached.calls == 2 and cached.rows_requested == 900


def test_suite_shares_the_observational_encoding() -> None:
    rep = Counting()
    results = run_suite(
        AVAILABLE,
        represent=rep,
        factor_sizes=SIZES,
        factor_names=NAMES,
        subspaces=SUBSPACES,
        overrides=SMALL,
    )
    assert list(results) == list(AVAILABLE)
    # at most one call for the shared observational sample (600 draws, encoded once as their distinct grid points),
    # one per activity factor and one per voting protocol; points already encoded are never requested again
    assert rep.calls[0] == np.unique(grid_index(sample_factors(SIZES, 600, np.random.default_rng(0)), SIZES)).size
    assert len(rep.calls) <= 1 + 4 + 1 + 1
    encoded = np.concatenate(rep.points)
    assert np.unique(encoded).size == encoded.size  # no grid point was encoded twice
    assert results["factor_vae"].score == 1.0
    assert results["beta_vae"].score == 1.0
    assert results["activity"].details["exclusivity"] > 0.6  # per-grid-point noise moves every dim a little
    assert all(r.details["seconds"] >= 0 for r in results.values())


def test_observational_results_equal_standalone_calls_on_the_shared_sample() -> None:
    rep = Counting()
    over = {"mig": SMALL["mig"], "dci": SMALL["dci"]}
    results = run_suite(["mig", "dci"], represent=rep, factor_sizes=SIZES, seed=3, overrides=over)
    shared = sample_factors(SIZES, 600, np.random.default_rng(3))
    codes = Counting()(shared)
    assert results["mig"].score == mig(codes, shared, num_train=600, seed=3).score
    assert (
        results["dci"].details["importance_matrix"]
        == dci(codes, shared, seed=3, **SMALL["dci"]).details["importance_matrix"]
    )


def test_precomputed_codes_run_observational_metrics_only() -> None:
    factors = sample_factors(SIZES, 700, np.random.default_rng(0))
    codes = Counting()(factors)
    over = {k: SMALL[k] for k in ("mig", "sap", "activity")}
    results = run_suite(["mig", "sap", "activity"], codes=codes, factors=factors, overrides=over)
    assert results["mig"].score == mig(codes, factors, num_train=600).score
    assert "intervention" not in results["activity"].details
    with pytest.raises(MetricError) as err:
        run_suite(["mig", "factor_vae"], codes=codes, factors=factors)
    assert str(err.value) == (
        "metric factor_vae needs interventions (an encoder and a dataset), not precomputed codes; "
        "drop it or pass --encoder/--dataset"
    )


def test_errors() -> None:
    factors = sample_factors(SIZES, 100, np.random.default_rng(0))
    codes = Counting()(factors)
    with pytest.raises(MetricError, match=r"unknown metric.*nope; valid names: mig, mig_continuous"):
        run_suite(["mig", "nope"], codes=codes, factors=factors)
    with pytest.raises(MetricError, match="needs at least 10000 samples but got 100"):
        run_suite(["mig"], codes=codes, factors=factors)
    with pytest.raises(MetricError, match=r"unknown option.*bins for metric mig"):
        run_suite(["mig"], codes=codes, factors=factors, overrides={"mig": {"bins": 3}})
    with pytest.raises(MetricError, match="mig_subspace needs named subspaces"):
        run_suite(["mig_subspace"], codes=codes, factors=factors)
    with pytest.raises(MetricError, match="factor sizes"):
        run_suite(["mig"], represent=Counting())
    with pytest.raises(MetricError, match="out of range"):
        CachingRepresenter(Counting(), SIZES)(np.array([[0, 3, 0, 0, 0]]))


def test_deterministic_for_a_seed() -> None:
    names = ["dci", "factor_vae", "beta_vae", "probes"]
    over = {k: SMALL[k] for k in names}
    a = run_suite(names, represent=Counting(), factor_sizes=SIZES, seed=4, overrides=over)
    b = run_suite(names, represent=Counting(), factor_sizes=SIZES, seed=4, overrides=over)
    for name in names:
        a[name].details.pop("seconds")
        b[name].details.pop("seconds")
        assert a[name].details == b[name].details


def test_continuous_factors_select_the_regression_metrics() -> None:
    rng = np.random.default_rng(0)
    factors = rng.uniform(size=(700, 3))
    codes = np.column_stack([factors, rng.normal(size=700)]) + 0.01 * rng.normal(size=(700, 4))
    small = {"mig": {"num_train": 500}, "dci": {"num_train": 400, "num_test": 300}, "unsupervised": {"num_train": 700}}
    results = run_suite(["mig", "dci", "unsupervised"], codes=codes, factors=factors, overrides=small)
    direct = {
        "mig": mig_regression(codes, factors, num_train=500),
        "dci": dci_regression(codes, factors, num_train=400, num_test=300),
    }
    for name, ref in direct.items():
        assert results[name].settings["factors"] == "continuous"
        assert results[name].score == ref.score
    assert results["mig"].score > 0.8  # noise of 1% of the range: ~0.88 at any N (metrics/continuous.py)
    # integer-valued floats are classes, not continuous factors: the discrete MIG runs
    classes = rng.integers(0, 4, size=(700, 2)).astype(np.float64)
    discrete = run_suite(["mig"], codes=codes[:, :2], factors=classes, overrides={"mig": {"num_train": 700}})
    assert "factors" not in discrete["mig"].settings
    with pytest.raises(MetricError, match="sap need factor classes, and these factors are continuous"):
        run_suite(["mig", "sap"], codes=codes, factors=factors)
