"""Stops a run whose loss became NaN or infinite, naming the term, without a host sync every step.

Each step ORs ``~isfinite`` of the total and of every term into a small flag tensor on the device (no sync) and
records the first bad step. The flags are read on the host only every ``check_every`` steps, before every checkpoint
write and at the end of training. Trade-off: a divergence is reported up to ``check_every - 1`` steps late (the
weights may be NaN by then), but no checkpoint is ever written after it, so the last checkpoint on disk is good.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from disco.errors import DiscoError


class NonFiniteLossError(DiscoError):
    """The training loss became NaN or infinite."""


class FiniteGuard:
    """Accumulates non-finite flags of named loss values on their device; :meth:`check` raises on the host."""

    def __init__(self, names: Sequence[str], check_every: int = 100) -> None:
        self.names = tuple(names)
        self.check_every = max(1, int(check_every))
        self.flags: torch.Tensor | None = None
        self.first_flags: torch.Tensor | None = None
        self.first_bad_step: torch.Tensor | None = None

    def update(self, values: Sequence[torch.Tensor], step: int) -> None:
        """Record which of ``values`` (scalars, in the order of ``names``) are non-finite at ``step`` (no host sync)."""
        bad = ~torch.isfinite(torch.stack([v.float() for v in values]))
        if self.flags is None or self.first_flags is None or self.first_bad_step is None:
            self.flags = torch.zeros_like(bad)
            self.first_flags = torch.zeros_like(bad)
            self.first_bad_step = torch.full((), -1, dtype=torch.long, device=bad.device)
        new = bad.any() & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(new, torch.full_like(self.first_bad_step, step), self.first_bad_step)
        self.first_flags = torch.where(new, bad, self.first_flags)
        self.flags = self.flags | bad

    def maybe_check(self, step: int) -> None:
        """:meth:`check` every ``check_every`` steps."""
        if (step + 1) % self.check_every == 0:
            self.check(step)

    def check(self, step: int) -> None:
        """Raise :class:`NonFiniteLossError` naming the non-finite terms (one host sync)."""
        if self.first_flags is None or self.first_bad_step is None or not bool(self.first_flags.any()):
            return
        bad = [n for n, f in zip(self.names, self.first_flags.tolist(), strict=True) if f]
        terms = [n for n in bad if n != "loss"] or ["loss"]
        first = int(self.first_bad_step)
        raise NonFiniteLossError(
            f"loss term {', '.join(terms)} became NaN/inf at step {first} (noticed at step {step}); lower optim.lr or "
            f"that term's weight, or add optim.grad_clip, and resume from the last checkpoint written before step {first}"
        )
