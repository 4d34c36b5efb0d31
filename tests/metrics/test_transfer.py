"""Domain gap and transfer probes: MMD² against a loop, and the classifier/probes on codes with a known gap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metrics.transfer import domain_gap, mmd2_unbiased, transfer_probes
from metrics.types import MetricError


def _mmd_loop(x: np.ndarray, y: np.ndarray, hs: list[float]) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> float:
        d2 = float(np.sum((a - b) ** 2))
        return sum(math.exp(-d2 / (2 * h * h)) for h in hs)

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_mmd_equals_a_loop_and_is_unbiased_at_zero() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 3)), rng.normal(loc=0.5, size=(25, 3))
    assert mmd2_unbiased(x, y, [0.7, 1.5]) == pytest.approx(_mmd_loop(x, y, [0.7, 1.5]), abs=1e-12)
    same = [mmd2_unbiased(rng.normal(size=(60, 2)), rng.normal(size=(60, 2)), [1.0]) for _ in range(200)]
    assert abs(float(np.mean(same))) < 3 * float(np.std(same)) / math.sqrt(200)  # mean zero under H0


def _domains(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of n inputs with 2 factors: dims 0-1 shared (the factors + small noise, same in both domains up to noise),
    dim 2 a private domain unit (0 in the source, 1 in the target)."""
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, 4, size=(n, 2))
    shared = factors + 0.1 * rng.normal(size=(n, 2))
    source = np.column_stack([shared, 0.1 * rng.normal(size=n)])
    target = np.column_stack([factors + 0.1 * rng.normal(size=(n, 2)), 1 + 0.1 * rng.normal(size=n)])
    return source, target, factors


def test_domain_gap_sees_the_private_unit_not_the_shared_ones() -> None:
    source, target, _ = _domains(1200, 1)
    result = domain_gap(source, target, subspaces=[("shared", 2), ("domain", 1)], num_train=600, num_test=600)
    acc, mmd = result.details["classifier_accuracy"], result.details["mmd2"]
    assert acc["domain"] > 0.99 and acc["all"] > 0.99 and result.score == acc["all"]
    assert acc["shared"] < 0.58  # chance is 0.5
    assert mmd["domain"] > 0.5 and abs(mmd["shared"]) < 0.02


def test_transfer_probes_in_domain_and_across() -> None:
    source, target, factors = _domains(1200, 2)
    result = transfer_probes(source, target, factors, num_train=600, num_test=600)
    assert result.details["in_domain"] > 0.95
    assert result.details["ratio"] > 0.95  # the shared dims carry over; the private unit is ignored by the probes
    # a target whose shared dims are flipped: the probes no longer transfer
    flipped = target.copy()
    flipped[:, :2] = 3 - flipped[:, :2]
    bad = transfer_probes(source, flipped, factors, num_train=600, num_test=600)
    assert bad.details["ratio"] < 0.5
    np.testing.assert_allclose(
        bad.details["ratio_per_factor"], bad.details["transfer_accuracy"] / bad.details["in_domain_accuracy"]
    )


def test_bad_input() -> None:
    source, target, factors = _domains(100, 3)
    with pytest.raises(MetricError, match="encode the same inputs in both domains"):
        domain_gap(source, target[:50], num_train=20, num_test=20)
    with pytest.raises(MetricError, match="subspace widths sum to 2"):
        domain_gap(source, target, subspaces=[("a", 2)], num_train=20, num_test=20)
    with pytest.raises(MetricError, match="needs 200 samples"):
        transfer_probes(source, target, factors, num_train=100, num_test=100)


def test_report_probes_read_only_the_given_columns() -> None:
    from metrics.transfer import transfer_report

    source, target, factors = _domains(800, 3)
    source[:, 2] += factors[:, 0]  # the private unit now also carries factor 0, and the domain shift with it
    target[:, 2] += factors[:, 0]
    kwargs = {"transfer_probes": {"num_train": 400, "num_test": 400}, "domain_gap": {"num_train": 400, "num_test": 400}}
    shared = transfer_report(source, target, factors, overrides=kwargs, probe_columns=[0, 1])["transfer_probes"]
    expected = transfer_probes(source[:, :2], target[:, :2], factors, num_train=400, num_test=400)
    assert shared.score == expected.score
    whole = transfer_report(source, target, factors, overrides=kwargs)["transfer_probes"]
    assert whole.score == transfer_probes(source, target, factors, num_train=400, num_test=400).score
