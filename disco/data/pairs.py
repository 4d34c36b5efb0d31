"""The pair batch: the one structure every training signal in disco is built from (see DESIGN.md)."""

from __future__ import annotations

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
    """

    x_a: torch.Tensor
    x_b: torch.Tensor
    shared: torch.Tensor
    factor_names: tuple[str, ...]
    classes_a: torch.Tensor | None = None
    classes_b: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.x_a.shape[0])

    def to(self, device: torch.device | str) -> PairBatch:
        """The same batch on ``device``."""
        ca, cb = self.classes_a, self.classes_b
        return PairBatch(
            self.x_a.to(device),
            self.x_b.to(device),
            self.shared.to(device),
            self.factor_names,
            None if ca is None else ca.to(device),
            None if cb is None else cb.to(device),
        )
