"""Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings With the F-Statistic
Loss").

Both follow disentanglement_lib (Locatello et al. 2019, ``evaluation/metrics/modularity_explicitness.py``):

* modularity: m_ij = MI(latent i; factor j) of the histogram-discretised latents (20 bins) on the training split;
  per latent, with θ_i = max_j m_ij, the deviation from the ideal one-factor template is
  δ_i = (Σ_j m_ij² − θ_i²) / (θ_i² (K − 1)); modularity = mean_i (1 − δ_i), where a latent carrying no information
  (θ_i = 0) counts 0.
* explicitness: the codes are standardised with the training mean and std; per factor a ``LogisticRegression`` (sklearn
  defaults) is fit on all codes, and the score is the macro one-vs-rest ROC-AUC of its class probabilities
  (train and test); explicitness = mean over factors (test is the headline).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from metrics._checks import check_codes_factors, discrete_mutual_info, discretize, require_samples, subsample_rows
from metrics.defaults import MODULARITY, SEED
from metrics.types import MetricError, MetricResult


def modularity_from_mi(mi: np.ndarray) -> tuple[float, np.ndarray]:
    """Modularity of an MI matrix (codes × factors): (mean score, per-code scores), as disentanglement_lib."""
    if mi.shape[1] < 2:
        raise MetricError(f"modularity needs at least 2 factors, got {mi.shape[1]}")
    sq = np.square(mi)
    top = sq.max(axis=1)
    safe = np.where(top > 0, top, 1.0)
    delta = (sq.sum(axis=1) - top) / (safe * (mi.shape[1] - 1.0))
    per_code = np.where(top > 0, 1.0 - delta, 0.0)
    return float(per_code.mean()), per_code


def modularity(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    num_bins: int = MODULARITY.num_bins,
    num_train: int | None = None,
    seed: int = SEED,
) -> MetricResult:
    """Modularity (Ridgeway & Mozer 2018) from the discretised MI matrix of all given rows (or ``num_train`` of them).

    Factors with a single class carry no information and are dropped before the template comparison.
    """
    x, y = check_codes_factors(codes, factors)
    rows = subsample_rows(x.shape[0], num_train, seed, "modularity")
    x, y = x[rows], y[rows]
    varying = np.array([np.unique(y[:, j]).size > 1 for j in range(y.shape[1])])
    mi = discrete_mutual_info(discretize(x, num_bins), y[:, varying])
    score, per_code = modularity_from_mi(mi)
    return MetricResult(
        name="modularity",
        score=score,
        details={
            "mi_matrix": mi,
            "per_code": per_code,
            "skipped_factors": [int(j) for j in np.flatnonzero(~varying)],
        },
        settings={"num_bins": num_bins, "num_samples": int(x.shape[0]), "seed": seed},
    )


def _roc_auc_macro(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classes present (with both outcomes) in ``y``."""
    indicator = y[:, None] == classes[None, :]
    usable = indicator.any(axis=0) & (~indicator).any(axis=0)
    if not usable.any():
        return float("nan")
    return float(roc_auc_score(indicator[:, usable].astype(np.int64), proba[:, usable], average="macro"))


def explicitness(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    num_train: int = MODULARITY.num_train,
    num_test: int = MODULARITY.num_test,
    seed: int = SEED,
) -> MetricResult:
    """Explicitness (Ridgeway & Mozer 2018): mean over factors of the test ROC-AUC of a logistic regression on the codes.

    Needs ``num_train + num_test`` rows, split at random by ``seed``. Details: ``per_factor_train``/``per_factor_test``
    (NaN for factors with a single training class, listed in ``skipped_factors``), ``train`` (mean train AUC).
    """
    x, y = check_codes_factors(codes, factors)
    require_samples(x.shape[0], num_train + num_test, "explicitness")
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    tr, te = perm[:num_train], perm[num_train : num_train + num_test]
    mean = x[tr].mean(axis=0)
    std = x[tr].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_tr, x_te = (x[tr] - mean) / std, (x[te] - mean) / std
    k = y.shape[1]
    auc_train, auc_test = np.full(k, np.nan), np.full(k, np.nan)
    for j in range(k):
        if np.unique(y[tr, j]).size < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(random_state=seed).fit(x_tr, y[tr, j])
        auc_train[j] = _roc_auc_macro(y[tr, j], clf.predict_proba(x_tr), clf.classes_)
        auc_test[j] = _roc_auc_macro(y[te, j], clf.predict_proba(x_te), clf.classes_)
    valid = np.isfinite(auc_test)
    if not valid.any():
        raise MetricError("every factor has a single class in the training split; explicitness needs factors that vary")
    return MetricResult(
        name="explicitness",
        score=float(np.mean(auc_test[valid])),
        details={
            "train": float(np.mean(auc_train[valid])),
            "per_factor_train": auc_train,
            "per_factor_test": auc_test,
            "skipped_factors": [int(j) for j in np.flatnonzero(~valid)],
        },
        settings={"num_train": num_train, "num_test": num_test, "seed": seed},
    )


def modularity_explicitness(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    num_train: int = MODULARITY.num_train,
    num_test: int = MODULARITY.num_test,
    num_bins: int = MODULARITY.num_bins,
    seed: int = SEED,
) -> MetricResult:
    """Both scores on one split, as disentanglement_lib: modularity on the training rows, explicitness train/test.

    The headline ``score`` is the modularity; ``details`` hold ``modularity``, ``explicitness_train``,
    ``explicitness_test`` and the sub-results' details.
    """
    x, y = check_codes_factors(codes, factors)
    require_samples(x.shape[0], num_train + num_test, "modularity/explicitness")
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    tr = perm[:num_train]
    mod = modularity(x[tr], y[tr], num_bins=num_bins, seed=seed)
    exp = explicitness(x, y, num_train=num_train, num_test=num_test, seed=seed)
    return MetricResult(
        name="modularity_explicitness",
        score=mod.score,
        details={
            "modularity": mod.score,
            "explicitness_train": exp.details["train"],
            "explicitness_test": exp.score,
            "mi_matrix": mod.details["mi_matrix"],
            "per_code_modularity": mod.details["per_code"],
            "per_factor_explicitness_test": exp.details["per_factor_test"],
            "per_factor_explicitness_train": exp.details["per_factor_train"],
        },
        settings={"num_train": num_train, "num_test": num_test, "num_bins": num_bins, "seed": seed},
    )
