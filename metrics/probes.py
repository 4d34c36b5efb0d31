"""Downstream probes and sample efficiency (Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations", Sec. 6: "Are disentangled representations useful for downstream tasks?").

For every factor a classifier predicts the factor's class from the standardised code (the scaler is fitted on the
training rows only), trained on each of ``num_train`` (10, 100, 1000, 10000) samples and tested on ``num_test`` (5000)
held-out samples; the training sets are nested prefixes of one seeded permutation. Sample efficiency is the ratio of the
accuracy at 100 samples to the accuracy at 10000 samples.

Probes:

* ``"logistic"`` (default) — multinomial logistic regression whose inverse regularisation ``C`` is chosen by stratified
  k-fold cross-validation over a small grid (``LogisticRegressionCV``, lbfgs). Cross-validation needs ``cv_folds``
  samples of every class present; when a tiny training set (10 samples of a 40-class factor) has fewer, the probe is
  fitted with the fixed ``fallback_c`` and the factor is listed in ``details["fixed_c"]``. A training set with a single
  class predicts that class (listed in ``details["constant"]``).
  Regularisation only matters for small training sets: above ``cv_max_train`` (1000) samples the probe is fitted with
  the weakest regularisation of the grid, ``max(cs)``, which is what the cross-validation selects there anyway on
  codes of a few dozen dimensions (measured on linear and perfect codes of the dSprites factors at 1000 and 10000
  samples: C = 1000 every time) at a quarter of the cost (3 folds plus the refit become one fit); such sizes are listed
  in ``details["max_c"]``.
  The fits run single-threaded (``threadpoolctl``): these problems are small, and OpenMP threads on a busy 2-core
  machine made them up to 10x slower (measured: 0.7 s vs 0.07 s for a 10-sample fit, 29 s vs 3.6 s for a 1000-sample
  cross-validation of a 40-class factor).
  The fits themselves (every factor x training size, then every factor x subspace cell) are independent and run on
  ``n_jobs`` worker processes (:mod:`metrics._parallel`), most expensive first; results are bit-identical to
  ``n_jobs=1``. The 10000-sample fits dominate, and their lbfgs budget (``max_iter`` 100, sklearn's ``tol`` 1e-4) is
  kept: measured on the benchmark's linear code of the dSprites factors, 50 iterations moved a factor's accuracy by up
  to 0.018 (orientation 0.234 -> 0.219), and ``tol=1e-3`` by up to 0.003, both beyond a 0.002 budget.
* ``"mlp"`` — ``sklearn.neural_network.MLPClassifier`` (one hidden layer of ``mlp_hidden`` units, Adam).

With ``subspaces=[(name, width), ...]`` (widths summing to D, in column order) the result also holds a factor x subspace
matrix of probe accuracies: can the columns of subspace ``j`` alone predict factor ``k``? Each cell is a logistic
regression fitted like the main probe on ``subspace_num_train`` (2000) training samples (so with ``C = max(cs)``),
scored on the test rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from metrics import defaults
from metrics._checks import check_codes_factors, require_samples
from metrics._parallel import run_tasks
from metrics.types import MetricError, MetricResult

MODELS = ("logistic", "mlp")


def _fit_predict(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    model: str,
    cs: Sequence[float],
    cv_folds: int,
    cv_max_train: int,
    fallback_c: float,
    max_iter: int,
    mlp_hidden: Sequence[int],
    seed: int,
) -> tuple[np.ndarray, str]:
    """Fit one probe on standardised codes and predict the test rows; returns (predictions, how it was fitted)."""
    classes, counts = np.unique(y_train, return_counts=True)
    if classes.size == 1:
        return np.full(x_test.shape[0], classes[0]), "constant"
    scaler = StandardScaler().fit(x_train)
    xs_train, xs_test = scaler.transform(x_train), scaler.transform(x_test)
    clf: ClassifierMixin
    how = model
    if model == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=tuple(mlp_hidden), max_iter=max_iter, random_state=seed)
    elif y_train.size > cv_max_train:
        clf = LogisticRegression(C=max(cs), max_iter=max_iter)
        how = "max_c"
    elif counts.min() >= cv_folds:
        folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
        clf = LogisticRegressionCV(Cs=list(cs), cv=folds, scoring="neg_log_loss", max_iter=max_iter)
        how = "logistic_cv"
    else:
        clf = LogisticRegression(C=fallback_c, max_iter=max_iter)
        how = "fixed_c"
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        clf.fit(xs_train, y_train)
    return np.asarray(clf.predict(xs_test)), how


def _probe_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, fit_args: dict[str, Any]
) -> tuple[float, str]:
    """Test accuracy of one probe and how it was fitted (a task of :func:`metrics._parallel.run_tasks`)."""
    pred, how = _fit_predict(x_train, y_train, x_test, **fit_args)
    return float(np.mean(pred == y_test)), how


def _probe_cost(num_train: int, num_classes: int, fit_args: dict[str, Any]) -> float:
    """Rough relative cost of a probe fit, to dispatch the expensive ones first."""
    cross_validated = fit_args["model"] == "logistic" and num_train <= fit_args["cv_max_train"]
    return float(num_train * num_classes * ((fit_args["cv_folds"] + 1) * len(fit_args["cs"]) if cross_validated else 1))


def _check_subspaces(subspaces: Sequence[tuple[str, int]], num_dims: int) -> list[tuple[str, slice]]:
    """Column slices of named subspaces; raises :class:`MetricError` unless the widths are positive and sum to D."""
    slices: list[tuple[str, slice]] = []
    start = 0
    for name, width in subspaces:
        if int(width) < 1:
            raise MetricError(f"subspace {name!r} has width {width}; widths must be >= 1")
        slices.append((str(name), slice(start, start + int(width))))
        start += int(width)
    if start != num_dims:
        raise MetricError(
            f"subspace widths sum to {start} but the codes have {num_dims} dims; pass one entry per column"
        )
    return slices


def probes(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int = defaults.SEED,
    num_train: Sequence[int] = defaults.PROBES.num_train,
    num_test: int = defaults.PROBES.num_test,
    model: str = defaults.PROBES.model,
    cs: Sequence[float] = defaults.PROBES.cs,
    cv_folds: int = defaults.PROBES.cv_folds,
    cv_max_train: int = defaults.PROBES.cv_max_train,
    fallback_c: float = defaults.PROBES.fallback_c,
    max_iter: int = defaults.PROBES.max_iter,
    mlp_hidden: Sequence[int] = defaults.PROBES.mlp_hidden,
    subspaces: Sequence[tuple[str, int]] | None = None,
    subspace_num_train: int = defaults.PROBES.subspace_num_train,
    factor_names: Sequence[str] | None = None,
    n_jobs: int | None = defaults.PROBES.n_jobs,
) -> MetricResult:
    """Probe accuracy per factor and training size; the score is the mean accuracy at the largest size.

    The fits (every factor x size, then every factor x subspace cell) run on ``n_jobs`` processes, each fit
    single-threaded; the results are bit-identical to ``n_jobs=1``.
    """
    if model not in MODELS:
        raise MetricError(f"unknown probe model {model!r}; choose one of {', '.join(MODELS)}")
    codes, factors = check_codes_factors(codes, factors)
    sizes = sorted({int(s) for s in num_train})
    if not sizes or sizes[0] < 1:
        raise MetricError(f"probe training sizes must be >= 1, got {list(num_train)}")
    largest = max(sizes[-1], subspace_num_train if subspaces else 0)
    require_samples(codes.shape[0], largest + num_test, "probes")
    num_factors = factors.shape[1]
    names = list(factor_names) if factor_names is not None else [f"factor_{k}" for k in range(num_factors)]
    if len(names) != num_factors:
        raise MetricError(f"got {len(names)} factor names for {num_factors} factors; pass one name per factor column")
    perm = np.random.default_rng(seed).permutation(codes.shape[0])
    test, pool = perm[:num_test], perm[num_test:]
    fit_args: dict[str, Any] = {
        "model": model,
        "cs": cs,
        "cv_folds": cv_folds,
        "cv_max_train": cv_max_train,
        "fallback_c": fallback_c,
        "max_iter": max_iter,
        "mlp_hidden": mlp_hidden,
        "seed": seed,
    }
    classes = [int(np.unique(factors[:, k]).size) for k in range(num_factors)]
    tasks = [
        (codes[pool[:n]], factors[pool[:n], k], codes[test], factors[test, k], fit_args)
        for k in range(num_factors)
        for n in sizes
    ]
    costs = [_probe_cost(n, classes[k], fit_args) for k in range(num_factors) for n in sizes]
    slices = _check_subspaces(subspaces, codes.shape[1]) if subspaces else []
    sub_train = pool[:subspace_num_train]
    sub_args = dict(fit_args, model="logistic")
    for k in range(num_factors):
        for _, cols in slices:
            tasks.append((codes[sub_train, cols], factors[sub_train, k], codes[test, cols], factors[test, k], sub_args))
            costs.append(_probe_cost(subspace_num_train, classes[k], sub_args))
    fitted = run_tasks(_probe_accuracy, tasks, n_jobs=n_jobs, costs=costs)
    acc = np.zeros((num_factors, len(sizes)))
    notes: dict[str, dict[str, list[int]]] = {"fixed_c": {}, "max_c": {}, "constant": {}}
    for k in range(num_factors):
        for s, n in enumerate(sizes):
            acc[k, s], how = fitted[k * len(sizes) + s]
            if how in notes:
                notes[how].setdefault(names[k], []).append(n)
    cells = iter(fitted[num_factors * len(sizes) :])
    mean = acc.mean(axis=0)
    details: dict[str, Any] = {
        "sizes": sizes,
        "factor_names": names,
        "accuracy": {names[k]: dict(zip(sizes, acc[k].tolist(), strict=True)) for k in range(num_factors)},
        "mean_accuracy": dict(zip(sizes, mean.tolist(), strict=True)),
        "min_accuracy": dict(zip(sizes, acc.min(axis=0).tolist(), strict=True)),
        "chance_accuracy": {
            names[k]: float(np.bincount(factors[test, k]).max() / num_test) for k in range(num_factors)
        },
        **notes,
    }
    if 100 in sizes and 10000 in sizes:
        i100, i10k = sizes.index(100), sizes.index(10000)
        details["sample_efficiency"] = float(mean[i100] / mean[i10k]) if mean[i10k] > 0 else 0.0
        details["sample_efficiency_per_factor"] = {
            names[k]: float(acc[k, i100] / acc[k, i10k]) if acc[k, i10k] > 0 else 0.0 for k in range(num_factors)
        }
    if slices:
        details["subspace_accuracy"] = {fname: {sname: next(cells)[0] for sname, _ in slices} for fname in names}
    settings: dict[str, Any] = {
        "seed": seed,
        "num_train": sizes,
        "num_test": num_test,
        "model": model,
        "cs": list(cs),
        "cv_folds": cv_folds,
        "cv_max_train": cv_max_train,
        "fallback_c": fallback_c,
        "max_iter": max_iter,
        "subspace_num_train": subspace_num_train if subspaces else None,
    }
    if model == "mlp":
        settings["mlp_hidden"] = list(mlp_hidden)
    return MetricResult(name="probes", score=float(mean[-1]), details=details, settings=settings)
