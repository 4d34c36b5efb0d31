"""Explicitness (E) and size (S) of DCI-ES (Eastwood, Nicolicioiu, von Kügelgen, Kekić, Träuble, Dittadi & Schölkopf
2023, "DCI-ES: An Extended Disentanglement Framework with Connections to Identifiability", ICLR; arXiv:2210.00364;
authors' code: github.com/andreinicolicioiu/DCI-ES, ``metrics/explitcitness.py`` and ``src/simple_gather.py``).

Explicitness asks how much functional capacity a probe needs to read a factor out of the code. Per factor ``j``:

* loss-capacity curve: the test loss ``l(k)`` of a probe of capacity ``k`` trained to predict factor ``j`` from the
  whole code, for capacities ``k_1 < ... < k_max``. The probe classes are nested (a depth-``k`` tree is a depth-``k'``
  tree for every ``k' >= k``), so the curve is the running minimum ``l_bar(k) = min(l^b, min_{k' <= k} l(k'))``: the
  authors' code takes the same running minimum; the cap at the baseline ``l^b`` (every probe can fall back to the
  constant predictor) is added here and keeps ``E >= -1``;
* ``AULCC_j = int_{k_1}^{k_max} (l_bar(k) - l*) dk`` by the trapezoid rule over the measured capacities, where ``l*`` is
  the lowest achievable loss (the paper's ``l*``; the authors assume ``l* = 0`` for their results, as here by default,
  which suits factors that are a deterministic function of the observation, such as dSprites' classes). Where the
  curve reaches ``l*`` at ``k*`` (the paper's upper limit of the area) the integrand is zero beyond ``k*``;
* ``Z_j = (k_max - k_1) (l^b - l*) / 2``: the area of the triangle under the straight line from ``(k_1, l^b)`` to
  ``(k_max, l*)`` (the paper's normaliser; the authors' code writes it as ``E = 1 - 2 area / ((k_max - k_1) l^b)``);
* ``E_j = 1 - AULCC_j / Z_j``, in ``[-1, 1]``: 1 when the lowest-capacity probe already reaches ``l*``, 0 for a loss
  falling linearly over the capacity range, -1 for a curve that stays at the baseline (a code without information
  on the factor). E is the mean of ``E_j`` over the factors.

When the curve reaches ``l* = 0`` this is the authors' formula exactly. Their code measures the area above the curve's
own minimum instead of above ``l*``; for a curve that plateaus above ``l*`` that makes a code without information
score ``E = 1`` (its flat curve needs no capacity), so here the area is taken above ``l*``, as the paper's figure of
the definition draws it. Losses below ``l*`` (a ``lowest_loss`` set above what a probe reaches) are clipped to it.

Protocol here (the paper leaves the probe family open; the authors use random forests of increasing depth, MLPs of
increasing width and random Fourier features):

* probes: ``sklearn.ensemble.RandomForestClassifier`` (``num_trees`` trees, bootstrap, ``max_features``), capacity =
  maximum tree depth (the authors' random-forest axis: ``max_depth`` from 1 to 32, on a linear capacity axis). One
  forest is grown to the largest capacity and the probe of depth ``k`` is that forest with every tree cut at depth
  ``k`` (inner nodes at depth ``k`` predict the class fractions of their training samples, as leaves do): a greedy
  tree grown with ``max_depth=k`` is built by the same procedure, so the cut forest is one draw of the depth-``k``
  forest, and the probes are nested exactly. This costs one fit per factor instead of one per capacity;
* loss (``loss``): ``"cross_entropy"`` (default; the test log-loss, probabilities clipped at machine epsilon as in
  ``sklearn.metrics.log_loss``) or ``"error"`` (test 0-1 loss, the authors' ``1 - accuracy``); the baseline ``l^b`` is
  the same loss of the best constant predictor, the training-class frequencies (log-loss) or the majority training
  class (0-1 loss), on the test set. Curves are reported divided by ``l^b`` (so the baseline is 1 and ``lowest_loss``
  is in the same unit);
* ``num_train`` training and ``num_test`` test rows drawn at random (``seed``); factors with a single class in the
  training sample are dropped (as in :mod:`metrics.dci`) and listed in ``details["dropped_factors"]``.

Size: ``S = K / D``, the number of (scored) factors over the number of code dimensions: 1 for a code of the factors'
own dimensionality, smaller for larger codes (the paper's size of the representation relative to the factors).

Cost: one forest per factor, fitted on ``n_jobs`` worker processes (:mod:`metrics._parallel`, most classes first; each
fit single-threaded, the results identical for every ``n_jobs``). The cut forests are evaluated by walking the trees one
level at a time (:func:`forest_proba_at_depths`). Measured single-core on the dSprites factor sizes (3, 6, 40, 32, 32),
a 10-dimensional synthetic code (noisy linear map of the classes), 10000 / 5000 rows, the defaults: DCI_ES_TIMING.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from metrics import defaults
from metrics._checks import check_codes_factors, require_samples, varying_factors
from metrics._parallel import run_tasks
from metrics.sampling import split_indices
from metrics.types import MetricError, MetricResult

LOSSES = ("cross_entropy", "error")

#: Probabilities are clipped to [eps, 1] before the log, as ``sklearn.metrics.log_loss`` does.
_EPS = float(np.finfo(np.float64).eps)


def check_capacities(capacities: Sequence[float] | np.ndarray) -> np.ndarray:
    """Capacities as a float64 array: at least two, strictly increasing, finite; else :class:`MetricError`."""
    caps = np.asarray(list(capacities), dtype=np.float64)
    if caps.ndim != 1 or caps.size < 2:
        raise MetricError(f"DCI-ES needs at least two probe capacities, got {list(capacities)!r}")
    if not np.all(np.isfinite(caps)) or np.any(np.diff(caps) <= 0):
        raise MetricError(f"probe capacities must be finite and strictly increasing, got {list(capacities)!r}")
    return caps


def loss_capacity_curve(
    losses: Sequence[float] | np.ndarray, *, baseline_loss: float, lowest_loss: float
) -> np.ndarray:
    """The curve integrated by :func:`aulcc`: the running minimum of ``losses``, clipped to ``[lowest, baseline]``."""
    arr = np.asarray(losses, dtype=np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise MetricError(f"losses must be a 1-D array of finite numbers, got {arr.tolist()!r}")
    if not lowest_loss < baseline_loss:
        raise MetricError(
            f"the baseline loss ({baseline_loss:g}) must exceed the lowest loss ({lowest_loss:g}); nothing to explain"
        )
    return np.clip(np.minimum.accumulate(arr), lowest_loss, baseline_loss)


def aulcc(
    capacities: Sequence[float] | np.ndarray,
    losses: Sequence[float] | np.ndarray,
    *,
    baseline_loss: float = 1.0,
    lowest_loss: float = 0.0,
) -> float:
    """Area under the loss-capacity curve above ``lowest_loss``, trapezoid rule over ``capacities`` (see module doc)."""
    caps = check_capacities(capacities)
    curve = loss_capacity_curve(losses, baseline_loss=baseline_loss, lowest_loss=lowest_loss)
    if curve.size != caps.size:
        raise MetricError(f"got {curve.size} losses for {caps.size} capacities; pass one loss per capacity")
    height = curve - lowest_loss
    return float(np.sum(0.5 * (height[1:] + height[:-1]) * np.diff(caps)))


def explicitness_from_curve(
    capacities: Sequence[float] | np.ndarray,
    losses: Sequence[float] | np.ndarray,
    *,
    baseline_loss: float = 1.0,
    lowest_loss: float = 0.0,
) -> float:
    """``E = 1 - AULCC / Z`` with ``Z = (k_max - k_1)(l^b - l*) / 2`` (the paper's triangle); in ``[-1, 1]``."""
    caps = check_capacities(capacities)
    area = aulcc(caps, losses, baseline_loss=baseline_loss, lowest_loss=lowest_loss)
    z = 0.5 * float(caps[-1] - caps[0]) * (baseline_loss - lowest_loss)
    return 1.0 - area / z


def representation_size(num_factors: int, num_code_dims: int) -> float:
    """DCI-ES size ``S = K / D``: the number of factors over the number of code dimensions."""
    if num_factors < 1 or num_code_dims < 1:
        raise MetricError(f"size needs at least one factor and one code dimension, got {num_factors}, {num_code_dims}")
    return num_factors / num_code_dims


def forest_proba_at_depths(forest: RandomForestClassifier, x: np.ndarray, depths: Sequence[int]) -> np.ndarray:
    """Class probabilities ``(len(depths), N, C)`` of ``forest`` with every tree cut at each depth of ``depths``.

    A row stops at a leaf or at the first node of the given depth and takes that node's class fractions (normalised
    per node, as ``predict_proba`` does); the forest averages its trees. Rows are routed as sklearn's trees route them
    (features cast to float32, left when ``x <= threshold``), so a depth at or beyond every tree's own depth gives
    ``forest.predict_proba(x)`` (tests/metrics/test_dci_es.py).
    """
    xs = np.asarray(x, dtype=np.float32).astype(np.float64)
    order = np.asarray(depths, dtype=np.int64)
    out = np.zeros((order.size, xs.shape[0], int(forest.n_classes_)), dtype=np.float64)
    for estimator in forest.estimators_:
        tree = estimator.tree_
        value = np.asarray(tree.value[:, 0, :], dtype=np.float64)
        total = value.sum(axis=1, keepdims=True)
        value = value / np.where(total == 0.0, 1.0, total)
        left, right, feature, threshold = tree.children_left, tree.children_right, tree.feature, tree.threshold
        node = np.zeros(xs.shape[0], dtype=np.int64)
        active = np.arange(xs.shape[0])
        level = 0
        for i, depth in enumerate(order):
            while level < depth and active.size:
                cur = node[active]
                inner = left[cur] != -1
                active, cur = active[inner], cur[inner]
                go_left = xs[active, feature[cur]] <= threshold[cur]
                node[active] = np.where(go_left, left[cur], right[cur])
                level += 1
            out[i] += value[node]
    out /= len(forest.estimators_)
    return out


def _losses(proba: np.ndarray, y_idx: np.ndarray, loss: str) -> np.ndarray:
    """Test loss of each probability matrix of ``proba`` ``(S, N, C)``; ``y_idx`` is -1 for classes unseen in training."""
    seen = y_idx >= 0
    if loss == "cross_entropy":
        p_true = np.zeros(proba.shape[:2])
        p_true[:, seen] = proba[:, np.flatnonzero(seen), y_idx[seen]]
        return np.asarray(-np.mean(np.log(np.clip(p_true, _EPS, 1.0)), axis=1))
    predicted = np.argmax(proba, axis=2)
    return np.asarray(1.0 - np.mean(predicted == y_idx[None, :], axis=1))


def _baseline_loss(y_train: np.ndarray, y_idx: np.ndarray, num_classes: int, loss: str) -> float:
    """Test loss of the best constant predictor fitted on the training labels (class frequencies / majority class)."""
    prior = np.bincount(y_train, minlength=num_classes)[None, None, :].astype(np.float64) / y_train.size
    if loss == "error":
        prior = (np.arange(num_classes) == np.argmax(prior))[None, None, :].astype(np.float64)
    return float(_losses(np.broadcast_to(prior, (1, y_idx.size, num_classes)), y_idx, loss)[0])


def factor_curve(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    capacities: tuple[int, ...],
    num_trees: int,
    max_features: str | float | None,
    loss: str,
    seed: int,
) -> tuple[np.ndarray, float]:
    """One factor's test losses at every capacity (maximum depth) and the baseline loss, both in the loss's unit."""
    classes, y_tr = np.unique(y_train, return_inverse=True)
    pos = np.clip(np.searchsorted(classes, y_test), 0, classes.size - 1)
    y_idx = np.where(classes[pos] == y_test, pos, -1)
    forest = RandomForestClassifier(
        n_estimators=num_trees, max_depth=max(capacities), max_features=max_features, random_state=seed, n_jobs=1
    ).fit(x_train, y_tr)
    proba = forest_proba_at_depths(forest, x_test, capacities)
    return _losses(proba, y_idx, loss), _baseline_loss(y_tr, y_idx, classes.size, loss)


def dci_es(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int = defaults.SEED,
    num_train: int = defaults.DCI_ES.num_train,
    num_test: int = defaults.DCI_ES.num_test,
    capacities: Sequence[int] = defaults.DCI_ES.capacities,
    num_trees: int = defaults.DCI_ES.num_trees,
    max_features: str | float | None = defaults.DCI_ES.max_features,
    loss: str = defaults.DCI_ES.loss,
    lowest_loss: float = defaults.DCI_ES.lowest_loss,
    threads: int | None = defaults.DCI_ES.threads,
    n_jobs: int | None = defaults.DCI_ES.n_jobs,
) -> MetricResult:
    """DCI-ES explicitness (the score, mean over factors) and size of ``codes`` (N, D) for ``factors`` (N, K).

    ``capacities`` are the maximum depths of the random-forest probes (integers >= 1, increasing); ``lowest_loss`` is
    ``l*`` in units of the baseline loss (0 for factors that the observation determines).
    """
    if loss not in LOSSES:
        raise MetricError(f"unknown DCI-ES loss {loss!r}; choose one of {', '.join(LOSSES)}")
    caps = tuple(int(c) for c in capacities)
    if any(c != k for c, k in zip(caps, capacities, strict=True)) or (caps and caps[0] < 1):
        raise MetricError(f"DCI-ES capacities are tree depths: integers >= 1, got {list(capacities)!r}")
    check_capacities(caps)
    if not 0.0 <= lowest_loss < 1.0:
        raise MetricError(f"lowest_loss is in units of the baseline loss and must lie in [0, 1), got {lowest_loss}")
    if num_trees < 1:
        raise MetricError(f"num_trees must be >= 1, got {num_trees}")
    codes, factors = check_codes_factors(codes, factors)
    require_samples(codes.shape[0], num_train + num_test, "DCI-ES")
    train, test = split_indices(codes.shape[0], num_train, num_test, np.random.default_rng(seed))
    kept, dropped = varying_factors(factors[train], "DCI-ES")
    x_train, x_test = codes[train], codes[test]
    tasks = [
        (x_train, factors[train, j], x_test, factors[test, j], caps, num_trees, max_features, loss, seed) for j in kept
    ]
    costs = [float(np.unique(factors[train, j]).size) for j in kept]
    fitted = run_tasks(factor_curve, tasks, n_jobs=n_jobs, threads=threads, costs=costs)
    curves, per_factor, areas, mins, at_min, baselines = [], [], [], [], [], []
    for j, (losses, baseline) in zip(kept, fitted, strict=True):
        if not baseline > 0.0:
            raise MetricError(f"factor {j} has a zero baseline loss on the test rows (one class); pass more test rows")
        normalised = losses / baseline
        curve = loss_capacity_curve(normalised, baseline_loss=1.0, lowest_loss=lowest_loss)
        curves.append(normalised.tolist())
        per_factor.append(explicitness_from_curve(caps, normalised, lowest_loss=lowest_loss))
        areas.append(aulcc(caps, normalised, lowest_loss=lowest_loss))
        mins.append(float(curve[-1]))
        at_min.append(caps[int(np.argmax(curve <= curve[-1]))])
        baselines.append(baseline)
    e = float(np.mean(per_factor))
    details: dict[str, Any] = {
        "explicitness": e,
        "per_factor_explicitness": per_factor,
        "size": representation_size(len(kept), codes.shape[1]),
        "capacities": list(caps),
        "loss_capacity_curves": curves,
        "aulcc_per_factor": areas,
        "min_loss_per_factor": mins,
        "capacity_at_min_loss_per_factor": at_min,
        "baseline_loss_per_factor": baselines,
        "num_code_dims": codes.shape[1],
        "factors": kept,
        "dropped_factors": dropped,
    }
    settings: dict[str, Any] = {
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "capacities": list(caps),
        "num_trees": num_trees,
        "max_features": max_features,
        "loss": loss,
        "lowest_loss": lowest_loss,
    }
    return MetricResult(name="dci_es", score=e, details=details, settings=settings)
