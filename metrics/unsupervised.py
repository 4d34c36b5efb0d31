"""Unsupervised scores of a representation (no factors needed), as disentanglement_lib's ``unsupervised_metrics.py``
(Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of Disentangled Representations").

* Gaussian total correlation: the TC of a Gaussian with the codes' covariance Σ (ddof=1),
  TC = ½ (Σ_i log Σ_ii − log det Σ) — the KL from the Gaussian to the product of its marginals (Watanabe 1960's
  total correlation, as penalised by β-TCVAE, Chen et al. 2018, and FactorVAE, Kim & Mnih 2018). 0 iff Σ is diagonal.
* Gaussian Wasserstein dependency: W = 2 tr Σ − 2 tr sqrtm(Σ ⊙ diag(Σ)ᵀ broadcast), the reference's squared
  2-Wasserstein-style distance between the Gaussian and its diagonal counterpart; ``wasserstein_norm`` = W / tr Σ.
* Mutual information between latents: the plug-in MI matrix of the 20-bin discretised codes; score = mean of its
  off-diagonal entries (Σ_{i≠j} MI_ij / (D² − D)).

Constant latents make Σ singular and every log-determinant −∞; unlike the reference (which returns NaN) they are left
out of the Gaussian scores and listed in ``details["constant_dims"]``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from metrics._checks import check_codes, check_codes_factors, discrete_mutual_info, discretize, subsample_rows
from metrics.defaults import SEED, UNSUPERVISED
from metrics.types import MetricError, MetricResult


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """Total correlation (nats) of a Gaussian with covariance ``cov``: ½ (Σ log diag − log det)."""
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """disentanglement_lib's Wasserstein dependency: 2 tr Σ − 2 tr sqrtm(Σ · diag(Σ)[:, None])."""
    root = scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])
    return float(2.0 * np.trace(cov) - 2.0 * np.real(np.trace(root)))


def mutual_info_between_latents(codes: np.ndarray, num_bins: int = UNSUPERVISED.num_bins) -> tuple[float, np.ndarray]:
    """Mean off-diagonal plug-in MI (nats) between discretised latents, and the full (D × D) MI matrix."""
    d = codes.shape[1]
    if d < 2:
        raise MetricError(f"MI between latents needs at least 2 latent dimensions, got {d}")
    binned = discretize(codes, num_bins)
    mi = discrete_mutual_info(binned, binned)
    off = mi.copy()
    np.fill_diagonal(off, 0.0)
    return float(off.sum() / (d * d - d)), mi


def unsupervised(
    codes: np.ndarray,
    factors: np.ndarray | None = None,
    *,
    num_bins: int = UNSUPERVISED.num_bins,
    num_train: int | None = None,
    seed: int = SEED,
) -> MetricResult:
    """All unsupervised scores; the headline ``score`` is the Gaussian total correlation (lower is more factorised).

    ``factors`` are not used (accepted so that every observational metric takes ``(codes, factors)``; when given,
    their row count must match). ``num_train=None`` uses every row; the reference protocol draws ``num_train=10000``. Details:
    ``gaussian_total_correlation``, ``gaussian_wasserstein_correlation``, ``gaussian_wasserstein_correlation_norm``,
    ``mutual_info_score`` (mean off-diagonal MI), ``mi_matrix``, ``covariance``, ``constant_dims``.
    """
    x = check_codes(codes) if factors is None else check_codes_factors(codes, factors)[0]
    rows = subsample_rows(x.shape[0], num_train, seed, "unsupervised scores")
    x = x[rows]
    if x.shape[0] < 2:
        raise MetricError(f"unsupervised scores need at least 2 samples, got {x.shape[0]}")
    cov_full = np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])
    active = np.diag(cov_full) > 0
    cov = cov_full[np.ix_(active, active)]
    tc = gaussian_total_correlation(cov)
    wass = gaussian_wasserstein_correlation(cov)
    mi_score, mi = mutual_info_between_latents(x, num_bins)
    return MetricResult(
        name="unsupervised",
        score=tc,
        details={
            "gaussian_total_correlation": tc,
            "gaussian_wasserstein_correlation": wass,
            "gaussian_wasserstein_correlation_norm": wass / float(np.trace(cov)),
            "mutual_info_score": mi_score,
            "mi_matrix": mi,
            "covariance": cov_full,
            "constant_dims": [int(i) for i in np.flatnonzero(~active)],
        },
        settings={"num_bins": num_bins, "num_samples": int(x.shape[0]), "seed": seed},
    )
