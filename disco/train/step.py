"""The inputs every objective term receives, and the context its builder gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from disco.data.pairs import PairBatch
from disco.models.subspaces import SubspaceSpec


@dataclass
class TermContext:
    """What builders may need besides their own config section."""

    spec: SubspaceSpec
    factor_names: tuple[str, ...]
    dataset_size: int
    has_decoder: bool


@dataclass
class StepInputs:
    """One training step's tensors: both views were encoded as one batch, rows ``[:B]`` are view a, ``[B:]`` view b.

    ``decode`` maps codes to decoder logits (the module's micro-batched decoder pass), None without a decoder.
    """

    batch: PairBatch
    x: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    step: int
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def z_a(self) -> torch.Tensor:
        return self.z[: len(self.batch)]

    @property
    def z_b(self) -> torch.Tensor:
        return self.z[len(self.batch) :]
