"""Separated Attribute Predictability (Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations").

:func:`sap` follows disentanglement_lib (Locatello et al. 2019, ``evaluation/metrics/sap_score.py``): for every
(latent i, factor j) a linear SVM (``LinearSVC(C=0.01, class_weight="balanced")``) is trained on latent i alone and
scored by its test accuracy; SAP = mean over factors of (best − second best accuracy over latents).
The SVMs are solved in the primal (``dual=False``, sklearn's ``dual="auto"`` choice for N ≫ 1 feature): the same
optimum as the dual solver of older sklearn versions, reached ~20× faster on these one-feature problems. The D × K
fits run on a thread pool (liblinear releases the GIL).

With ``continuous=True`` the score matrix is the squared correlation R² between latent and factor (the paper's
regression variant, disentanglement_lib's ``continuous_factors=True``), computed on the training split.
A factor with a single class in the training split is left out (``details["skipped_factors"]``).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from metrics._checks import check_codes_factors, require_samples
from metrics.defaults import SAP, SEED
from metrics.types import MetricError, MetricResult


def _svm_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, c: float) -> float:
    """Test accuracy of a balanced linear SVM trained on one latent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LinearSVC(C=c, class_weight="balanced", dual=False)
        clf.fit(x_train[:, None], y_train)
    return float(np.mean(clf.predict(x_test[:, None]) == y_test))


def r2_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation of every latent (column of ``codes``) with every factor; 0 for constant latents."""
    xc = codes - codes.mean(axis=0)
    yc = factors - factors.mean(axis=0)
    cov = xc.T @ yc / max(codes.shape[0] - 1, 1)
    var_x = np.var(codes, axis=0, ddof=1)
    var_y = np.var(factors, axis=0, ddof=1)
    denom = var_x[:, None] * var_y[None, :]
    ok = (var_x[:, None] > 1e-12) & (var_y[None, :] > 0)
    return np.where(ok, cov**2 / np.where(ok, denom, 1.0), 0.0)


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    num_train: int = SAP.num_train,
    num_test: int = SAP.num_test,
    svm_c: float = SAP.svm_c,
    continuous: bool = False,
    n_jobs: int | None = None,
    seed: int = SEED,
) -> MetricResult:
    """SAP score (Kumar et al. 2018) as disentanglement_lib.

    Needs ``num_train + num_test`` rows (default 10000 + 5000), split at random by ``seed``. Details: ``score_matrix``
    (D × K test accuracies, or R²), ``gaps`` (K,, NaN for skipped factors), ``skipped_factors``.
    ``n_jobs`` threads (default: the CPU count, at most 8) fit the SVMs.
    """
    x, y = check_codes_factors(codes, factors)
    if x.shape[1] < 2:
        raise MetricError(f"SAP needs at least 2 latent dimensions, got {x.shape[1]}")
    require_samples(x.shape[0], num_train + num_test, "SAP")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(x.shape[0])
    tr, te = perm[:num_train], perm[num_train : num_train + num_test]
    num_codes, num_factors = x.shape[1], y.shape[1]
    varying = np.array([np.unique(y[tr, j]).size > 1 for j in range(num_factors)])
    if not varying.any():
        raise MetricError("every factor has a single class in the training split; SAP needs factors that vary")
    if continuous:
        matrix = r2_matrix(x[tr], y[tr].astype(np.float64))
    else:
        jobs = [(i, j) for i in range(num_codes) for j in range(num_factors) if varying[j]]
        workers = n_jobs if n_jobs is not None else min(os.cpu_count() or 1, 8)
        matrix = np.zeros((num_codes, num_factors))
        with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
            accs = list(
                pool.map(lambda ij: _svm_accuracy(x[tr, ij[0]], y[tr, ij[1]], x[te, ij[0]], y[te, ij[1]], svm_c), jobs)
            )
        for (i, j), acc in zip(jobs, accs, strict=True):
            matrix[i, j] = acc
    top = np.sort(matrix, axis=0)[::-1]
    gaps = np.where(varying, top[0] - top[1], np.nan)
    return MetricResult(
        name="sap",
        score=float(np.mean(gaps[varying])),
        details={
            "score_matrix": matrix,
            "gaps": gaps,
            "skipped_factors": [int(j) for j in np.flatnonzero(~varying)],
        },
        settings={
            "num_train": num_train,
            "num_test": num_test,
            "svm_c": svm_c,
            "continuous": continuous,
            "seed": seed,
        },
    )
