"""The pair batch: the one structure every training signal in disco is built from (see DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class PairBatch:
    """A batch of image pairs and which factors each pair shares.

    Attributes:
        x_a, x_b: float images ``(B, C, H, W)`` in ``[0, 1]`` on the training device.
        shared: bool ``(B, K)``; ``shared[b, k]`` is true when pair ``b`` shows the same value of factor ``k`` in both.
        classes_a, classes_b: long ``(B, K)`` factor classes when the data has ground truth, else ``None``
            (factor-aware augmentation knows ``shared`` but not the values).
        factor_names: the ``K`` factor names, in column order.
        ids: long ``(B,)`` identity of the input pair ``b`` shows (cross-domain pairs: the grid point rendered in both
            domains), so that pairs of one batch showing the same input can be told apart; ``None`` otherwise.
        cross: the cross-domain pairs of the same training step (view a in the source domain, view b in the target
            domain; :class:`~disco.data.sources.cross_domain.CrossDomainPairSource`) when the run has a target.
        delta: for pairs made by factor-tagged augmentation, how far view b's augmentation parameter is from view a's,
            per tagged factor name ``(B, dims)``: the wrapped angle in radians for rotation and hue, else the
            difference as a fraction of the parameter's range (log-space for zoom and contrast); ``None`` otherwise.
            The learner applied these itself, so they are part of what it sees at ``augment`` supervision.
    """

    x_a: torch.Tensor
    x_b: torch.Tensor
    shared: torch.Tensor
    factor_names: tuple[str, ...]
    classes_a: torch.Tensor | None = None
    classes_b: torch.Tensor | None = None
    ids: torch.Tensor | None = None
    cross: PairBatch | None = None
    delta: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return int(self.x_a.shape[0])

    def to(self, device: torch.device | str) -> PairBatch:
        """The same batch on ``device``."""
        return self.map(lambda t: t.to(device))

    def rows(self, start: int, stop: int) -> PairBatch:
        """Pairs ``start:stop`` (and the same rows of :attr:`cross`)."""
        return self.map(lambda t: t[start:stop])

    def map(self, f: Callable[[torch.Tensor], torch.Tensor]) -> PairBatch:
        """The batch with ``f`` applied to every tensor (``cross`` included)."""

        def opt(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else f(t)

        return PairBatch(
            f(self.x_a),
            f(self.x_b),
            f(self.shared),
            self.factor_names,
            opt(self.classes_a),
            opt(self.classes_b),
            opt(self.ids),
            None if self.cross is None else self.cross.map(f),
            None if self.delta is None else {k: f(v) for k, v in self.delta.items()},
        )
