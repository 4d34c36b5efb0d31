"""Learning-rate schedule of the model's optimiser: linear warmup, then constant or cosine annealing.

Cosine annealing (Loshchilov & Hutter 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts", without restarts)
lowers the rate to ``min_ratio * lr`` at ``total_steps``, so a short run ends with small steps instead of the noise
of a constant rate. The rate is a pure function of the step: the training step sets it before each update, so a
resumed run continues the same curve without any scheduler state in the checkpoint.
"""

from __future__ import annotations

import math
from typing import Literal

from disco.errors import ConfigError


def learning_rate(
    step: int,
    base: float,
    kind: Literal["constant", "cosine"],
    total_steps: int,
    warmup_steps: int = 0,
    min_ratio: float = 0.0,
) -> float:
    """The rate at ``step`` (0-based): ``base * (step + 1) / warmup_steps`` during the warmup, then ``base``
    (``constant``) or ``base * (min_ratio + (1 - min_ratio) * (1 + cos(pi * t)) / 2)`` with ``t`` the fraction of the
    steps after the warmup that have passed (``cosine``; ``t`` is capped at 1 beyond ``total_steps``)."""
    if kind not in ("constant", "cosine"):
        raise ConfigError(f"optim.lr_schedule {kind!r} is not one of constant, cosine")
    if warmup_steps < 0 or not 0.0 <= min_ratio <= 1.0:
        raise ConfigError(
            f"optim.warmup_steps {warmup_steps} must be >= 0 and optim.min_lr_ratio {min_ratio} in [0, 1]"
        )
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    if kind == "constant":
        return base
    span = max(total_steps - warmup_steps, 1)
    t = min((step - warmup_steps) / span, 1.0)
    return base * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t)))
