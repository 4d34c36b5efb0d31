"""Disentanglement, completeness and informativeness (DCI; Eastwood & Williams 2018, "A Framework for the Quantitative
Evaluation of Disentangled Representations"), following disentanglement_lib's ``dci.py`` (Locatello et al. 2019).

One gradient-boosted tree classifier per factor predicts the factor's class from the whole code. Its feature importances
form the column of the importance matrix ``R`` (codes x factors). With ``P_ij = R_ij / sum_k R_ik``:

* disentanglement = ``sum_i rho_i (1 - H_K(P_i.))`` with ``rho_i = sum_j R_ij / sum R`` and the entropy in base K
  (the number of factors): each code dimension should matter for one factor only;
* completeness = the same per factor (columns of ``R`` normalised) with the entropy in base D (the number of codes):
  each factor should be captured by one code dimension;
* informativeness = mean train and test accuracy of the classifiers.

Methods (how the importance matrix is estimated):

* ``"exact"`` (the default) — :class:`metrics._gbt.GradientBoostingExact`: scikit-learn's
  ``GradientBoostingClassifier()`` at its defaults re-implemented in NumPy, rule by rule (float32 codes, scikit-learn's
  1e-7 tie threshold between sorted values, squared-error splits with midpoint thresholds, class-prior start, Newton
  leaf values, MDI importances, argmax predictions), but with its histograms, bounds and level-wise growth of all the
  trees of a stage at once instead of one sort per node and feature. It grows the same trees as the reference except
  where two splits of a node tie (equal criteria: frequent at the first stage, whose gradients take two values, and in
  small nodes), which scikit-learn breaks by a random feature order and by rounding and this implementation by a
  seeded random feature order (``seed``); see :mod:`metrics._gbt`.
* ``"reference"`` — ``sklearn.ensemble.GradientBoostingClassifier(random_state=seed)`` with its default settings (100
  stages of depth-3 trees, learning rate 0.1) and its impurity-based (MDI) ``feature_importances_``: disentanglement_lib
  exactly (which passes no random state: its tie-breaking is not reproducible). It sorts every node's samples for every
  feature, which costs minutes for 32- and 40-class factors at 10000 samples.
* ``"hist"`` — ``HistGradientBoostingClassifier`` with the same ensemble shape (100 iterations, learning rate 0.1,
  depth-3 trees, one sample per leaf allowed, no early stopping) on 255-bin histograms, with the total split gain per
  feature as importance (the loss-reduction analogue of the reference's impurity decrease, the "gain" importance of
  XGBoost/LightGBM; read from the fitted trees' ``_predictors``, stable since scikit-learn 0.21). Kept for comparison:
  it bins by rank, so it splits dimensions whose values scikit-learn counts as ties (collapsed units), and its
  Newton-gain splits and gain importances differ from the reference's.

Agreement with ``"reference"`` (scripts/bench_dci_agreement.py: 10000 training and 5000 test rows drawn from the
dSprites factor grid (3, 6, 40, 32, 32 classes; colour dropped) and the 3D Shapes grid (10, 10, 10, 8, 4, 15); codes:
factor classes as dimensions, a random linear mix, orientation as (cos, sin), pure noise, every second factor's
dimension shrunk to a standard deviation of 1e-6 ("near-collapsed") or 1e-4 ("mild"), one exactly constant dimension;
|differences| of D, C and the test accuracy I, the largest over both grids):

=================  =========================  =========================
code               exact: dD / dC / dI        hist: dD / dC / dI
=================  =========================  =========================
perfect            0      / 0      / 0        0      / 0      / 0
mixed              0.0007 / 0.0004 / 0.0017   0.0070 / 0.0094 / 0.0168
angle (cos, sin)   0.0003 / 0.0003 / 0.0013   0.0244 / 0.0233 / 0.0042
noise              0.0000 / 0.0001 / 0.0014   0.0009 / 0.0007 / 0.0009
near-collapsed     0.0017 / 0.0016 / 0.0026   0.4343 / 0.2719 / 0.2715
mild               0.0025 / 0.0017 / 0.0008   0.0520 / 0.0489 / 0.0016
constant unit      0.0005 / 0.0004 / 0.0002   0.0462 / 0.0385 / 0.0055
=================  =========================  =========================

i.e. at most 0.0026 for ``"exact"`` (0.0025 for D, 0.0017 for C), the size of the reference's own tie-breaking: the
reference with ``random_state=1`` instead of 0 moved by up to 0.0023 / 0.0014 / 0.0013 on the 3D Shapes codes.

Cost of DCI at the defaults (``python scripts/bench_dci_agreement.py --timing``: dSprites factors, a 10-dimensional
code, 10000/5000, otherwise idle 2-core machine): ``"exact"`` 32.6 s on one process, 18.7 s wall on two; ``"hist"`` 15.6
s and 8.9 s. The reference took 239 s of CPU on the mild code of the battery (dSprites grid) where ``"exact"`` took 41 s
(5.8x) and ``"hist"`` 13 s; on the 3D Shapes grid 130 s against 21 s (6.2x).

The classifiers run with ``threads`` OpenMP/BLAS threads (default 1, ``None`` leaves the process setting; the exact
GBT's NumPy and SciPy operations are single-threaded either way): on a busy 2-core machine two threads made the hist
GBT of a 40-class factor several times slower than one (over 4 minutes vs 39 s).
Predictions (train and test accuracies) run under the same limit; they used to run outside it, where sklearn's
predict opened an OpenMP region of all cores for each of the thousands of trees: with the process default of two
threads on a busy 2-core machine the whole DCI took 176-277 s of CPU, single-threaded it takes 16-17 s (same machine,
same codes, scripts/bench_metrics.py's synthetic dSprites sample, interleaved runs).
The factors' classifiers are fitted on ``n_jobs`` worker processes (:mod:`metrics._parallel`, default
:data:`metrics.defaults.N_JOBS`), each single-threaded, most classes first; the results are bit-identical to
``n_jobs=1``. Its ceiling on the dSprites factors is the 32 + 32-class pair against the rest, 113 / 64 = 1.8x on two
free cores; where other jobs saturate the cores it gains nothing (measured with a load average of 5 on 2 cores:
23.7 s with ``n_jobs=1`` vs 34.9 s with 2; in another run the three large factors took 21.4 vs 22.5 s of CPU and
20.2 vs 21.4 s of wall time, i.e. both got one core's worth of share), so pass ``n_jobs=1`` on a crowded machine.
scripts/bench_metrics.py prints the ratio.

Cost of the exact GBT (a 40-class factor, 10000 training rows, 10 codes): about 2.5 ms per tree, 4000 trees; the
time goes to the per-level histograms and node statistics (vectorised over the 40 trees of a stage) and to scanning the
runs whose bound reaches the best split (some 5% of all positions). The training rows' predictions come from the fit;
the test rows walk the stored trees stage by stage (another ~0.5 s).

Cost of the hist GBT at the defaults (10000 training rows, 10 codes; profiled single-threaded, a 40-class factor):
the tree growing is Python-heavy (4000 depth-3 trees, ~1.5 ms each), and predicting the 15000 train and test rows
through 4000 trees took another ~30%. Predictions therefore go through :func:`hist_predict` (the trees walk bin
indices of rows binned once; 2.7 s -> 1.6 s for that factor) in one pass over train and test rows, with the same
predicted classes. Checked and left as they are: binning the codes once per metric instead of once per fit saves
nothing worth the coupling (37 ms per fit); ``max_bins=63`` would make the fit ~45% cheaper (6.3 s -> 3.5 s) but
moves split thresholds and hence importances (up to 0.016 per entry), so the estimator keeps its 255 bins.

Factors with a single class in the training sample (dSprites' colour) are dropped, as disentanglement_lib does for
dSprites; they are listed in ``details["dropped_factors"]`` and K counts the remaining ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

from metrics import defaults
from metrics._checks import check_codes_factors, require_samples, varying_factors
from metrics._gbt import GradientBoostingExact
from metrics._parallel import run_tasks
from metrics.sampling import split_indices
from metrics.types import MetricError, MetricResult

METHODS = ("exact", "hist", "reference")

#: Offset added before the entropy, as disentanglement_lib does (keeps an all-zero row finite).
_EPS = 1e-11


def _entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy in ``base`` of each column of the non-negative matrix ``p`` after normalising it (scipy.stats.entropy)."""
    q = p / p.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(q > 0, q * np.log(q), 0.0), axis=0)
    return h / np.log(base)


def disentanglement_per_code(importance: np.ndarray) -> np.ndarray:
    """``1 - H_K(P_i.)`` for every code dimension ``i`` of an importance matrix (codes x factors)."""
    r = np.asarray(importance, dtype=np.float64)
    if r.shape[1] == 1:
        return np.ones(r.shape[0])
    return 1.0 - _entropy(r.T + _EPS, base=r.shape[1])


def completeness_per_factor(importance: np.ndarray) -> np.ndarray:
    """``1 - H_D(P_.j)`` for every factor ``j`` of an importance matrix (codes x factors)."""
    r = np.asarray(importance, dtype=np.float64)
    if r.shape[0] == 1:
        return np.ones(r.shape[1])
    return 1.0 - _entropy(r + _EPS, base=r.shape[0])


def disentanglement(importance: np.ndarray) -> float:
    """Importance-weighted mean of :func:`disentanglement_per_code` (uniform weights for an all-zero matrix)."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    weights = np.ones_like(r) if r.sum() == 0 else r
    rho = weights.sum(axis=1) / weights.sum()
    return float(np.sum(disentanglement_per_code(r) * rho))


def completeness(importance: np.ndarray) -> float:
    """Importance-weighted mean of :func:`completeness_per_factor` (uniform weights for an all-zero matrix)."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    weights = np.ones_like(r) if r.sum() == 0 else r
    rho = weights.sum(axis=0) / weights.sum()
    return float(np.sum(completeness_per_factor(r) * rho))


def _hist_gain_importances(model: HistGradientBoostingClassifier, num_features: int) -> np.ndarray:
    """Total split gain per feature over every tree of a fitted hist GBT, normalised to sum to one."""
    predictors = getattr(model, "_predictors", None)
    if predictors is None:
        raise MetricError(
            "this scikit-learn's HistGradientBoostingClassifier hides its trees; use dci method='reference'"
        )
    gain = np.zeros(num_features, dtype=np.float64)
    for iteration in predictors:
        for tree in iteration:
            nodes = tree.nodes[tree.nodes["is_leaf"] == 0]
            np.add.at(gain, nodes["feature_idx"], np.maximum(nodes["gain"], 0.0))
    total = gain.sum()
    return gain / total if total > 0 else gain


def fit_factor_classifier(
    x_train: np.ndarray, y_train: np.ndarray, method: str, seed: int
) -> tuple[GradientBoostingClassifier | HistGradientBoostingClassifier | GradientBoostingExact, np.ndarray]:
    """Fit one factor's classifier with ``method`` (see :data:`METHODS`); return it and its feature importances."""
    if method == "exact":
        exact = GradientBoostingExact(random_state=seed).fit(x_train, y_train)
        return exact, np.abs(exact.feature_importances_)
    if method == "reference":
        gbt = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
        return gbt, np.abs(gbt.feature_importances_)
    if method == "hist":
        hist = HistGradientBoostingClassifier(
            max_iter=100,
            learning_rate=0.1,
            max_depth=3,
            max_leaf_nodes=None,
            min_samples_leaf=1,
            l2_regularization=0.0,
            early_stopping=False,
            random_state=seed,
        ).fit(x_train, y_train)
        return hist, _hist_gain_importances(hist, x_train.shape[1])
    raise MetricError(f"unknown DCI method {method!r}; choose one of {', '.join(METHODS)}")


def hist_predict(model: HistGradientBoostingClassifier, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` through the trees' binned thresholds: the same classes, ~1.5x faster.

    ``predict`` walks every tree on float thresholds; here ``x`` is binned once by the model's own bin mapper and the
    trees walk the bin indices (``predict_binned``, what the estimator itself uses on its training data). A value lies
    at or below a split's float threshold exactly when its bin lies at or below the split's bin, so every row reaches
    the same leaves, and the leaf values are summed in ``_raw_predict``'s order: the raw scores are bit-identical
    (tests/metrics/test_dci.py). Falls back to ``predict`` where scikit-learn hides these internals.
    """
    bin_mapper = getattr(model, "_bin_mapper", None)
    predictors = getattr(model, "_predictors", None)
    baseline = getattr(model, "_baseline_prediction", None)
    if bin_mapper is None or predictors is None or baseline is None:
        return np.asarray(model.predict(x))
    binned = bin_mapper.transform(np.asarray(x, dtype=np.float64))
    raw = np.zeros((x.shape[0], model.n_trees_per_iteration_), dtype=baseline.dtype, order="F")
    raw += baseline
    for iteration in predictors:
        for k, tree in enumerate(iteration):
            raw[:, k] += tree.predict_binned(binned, bin_mapper.missing_values_bin_idx_, 1)
    encoded = (raw.ravel() > 0).astype(int) if raw.shape[1] == 1 else np.argmax(raw, axis=1)
    return np.asarray(model.classes_[encoded])


def _fit_and_score(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, method: str, seed: int
) -> tuple[np.ndarray, float, float]:
    """One factor's importances and train/test accuracies (a task of :func:`metrics._parallel.run_tasks`).

    ``"exact"``: the training rows' raw predictions come from the fit (the leaves and the sums that scikit-learn's
    ``predict`` would reproduce), the test rows walk the stored trees. Otherwise train and test rows are predicted in
    one pass (per-tree overhead once), with :func:`hist_predict` for ``"hist"``.
    """
    model, importances = fit_factor_classifier(x_train, y_train, method, seed)
    if isinstance(model, GradientBoostingExact):
        pred_train = model.predict_from_raw(model.train_raw_)
        pred_test = model.predict(x_test)
        return importances, float(np.mean(pred_train == y_train)), float(np.mean(pred_test == y_test))
    rows = np.concatenate([x_train, x_test])
    pred = hist_predict(model, rows) if isinstance(model, HistGradientBoostingClassifier) else model.predict(rows)
    n = x_train.shape[0]
    return importances, float(np.mean(pred[:n] == y_train)), float(np.mean(pred[n:] == y_test))


def importance_matrix(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    method: str = "reference",
    seed: int = 0,
    threads: int | None = defaults.DCI.threads,
    n_jobs: int | None = defaults.DCI.n_jobs,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Importance matrix (codes x factors) and the per-factor train and test accuracies.

    The factors' classifiers are fitted on ``n_jobs`` processes (bit-identical to ``n_jobs=1``), most classes first.
    """
    if method not in METHODS:
        raise MetricError(f"unknown DCI method {method!r}; choose one of {', '.join(METHODS)}")
    num_factors = y_train.shape[1]
    tasks = [(x_train, y_train[:, j], x_test, y_test[:, j], method, seed) for j in range(num_factors)]
    costs = [float(np.unique(y_train[:, j]).size) for j in range(num_factors)]
    fitted = run_tasks(_fit_and_score, tasks, n_jobs=n_jobs, threads=threads, costs=costs)
    r = np.zeros((x_train.shape[1], num_factors), dtype=np.float64)
    acc_train = np.zeros(num_factors)
    acc_test = np.zeros(num_factors)
    for j, (importances, train_acc, test_acc) in enumerate(fitted):
        r[:, j], acc_train[j], acc_test[j] = importances, train_acc, test_acc
    return r, acc_train, acc_test


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int = defaults.SEED,
    num_train: int = defaults.DCI.num_train,
    num_test: int = defaults.DCI.num_test,
    method: str = defaults.DCI.method,
    threads: int | None = defaults.DCI.threads,
    n_jobs: int | None = defaults.DCI.n_jobs,
) -> MetricResult:
    """DCI disentanglement (the score), completeness and informativeness of ``codes`` (N, D) for ``factors`` (N, K).

    ``num_train + num_test`` rows are split at random (``seed``) into the training and test sets.
    """
    codes, factors = check_codes_factors(codes, factors)
    require_samples(codes.shape[0], num_train + num_test, "DCI")
    train, test = split_indices(codes.shape[0], num_train, num_test, np.random.default_rng(seed))
    kept, dropped = varying_factors(factors[train], "DCI")
    r, acc_train, acc_test = importance_matrix(
        codes[train],
        factors[train][:, kept],
        codes[test],
        factors[test][:, kept],
        method=method,
        seed=seed,
        threads=threads,
        n_jobs=n_jobs,
    )
    d = disentanglement(r)
    details: dict[str, Any] = {
        "disentanglement": d,
        "completeness": completeness(r),
        "informativeness_train": float(acc_train.mean()),
        "informativeness_test": float(acc_test.mean()),
        "importance_matrix": r.tolist(),
        "disentanglement_per_code": disentanglement_per_code(r).tolist(),
        "completeness_per_factor": completeness_per_factor(r).tolist(),
        "accuracy_train_per_factor": acc_train.tolist(),
        "accuracy_test_per_factor": acc_test.tolist(),
        "factors": kept,
        "dropped_factors": dropped,
    }
    settings: dict[str, Any] = {
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "method": method,
    }
    return MetricResult(name="dci", score=d, details=details, settings=settings)
