"""Which metrics apply to a dataset, and the evaluation that needs no ground truth: codes-only metrics and the
augmentation activity matrix.

:func:`plan_metrics` decides what runs (for "every metric" it names what is skipped and why, and an explicit request
that cannot run is refused before anything is encoded).

For a dataset without factor labels (a folder of images imported with ``disco data import``) the suite runs the metrics
of :data:`metrics.suite.CODES_ONLY` (unsupervised scores, active units) on the codes, and
:func:`augmentation_activity` asks the encoder how its subspaces react to each factor-tagged augmentation: for every
tagged factor, pairs of views that differ ONLY in that augmentation (von Kügelgen et al. 2021) are encoded, and
:func:`metrics.augmentation_activity.augmentation_activity` measures where the change lands. The same matrix is
reported for runs trained with ``supervision: augment`` on labelled data, beside the ground-truth metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from disco.data.augment import augmenter_from_config
from disco.data.datasets import GroundTruthData
from disco.errors import ConfigError
from disco.evaluate import Representer
from disco.models.subspaces import SubspaceSpec
from metrics.augmentation_activity import augmentation_activity
from metrics.types import MetricResult

#: The metric name under which the augmentation activity is reported.
AUGMENTATION_ACTIVITY = "augmentation_activity"


def plan_metrics(
    names: list[str],
    *,
    has_factors: bool,
    on_grid: bool,
    with_augmentation: bool,
    has_subspaces: bool = True,
    continuous: bool = False,
    what: str = "metrics",
) -> tuple[list[str], dict[str, str]]:
    """The metrics to run and ``{skipped metric: why}``.

    ``names`` empty (or ``["all"]``) means every metric that applies: ground-truth metrics need factor labels,
    interventional ones (and the activity matrix's interventions) a full factor grid, ``mig_subspace`` named subspaces;
    ``augmentation_activity`` is added for augmentation-trained runs and data without factors. An explicit list is
    checked instead: an unknown name or one that cannot run on this data is one :class:`ConfigError` line.
    ``continuous`` factors (real-valued) allow :data:`metrics.suite.CONTINUOUS_OK` only."""
    from metrics.suite import AVAILABLE, CODES_ONLY, CONTINUOUS_OK, INTERVENTIONAL

    known = (*AVAILABLE, AUGMENTATION_ACTIVITY)

    def reason(name: str) -> str | None:
        if name == AUGMENTATION_ACTIVITY:
            return None
        if not has_factors and name not in CODES_ONLY:
            return "needs factor labels, which this dataset lacks"
        if name in INTERVENTIONAL and not on_grid:
            return "intervenes on factors and needs a dataset holding its full factor grid in order"
        if name == "mig_subspace" and not has_subspaces:
            return "needs named subspaces (a disco checkpoint or --subspaces)"
        if continuous and name not in CONTINUOUS_OK:
            return f"needs factor classes, and these factors are continuous (use {', '.join(sorted(CONTINUOUS_OK))})"
        return None

    if not names or names == ["all"]:
        skipped = {n: why for n in AVAILABLE if (why := reason(n)) is not None}
        run = [n for n in AVAILABLE if n not in skipped]
        if with_augmentation or not has_factors:
            run.append(AUGMENTATION_ACTIVITY)
        else:
            skipped[AUGMENTATION_ACTIVITY] = "only for augmentation-trained runs or data without factors (ask for it)"
        return run, skipped
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"{what} names unknown metric(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    for name in names:
        why = reason(name)
        if why is not None:
            hint = (
                f"; without factors ask for {', '.join(sorted(CODES_ONLY))}, {AUGMENTATION_ACTIVITY} or all"
                if not has_factors
                else ""
            )
            raise ConfigError(f"{what} asks for {name}, which {why}; drop it{hint}")
    return list(dict.fromkeys(names)), {}


def subspace_factor_map(
    spec: SubspaceSpec | None, factor_names: tuple[str, ...], factor_map: Mapping[str, Sequence[str]]
) -> dict[str, list[str]] | None:
    """Subspace -> dataset factors for the subspace-aware scores: the ``factor_map`` entries (``eval.factor_map``),
    plus every subspace whose tied factor the dataset has; ``None`` when ``factor_map`` is empty (ties by name)."""
    if not factor_map:
        return None
    names = spec.names if spec is not None else ()
    for sub, tied in factor_map.items():
        if sub not in names:
            raise ConfigError(
                f"factor map names subspace {sub!r}, which the model lacks; its subspaces are {', '.join(names) or 'none'}"
            )
        missing = [f for f in tied if f not in factor_names]
        if missing:
            raise ConfigError(
                f"factor map ties {sub!r} to {', '.join(missing)}, which the dataset lacks; its factors are "
                f"{', '.join(factor_names) or 'none (unlabelled)'}"
            )
    out = {s.name: [s.factor] for s in (spec.tied if spec is not None else ()) if s.factor in factor_names}
    out.update({k: list(v) for k, v in factor_map.items()})
    return out


def augmentation_pairs(
    represent: Representer,
    data: GroundTruthData,
    rows: np.ndarray,
    augment: Mapping[str, Any],
    *,
    num_pairs: int = 1000,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Codes of ``num_pairs`` view pairs per tagged augmentation, each pair differing in that augmentation only.

    Images are drawn uniformly (with ``seed``) from ``rows``; the augmenter is built from ``augment`` (the run's
    ``data.augment``) with ``seed``, on the encoder's device, so the result is deterministic."""
    augmenter = augmenter_from_config(dict(augment), seed=seed)
    tagged = list(augmenter.factors)
    pick = np.random.default_rng(seed).choice(rows, size=num_pairs, replace=rows.size < num_pairs)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, name in enumerate(tagged):
        codes_a, codes_b = [], []
        for start in range(0, num_pairs, represent.batch_size):
            idx = torch.as_tensor(pick[start : start + represent.batch_size], dtype=torch.long)
            x = data.images[idx].to(represent.device).float().div_(255.0)
            changed = torch.zeros(len(idx), len(tagged), dtype=torch.bool, device=x.device)
            changed[:, j] = True
            batch = augmenter.make_pairs(x, changed)
            codes_a.append(represent.encode_images(batch.x_a))
            codes_b.append(represent.encode_images(batch.x_b))
        out[name] = (np.concatenate(codes_a), np.concatenate(codes_b))
    return out


def score_augmentation(
    represent: Representer,
    data: GroundTruthData,
    rows: np.ndarray,
    augment: Mapping[str, Any],
    spec: SubspaceSpec | None,
    *,
    num_pairs: int = 1000,
    seed: int = 0,
) -> MetricResult:
    """The augmentation activity matrix of the encoder behind ``represent`` (see the module docstring); without a
    subspace spec every code dimension is its own subspace."""
    pairs = augmentation_pairs(represent, data, rows, augment, num_pairs=num_pairs, seed=seed)
    dim = next(iter(pairs.values()))[0].shape[1]
    subspaces = [(s.name, s.width) for s in spec] if spec is not None else [(f"z{d}", 1) for d in range(dim)]
    ties = {s.name: s.factor for s in spec.tied if s.factor in pairs} if spec is not None else {}
    result = augmentation_activity(pairs, subspaces, subspace_factors=ties)
    result.settings.update({"num_pairs": num_pairs, "seed": seed, "augment": dict(augment)})
    return result
