"""The inputs every objective term receives, and the context its builder gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from disco.data.pairs import PairBatch
from disco.data.symmetry import FactorSymmetry
from disco.models.subspaces import SubspaceSpec


@dataclass
class TermContext:
    """What builders may need besides their own config section.

    ``encoder``: the online encoder (MoCo's momentum copy is made from it). ``target``: ``"paired"`` when the run has a
    target with cross-domain pairs of the same inputs, ``"unpaired"`` for target images without correspondence, ``None``
    without a target; ``target_labelled``: the objective may read the target's classes. ``supervision``: the run's ``data.supervision``. ``max_steps``: the run's step budget (DANN's λ
    ramp). ``factor_sizes``: classes per factor, in ``factor_names`` order. ``augment``: the augmenter's config
    (``data.augment``) when the run trains on augmented pairs, else None. ``symmetries``: the parsed
    ``data.symmetries``.
    """

    spec: SubspaceSpec
    factor_names: tuple[str, ...]
    dataset_size: int
    has_decoder: bool
    encoder: nn.Module | None = None
    target: str | None = None
    target_labelled: bool = False
    supervision: str = "labels"
    max_steps: int = 0
    factor_sizes: tuple[int, ...] = ()
    augment: dict[str, Any] | None = None
    symmetries: tuple[FactorSymmetry, ...] = ()


@dataclass
class CrossInputs:
    """The cross-domain pairs of a step and their codes (encoder means): ``z_a`` source domain, ``z_b`` target."""

    batch: PairBatch
    z_a: torch.Tensor
    z_b: torch.Tensor


@dataclass
class StepInputs:
    """One training step's tensors: both views were encoded as one batch, rows ``[:B]`` are view a, ``[B:]`` view b.

    ``decode`` maps codes to decoder logits (the module's micro-batched decoder pass), None without a decoder.
    ``cross``: the cross-domain pairs of the step when the run has a target (:class:`CrossInputs`).
    ``z`` are the codes the code terms read; ``sample`` the β-VAE branch's sampled codes when those differ from ``z``
    (``vae.other_terms_read: mean``), else None (``z`` is what the branch decodes). ``hidden``: the encoder's hidden
    features of both views when a term reads them (:attr:`Objective.needs_hidden`), else None.
    """

    batch: PairBatch
    x: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    step: int
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None
    cross: CrossInputs | None = None
    sample: torch.Tensor | None = None
    hidden: torch.Tensor | None = None

    @property
    def z_a(self) -> torch.Tensor:
        return self.z[: len(self.batch)]

    @property
    def z_b(self) -> torch.Tensor:
        return self.z[len(self.batch) :]
