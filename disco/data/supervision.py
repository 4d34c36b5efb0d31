"""What the learner is allowed to see: the ONE place where a pair batch is cut down to its supervision level.

Levels (``data.supervision``):

* ``labels``: the pair and the factor classes of both images (same-value candidates can be masked, SupCon style);
* ``pairs``: the images and ``shared`` only — which factors the two images share, never their values (the weak
  supervision of Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises");
* ``augment``: the images only; ``shared`` comes from the tags of the augmentations that made the second view
  (von Kügelgen et al. 2021, "Self-Supervised Learning with Data Augmentations Provably Isolates Content from Style").

A run whose objective uses no pair information at all (a β-VAE / β-TCVAE baseline) saw images only: its resolved level
is ``none`` (:func:`resolve_supervision`).
"""

from __future__ import annotations

from typing import Any

from disco.data.pairs import PairBatch
from disco.errors import ConfigError

LEVELS: tuple[str, ...] = ("labels", "pairs", "augment")
#: What each resolved level means, for tables and reports.
MEANING: dict[str, str] = {
    "none": "images only (no pair or factor information)",
    "augment": "images only; pairs from factor-tagged augmentations",
    "pairs": "pairs + which factors they share (no factor values)",
    "labels": "pairs + factor classes of both images",
}


def check_level(level: str) -> str:
    """``level`` if it is one of :data:`LEVELS`, else one :class:`ConfigError` line listing them."""
    if level not in LEVELS:
        raise ConfigError(f"unknown data.supervision {level!r}; choose one of {', '.join(LEVELS)}")
    return level


def reveal(batch: PairBatch, level: str) -> PairBatch:
    """The part of ``batch`` the objective may see at ``level``: factor classes are kept only for ``labels``."""
    if check_level(level) == "labels" or (batch.classes_a is None and batch.classes_b is None):
        return batch
    return PairBatch(batch.x_a, batch.x_b, batch.shared, batch.factor_names)


def resolve_supervision(level: str, objective: Any) -> str:
    """The supervision a run really used: ``level`` cut down to what its active objective terms consume.

    Only the contrastive and localisation terms read ``shared``, and only the contrastive term with
    ``mask_same_value`` reads classes. ``objective`` is an :class:`~disco.train.config.ObjectiveConfig` (or any object
    with those sections)."""
    check_level(level)
    contrastive = float(objective.contrastive.weight) != 0.0
    reads_pairs = contrastive or float(objective.localisation.weight) != 0.0
    if not reads_pairs:
        return "none"
    if level == "labels" and not (contrastive and bool(objective.contrastive.mask_same_value)):
        return "pairs"
    return level
