"""Parallel per-factor fits (metrics/_parallel.py): bit-identical to the sequential loop for DCI, explicitness, probes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from metrics._parallel import resolve_n_jobs, run_tasks
from metrics.dci import dci
from metrics.modularity import explicitness
from metrics.probes import probes
from metrics.types import MetricError

SIZES = (1, 3, 5, 8)


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, np.array(SIZES), size=(n, len(SIZES)))
    codes = factors / np.array(SIZES) @ rng.normal(size=(len(SIZES), 5)) + 0.3 * rng.normal(size=(n, 5))
    return codes, factors


def _power(base: int, exponent: int) -> int:
    return int(base**exponent)


def test_run_tasks_returns_results_in_task_order_for_any_cost_order() -> None:
    tasks = [(b, e) for b in range(2, 5) for e in range(3)]
    expected = [b**e for b, e in tasks]
    costs = [float(-i) for i in range(len(tasks))]  # dispatched last task first
    assert run_tasks(_power, tasks, n_jobs=1) == expected
    assert run_tasks(_power, tasks, n_jobs=2, costs=costs) == expected


def test_resolve_n_jobs() -> None:
    assert resolve_n_jobs(4, 2) == 2
    assert resolve_n_jobs(1, 10) == 1
    assert resolve_n_jobs(None, 1) == 1
    with pytest.raises(MetricError, match="n_jobs must be >= 1"):
        resolve_n_jobs(0, 3)


def test_dci_parallel_is_bit_identical_to_sequential() -> None:
    codes, factors = _data(900)
    serial = dci(codes, factors, num_train=600, num_test=300, method="hist", n_jobs=1)
    parallel = dci(codes, factors, num_train=600, num_test=300, method="hist", n_jobs=2)
    assert parallel.score == serial.score
    assert parallel.details == serial.details


def test_explicitness_parallel_is_bit_identical_to_sequential() -> None:
    codes, factors = _data(900, seed=1)
    serial = explicitness(codes, factors, num_train=600, num_test=300, n_jobs=1)
    parallel = explicitness(codes, factors, num_train=600, num_test=300, n_jobs=2)
    assert parallel.score == serial.score
    for key in ("per_factor_train", "per_factor_test"):
        np.testing.assert_array_equal(parallel.details[key], serial.details[key])


def test_probes_parallel_is_bit_identical_to_sequential() -> None:
    codes, factors = _data(1200, seed=2)
    kwargs: dict[str, Any] = {
        "num_train": (10, 100, 600),
        "num_test": 400,
        "subspaces": [("a", 2), ("b", 3)],
        "subspace_num_train": 300,
    }
    serial = probes(codes, factors, n_jobs=1, **kwargs)
    parallel = probes(codes, factors, n_jobs=2, **kwargs)
    assert parallel.score == serial.score
    assert parallel.details == serial.details
