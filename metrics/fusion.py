"""Fusion of two views: per-factor probes on each view alone and on early, intermediate and late fusions of both.

Takes the codes of the SAME inputs (grid points) seen in two views, e.g. one grid rendered in two domains or two
modalities, row ``i`` of each array encoding input ``i``; the taxonomy of early / intermediate / late fusion is that of
Baltrušaitis, Ahuja & Morency 2019, "Multimodal Machine Learning: A Survey and Taxonomy" (see also Snoek, Worring &
Smeulders 2005, "Early versus Late Fusion in Semantic Video Analysis").

Protocol: the rows are split at random (``seed``, :func:`metrics.sampling.split_indices`) into ``num_train`` rows that
fit every model and ``num_test`` other rows that score it. Per factor (classes: those of its training rows; a test row
of an unseen class counts as wrong), the held-out accuracy of:

* ``view_a``, ``view_b`` — a multinomial logistic regression (``C`` = ``c``, lbfgs, ``max_iter``) on that view's code,
  standardised with its training rows' mean and std (sklearn ``StandardScaler``), as in metrics/transfer.py.
* ``early`` — the same probe on the concatenated codes ``[a, b]`` (feature-level fusion).
* ``late`` — the mean ``(p_a + p_b) / 2`` of the two single-view probes' predicted class probabilities, then argmax
  (decision-level fusion: the sum rule of Kittler et al. 1998, "On Combining Classifiers").
* ``intermediate`` — a small cross-attention model in torch (the crossmodal attention of Tsai et al. 2019,
  "Multimodal Transformer for Unaligned Multimodal Language Sequences"): each standardised view is cut into tokens,
  one per subspace (``subspaces``; None: one token per dimension); token ``t`` is embedded by its own
  ``Linear(width_t, d_model)`` plus a learned position embedding; the tokens of view a attend to those of view b and
  vice versa (one ``nn.MultiheadAttention`` of ``heads`` heads per direction, both reading the embedded tokens,
  residual + LayerNorm); all tokens of both views are mean-pooled and one linear head per factor predicts its class.
  Trained multi-task (cross-entropy summed over factors) with Adam (``lr``) for ``epochs`` passes over the training
  rows in shuffled minibatches of ``batch_size``. Initialisation and shuffling are seeded by ``seed`` inside
  ``torch.random.fork_rng`` (the caller's torch RNG state is untouched) and torch runs on ``threads`` threads (then
  restored), so on CPU the result is the same on every call.

A factor with a single class in the training rows predicts that class under every method (listed in ``constant``).

``corrupt`` = ``(view, kind, level)`` with view ``"a"`` or ``"b"`` corrupts that view's TEST codes only (every model is
trained on clean codes), for a robustness check in the spirit of Ma et al. 2022, "Are Multimodal Transformers Robust to
Missing Modality?":

* ``("b", "noise", s)`` adds independent N(0, (s·σ_j)²) noise to each column j of view b's test codes, σ_j the column's
  std over the training rows (a constant column gets none);
* ``("b", "drop", p)`` marks ``round(p · num_test)`` test rows (seeded) as missing view b and replaces their view-b
  code by its training mean, which is 0 after standardisation: every method then sees the mean code, the usual
  mean imputation of a missing modality (late fusion still averages both probes' probabilities).

The noise and the dropped rows are drawn from ``numpy.random.default_rng((seed, 1))``. With ``corrupt`` the details
also hold the accuracies of the same trained models on the clean test codes (``clean_accuracy``).

``train_corrupt`` = f > 0 (with ``corrupt``) trains every model on corrupted codes too: ``round(f · num_train)``
training rows (drawn from ``numpy.random.default_rng((seed, 2))``) get the same corruption of the same view, with σ_j
and the mean of the clean training rows, and every probe, scaler and the cross-attention model fit on those training
codes. This is corruption-aware training in the spirit of ModDrop (Neverova et al. 2016, "ModDrop: Adaptive
Multi-Modal Gesture Recognition"): a model that has seen a bad view during training can learn to lean on the other
one; with f = 0 every model is trained on clean codes as above.

``score`` = the mean ``early`` accuracy over factors (on the corrupted test codes when ``corrupt`` is given).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from torch import nn

from metrics import defaults
from metrics._checks import check_codes, check_factors, require_samples
from metrics.sampling import split_indices
from metrics.types import MetricError, MetricResult

#: The methods, in table order (ties of ``best_method`` go to the earlier one).
METHODS: tuple[str, ...] = ("view_a", "view_b", "early", "intermediate", "late")
#: The test-time corruptions of one view.
CORRUPTIONS: tuple[str, ...] = ("noise", "drop")

Subspaces = Sequence[tuple[str, int]]


def _token_widths(subspaces: Subspaces | None, width: int, view: str) -> list[int]:
    """Widths of the tokens of a view of ``width`` dims: one per subspace (widths >= 1 summing to ``width``), or one
    per dimension when ``subspaces`` is None."""
    if subspaces is None:
        return [1] * width
    widths = [int(w) for _, w in subspaces]
    if not widths or min(widths) < 1:
        raise MetricError(f"view {view} subspace widths must be >= 1 (at least one subspace), got {widths}")
    if sum(widths) != width:
        raise MetricError(
            f"view {view} subspace widths sum to {sum(widths)} but its codes have {width} dims; pass one entry per column"
        )
    return widths


def _resolve_subspaces(
    subspaces: Subspaces | tuple[Subspaces | None, Subspaces | None] | None, width_a: int, width_b: int
) -> tuple[list[int], list[int]]:
    """Token widths of both views from one spec shared by both views or a pair ``(subspaces_a, subspaces_b)``."""
    if subspaces is None:
        return _token_widths(None, width_a, "a"), _token_widths(None, width_b, "b")
    items = list(subspaces)
    if len(items) == 2 and all(s is None or (len(s) > 0 and not isinstance(s[0], str)) for s in items):
        sub_a, sub_b = cast("tuple[Subspaces | None, Subspaces | None]", tuple(items))
    else:
        sub_a = sub_b = cast("Subspaces", items)
    return _token_widths(sub_a, width_a, "a"), _token_widths(sub_b, width_b, "b")


def _check_corrupt(corrupt: tuple[str, str, float] | None) -> tuple[int, str, float] | None:
    """``(view index, kind, level)`` of a corruption spec, or one :class:`MetricError` line."""
    if corrupt is None:
        return None
    if len(corrupt) != 3:
        raise MetricError(f"corrupt must be (view, kind, level) such as ('b', 'noise', 2.0), got {corrupt!r}")
    view, kind, level = corrupt
    if view not in ("a", "b"):
        raise MetricError(f"corrupt view must be 'a' or 'b', got {view!r}")
    if kind not in CORRUPTIONS:
        raise MetricError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
    level = float(level)
    if not math.isfinite(level) or level < 0 or (kind == "drop" and level > 1):
        bound = "a fraction in [0, 1]" if kind == "drop" else "a finite number >= 0"
        raise MetricError(f"corrupt level of {kind!r} must be {bound}, got {level}")
    return (0 if view == "a" else 1), kind, level


def _corrupted(
    x_test: np.ndarray, x_train: np.ndarray, kind: str, level: float, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """The test codes of one view under the corruption (module docstring) and the number of rows it touched."""
    if kind == "noise":
        return x_test + rng.normal(size=x_test.shape) * (level * x_train.std(axis=0)), x_test.shape[0]
    num = round(level * x_test.shape[0])
    rows = rng.choice(x_test.shape[0], size=num, replace=False)
    out = x_test.copy()
    out[rows] = x_train.mean(axis=0)
    return out, num


class _Probe:
    """A multinomial logistic regression on standardised codes; a single training class predicts that class."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, c: float, max_iter: int) -> None:
        self.scaler = StandardScaler().fit(x_train)
        self.clf: LogisticRegression | None = None
        if np.unique(y_train).size > 1:
            with threadpool_limits(limits=1), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.clf = LogisticRegression(C=c, max_iter=max_iter).fit(self.scaler.transform(x_train), y_train)

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)`` over the sorted training classes."""
        if self.clf is None:
            return np.ones((x.shape[0], 1))
        with threadpool_limits(limits=1):
            return np.asarray(self.clf.predict_proba(self.scaler.transform(x)))


class _TokenEmbed(nn.Module):
    """Per-token ``Linear(width_t, d_model)`` over consecutive column ranges of a code, as one masked map, plus a
    learned position embedding; ``(n, D)`` -> ``(n, T, d_model)``."""

    mask: torch.Tensor

    def __init__(self, widths: Sequence[int], d_model: int) -> None:
        super().__init__()
        num, dims = len(widths), int(sum(widths))
        mask = torch.zeros(num, 1, dims)
        bound = torch.zeros(num, 1, 1)
        start = 0
        for t, w in enumerate(widths):
            mask[t, 0, start : start + w] = 1.0
            bound[t] = 1.0 / math.sqrt(w)  # nn.Linear's default initialisation range
            start += w
        self.register_buffer("mask", mask)
        self.weight = nn.Parameter((torch.rand(num, d_model, dims) * 2 - 1) * bound * mask)
        self.bias = nn.Parameter((torch.rand(num, d_model) * 2 - 1) * bound[:, :, 0])
        self.position = nn.Parameter(0.02 * torch.randn(num, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight * self.mask
        return torch.einsum("nd,tmd->ntm", x, weight) + self.bias + self.position


class _CrossFusion(nn.Module):
    """Tokens of each view attend to the other view's tokens (residual + LayerNorm), mean-pooled, one head per factor."""

    def __init__(
        self, widths_a: Sequence[int], widths_b: Sequence[int], num_classes: Sequence[int], d_model: int, heads: int
    ) -> None:
        super().__init__()
        self.embed_a, self.embed_b = _TokenEmbed(widths_a, d_model), _TokenEmbed(widths_b, d_model)
        self.attend_ab = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.attend_ba = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.norm_a, self.norm_b = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.heads = nn.ModuleList([nn.Linear(d_model, n) for n in num_classes])

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> list[torch.Tensor]:
        ta, tb = self.embed_a(xa), self.embed_b(xb)
        fa = self.norm_a(ta + self.attend_ab(ta, tb, tb, need_weights=False)[0])
        fb = self.norm_b(tb + self.attend_ba(tb, ta, ta, need_weights=False)[0])
        pooled = torch.cat([fa, fb], dim=1).mean(dim=1)
        return [head(pooled) for head in self.heads]


def _intermediate_predictions(
    za_train: np.ndarray,
    zb_train: np.ndarray,
    targets: np.ndarray,
    num_classes: Sequence[int],
    tests: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    widths: tuple[list[int], list[int]],
    settings: dict[str, Any],
    seed: int,
) -> list[np.ndarray]:
    """Train the cross-attention model on standardised training codes and ``targets`` (n, K) of class indices; returns
    the predicted class indices ``(n_test, K)`` of each standardised test pair in ``tests``."""
    threads = settings["threads"]
    previous = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(int(threads))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _CrossFusion(widths[0], widths[1], num_classes, settings["d_model"], settings["heads"])
            order = torch.Generator().manual_seed(seed)
            xa, xb = torch.as_tensor(za_train, dtype=torch.float32), torch.as_tensor(zb_train, dtype=torch.float32)
            y = torch.as_tensor(targets, dtype=torch.int64)
            optimiser = torch.optim.Adam(model.parameters(), lr=settings["lr"])
            loss_fn = nn.CrossEntropyLoss()
            model.train()
            for _ in range(settings["epochs"]):
                for batch in torch.randperm(xa.shape[0], generator=order).split(settings["batch_size"]):
                    logits = model(xa[batch], xb[batch])
                    loss = sum((loss_fn(out, y[batch, k]) for k, out in enumerate(logits)), torch.zeros(()))
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
            model.eval()
            out = []
            with torch.no_grad():
                for za, zb in tests:
                    logits = model(torch.as_tensor(za, dtype=torch.float32), torch.as_tensor(zb, dtype=torch.float32))
                    out.append(np.stack([lg.argmax(dim=1).numpy() for lg in logits], axis=1))
            return out
    finally:
        torch.set_num_threads(previous)


def _standardise(x_train: np.ndarray, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``xs`` standardised with the training rows' mean and std (a constant column is only centred)."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [(x - mean) / std for x in xs]


def fusion_probes(
    view_a: np.ndarray,
    view_b: np.ndarray,
    factors: np.ndarray,
    *,
    subspaces: Subspaces | tuple[Subspaces | None, Subspaces | None] | None = None,
    seed: int = defaults.SEED,
    num_train: int = defaults.FUSION.num_train,
    num_test: int = defaults.FUSION.num_test,
    corrupt: tuple[str, str, float] | None = None,
    train_corrupt: float = 0.0,
    c: float = defaults.FUSION.c,
    max_iter: int = defaults.FUSION.max_iter,
    d_model: int = defaults.FUSION.d_model,
    heads: int = defaults.FUSION.heads,
    epochs: int = defaults.FUSION.epochs,
    batch_size: int = defaults.FUSION.batch_size,
    lr: float = defaults.FUSION.lr,
    threads: int | None = defaults.FUSION.threads,
    factor_names: Sequence[str] | None = None,
) -> MetricResult:
    """Held-out accuracy per factor of each view alone and of early, intermediate and late fusion (module docstring).

    ``view_a`` (N, Da) and ``view_b`` (N, Db): codes of the same N inputs; ``factors`` (N, K) their classes.
    ``subspaces``: the tokens of the intermediate model, one list of ``(name, width)`` for both views or a pair
    ``(subspaces_a, subspaces_b)`` (None: one token per dimension). Details: ``accuracy`` ``{method: {factor: acc}}``,
    ``mean_accuracy`` ``{method: mean over factors}``, ``best_method``, ``fusion_gain`` (each fusion's mean minus the
    better single view's), ``chance_accuracy`` (majority class share of the test rows), ``constant``; with ``corrupt``
    also ``clean_accuracy``, ``clean_mean_accuracy`` and ``corrupted_rows`` (and ``corrupted_train_rows`` with
    ``train_corrupt``)."""
    a = check_codes(view_a, name="view a codes")
    b = check_codes(view_b, name="view b codes")
    y = check_factors(factors)
    if a.shape[0] != b.shape[0]:
        raise MetricError(
            f"view a codes have {a.shape[0]} rows but view b codes have {b.shape[0]}; encode the same inputs in both views"
        )
    if y.shape[0] != a.shape[0]:
        raise MetricError(f"codes have {a.shape[0]} rows but factors have {y.shape[0]}; pass one factor row per input")
    if num_train < 1 or num_test < 1:
        raise MetricError(f"num_train and num_test must be >= 1, got {num_train} and {num_test}")
    require_samples(a.shape[0], num_train + num_test, "fusion_probes")
    if d_model < 1 or heads < 1 or d_model % heads:
        raise MetricError(f"d_model ({d_model}) must be a positive multiple of heads ({heads}); e.g. 32 and 4")
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise MetricError(f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size} and {lr}")
    widths = _resolve_subspaces(subspaces, a.shape[1], b.shape[1])
    spec = _check_corrupt(corrupt)
    if not 0.0 <= train_corrupt <= 1.0 or (train_corrupt > 0 and spec is None):
        raise MetricError(
            f"train_corrupt must be a fraction in [0, 1] of the training rows, given with corrupt=(view, kind, level); "
            f"got {train_corrupt} with corrupt={corrupt!r}"
        )
    num_factors = y.shape[1]
    names = list(factor_names) if factor_names is not None else [f"factor_{k}" for k in range(num_factors)]
    if len(names) != num_factors:
        raise MetricError(f"got {len(names)} factor names for {num_factors} factors; pass one name per factor column")

    train, test = split_indices(a.shape[0], num_train, num_test, np.random.default_rng(seed))
    views_train = [a[train], b[train]]
    clean = [a[test], b[test]]
    conditions = {"accuracy": clean}
    corrupted_rows = corrupted_train = 0
    if spec is not None:
        view, kind, level = spec
        noisy = list(clean)
        noisy[view], corrupted_rows = _corrupted(
            clean[view], views_train[view], kind, level, np.random.default_rng((seed, 1))
        )
        conditions = {"accuracy": noisy, "clean_accuracy": clean}
        if train_corrupt > 0:
            rng = np.random.default_rng((seed, 2))
            rows = rng.choice(num_train, size=round(train_corrupt * num_train), replace=False)
            augmented = views_train[view].copy()
            augmented[rows], _ = _corrupted(
                augmented[rows], views_train[view], kind, 1.0 if kind == "drop" else level, rng
            )
            views_train[view], corrupted_train = augmented, rows.size
    both_train = np.hstack(views_train)

    # class indices of each factor over its training classes; unseen test classes become -1 (always wrong)
    targets = np.zeros((num_train, num_factors), dtype=np.int64)
    test_targets = np.full((num_test, num_factors), -1, dtype=np.int64)
    num_classes: list[int] = []
    for k in range(num_factors):
        classes = np.unique(y[train, k])
        num_classes.append(int(classes.size))
        targets[:, k] = np.searchsorted(classes, y[train, k])
        pos = np.minimum(np.searchsorted(classes, y[test, k]), classes.size - 1)
        test_targets[:, k] = np.where(classes[pos] == y[test, k], pos, -1)

    preds: dict[str, dict[str, np.ndarray]] = {cond: {} for cond in conditions}
    for cond in conditions:
        for method in METHODS:
            preds[cond][method] = np.zeros((num_test, num_factors), dtype=np.int64)
    for k in range(num_factors):
        probe_a = _Probe(views_train[0], targets[:, k], c, max_iter)
        probe_b = _Probe(views_train[1], targets[:, k], c, max_iter)
        probe_ab = _Probe(both_train, targets[:, k], c, max_iter)
        for cond, (xa, xb) in conditions.items():
            pa, pb = probe_a.proba(xa), probe_b.proba(xb)
            preds[cond]["view_a"][:, k] = pa.argmax(axis=1)
            preds[cond]["view_b"][:, k] = pb.argmax(axis=1)
            preds[cond]["early"][:, k] = probe_ab.proba(np.hstack([xa, xb])).argmax(axis=1)
            preds[cond]["late"][:, k] = ((pa + pb) / 2).argmax(axis=1)

    za_train, zb_train = views_train
    tests = []
    for xa, xb in conditions.values():
        tests.append((_standardise(za_train, [xa])[0], _standardise(zb_train, [xb])[0]))
    net_settings: dict[str, Any] = {
        "d_model": d_model,
        "heads": heads,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "threads": threads,
    }
    inter = _intermediate_predictions(
        _standardise(za_train, [za_train])[0],
        _standardise(zb_train, [zb_train])[0],
        targets,
        num_classes,
        tests,
        widths=widths,
        settings=net_settings,
        seed=seed,
    )
    for cond, pred in zip(conditions, inter, strict=True):
        preds[cond]["intermediate"] = pred

    details: dict[str, Any] = {"factor_names": names}
    for cond in conditions:
        acc = {m: (preds[cond][m] == test_targets).mean(axis=0) for m in METHODS}
        mean = {m: float(acc[m].mean()) for m in METHODS}
        prefix = "" if cond == "accuracy" else "clean_"
        details[cond] = {m: dict(zip(names, acc[m].tolist(), strict=True)) for m in METHODS}
        details[f"{prefix}mean_accuracy"] = mean
    mean = details["mean_accuracy"]
    details["best_method"] = max(METHODS, key=lambda m: (mean[m], -METHODS.index(m)))
    single = max(mean["view_a"], mean["view_b"])
    details["fusion_gain"] = {m: mean[m] - single for m in ("early", "intermediate", "late")}
    details["chance_accuracy"] = {
        names[k]: float(np.bincount(y[test, k] - y[test, k].min()).max() / num_test) for k in range(num_factors)
    }
    details["constant"] = [names[k] for k in range(num_factors) if num_classes[k] == 1]
    if spec is not None:
        details["corrupted_rows"] = corrupted_rows
    if train_corrupt > 0:
        details["corrupted_train_rows"] = corrupted_train
    return MetricResult(
        name="fusion_probes",
        score=mean["early"],
        details=details,
        settings={
            "seed": seed,
            "num_train": num_train,
            "num_test": num_test,
            "corrupt": list(corrupt) if corrupt is not None else None,
            "train_corrupt": train_corrupt,
            "c": c,
            "max_iter": max_iter,
            "tokens": [len(widths[0]), len(widths[1])],
            **net_settings,
        },
    )
