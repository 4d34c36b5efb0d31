"""DCI-ES explicitness and size (Eastwood et al. 2023): the curve integral against closed forms and a loop, the cut
forests against a per-sample walk and sklearn, and the whole metric on perfect, noisy and hand-made codes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from metrics.dci_es import (
    aulcc,
    dci_es,
    explicitness_from_curve,
    forest_proba_at_depths,
    loss_capacity_curve,
    representation_size,
)
from metrics.types import MetricError


def _authors_explicitness(caps: np.ndarray, losses: np.ndarray, baseline: float) -> float:
    """The authors' formula as a loop: running minimum, trapezoids above the curve's minimum, E = 1 - 2 A / (dk l^b)."""
    y = [min(losses[: i + 1]) for i in range(len(losses))]
    low = min(y)
    area = 0.0
    for i in range(len(y) - 1):
        area += 0.5 * ((y[i] - low) + (y[i + 1] - low)) * (caps[i + 1] - caps[i])
    return 1.0 - 2.0 * area / ((caps[-1] - caps[0]) * baseline)


def test_closed_forms() -> None:
    caps = np.arange(1.0, 11.0)
    assert explicitness_from_curve(caps, np.zeros(10)) == pytest.approx(1.0)  # perfect at the lowest capacity
    assert explicitness_from_curve(caps, np.ones(10)) == pytest.approx(-1.0)  # never better than the baseline
    linear = 1.0 - (caps - 1.0) / 9.0
    assert explicitness_from_curve(caps, linear) == pytest.approx(0.0, abs=1e-12)  # the triangle itself
    # hand case: capacities (1, 2, 4), losses (1, 0.5, 0) -> area 0.75 + 0.5 = 1.25, Z = 3/2, E = 1 - 1.25/1.5
    assert aulcc([1, 2, 4], [1.0, 0.5, 0.0]) == pytest.approx(1.25)
    assert explicitness_from_curve([1, 2, 4], [1.0, 0.5, 0.0]) == pytest.approx(1.0 - 1.25 / 1.5)


def test_running_minimum_and_clipping() -> None:
    curve = loss_capacity_curve([0.8, 1.3, 0.4, 0.6, -0.1], baseline_loss=1.0, lowest_loss=0.0)
    np.testing.assert_array_equal(curve, [0.8, 0.8, 0.4, 0.4, 0.0])
    assert loss_capacity_curve([1.5, 0.9], baseline_loss=1.0, lowest_loss=0.0)[0] == 1.0  # capped at the baseline


def test_equals_the_authors_formula_when_the_curve_reaches_zero() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        caps = np.cumsum(rng.uniform(0.5, 2.0, size=8))
        losses = np.concatenate([rng.uniform(0, 1, size=7), [0.0]])
        ours = explicitness_from_curve(caps, losses)
        assert ours == pytest.approx(_authors_explicitness(caps, losses, 1.0), abs=1e-12)


def _walk(forest: RandomForestClassifier, x: np.ndarray, depth: int) -> np.ndarray:
    """Per-sample reference: follow each tree until a leaf or ``depth`` splits, take that node's class fractions."""
    out = np.zeros((x.shape[0], forest.n_classes_))
    for est in forest.estimators_:
        t = est.tree_
        for i, row in enumerate(np.asarray(x, dtype=np.float32)):
            node, level = 0, 0
            while t.children_left[node] != -1 and level < depth:
                node = t.children_left[node] if row[t.feature[node]] <= t.threshold[node] else t.children_right[node]
                level += 1
            value = t.value[node, 0]
            out[i] += value / value.sum()
    return out / len(forest.estimators_)


def test_cut_forest_equals_a_per_sample_walk_and_sklearn() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    forest = RandomForestClassifier(n_estimators=4, max_depth=8, random_state=0).fit(x[:200], y[:200])
    depths = [1, 2, 3, 5, 8]
    got = forest_proba_at_depths(forest, x[200:], depths)
    for i, d in enumerate(depths):
        np.testing.assert_allclose(got[i], _walk(forest, x[200:], d), atol=1e-12)
    np.testing.assert_allclose(got[-1], forest.predict_proba(x[200:]), atol=1e-12)


def _grid(n: int, sizes: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, size=n) for s in sizes], axis=1)


def test_perfect_code_is_explicit_and_noise_is_not() -> None:
    y = _grid(1500, (3, 8, 5), 2)
    common = {"num_train": 1000, "num_test": 500, "capacities": (1, 2, 4, 8), "num_trees": 5, "n_jobs": 1}
    perfect = dci_es(y + 0.01 * np.random.default_rng(3).normal(size=y.shape), y, **common)
    noise = dci_es(np.random.default_rng(4).normal(size=(1500, 3)), y, **common)
    assert perfect.score > 0.6
    assert noise.score < -0.9  # a code without information stays at the baseline loss: E = -1
    assert perfect.details["size"] == pytest.approx(1.0)
    # a code that needs depth to be read (the factor as a fine stepped function of one dim) scores between
    mixed = dci_es(np.stack([np.sin(2.5 * y[:, 1]), y[:, 0], y[:, 2]], axis=1), y, **common)
    assert noise.score < mixed.score < perfect.score + 1e-9
    assert mixed.details["per_factor_explicitness"][1] < perfect.details["per_factor_explicitness"][1]


def test_error_loss_and_seed_determinism() -> None:
    y = _grid(600, (2, 3), 5)
    x = y + 0.3 * np.random.default_rng(6).normal(size=y.shape)
    a = dci_es(x, y, num_train=400, num_test=200, capacities=(1, 2, 3), num_trees=3, loss="error", n_jobs=1)
    b = dci_es(x, y, num_train=400, num_test=200, capacities=(1, 2, 3), num_trees=3, loss="error", n_jobs=2)
    assert a.details == b.details
    assert representation_size(2, 8) == 0.25


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "hinge"}, "unknown DCI-ES loss"),
        ({"capacities": (1,)}, "at least two"),
        ({"capacities": (2, 1)}, "strictly increasing"),
        ({"capacities": (0, 1)}, "integers >= 1"),
        ({"lowest_loss": 1.0}, "lowest_loss"),
        ({"num_train": 500, "num_test": 500}, "samples"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    y = _grid(300, (2, 3), 7)
    with pytest.raises(MetricError, match=match):
        dci_es(y.astype(float), y, **{"num_train": 200, "num_test": 100, **kwargs})
