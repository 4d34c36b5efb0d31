"""Weight schedules of loss terms: constant, linear warm-up and cyclical annealing.

The cyclical schedule is the one of Fu et al. 2019, "Cyclical Annealing Schedule: A Simple Approach to Mitigating KL
Vanishing" (NAACL): each cycle of ``period`` steps ramps linearly from ``start`` to 1 over the first ``ratio`` of the
cycle, then stays at 1. The linear warm-up is the KL annealing of Bowman et al. 2016; with ``start`` above ``end`` the
same ramp is a decay (e.g. a variance floor that holds subspaces open early and then lets the unused ones close).
"""

from __future__ import annotations

from dataclasses import dataclass

from disco.errors import ConfigError
from disco.train.config import ScheduleConfig


@dataclass(frozen=True)
class Schedule:
    """A multiplier for a term's weight as a function of the optimisation step: ``start`` to ``end`` (linear) or
    ``start`` to 1 (cyclic)."""

    kind: str = "constant"
    start: float = 0.0
    warmup_steps: int = 0
    delay_steps: int = 0
    period: int = 10000
    ratio: float = 0.5
    end: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "linear", "cyclic"):
            raise ConfigError(f"unknown schedule kind {self.kind!r}; use constant, linear or cyclic")
        if self.warmup_steps < 0 or self.delay_steps < 0:
            raise ConfigError("schedule warmup_steps and delay_steps must be >= 0")
        if self.kind == "cyclic" and (self.period < 1 or not 0.0 < self.ratio <= 1.0):
            raise ConfigError("cyclic schedule needs period >= 1 and 0 < ratio <= 1")

    @classmethod
    def from_config(cls, cfg: ScheduleConfig) -> Schedule:
        return cls(cfg.kind, cfg.start, cfg.warmup_steps, cfg.delay_steps, cfg.period, cfg.ratio, cfg.end)

    def __call__(self, step: int) -> float:
        """The multiplier at optimisation step ``step`` (0-based)."""
        if self.kind == "constant":
            return 1.0
        if self.kind == "linear":
            s = step - self.delay_steps
            if s < 0:
                return self.start
            if self.warmup_steps == 0 or s >= self.warmup_steps:
                return self.end
            return self.start + (self.end - self.start) * s / self.warmup_steps
        ramp = self.ratio * self.period
        pos = step % self.period
        if pos >= ramp:
            return 1.0
        return self.start + (1.0 - self.start) * pos / ramp
