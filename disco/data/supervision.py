"""What the learner is allowed to see: the ONE place where a pair batch is cut down to its supervision level.

Levels (``data.supervision``):

* ``labels``: the pair and the factor classes of both images (same-value candidates can be masked, SupCon style);
* ``pairs``: the images and ``shared`` only — which factors the two images share, never their values (the weak
  supervision of Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises");
* ``augment``: the images only; ``shared`` comes from the tags of the augmentations that made the second view
  (von Kügelgen et al. 2021, "Self-Supervised Learning with Data Augmentations Provably Isolates Content from Style").

A run whose objective uses no pair information at all (a β-VAE / β-TCVAE / FactorVAE baseline) saw images only: its
resolved level is ``none`` (:func:`resolve_supervision`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from disco.data.pairs import PairBatch
from disco.errors import ConfigError

LEVELS: tuple[str, ...] = ("labels", "pairs", "augment")
#: What each resolved level means, for tables and reports.
MEANING: dict[str, str] = {
    "none": "images only (no pair or factor information)",
    "augment": "images only; pairs from factor-tagged augmentations (and the parameters the learner applied)",
    "pairs": "pairs + which factors they share (no factor values)",
    "labels": "pairs + factor classes of both images",
}


def check_level(level: str) -> str:
    """``level`` if it is one of :data:`LEVELS`, else one :class:`ConfigError` line listing them."""
    if level not in LEVELS:
        raise ConfigError(f"unknown data.supervision {level!r}; choose one of {', '.join(LEVELS)}")
    return level


def reveal(batch: PairBatch, level: str, target_labelled: bool = False) -> PairBatch:
    """The part of ``batch`` the objective may see at ``level``: factor classes are kept only for ``labels``.

    Its cross-domain pairs (``batch.cross``) keep the source view's classes at ``labels`` and the target view's only
    when the target is labelled too (``data.target.labelled``); which input a cross-domain pair shows (``ids``) is the
    pairing itself and is kept."""
    check_level(level)
    cross = batch.cross
    if level == "labels" and cross is None:
        return batch
    if cross is not None:
        keep_b = level == "labels" and target_labelled
        cross = replace(
            cross,
            classes_a=cross.classes_a if level == "labels" else None,
            classes_b=cross.classes_b if keep_b else None,
        )
    if level == "labels":
        return replace(batch, cross=cross)
    return replace(batch, classes_a=None, classes_b=None, cross=cross)


#: Alignment kinds that read the cross-domain pairs (which inputs correspond), those that read factor classes, and
#: those that read the TARGET's classes when the target is labelled (factor_nce gives both renders the source's).
PAIRED_ALIGNMENTS = frozenset({"moco", "margin", "triplet", "center", "factor_nce"})
LABELLED_ALIGNMENTS = frozenset({"center", "factor_nce"})
TARGET_LABELLED_ALIGNMENTS = frozenset({"center"})


def _alignment_kinds(objective: Any) -> set[str]:
    return {str(t.kind) for t in getattr(objective, "alignment", []) if float(t.weight) != 0.0}


#: What some terms read, finer than the level they resolve to (for reports next to :data:`MEANING`).
NOTES: dict[str, str] = {
    "weak_vae/adaptive": "Ada-GVAE/Ada-ML-VAE read only that the two images form a pair; which factors they share is "
    "inferred from the codes, never read",
    "weak_vae/labels": "the weak VAE reads which factors each pair shares (shared), never their values",
    "supervised": "the supervised term reads every factor class of both images: a reference ceiling, not a "
    "disentanglement method",
    "auxiliary": "the auxiliary term reads the classes of its factors through heads on the trunk features (deep "
    "supervision), not on the code",
}


def _on(objective: Any, name: str) -> bool:
    """Whether section ``name`` of ``objective`` exists and has a non-zero weight."""
    return float(getattr(getattr(objective, name, None), "weight", 0.0)) != 0.0


def supervision_notes(objective: Any) -> list[str]:
    """The :data:`NOTES` of the active terms of ``objective`` (empty when none applies)."""
    keys = []
    if _on(objective, "weak_vae"):
        keys.append(f"weak_vae/{objective.weak_vae.shared}")
    for name in ("supervised", "auxiliary"):
        if _on(objective, name):
            keys.append(name)
    return [NOTES[k] for k in keys]


def resolve_supervision(level: str, objective: Any) -> str:
    """The supervision a run really used: ``level`` cut down to what its active objective terms consume.

    Only the contrastive, localisation, equivariance, weak-VAE, supervised and auxiliary terms and the instance-level
    alignment terms read pairs, and only the contrastive term with ``mask_same_value``, the supervised and auxiliary
    terms and the ``center`` alignment read classes. The weak VAE reads the pair (``shared: adaptive``: only that the
    two images belong together; ``labels``: which factors they share), never classes, so it resolves to ``pairs`` at
    the labels level. The supervised and auxiliary terms need the classes: below ``labels`` they are a
    :class:`ConfigError`. ``objective`` is an :class:`~disco.train.config.ObjectiveConfig` (or any object with those
    sections)."""
    check_level(level)
    classifiers = [name for name in ("supervised", "auxiliary") if _on(objective, name)]
    if classifiers and level != "labels":
        raise ConfigError(f"objective.{classifiers[0]} reads factor classes; it needs data.supervision: labels")
    supervised = bool(classifiers)
    kinds = _alignment_kinds(objective)
    contrastive = float(objective.contrastive.weight) != 0.0
    reads_pairs = (
        contrastive
        or supervised
        or any(_on(objective, name) for name in ("localisation", "equivariance", "weak_vae"))
        or bool(kinds & PAIRED_ALIGNMENTS)
    )
    if not reads_pairs:
        return "none"
    reads_classes = (
        (contrastive and bool(objective.contrastive.mask_same_value)) or supervised or bool(kinds & LABELLED_ALIGNMENTS)
    )
    if level == "labels" and not reads_classes:
        return "pairs"
    return level


def target_supervision(objective: Any, target: Any) -> str | None:
    """What the alignment saw of the target domain: ``None`` without a target (or without alignment terms that read
    it), ``images`` (batch-level terms only), ``cross-domain pairs`` (an instance-level term), with ``+ target
    labels`` when the target's classes may be read (``data.target.labelled`` at the labels level)."""
    if not getattr(target, "enabled", False):
        return None
    kinds = _alignment_kinds(objective) - {"prior"}
    if not kinds:
        return None
    seen = "cross-domain pairs" if kinds & PAIRED_ALIGNMENTS else "images"
    return seen + (" + target labels" if bool(target.labelled) and kinds & TARGET_LABELLED_ALIGNMENTS else "")
