"""Factor symmetries: classes of a factor that show the same image, depending on another factor.

A square turned by 90° is the same square, an ellipse turned by 180° the same ellipse: on dSprites the orientation
classes of a square repeat every quarter turn, those of an ellipse every half turn, and only a heart's are all distinct
(Matthey et al. 2017 list the orientation as 40 values over [0, 2π], so class 0 and class 39 are one image for every
shape). Metrics score the classes as given; a training term that knows the symmetry can stop asking the encoder to tell
apart images that are the same, e.g. count a square at class 0 and one at class 10 (92.3°, one grid step from a
quarter turn) as same-value views in the contrastive term, or accept either class from an auxiliary classifier.

Config (``data.symmetries``), a dataset fact like the factor sizes::

    symmetries:
      orientation: {by: shape, period: [9.75, 19.5, 39.0]}   # dSprites: square, ellipse, heart

``period`` is given per class of ``by``, in class steps (a quarter turn on dSprites' grid of 40 values over 0..2π is
39 / 4 = 9.75 steps). Two classes ``i`` and ``j`` of the factor are equivalent for images of the same ``by`` class
``s`` when ``|i - j|`` is within half a step (inclusive) of a multiple of ``period[s]``; images of different ``by``
classes are equivalent only at equal classes. On dSprites' grid an ellipse's half turn falls between two classes (19.5
steps), so both neighbours (4.6° off) count as the same image, as does a square's class 10 (92.3°).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from disco.errors import ConfigError


@dataclass(frozen=True)
class FactorSymmetry:
    """Classes of ``factor`` repeat every ``period[s]`` class steps for images whose ``by`` factor has class ``s``.

    ``column`` and ``by_column`` are the two factors' columns in the class arrays; ``size`` is the factor's class count.
    """

    factor: str
    by: str
    column: int
    by_column: int
    size: int
    period: tuple[float, ...]

    def equivalent_classes(self, values: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
        """``(M, size)`` bool: the classes that show the same image as each row's class, given its ``by`` class.

        ``values`` and ``by`` ``(M,)`` are the classes of the factor and of ``by`` for M images."""
        period = torch.tensor(self.period, dtype=torch.float64, device=values.device)[by][:, None]
        diff = (values[:, None] - torch.arange(self.size, device=values.device)[None, :]).abs().to(torch.float64)
        r = torch.remainder(diff, period)
        return torch.minimum(r, period - r) <= 0.5 + 1e-9

    def equivalent(self, values: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
        """``(M, M)`` bool: images ``i`` and ``j`` show the same value of the factor, up to the symmetry (of the same
        ``by`` class and equivalent classes, or equal classes)."""
        same_by = by[:, None] == by[None, :]
        return (self.equivalent_classes(values, by)[:, values] & same_by) | (values[:, None] == values[None, :])


def parse_symmetries(
    raw: Mapping[str, Any], factor_names: Sequence[str], factor_sizes: Sequence[int]
) -> tuple[FactorSymmetry, ...]:
    """``data.symmetries`` -> one :class:`FactorSymmetry` per entry; one-line :class:`ConfigError` for a bad entry."""
    names = list(factor_names)
    if raw and len(factor_sizes) != len(names):
        raise ConfigError(
            "data.symmetries needs the number of classes of every factor; this dataset does not give them"
        )
    out = []
    for factor, entry in (raw or {}).items():
        where = f"data.symmetries.{factor}"
        if factor not in names:
            raise ConfigError(f"{where}: {factor!r} is not a factor of the dataset; use one of {names}")
        if not isinstance(entry, Mapping) or set(entry) != {"by", "period"}:
            raise ConfigError(f"{where} must be {{by: <factor>, period: [<steps per class of by>, ...]}}")
        by = entry["by"]
        if by not in names or by == factor:
            raise ConfigError(f"{where}.by: {by!r} is not another factor of the dataset; use one of {names}")
        period = entry["period"]
        by_size = int(factor_sizes[names.index(by)])
        if (
            not isinstance(period, Sequence)
            or isinstance(period, str)
            or len(period) != by_size
            or not all(isinstance(p, int | float) and p >= 1 for p in period)
        ):
            raise ConfigError(
                f"{where}.period must list one period (in class steps, >= 1) for each of the {by_size} classes of "
                f"{by!r}, e.g. [9.75, 19.5, 39.0] for dSprites' square, ellipse and heart"
            )
        col = names.index(factor)
        out.append(FactorSymmetry(factor, by, col, names.index(by), int(factor_sizes[col]), tuple(map(float, period))))
    return tuple(out)
