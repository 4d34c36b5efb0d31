"""The pair-source interface: where pair batches come from (DESIGN.md, "the pair batch").

A pair source draws :class:`~disco.data.pairs.PairBatch` es of a fixed size on the training device and can save and
restore its random state for exact resume. The objective never knows which source made a batch. Sources are built
from a :class:`SourceRequest` (the dataset, the rows pairs may use, the batch size, device, seed and the source's own
settings from ``data.*``); the registry in :mod:`disco.data.sources` maps a name to the class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from disco.data.datasets import GroundTruthData
from disco.data.domains import Domain
from disco.data.pairs import PairBatch


@dataclass
class SourceRequest:
    """What a source is built from. ``settings`` holds the data section's keys (``pair_mode``, ``change_k``,
    ``augment``, ...); each source reads the keys it needs. ``domain`` renders the images of ``data`` in a domain shift
    (:mod:`disco.data.domains`; ``None``: as stored)."""

    data: GroundTruthData
    indices: torch.Tensor
    batch_size: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    settings: Mapping[str, Any] = field(default_factory=dict)
    domain: Domain | None = None


class PairSource(ABC):
    """Draws pair batches of ``batch_size`` pairs on one device; ``factor_names`` are the columns of ``shared``."""

    #: The supervision levels this source can serve (see :mod:`disco.data.supervision`).
    levels: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abstractmethod
    def build(cls, request: SourceRequest) -> PairSource:
        """The source for ``request``; raises :class:`~disco.errors.ConfigError` for settings it cannot serve."""

    @property
    @abstractmethod
    def factor_names(self) -> tuple[str, ...]:
        """Names of the columns of ``shared`` (the names subspaces tie to)."""

    @abstractmethod
    def sample(self) -> PairBatch:
        """The next batch of pairs (all tensors on the source's device)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Random state (and counters) for exact resume; plain tensors and numbers only."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
