"""Sample dependence measures between two blocks of features ``x`` (B, p) and ``y`` (B, q): pure functions.

- Distance correlation (Székely, Rizzo & Bakirov 2007, "Measuring and testing dependence by correlation of
  distances"): zero iff independent (population), invariant to scaling and rotation of either block.
- Unbiased HSIC (Song, Smola, Gretton, Bedo & Borgwardt 2012, "Feature selection via dependence maximization", eq. 5)
  with Gaussian RBF kernels and the median heuristic bandwidth (Gretton et al. 2008).
- Cross-covariance: squared Frobenius norm of the cross-covariance matrix; only linear dependence.

The ``*_matrix`` variants take the stacked per-block matrices ``(S, B, B)`` of S blocks (see
:func:`block_sq_dists`) and return the ``(S, S)`` matrix of the measure between every pair of blocks with a handful of
batched operations; :class:`~disco.losses.independence.SubspaceIndependence` uses them so that each block's matrix is
computed once and all pairs cost one matrix product.
"""

from __future__ import annotations

import torch


def pairwise_sq_dists(x: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(B, B)`` between the rows of ``x`` (B, p); exactly zero on the diagonal."""
    diff = x.unsqueeze(1) - x.unsqueeze(0)
    return diff.pow(2).sum(-1)


def safe_sqrt(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose gradient is 0 (not inf/NaN) where ``x <= eps``: values there are set to 0."""
    mask = x > eps
    return torch.where(mask, x.clamp_min(eps).sqrt(), torch.zeros_like(x))


def double_centre(d: torch.Tensor) -> torch.Tensor:
    """``A_ij = d_ij − mean_i· − mean_·j + mean_··`` (Székely et al. 2007, eq. 2.8)."""
    return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()


def unit_scale(sq_dists: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(..., B, B)`` divided by their mean over the last two axes (with gradient).

    Distance correlation is invariant to rescaling either block, so this changes nothing mathematically; numerically it
    keeps the ``eps`` guards of :func:`safe_sqrt` relative to the data, so codes at a scale of 1e-4 or 1e4 score the
    same as at scale 1 (without it, tiny codes fell under ``eps`` and the ratio blew up)."""
    tiny = torch.finfo(sq_dists.dtype).tiny
    return sq_dists / sq_dists.mean((-2, -1), keepdim=True).clamp_min(tiny)


def centred_distances(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Double-centred Euclidean distance matrix of the rows of ``x`` (prepare step of distance correlation), computed
    on unit-scale distances (see :func:`unit_scale`)."""
    return double_centre(safe_sqrt(unit_scale(pairwise_sq_dists(x)), eps))


def distance_correlation_from_centred(
    a: torch.Tensor, b: torch.Tensor, squared: bool = False, eps: float = 1e-12
) -> torch.Tensor:
    """Distance correlation from two double-centred distance matrices (V-statistic, Székely et al. 2007, def. 4)."""
    dcov2 = (a * b).mean().clamp_min(0.0)
    dvar2 = ((a * a).mean() * (b * b).mean()).clamp_min(0.0)
    r2 = dcov2 / safe_sqrt(dvar2, eps).clamp_min(eps)
    return r2 if squared else safe_sqrt(r2, eps)


def distance_correlation(x: torch.Tensor, y: torch.Tensor, squared: bool = False, eps: float = 1e-12) -> torch.Tensor:
    """Sample distance correlation dCor(x, y) in [0, 1] (Székely et al. 2007); ``squared=True`` returns dCor².

    Square roots use :func:`safe_sqrt`, so gradients stay finite for repeated points and for dCor = 0.
    """
    return distance_correlation_from_centred(centred_distances(x, eps), centred_distances(y, eps), squared, eps)


def median_sq_distance(x: torch.Tensor) -> torch.Tensor:
    """Median of the off-diagonal squared distances between rows of ``x`` (detached): the bandwidth σ² of the
    median heuristic (Gretton et al. 2008)."""
    d2 = pairwise_sq_dists(x.detach())
    n = d2.shape[0]
    off = d2[~torch.eye(n, dtype=torch.bool, device=d2.device)]
    return off.median().clamp_min(1e-12) if off.numel() else d2.new_tensor(1.0)


def rbf_kernel_median(x: torch.Tensor, sigma2: torch.Tensor | float | None = None) -> torch.Tensor:
    """Gaussian kernel ``exp(−‖x_i − x_j‖² / (2σ²))``; σ² defaults to the (detached) median squared distance.

    The median heuristic makes the kernel invariant to a global rescaling of ``x``; the bandwidth carries no gradient.
    """
    d2 = pairwise_sq_dists(x)
    s2 = median_sq_distance(x) if sigma2 is None else sigma2
    return torch.exp(-d2 / (2.0 * s2))


def hsic_unbiased_from_kernels(k: torch.Tensor, l_mat: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC estimator of Song et al. 2012 (eq. 5) from two kernel matrices ``(m, m)``, ``m >= 4``:

    ``[tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((m−1)(m−2)) − 2/(m−2)·1ᵀK̃L̃1] / (m(m−3))`` with K̃, L̃ the kernels with zeroed diagonals.
    """
    m = k.shape[0]
    if m < 4:
        raise ValueError(f"unbiased HSIC needs at least 4 samples, got {m}")
    off = 1.0 - torch.eye(m, dtype=k.dtype, device=k.device)
    kt, lt = k * off, l_mat * off
    trace = (kt * lt).sum()
    k1, l1 = kt.sum(1), lt.sum(1)
    term2 = k1.sum() * l1.sum() / ((m - 1) * (m - 2))
    term3 = 2.0 * (k1 * l1).sum() / (m - 2)
    return (trace + term2 - term3) / (m * (m - 3))


def hsic_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC (Song et al. 2012) with median-heuristic RBF kernels; ≈0 for independent blocks, can be < 0."""
    return hsic_unbiased_from_kernels(rbf_kernel_median(x), rbf_kernel_median(y))


def standardise(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Columns of ``x`` centred and scaled to unit (biased) standard deviation."""
    xc = x - x.mean(0, keepdim=True)
    return xc / (xc.pow(2).mean(0, keepdim=True) + eps).sqrt()


def cross_covariance(x: torch.Tensor, y: torch.Tensor, standardised: bool = True) -> torch.Tensor:
    """Squared Frobenius norm of the cross-covariance ``(1/B)·x_cᵀ y_c`` (a linear-dependence penalty, as in
    Cheung et al. 2015, "Discovering hidden factors of variation in deep networks", XCov).

    With ``standardised=True`` the columns are first scaled to unit variance, so the value is the sum of squared
    Pearson correlations. The raw version (``standardised=False``) can be gamed: an encoder lowers it by shrinking
    its features toward zero without making them any more independent.
    """
    if standardised:
        x, y = standardise(x), standardise(y)
    else:
        x, y = x - x.mean(0, keepdim=True), y - y.mean(0, keepdim=True)
    c = x.transpose(0, 1) @ y / x.shape[0]
    return c.pow(2).sum()


def block_sq_dists(z: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
    """Squared distances within each block of columns: ``(S, B, B)`` for ``z`` (B, D) and a 0/1 ``membership``
    (D, S) matrix assigning each column to a block; exactly zero on the diagonals."""
    diff2 = (z.unsqueeze(1) - z.unsqueeze(0)).pow(2)
    return (diff2 @ membership.to(z.dtype)).permute(2, 0, 1)


def distance_correlation_matrix(sq_dists: torch.Tensor, squared: bool = False, eps: float = 1e-12) -> torch.Tensor:
    """dCor (or dCor²) between every pair of blocks from their squared distances ``(S, B, B)``: ``(S, S)``."""
    s, b, _ = sq_dists.shape
    d = safe_sqrt(unit_scale(sq_dists), eps)
    a = d - d.mean(1, keepdim=True) - d.mean(2, keepdim=True) + d.mean((1, 2), keepdim=True)
    flat = a.reshape(s, b * b)
    dcov2 = (flat @ flat.transpose(0, 1) / (b * b)).clamp_min(0.0)
    dvar = dcov2.diagonal()
    r2 = dcov2 / safe_sqrt((dvar.unsqueeze(0) * dvar.unsqueeze(1)).clamp_min(0.0), eps).clamp_min(eps)
    return r2 if squared else safe_sqrt(r2, eps)


def rbf_kernels_median(sq_dists: torch.Tensor) -> torch.Tensor:
    """RBF kernels ``(S, B, B)`` from squared distances, each block with its own (detached) median bandwidth."""
    s, b, _ = sq_dists.shape
    off = ~torch.eye(b, dtype=torch.bool, device=sq_dists.device)
    sigma2 = sq_dists.detach()[:, off].median(dim=1).values.clamp_min(1e-12)
    return torch.exp(-sq_dists / (2.0 * sigma2.view(s, 1, 1)))


def hsic_unbiased_matrix(kernels: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC (Song et al. 2012, eq. 5) between every pair of blocks from their kernels ``(S, m, m)``."""
    s, m, _ = kernels.shape
    if m < 4:
        raise ValueError(f"unbiased HSIC needs at least 4 samples, got {m}")
    kt = kernels * (1.0 - torch.eye(m, dtype=kernels.dtype, device=kernels.device))
    flat = kt.reshape(s, m * m)
    trace = flat @ flat.transpose(0, 1)
    k1 = kt.sum(2)
    tot = k1.sum(1)
    term2 = tot.unsqueeze(0) * tot.unsqueeze(1) / ((m - 1) * (m - 2))
    term3 = 2.0 * (k1 @ k1.transpose(0, 1)) / (m - 2)
    return (trace + term2 - term3) / (m * (m - 3))
