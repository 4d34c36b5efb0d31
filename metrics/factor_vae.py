"""FactorVAE score (Kim & Mnih 2018, "Disentangling by Factorising"), following disentanglement_lib's ``factor_vae.py``.

Protocol: the global variance of every code dimension is estimated on ``num_variance_estimate`` uniform samples
(``ddof=1``); dimensions whose standard deviation is below ``prune_dims_threshold`` (0.05) are inactive and never vote.
A vote fixes one random factor ``k`` across a batch of ``batch_size`` (64) samples, all other factors uniform, divides
the batch variance of every active dimension by its global variance and takes the argmin dimension ``d``: the vote
``(d, k)``. A majority-vote classifier maps each dimension to the factor it received most votes for (``num_train``
votes); the score is its accuracy on ``num_eval`` fresh votes.

Differences from the reference, none of which changes the protocol:

* every batch of a protocol is drawn in one vectorised call and encoded with one call of ``represent`` (the batches are
  reshaped to ``(votes, batch, D)`` for the variances) instead of a Python loop of 64-sample encoder calls;
* ``num_active_dims`` counts the active dimensions (the reference reports the length of its boolean mask, i.e. all of
  them);
* factors with a single class (dSprites' colour) are never fixed: fixing them is no intervention (disentanglement_lib
  leaves colour out of the dSprites factors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from metrics import defaults
from metrics.sampling import check_factor_sizes, sample_factors, sample_fixed_factor_batches, varying_factors
from metrics.types import MetricError, MetricResult, Representer


def _encode(represent: Representer, classes: np.ndarray, what: str) -> np.ndarray:
    """Call ``represent`` on ``classes`` (N, K) and check that it returned finite codes (N, D)."""
    codes = np.asarray(represent(classes))
    if codes.ndim != 2 or codes.shape[0] != classes.shape[0]:
        raise MetricError(
            f"the representer returned shape {codes.shape} for {classes.shape[0]} {what}; expected (N, D)"
        )
    if not np.all(np.isfinite(codes)):
        raise MetricError(f"the representer returned NaN or inf codes for the {what}; check the encoder")
    return codes


def global_variances(codes: np.ndarray) -> np.ndarray:
    """Per-dimension variance (``ddof=1``) of codes drawn uniformly over the grid."""
    if codes.shape[0] < 2:
        raise MetricError(f"the FactorVAE score needs at least 2 samples for the global variance, got {codes.shape[0]}")
    return np.var(codes, axis=0, ddof=1, dtype=np.float64)


def active_dims(variances: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask of the dimensions whose standard deviation is at least ``threshold`` (the reference's pruning)."""
    return np.sqrt(variances) >= threshold


def batch_variance_ratios(codes: np.ndarray, variances: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Variance over each batch ``(V, B, D)`` (``ddof=1``) of the active dims divided by their global variance: (V, A)."""
    idx = np.flatnonzero(active)
    local = np.var(codes[:, :, idx], axis=1, ddof=1, dtype=np.float64)
    return local / variances[idx]


def batch_votes(codes: np.ndarray, variances: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Argmin dimension of each batch ``(V, B, D)`` over the active dims, as (V,) indices into the full code."""
    return np.flatnonzero(active)[np.argmin(batch_variance_ratios(codes, variances, active), axis=1)]


def vote_matrix(dims: np.ndarray, factor_index: np.ndarray, num_dims: int, num_factors: int) -> np.ndarray:
    """Counts ``(D, K)``: entry ``(d, k)`` is the number of votes with argmin dimension ``d`` and fixed factor ``k``."""
    flat = np.bincount(dims * num_factors + factor_index, minlength=num_dims * num_factors)
    return flat.reshape(num_dims, num_factors).astype(np.int64)


def factor_vae_score(
    represent: Representer,
    factor_sizes: Sequence[int],
    *,
    seed: int = defaults.SEED,
    batch_size: int = defaults.FACTOR_VAE.batch_size,
    num_train: int = defaults.FACTOR_VAE.num_train,
    num_eval: int = defaults.FACTOR_VAE.num_eval,
    num_variance_estimate: int = defaults.FACTOR_VAE.num_variance_estimate,
    prune_dims_threshold: float = defaults.FACTOR_VAE.prune_dims_threshold,
    variance_codes: np.ndarray | None = None,
) -> MetricResult:
    """FactorVAE score of the representation ``represent`` (factor classes (N, K) -> codes (N, D)).

    ``variance_codes`` optionally gives the codes of ``num_variance_estimate`` uniform grid samples already encoded
    (the suite shares its observational sample); otherwise they are drawn and encoded here.
    """
    sizes = check_factor_sizes(factor_sizes)
    varying_factors(sizes)
    if batch_size < 2:
        raise MetricError(f"the FactorVAE score needs batch_size >= 2 for a batch variance, got {batch_size}")
    if num_train < 1 or num_eval < 1:
        raise MetricError(f"the FactorVAE score needs num_train and num_eval >= 1, got {num_train} and {num_eval}")
    rng = np.random.default_rng(seed)
    if variance_codes is None:
        variance_codes = _encode(represent, sample_factors(sizes, num_variance_estimate, rng), "variance samples")
    elif variance_codes.shape[0] != num_variance_estimate:
        raise MetricError(
            f"variance_codes has {variance_codes.shape[0]} rows, the protocol needs num_variance_estimate="
            f"{num_variance_estimate}"
        )
    variances = global_variances(np.asarray(variance_codes))
    active = active_dims(variances, prune_dims_threshold)
    num_dims = variances.size
    settings: dict[str, Any] = {
        "seed": seed,
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
        "num_variance_estimate": num_variance_estimate,
        "prune_dims_threshold": prune_dims_threshold,
    }
    details: dict[str, Any] = {
        "num_active_dims": int(active.sum()),
        "active_dims": np.flatnonzero(active).tolist(),
        "global_variances": variances.tolist(),
    }
    if not active.any():
        details.update(train_accuracy=0.0, eval_accuracy=0.0)
        return MetricResult(name="factor_vae", score=0.0, details=details, settings=settings)
    fixed, classes = sample_fixed_factor_batches(sizes, num_train + num_eval, batch_size, rng)
    codes = _encode(represent, classes.reshape(-1, sizes.size), "intervened samples")
    dims = batch_votes(codes.reshape(num_train + num_eval, batch_size, num_dims), variances, active)
    train = vote_matrix(dims[:num_train], fixed[:num_train], num_dims, sizes.size)
    evals = vote_matrix(dims[num_train:], fixed[num_train:], num_dims, sizes.size)
    classifier = np.argmax(train, axis=1)
    rows = np.arange(num_dims)
    train_accuracy = float(train[rows, classifier].sum() / train.sum())
    eval_accuracy = float(evals[rows, classifier].sum() / evals.sum())
    details.update(
        train_accuracy=train_accuracy,
        eval_accuracy=eval_accuracy,
        votes_train=train.tolist(),
        votes_eval=evals.tolist(),
        classifier=classifier.tolist(),
    )
    return MetricResult(name="factor_vae", score=eval_accuracy, details=details, settings=settings)
