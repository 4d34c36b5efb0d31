"""BetaVAE score (Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework"), following disentanglement_lib's ``beta_vae.py`` (Locatello et al. 2019).

Protocol: a training point draws a factor ``k``, then ``batch_size`` (64) pairs of grid samples that agree on factor
``k`` and are uniform otherwise; its feature is the mean over the batch of ``|z(x1) - z(x2)|`` and its label ``k``.
A logistic regression (scikit-learn defaults, as the reference) is fitted on ``num_train`` points; the score is its
accuracy on ``num_eval`` fresh points.

On ``LogisticRegression()``, as for explicitness (metrics/modularity.py): disentanglement_lib ran on scikit-learn
<= 0.21, where the default was liblinear with one-vs-rest fits; since 0.22 it is lbfgs on the multinomial loss, which
this module uses. They are different classifiers: an independent run of disentanglement_lib 1.5 on identical codes
found the score under the old semantics up to 0.051 away from this one (within the seed spread otherwise), so
compare BetaVAE numbers across the two only with that margin.

Every pair of a protocol is drawn in one vectorised call and encoded with as few ``represent`` calls as the memory
cap ``max_rows_per_call`` allows; factors with a single class are never the shared one (fixing them is no
intervention; disentanglement_lib leaves dSprites' colour out).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from metrics import defaults
from metrics.factor_vae import _encode
from metrics.sampling import check_factor_sizes, sample_shared_factor_pairs
from metrics.types import MetricError, MetricResult, Representer


def pair_features(codes_a: np.ndarray, codes_b: np.ndarray) -> np.ndarray:
    """Mean absolute difference over the batch: ``(V, B, D)`` twice -> ``(V, D)``."""
    return np.mean(np.abs(codes_a.astype(np.float64) - codes_b.astype(np.float64)), axis=1)


def beta_vae_features(
    represent: Representer, classes_a: np.ndarray, classes_b: np.ndarray, max_rows_per_call: int
) -> np.ndarray:
    """Features of the batches ``(V, B, K)``: encode both sides (both in one call per chunk of batches)."""
    num_batches, batch_size, num_factors = classes_a.shape
    per_call = max(1, max_rows_per_call // (2 * batch_size))
    chunks = []
    for start in range(0, num_batches, per_call):
        a = classes_a[start : start + per_call]
        b = classes_b[start : start + per_call]
        both = np.concatenate([a.reshape(-1, num_factors), b.reshape(-1, num_factors)])
        codes = _encode(represent, both, "pairs")
        codes = codes.reshape(2, a.shape[0], batch_size, codes.shape[1])
        chunks.append(pair_features(codes[0], codes[1]))
    return np.concatenate(chunks)


def beta_vae_score(
    represent: Representer,
    factor_sizes: Sequence[int],
    *,
    seed: int = defaults.SEED,
    batch_size: int = defaults.BETA_VAE.batch_size,
    num_train: int = defaults.BETA_VAE.num_train,
    num_eval: int = defaults.BETA_VAE.num_eval,
    max_rows_per_call: int = defaults.BETA_VAE.max_rows_per_call,
) -> MetricResult:
    """BetaVAE score of the representation ``represent`` (factor classes (N, K) -> codes (N, D))."""
    sizes = check_factor_sizes(factor_sizes)
    if batch_size < 1 or num_train < 1 or num_eval < 1:
        raise MetricError(
            f"the BetaVAE score needs batch_size, num_train and num_eval >= 1, got {batch_size}, {num_train}, {num_eval}"
        )
    rng = np.random.default_rng(seed)
    shared, classes_a, classes_b = sample_shared_factor_pairs(sizes, num_train + num_eval, batch_size, rng)
    features = beta_vae_features(represent, classes_a, classes_b, max_rows_per_call)
    x_train, y_train = features[:num_train], shared[:num_train]
    x_eval, y_eval = features[num_train:], shared[num_train:]
    settings: dict[str, Any] = {
        "seed": seed,
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
        "classifier": "LogisticRegression()",
    }
    if np.unique(y_train).size < 2:
        label = int(y_train[0])
        train_accuracy, eval_accuracy = 1.0, float(np.mean(y_eval == label))
        converged = True
    else:
        model = LogisticRegression(random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x_train, y_train)
        train_accuracy = float(model.score(x_train, y_train))
        eval_accuracy = float(model.score(x_eval, y_eval))
        converged = bool(np.all(model.n_iter_ < model.max_iter))
    details: dict[str, Any] = {
        "train_accuracy": train_accuracy,
        "eval_accuracy": eval_accuracy,
        "converged": converged,
        "num_points_per_factor": np.bincount(y_train, minlength=sizes.size).tolist(),
    }
    return MetricResult(name="beta_vae", score=eval_accuracy, details=details, settings=settings)
