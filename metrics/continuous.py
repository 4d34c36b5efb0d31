"""MIG, DCI and probes for continuous (real-valued) factors.

The discrete metrics (metrics/mig.py, metrics/dci.py, metrics/probes.py) treat every factor as integer classes. When
the factors are real values (:func:`is_continuous`), these variants replace the classifiers by regressors and the
discrete entropies by a continuous MI estimator; they return the same names ("mig", "dci", "probes") with
``settings["factors"] = "continuous"``.

* :func:`mig_regression` — Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in
  Variational Autoencoders") for real-valued factors, on ``num_train`` rows, with kNN MI estimates and one of two
  normalisers (``normalise``); the differential entropy of a factor can be negative or infinite, so neither uses it.

  ``"bins"`` (default): each factor is cut into ``num_bins`` equal-frequency bins (by rank; ties share a bin), and
  MI(code_j; bin_k) is estimated by the kNN estimator of Ross (2014) for a continuous and a discrete variable
  (:mod:`metrics._knn_mi`, the estimator of ``mig_continuous``); the gap is divided by the plug-in entropy of the bins
  (≈ log ``num_bins``), the MI's upper bound. The score converges as N grows: a code equal to a uniform factor plus
  noise of 1% of its range scores 0.884 at N = 1000 and 0.884 at N = 10000 (3 factors, 20 bins), one with 10% noise
  0.363 and 0.349. It is what disentanglement_lib does to continuous values (binning), applied to the factor, while the
  code keeps a binning-free estimate.

  ``"self"``: MI(code_j; factor_k) by KSG (Kraskov, Stögbauer & Grassberger 2004, algorithm 1; :mod:`metrics._ksg`,
  equal to sklearn's ``mutual_info_regression``), divided by the estimator's own MI of the factor with an
  independently jittered copy of itself: the largest value KSG returns for that factor at the same N and k (every
  joint neighbour closer than the k-th is closer in each marginal too, so the estimate is at most ψ(N) − ψ(k + 1),
  which Î(f; f) attains for a factor without ties). Fully binning-free, but the ceiling grows like log N while the MI
  of a noisy code does not, so the score of a fixed code falls with N: the 1%-noise code above scores 0.571 at
  N = 1000 and 0.403 at N = 10000, the 10% one 0.190 and 0.133. Use it to compare codes at one N.

  With ``ranks=True`` (default) every code column (and, for ``"self"``, factor column) is first replaced by its normal
  scores, Φ⁻¹((rank − ½) / N) (ties share their average rank): MI is invariant under strictly monotone maps, and on
  ranks the estimates are too, so any strictly monotone code of a factor scores as the factor itself (measured
  without ranks at N = 10000, k = 3, ``"self"``: a code f³ of a uniform factor gets a normalised MI of 0.85, tanh(4f)
  0.76). Normal scores rather than raw ranks, because evenly spaced ranks put many neighbours at exactly equal
  distances, which the jitter then breaks at random.
  Factors that are constant on the sample are skipped (``details["skipped_factors"]``).
* :func:`dci_regression` — DCI (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
  Representations"): per factor a ``GradientBoostingRegressor`` at sklearn's defaults (100 depth-3 trees, learning
  rate 0.1, squared error) fitted on ``num_train`` rows; its impurity (MDI) importances form the factor's column of
  the importance matrix, from which disentanglement and completeness follow exactly as in metrics/dci.py (its
  functions); informativeness is the test R² (``num_test`` rows) averaged over factors. The paper used Lasso and
  random forests; boosted trees are used here because (a) they are the model of the discrete DCI (disentanglement_lib's
  ``GradientBoostingClassifier``), so discrete and continuous scores come from the same model family, (b) they capture
  nonlinear codes that Lasso misses, and (c) unlike full-depth random forests they leave uninformative code dims at
  (near) zero importance — measured on 10000 rows, 10 dims, 2 informative: boosted trees gave the 8 noise dims 0.000
  each, a 50-tree forest 0.001 each, which raises the entropy of every row — at similar cost (~3 s per factor).
* :func:`probes_regression` — downstream probes (Locatello et al. 2019, "Challenging Common Assumptions in the
  Unsupervised Learning of Disentangled Representations", Sec. 6) for real-valued targets: per factor, on codes
  standardised with the training rows' statistics, a linear probe (ridge regression, penalty chosen by efficient
  leave-one-out cross-validation over ``ridge_alphas``) and a nonlinear one (``MLPRegressor``, one hidden layer of
  ``mlp_hidden`` units, Adam, early stopping on 10% of the training rows, standardised target), each scored by test R².
  The headline score is the mean linear R², as the discrete probes' headline is the linear (logistic) probe; the MLP's
  R² tells how much of a factor is present but not linearly decodable.

The per-factor fits of DCI and the probes run on ``n_jobs`` processes (metrics/_parallel.py), each single-threaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

from metrics._checks import check_codes, discrete_entropy, finite_2d, subsample_rows, varying_factors
from metrics._knn_mi import knn_mi_columns, prepare_continuous
from metrics._ksg import ksg_prepared, prepare
from metrics._parallel import run_tasks
from metrics.dci import completeness, completeness_per_factor, disentanglement, disentanglement_per_code
from metrics.defaults import CONTINUOUS, SEED
from metrics.mig import gap_details
from metrics.sampling import split_indices
from metrics.types import MetricError, MetricResult


def is_continuous(factors: np.ndarray) -> bool:
    """True when ``factors`` has a floating dtype and some finite value is not an integer (real-valued factors)."""
    arr = np.asarray(factors)
    if not np.issubdtype(arr.dtype, np.floating):
        return False
    finite = arr[np.isfinite(arr)]
    return bool(np.any(finite != np.round(finite)))


def check_continuous_factors(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate codes ``(N, D)`` and real-valued factors ``(N, K)``; returns both as float64 2-D arrays.

    Raises :class:`MetricError` (one line) for non-2-D, empty, non-numeric or non-finite input, collapsed codes, or
    mismatched row counts.
    """
    x = check_codes(codes)
    y = finite_2d(factors, "factors", columns="K factors", fix="drop or impute those rows")
    if x.shape[0] != y.shape[0]:
        raise MetricError(
            f"codes have {x.shape[0]} rows but factors have {y.shape[0]}; pass one factor row per code row"
        )
    return x, y


def _normal_scores(values: np.ndarray) -> np.ndarray:
    """Each column replaced by Φ⁻¹((rank − ½) / N), ties sharing their average rank (a strictly monotone map)."""
    return np.asarray(norm.ppf((rankdata(values, axis=0) - 0.5) / values.shape[0]), dtype=np.float64)


def mig_regression(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    n_neighbors: int = CONTINUOUS.n_neighbors,
    num_train: int | None = CONTINUOUS.num_train,
    seed: int = SEED,
    ranks: bool = CONTINUOUS.ranks,
    normalise: str = CONTINUOUS.mig_normalise,
    num_bins: int = CONTINUOUS.mig_num_bins,
) -> MetricResult:
    """MIG of real-valued factors: kNN MI gaps over ``"bins"`` (entropy of equal-frequency factor bins, default) or
    ``"self"`` (KSG self-information) — see the module docstring.

    ``num_train`` rows are drawn (seeded; None: all rows). Details: ``mi_matrix`` (D × K, nats), ``mi_ceiling`` (K,),
    ``normalized_mi`` (D × K), ``gaps`` (K,, NaN where skipped), ``best_latent`` (K,), ``skipped_factors``.
    """
    if normalise not in ("bins", "self"):
        raise MetricError(f"normalise must be 'bins' or 'self', got {normalise!r}")
    if num_bins < 2:
        raise MetricError(f"num_bins must be >= 2, got {num_bins}")
    x, y = check_continuous_factors(codes, factors)
    rows = subsample_rows(x.shape[0], num_train, seed, "MIG (continuous factors)")
    x, y = x[rows], y[rows]
    if not 1 <= n_neighbors < x.shape[0]:
        raise MetricError(f"n_neighbors must be in [1, N - 1] = [1, {x.shape[0] - 1}], got {n_neighbors}")
    varying = np.ptp(y, axis=0) > 0
    if ranks:
        x = _normal_scores(x)
    if normalise == "bins":
        bins = np.floor((rankdata(y, axis=0) - 1.0) * num_bins / y.shape[0]).astype(np.int64)
        px = prepare_continuous(x, seed)
        mi = np.stack([knn_mi_columns(px, bins[:, k], n_neighbors) for k in range(y.shape[1])], axis=1)
        ceiling = np.where(varying, discrete_entropy(bins), 0.0)
    else:
        y = _normal_scores(y) if ranks else y
        rng = np.random.RandomState(seed)
        px, py, py_copy = prepare(x, rng), prepare(y, rng), prepare(y, rng)
        mi = np.stack([ksg_prepared(px, py[:, k], n_neighbors) for k in range(y.shape[1])], axis=1)
        ceiling = np.array(
            [ksg_prepared(py_copy[:, [k]], py[:, k], n_neighbors)[0] if varying[k] else 0.0 for k in range(y.shape[1])]
        )
    score, details = gap_details(mi, ceiling)
    details["mi_ceiling"] = details.pop("entropy")
    details["normalized_mi"] = mi / np.where(ceiling > 0, ceiling, np.nan)
    details["best_latent"] = np.argmax(mi, axis=0)
    settings = {
        "factors": "continuous",
        "estimator": "ross_knn_binned_factor" if normalise == "bins" else "ksg",
        "normalise": normalise,
        "num_bins": num_bins if normalise == "bins" else None,
        "n_neighbors": n_neighbors,
        "ranks": ranks,
        "num_samples": int(x.shape[0]),
        "seed": seed,
    }
    return MetricResult(name="mig", score=score, details=details, settings=settings)


def _fit_gbt(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int
) -> tuple[np.ndarray, float, float]:
    """One factor's boosted-tree regressor: (MDI importances, train R², test R²)."""
    model = GradientBoostingRegressor(random_state=seed).fit(x_train, y_train)
    return np.abs(model.feature_importances_), float(model.score(x_train, y_train)), float(model.score(x_test, y_test))


def dci_regression(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int = SEED,
    num_train: int = CONTINUOUS.num_train,
    num_test: int = CONTINUOUS.num_test,
    n_jobs: int | None = CONTINUOUS.n_jobs,
) -> MetricResult:
    """DCI of real-valued factors with boosted-tree regressors; the score is disentanglement (module docstring).

    ``num_train + num_test`` rows are split at random (``seed``). Factors constant on the training rows are dropped.
    """
    x, y = check_continuous_factors(codes, factors)
    train, test = split_indices(x.shape[0], num_train, num_test, np.random.default_rng(seed))
    kept, dropped = varying_factors(y[train], "DCI")
    tasks = [(x[train], y[train, k], x[test], y[test, k], seed) for k in kept]
    fitted = run_tasks(_fit_gbt, tasks, n_jobs=n_jobs)
    r = np.stack([imp for imp, _, _ in fitted], axis=1)
    r2_train = np.array([tr for _, tr, _ in fitted])
    r2_test = np.array([te for _, _, te in fitted])
    d = disentanglement(r)
    details: dict[str, Any] = {
        "disentanglement": d,
        "completeness": completeness(r),
        "informativeness_train": float(r2_train.mean()),
        "informativeness_test": float(r2_test.mean()),
        "importance_matrix": r.tolist(),
        "disentanglement_per_code": disentanglement_per_code(r).tolist(),
        "completeness_per_factor": completeness_per_factor(r).tolist(),
        "r2_train_per_factor": r2_train.tolist(),
        "r2_test_per_factor": r2_test.tolist(),
        "factors": kept,
        "dropped_factors": dropped,
    }
    settings = {
        "factors": "continuous",
        "model": "GradientBoostingRegressor",
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
    }
    return MetricResult(name="dci", score=d, details=details, settings=settings)


def _probe_r2(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    alphas: tuple[float, ...],
    hidden: tuple[int, ...],
    max_iter: int,
    seed: int,
) -> tuple[float, float]:
    """Test R² of the ridge and the MLP probe of one factor, both on standardised codes."""
    scaler = StandardScaler().fit(x_train)
    xs_train, xs_test = scaler.transform(x_train), scaler.transform(x_test)
    ridge = RidgeCV(alphas=alphas).fit(xs_train, y_train)
    mu, sd = float(y_train.mean()), float(y_train.std())
    mlp = MLPRegressor(hidden_layer_sizes=hidden, early_stopping=True, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(xs_train, (y_train - mu) / sd)
    return float(r2_score(y_test, ridge.predict(xs_test))), float(r2_score(y_test, mlp.predict(xs_test) * sd + mu))


def probes_regression(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int = SEED,
    num_train: int = CONTINUOUS.num_train,
    num_test: int = CONTINUOUS.num_test,
    ridge_alphas: Sequence[float] = CONTINUOUS.ridge_alphas,
    mlp_hidden: Sequence[int] = CONTINUOUS.mlp_hidden,
    mlp_max_iter: int = CONTINUOUS.mlp_max_iter,
    n_jobs: int | None = CONTINUOUS.n_jobs,
) -> MetricResult:
    """Linear (ridge) and MLP probes per real-valued factor; the score is the mean linear test R² (module docstring).

    Details: ``r2_linear`` and ``r2_mlp`` (factor -> test R²; 0 is the constant predictor, below 0 is worse),
    their means ``mean_r2_linear`` and ``mean_r2_mlp``, and ``dropped_factors`` (constant on the training rows).
    """
    x, y = check_continuous_factors(codes, factors)
    train, test = split_indices(x.shape[0], num_train, num_test, np.random.default_rng(seed))
    kept, dropped = varying_factors(y[train], "probes")
    args = (tuple(float(a) for a in ridge_alphas), tuple(int(h) for h in mlp_hidden), mlp_max_iter, seed)
    fitted = run_tasks(_probe_r2, [(x[train], y[train, k], x[test], y[test, k], *args) for k in kept], n_jobs=n_jobs)
    linear = np.array([lin for lin, _ in fitted])
    mlp = np.array([nl for _, nl in fitted])
    details: dict[str, Any] = {
        "r2_linear": {k: float(v) for k, v in zip(kept, linear, strict=True)},
        "r2_mlp": {k: float(v) for k, v in zip(kept, mlp, strict=True)},
        "mean_r2_linear": float(linear.mean()),
        "mean_r2_mlp": float(mlp.mean()),
        "dropped_factors": dropped,
    }
    settings = {
        "factors": "continuous",
        "headline": "linear",
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "ridge_alphas": list(args[0]),
        "mlp_hidden": list(args[1]),
        "mlp_max_iter": mlp_max_iter,
    }
    return MetricResult(name="probes", score=float(linear.mean()), details=details, settings=settings)
