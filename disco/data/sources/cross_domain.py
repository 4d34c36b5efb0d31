"""Cross-domain pairs: one input rendered in the source domain (view a) and in the target domain (view b).

The third pair source, next to the grid and the augmenter: an image–text pair of the domain-adaptation world. The target
is the same dataset under another domain shift (row ``i`` of both renders the same grid point) or another file that
holds the same factor grid (rows are matched by their factor classes). With a target file that shares no grid with the
source, the pairs are unpaired: view b is a random target image, ``shared`` is all false and ``ids`` is ``None``, which
serves the batch-level alignment terms (MMD, CORAL, DANN) and refuses the instance-level ones.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from disco.data.datasets import GroundTruthData
from disco.data.device_images import DeviceImages
from disco.data.domains import Domain
from disco.data.pairs import PairBatch
from disco.data.sources.base import PairSource, SourceRequest
from disco.errors import ConfigError


def grid_keys(data: GroundTruthData, rows: torch.Tensor) -> torch.Tensor:
    """The grid index (mixed radix of the factor classes) of each row of ``rows``."""
    strides = torch.tensor(data.factors.strides, dtype=torch.long)
    return (data.classes[rows.cpu()] * strides).sum(dim=1)


def match_rows(source: GroundTruthData, src_rows: torch.Tensor, target: GroundTruthData, tgt_rows: torch.Tensor) -> (
    tuple[torch.Tensor, torch.Tensor]
):  # fmt: skip
    """Pairs ``(source row, target row)`` showing the same grid point: every row of ``src_rows`` whose factor classes
    some row of ``tgt_rows`` has (the first such target row). Both files must have the same factor names and sizes."""
    if source.factors.names != target.factors.names or source.factors.sizes != target.factors.sizes:
        raise ConfigError(
            f"target {target.name!r} has factors {list(target.factors.names)} of sizes {list(target.factors.sizes)}, "
            f"the source {list(source.factors.names)} of sizes {list(source.factors.sizes)}; cross-domain pairs need "
            "the same factor grid (use a target domain of the same dataset, or only batch-level alignment terms)"
        )
    tk = grid_keys(target, tgt_rows)
    order = torch.argsort(tk, stable=True)
    sorted_keys, sorted_rows = tk[order], tgt_rows.cpu()[order]
    sk = grid_keys(source, src_rows)
    pos = torch.searchsorted(sorted_keys, sk).clamp(max=max(len(sorted_keys) - 1, 0))
    found = sorted_keys[pos] == sk if len(sorted_keys) else torch.zeros_like(sk, dtype=torch.bool)
    if not bool(found.any()):
        raise ConfigError(
            f"no training image of target {target.name!r} shows a grid point of the source's training rows; cross-domain "
            "pairs need shared grid points (check data.target.dataset)"
        )
    return src_rows.cpu()[found], sorted_rows[pos[found]]


class CrossDomainPairSource(PairSource):
    """Pairs ``(source render, target render)`` of the same input, drawn uniformly from the training rows.

    ``shared`` is all true for paired inputs (every factor is the same: only the domain differs), ``ids`` holds the
    source row (the input's identity). Factor classes come with both views whenever the data has them;
    :func:`disco.data.supervision.reveal` drops what the run may not see.

    Settings: ``target_data`` (another :class:`GroundTruthData`; ``None`` = the source data), ``target_domain``
    (a :class:`Domain` or ``None``), ``target_indices`` (the target file's training rows; ignored for the source data).
    """

    levels: ClassVar[tuple[str, ...]] = ("labels", "pairs", "augment")

    def __init__(
        self,
        source: DeviceImages,
        target: DeviceImages,
        pairs: tuple[torch.Tensor, torch.Tensor],
        batch_size: int,
        factor_names: tuple[str, ...],
        classes: tuple[torch.Tensor | None, torch.Tensor | None],
        paired: bool = True,
        seed: int = 0,
    ) -> None:
        if len(pairs[0]) == 0 or len(pairs[1]) == 0:
            raise ConfigError("the cross-domain source has no rows to draw from; give non-empty training splits")
        self.source_images, self.target_images = source, target
        self.device = source.device
        self.src_rows, self.tgt_rows = (p.long().to(self.device) for p in pairs)
        self.batch_size, self.paired, self._names = int(batch_size), bool(paired), tuple(factor_names)
        self.src_classes, self.tgt_classes = (None if c is None else c.to(self.device) for c in classes)
        self.generator = torch.Generator(device=self.device).manual_seed(seed + 104729)

    @classmethod
    def build(cls, request: SourceRequest) -> CrossDomainPairSource:
        data, settings = request.data, request.settings
        target: GroundTruthData = settings.get("target_data") or data
        domain: Domain | None = settings.get("target_domain")
        if target is data and domain is None:
            raise ConfigError("data.target names neither a domain nor another dataset; set data.target.domain")
        src_rows = request.indices.long().cpu()
        if target is data:
            pairs, paired = (src_rows, src_rows), True
        elif (
            data.has_factors
            and target.has_factors
            and target.factors.names == data.factors.names
            and (target.factors.sizes == data.factors.sizes)
        ):
            pairs, paired = match_rows(data, src_rows, target, settings["target_indices"].long().cpu()), True
        else:
            pairs, paired = (src_rows, settings["target_indices"].long().cpu()), False
        names = tuple(data.factors.names)
        classes = (data.classes if data.has_factors else None, target.classes if target.has_factors else None)
        return cls(
            DeviceImages(data.images, request.device, request.domain),
            DeviceImages(target.images, request.device, domain),
            pairs,
            request.batch_size,
            names,
            classes,
            paired,
            request.seed,
        )

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self._names

    def sample(self) -> PairBatch:
        b, dev = self.batch_size, self.device
        pick = torch.randint(0, len(self.src_rows), (b,), generator=self.generator, device=dev)
        src = self.src_rows[pick]
        if self.paired:
            tgt = self.tgt_rows[pick]
        else:
            tgt = self.tgt_rows[torch.randint(0, len(self.tgt_rows), (b,), generator=self.generator, device=dev)]
        shared = torch.full((b, len(self._names)), self.paired, dtype=torch.bool, device=dev)
        ca = None if self.src_classes is None else self.src_classes[src]
        cb = None if self.tgt_classes is None else self.tgt_classes[tgt]
        ids = src if self.paired else None
        x_a, x_b = self.source_images.gather(src), self.target_images.gather(tgt)
        return PairBatch(x_a, x_b, shared, self._names, ca, cb, ids)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
