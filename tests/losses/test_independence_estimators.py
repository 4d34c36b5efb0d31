"""Dependence measures (dcor, unbiased HSIC, cross-covariance) against loop / NumPy references, invariances,
independent vs dependent data, and gradchecks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from disco.losses.dependence import (
    block_sq_dists,
    cross_covariance,
    distance_correlation,
    distance_correlation_matrix,
    hsic_unbiased,
    hsic_unbiased_from_kernels,
    hsic_unbiased_matrix,
    median_sq_distance,
    rbf_kernel_median,
    rbf_kernels_median,
    safe_sqrt,
)


def dcor_loops(x: np.ndarray, y: np.ndarray) -> float:
    """Székely et al. 2007, definitions 2-4, written with explicit loops."""
    n = len(x)

    def centred(v: np.ndarray) -> np.ndarray:
        d = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                d[i, j] = np.sqrt(np.sum((v[i] - v[j]) ** 2))
        row = [sum(d[i, j] for j in range(n)) / n for i in range(n)]
        col = [sum(d[i, j] for i in range(n)) / n for j in range(n)]
        grand = sum(row) / n
        return np.array([[d[i, j] - row[i] - col[j] + grand for j in range(n)] for i in range(n)])

    a, b = centred(x), centred(y)
    dcov2 = sum(a[i, j] * b[i, j] for i in range(n) for j in range(n)) / n**2
    dvarx = sum(a[i, j] ** 2 for i in range(n) for j in range(n)) / n**2
    dvary = sum(b[i, j] ** 2 for i in range(n) for j in range(n)) / n**2
    return float(np.sqrt(dcov2 / np.sqrt(dvarx * dvary)))


def hsic_u_statistic(k: np.ndarray, l_mat: np.ndarray) -> float:
    """Song et al. 2012, theorem 2: the U-statistic over distinct 4-tuples with the symmetrised kernel h."""
    m = len(k)
    total = 0.0
    tuples = list(itertools.permutations(range(m), 4))
    for i, j, q, r in tuples:
        h = 0.0
        for s, t, u, v in itertools.permutations((i, j, q, r)):
            h += k[s, t] * l_mat[s, t] + k[s, t] * l_mat[u, v] - 2 * k[s, t] * l_mat[s, u]
        total += h / 24
    return total / len(tuples)


def rbf_numpy(x: np.ndarray) -> np.ndarray:
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    off = d2[~np.eye(len(x), dtype=bool)]
    sigma2 = np.sort(off)[(len(off) - 1) // 2]  # torch.median returns the lower middle value
    return np.exp(-d2 / (2 * sigma2))


def test_dcor_matches_loop_reference() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    y[:, 0] += x[:, 0] ** 2
    got = distance_correlation(torch.tensor(x), torch.tensor(y))
    assert got.item() == pytest.approx(dcor_loops(x, y), rel=1e-10)
    assert distance_correlation(torch.tensor(x), torch.tensor(y), squared=True).item() == pytest.approx(
        dcor_loops(x, y) ** 2, rel=1e-10
    )


def test_dcor_of_identical_blocks_is_one_and_gradient_finite_with_repeated_rows() -> None:
    x = torch.tensor([[0.0], [0.0], [1.0], [2.0], [2.0]], dtype=torch.float64, requires_grad=True)
    r = distance_correlation(x, 3 * x)
    assert r.item() == pytest.approx(1.0, abs=1e-6)
    (g,) = torch.autograd.grad(distance_correlation(x, x**2), x)
    assert torch.isfinite(g).all()
    s = torch.zeros(3, requires_grad=True)
    (gs,) = torch.autograd.grad(safe_sqrt(s).sum(), s)
    assert torch.equal(gs, torch.zeros(3))


def test_hsic_unbiased_matches_u_statistic_and_median_kernel_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 1))
    y[:, 0] += np.sin(3 * x[:, 0])
    k, l_mat = rbf_numpy(x), rbf_numpy(y)
    np.testing.assert_allclose(rbf_kernel_median(torch.tensor(x)).numpy(), k, rtol=1e-12)
    got = hsic_unbiased_from_kernels(torch.tensor(k), torch.tensor(l_mat)).item()
    assert got == pytest.approx(hsic_u_statistic(k, l_mat), rel=1e-9, abs=1e-12)
    assert hsic_unbiased(torch.tensor(x), torch.tensor(y)).item() == pytest.approx(got, rel=1e-9)


def test_hsic_ignores_kernel_diagonal() -> None:
    rng = np.random.default_rng(2)
    k = torch.tensor(rbf_numpy(rng.normal(size=(8, 2))))
    l_mat = torch.tensor(rbf_numpy(rng.normal(size=(8, 2))))
    bumped = k + torch.diag(torch.arange(8.0, dtype=torch.float64))
    assert hsic_unbiased_from_kernels(bumped, l_mat).item() == pytest.approx(
        hsic_unbiased_from_kernels(k, l_mat).item(), rel=1e-12
    )


def test_crosscov_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 3)) * [1.0, 5.0, 0.1], rng.normal(size=(50, 2))
    y[:, 1] += x[:, 0]
    corr = np.corrcoef(x, y, rowvar=False)[:3, 3:]
    got = cross_covariance(torch.tensor(x), torch.tensor(y)).item()
    assert got == pytest.approx(float((corr**2).sum()), rel=1e-5)
    cov = np.cov(x, y, rowvar=False, bias=True)[:3, 3:]
    assert cross_covariance(torch.tensor(x), torch.tensor(y), standardised=False).item() == pytest.approx(
        float((cov**2).sum()), rel=1e-10
    )


def test_raw_crosscov_shrinks_with_the_features_standardised_does_not() -> None:
    torch.manual_seed(0)
    x = torch.randn(200, 2, dtype=torch.float64)
    y = x + 0.5 * torch.randn(200, 2, dtype=torch.float64)
    raw, std = cross_covariance(x, y, False), cross_covariance(x, y)
    assert cross_covariance(0.01 * x, 0.01 * y, False) == pytest.approx(raw.item() * 1e-8)
    assert cross_covariance(0.01 * x, 0.01 * y).item() == pytest.approx(std.item(), rel=1e-4)


def data(kind: str, n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 2 - 1
    noise = 0.05 * torch.randn(n, 1, generator=g)
    if kind == "independent":
        return x, torch.rand(n, 1, generator=g) * 2 - 1
    if kind == "linear":
        return x, 2 * x + noise
    if kind == "square":
        return x, x**2 + noise
    return x, torch.sin(3 * x) + noise


@pytest.mark.parametrize("kind", ["linear", "square", "sine"])
def test_dcor_and_hsic_separate_dependent_from_independent(kind: str) -> None:
    xi, yi = data("independent")
    xd, yd = data(kind)
    dcor_ind, dcor_dep = distance_correlation(xi, yi).item(), distance_correlation(xd, yd).item()
    hsic_ind, hsic_dep = hsic_unbiased(xi, yi).item(), hsic_unbiased(xd, yd).item()
    assert dcor_ind < 0.15 and dcor_dep > 0.4
    assert abs(hsic_ind) < 0.002 and hsic_dep > 0.02


def test_crosscov_detects_linear_but_not_quadratic_dependence() -> None:
    assert cross_covariance(*data("independent")).item() < 0.02
    assert cross_covariance(*data("linear")).item() > 0.9
    assert cross_covariance(*data("square")).item() < 0.02


def test_dcor_invariances() -> None:
    x, y = data("sine", n=64)
    ref = distance_correlation(x, y).item()
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    assert distance_correlation(7.0 * x, 0.01 * y).item() == pytest.approx(ref, rel=1e-4)
    assert distance_correlation(x[perm], y[perm]).item() == pytest.approx(ref, rel=1e-5)
    assert distance_correlation(y, x).item() == pytest.approx(ref, rel=1e-6)
    assert distance_correlation(x[perm], y).item() < ref / 2  # breaking the pairing destroys the dependence


def test_hsic_invariances() -> None:
    x, y = data("square", n=64)
    ref = hsic_unbiased(x, y).item()
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    assert hsic_unbiased(x[perm], y[perm]).item() == pytest.approx(ref, rel=1e-4)
    assert hsic_unbiased(5.0 * x, 0.2 * y).item() == pytest.approx(ref, rel=1e-4)  # median heuristic


def test_gradchecks() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(6, 1, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: distance_correlation(a, b), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: distance_correlation(a, b, squared=True), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: cross_covariance(a, b), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: cross_covariance(a, b, False), (x, y))
    # the median bandwidth is detached, so check against a fixed bandwidth equal to the median
    s2x, s2y = median_sq_distance(x), median_sq_distance(y)
    assert torch.autograd.gradcheck(
        lambda a, b: hsic_unbiased_from_kernels(rbf_kernel_median(a, s2x), rbf_kernel_median(b, s2y)), (x, y)
    )
    g1 = torch.autograd.grad(hsic_unbiased(x, y), (x, y))
    g2 = torch.autograd.grad(hsic_unbiased_from_kernels(rbf_kernel_median(x, s2x), rbf_kernel_median(y, s2y)), (x, y))
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)


def blocks_and_membership() -> tuple[torch.Tensor, torch.Tensor, list[slice]]:
    g = torch.Generator().manual_seed(5)
    z = torch.randn(10, 5, dtype=torch.float64, generator=g)
    z[:, 3] += z[:, 0] ** 2
    slices = [slice(0, 2), slice(2, 3), slice(3, 5)]
    membership = torch.zeros(5, 3, dtype=torch.float64)
    for i, s in enumerate(slices):
        membership[s, i] = 1.0
    return z, membership, slices


def test_batched_matrices_equal_the_pairwise_functions() -> None:
    z, membership, slices = blocks_and_membership()
    sq = block_sq_dists(z, membership)
    dcor = distance_correlation_matrix(sq)
    dcor2 = distance_correlation_matrix(sq, squared=True)
    hsic = hsic_unbiased_matrix(rbf_kernels_median(sq))
    for i, si in enumerate(slices):
        for j, sj in enumerate(slices):
            torch.testing.assert_close(dcor[i, j], distance_correlation(z[:, si], z[:, sj]))
            torch.testing.assert_close(dcor2[i, j], distance_correlation(z[:, si], z[:, sj], squared=True))
            torch.testing.assert_close(hsic[i, j], hsic_unbiased(z[:, si], z[:, sj]))
    torch.testing.assert_close(dcor.diagonal(), torch.ones(3, dtype=torch.float64))


def test_batched_dcor_gradcheck_and_collapsed_block() -> None:
    z, membership, _ = blocks_and_membership()
    z = z[:6].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: distance_correlation_matrix(block_sq_dists(a, membership)), (z,))
    collapsed = z.detach().clone()
    collapsed[:, 2] = 0.7  # a posterior-collapsed subspace: every code identical
    collapsed.requires_grad_()
    value = distance_correlation_matrix(block_sq_dists(collapsed, membership))
    assert value[0, 1].item() == 0.0
    (grad,) = torch.autograd.grad(value.sum(), collapsed)
    assert torch.isfinite(grad).all()
