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

On ``LogisticRegression()``: disentanglement_lib ran on scikit-learn <= 0.21, where that meant ``solver="liblinear"``
with one-vs-rest binary fits (probabilities normalised over classes); since 0.22 it means lbfgs on the multinomial
loss, which is what this module (and its reference test) uses. The two are different estimators, not a faster
equivalent: on the benchmark's linear code of the dSprites factors (scripts/bench_metrics.py) the historical one
scores 0.916 and the current one 0.960 (per factor up to 0.07 apart), at about the same cost. The per-factor fits
run on ``n_jobs`` worker processes (:mod:`metrics._parallel`), single-threaded, bit-identical to ``n_jobs=1``; warm
starts do not apply (every factor has its own classes).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from metrics._checks import check_codes_factors, discrete_mutual_info, discretize, require_samples, subsample_rows
from metrics._parallel import run_tasks
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


def _explicitness_factor(
    x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, seed: int
) -> tuple[float, float]:
    """Train and test macro ROC-AUC of one factor's logistic regression (a task of :func:`metrics._parallel.run_tasks`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(random_state=seed).fit(x_tr, y_tr)
    return (
        _roc_auc_macro(y_tr, clf.predict_proba(x_tr), clf.classes_),
        _roc_auc_macro(y_te, clf.predict_proba(x_te), clf.classes_),
    )


def explicitness(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    num_train: int = MODULARITY.num_train,
    num_test: int = MODULARITY.num_test,
    seed: int = SEED,
    n_jobs: int | None = MODULARITY.n_jobs,
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
    fitted = [j for j in range(k) if np.unique(y[tr, j]).size > 1]
    tasks = [(x_tr, y[tr, j], x_te, y[te, j], seed) for j in fitted]
    costs = [float(np.unique(y[tr, j]).size) for j in fitted]
    aucs = run_tasks(_explicitness_factor, tasks, n_jobs=n_jobs, costs=costs)
    for j, (train_auc, test_auc) in zip(fitted, aucs, strict=True):
        auc_train[j], auc_test[j] = train_auc, test_auc
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
    n_jobs: int | None = MODULARITY.n_jobs,
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
    exp = explicitness(x, y, num_train=num_train, num_test=num_test, seed=seed, n_jobs=n_jobs)
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
