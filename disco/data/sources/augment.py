"""Pairs made by factor-tagged augmentation of single images: no labels are read (:mod:`disco.data.augment`)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from disco.data.augment import FactorAugmenter, augmenter_from_config
from disco.data.device_images import DeviceImages
from disco.data.pairs import PairBatch
from disco.data.sources.base import PairSource, SourceRequest
from disco.errors import ConfigError


class AugmentPairSource(PairSource):
    """Draws images uniformly from the allowed rows and makes two views of each with a :class:`FactorAugmenter`
    (setting ``augment``: the augmenter's config, see :func:`disco.data.augment.augmenter_from_config`).

    Works on any image file, labelled or not: the dataset's factor classes are never touched. The row draw and the
    augmentation parameters come from two generators seeded from ``seed``; both are in :meth:`state_dict`.
    """

    levels: ClassVar[tuple[str, ...]] = ("augment",)

    def __init__(
        self,
        images: DeviceImages,
        indices: torch.Tensor,
        batch_size: int,
        augmenter: FactorAugmenter,
        seed: int = 0,
    ) -> None:
        if len(indices) == 0:
            raise ConfigError("the index set to draw images from is empty; give a non-empty training split")
        self.images, self.batch_size, self.augmenter = images, int(batch_size), augmenter
        self.device = images.device
        self.indices = indices.long().to(self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    @classmethod
    def build(cls, request: SourceRequest) -> AugmentPairSource:
        augmenter = augmenter_from_config(dict(request.settings.get("augment") or {}), seed=request.seed + 1)
        images = DeviceImages(request.data.images, request.device, request.domain)
        return cls(images, request.indices, request.batch_size, augmenter, request.seed)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.augmenter.factor_names

    def sample(self) -> PairBatch:
        pick = torch.randint(0, len(self.indices), (self.batch_size,), generator=self.generator, device=self.device)
        return self.augmenter.make_pairs(self.images.gather(self.indices[pick]))

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "augmenter": self.augmenter.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.augmenter.load_state_dict(state["augmenter"])
