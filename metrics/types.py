"""Shared types of the metrics package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Maps an integer array of factor classes ``(N, K)`` to codes ``(N, D)`` (encode the images at those grid points).
#: Interventional metrics (FactorVAE score, BetaVAE score, factor activity) need one; observational ones take arrays.
Representer = Callable[[np.ndarray], np.ndarray]


@dataclass
class MetricResult:
    """One metric's outcome: the headline ``score``, named sub-scores/matrices, and the settings that produced it."""

    name: str
    score: float
    details: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


class MetricError(ValueError):
    """Unusable input to a metric (NaN or constant codes, mismatched lengths, too few samples); one-line message."""
