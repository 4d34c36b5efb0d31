"""Pairs drawn by index arithmetic on a labelled factor grid (:class:`~disco.data.sampler.PairSampler`)."""

from __future__ import annotations

from typing import Any, ClassVar

from disco.data.pairs import PairBatch
from disco.data.sampler import PairSampler
from disco.data.sources.base import PairSource, SourceRequest
from disco.errors import ConfigError


class GridPairSource(PairSource):
    """Share-one / change-one / random-subset / change-k pairs of a ground-truth dataset (settings ``pair_mode`` and
    ``change_k``). Batches carry the factor classes; :func:`disco.data.supervision.reveal` drops them below ``labels``.
    """

    levels: ClassVar[tuple[str, ...]] = ("labels", "pairs")

    def __init__(self, sampler: PairSampler) -> None:
        self.sampler = sampler

    @classmethod
    def build(cls, request: SourceRequest) -> GridPairSource:
        data, settings = request.data, request.settings
        if not data.has_factors:
            raise ConfigError(
                f"dataset {data.name!r} has no factor labels, so pairs cannot be drawn from its factor grid; "
                "train it with data.supervision: augment"
            )
        sampler = PairSampler(
            data,
            request.indices,
            request.batch_size,
            mode=str(settings.get("pair_mode", "share_one")),
            device=request.device,
            seed=request.seed,
            change_k=int(settings.get("change_k", 1)),
            group_size=int(settings.get("pair_group", 1)),
            domain=request.domain,
        )
        return cls(sampler)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self.sampler.factor_names)

    def sample(self) -> PairBatch:
        return self.sampler.sample()

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
