"""What every objective term returns: a scalar to optimise plus named diagnostics to log."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class LossOutput:
    """A scalar loss and detached diagnostics (raw magnitudes, accuracies, ...) keyed by short names."""

    loss: torch.Tensor
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)
