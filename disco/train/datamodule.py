"""Pair batches for Lightning without DataLoader workers: images stay on the training device and are gathered there.

The data module builds the pair source that ``data.source`` / ``data.supervision`` name (:mod:`disco.data.sources`)
and cuts every batch down to the supervision level in ONE place, :meth:`PairDataModule.draw` (via
:func:`disco.data.supervision.reveal`): below ``labels`` no factor class ever reaches the objective.

The "dataloader" yields step tokens only; the pair batch is drawn in :meth:`PairDataModule.on_before_batch_transfer`,
which Lightning calls once per training step, after the previous step's checkpoint was written. The source's
random state is therefore exactly the state before the next step, and Lightning stores it in every checkpoint
through :meth:`state_dict` (exact resume). Lightning's one-batch prefetch only prefetches a token.

With ``data.target`` a second source, :class:`~disco.data.sources.cross_domain.CrossDomainPairSource`, draws as many
cross-domain pairs per step; they travel as ``batch.cross``. The source images are rendered in ``data.domain`` (``plain``
RGB by default when there is a target).

Under DDP every rank seeds its source identically, draws the batch of the whole world (``world_size × batch_size``
pairs) and keeps its own slice, so N processes see exactly the pairs one process would see with an N× batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytorch_lightning as pl
import torch

from disco.data.datasets import GroundTruthData, load_dataset
from disco.data.domains import Domain
from disco.data.pairs import PairBatch
from disco.data.sources import CrossDomainPairSource, PairSource, SourceRequest, build_source
from disco.data.supervision import check_level, reveal
from disco.errors import ConfigError
from disco.train.config import DataConfig


class StepTokens:
    """An iterable of ``length`` integers: one token per training step (the batch is drawn on the device later)."""

    def __init__(self, length: int) -> None:
        self.length = int(length)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.length))

    def __len__(self) -> int:
        return self.length


class PairDataModule(pl.LightningDataModule):
    """Loads a dataset, splits it and serves pair batches drawn on the training device by a pair source."""

    def __init__(self, cfg: DataConfig, seed: int = 0, data: GroundTruthData | None = None) -> None:
        super().__init__()
        if cfg.batch_size < 1 or cfg.steps_per_epoch < 1:
            raise ConfigError("data.batch_size and data.steps_per_epoch must be >= 1")
        from disco.data.splits import split_indices

        self.cfg = cfg
        self.supervision = check_level(cfg.supervision)
        self.seed = int(seed)
        self.data = data if data is not None else load_dataset(cfg.dataset)
        self.splits = split_indices(len(self.data), seed=cfg.split_seed)
        self.rank, self.world_size = 0, 1
        self._pending_state: dict[str, Any] | None = None
        self.target_domain = _domain(cfg.target.domain, cfg.target.seed, "data.target.domain")
        self.target_data = self._load_target()
        self.source_domain = _domain(self._source_domain_name(), cfg.domain_seed, "data.domain")
        self.num_channels = 3 if self.source_domain is not None else self.data.num_channels
        self._check_channels()
        # Built once on the CPU so that a config the sources cannot serve fails before any training starts, and so
        # that their factor names are known to the model; setup() builds the real ones on the training device (a
        # source holds torch generators, which cannot be pickled into ddp_spawn workers).
        probe, cross = self._build(torch.device("cpu"), 1)
        self.factor_names: tuple[str, ...] = probe.factor_names
        #: ``paired`` / ``unpaired`` with a target (see :class:`CrossDomainPairSource`), ``None`` without
        self.target_kind: str | None = None
        if isinstance(cross, CrossDomainPairSource):
            self.target_kind = "paired" if cross.paired else "unpaired"
        self.source: PairSource | None = None
        self.cross: PairSource | None = None

    def _load_target(self) -> GroundTruthData | None:
        """The target file (``data.target.dataset``) and its splits, or ``None`` for the training data itself."""
        if self.cfg.target.dataset is None:
            return None
        from disco.data.splits import split_indices

        data = load_dataset(self.cfg.target.dataset)
        self.target_splits = split_indices(len(data), seed=self.cfg.split_seed)
        return data

    @property
    def target_channels(self) -> int:
        """Channels of the target's images as the cross-domain source renders them (0 without a target)."""
        if not self.cfg.target.enabled:
            return 0
        if self.target_domain is not None:
            return 3
        return (self.target_data or self.data).num_channels

    def _source_domain_name(self) -> str | None:
        """``data.domain``; without one, ``plain`` when a grey source meets an RGB target."""
        if self.cfg.domain is not None:
            return self.cfg.domain
        return "plain" if self.target_channels == 3 and self.data.num_channels != 3 else None

    def _check_channels(self) -> None:
        if self.target_channels and self.target_channels != self.num_channels:
            raise ConfigError(
                f"the target has {self.target_channels} channels and the source {self.num_channels}; give the grey one "
                "a domain (data.domain or data.target.domain: plain) so both are RGB"
            )

    def _build(self, device: torch.device, world_size: int) -> tuple[PairSource, PairSource | None]:
        """The pair source and, with a target, the cross-domain pair source (as many pairs per step)."""
        request = SourceRequest(
            data=self.data,
            indices=self.splits["train"],
            batch_size=self.cfg.batch_size * world_size,
            device=device,
            seed=self.seed,
            settings={
                "pair_mode": self.cfg.pair_mode,
                "change_k": self.cfg.change_k,
                "pair_group": self.cfg.pair_group,
                "augment": self.cfg.augment,
            },
            domain=self.source_domain,
        )
        source = build_source(self.cfg.source, self.supervision, request)
        if not self.cfg.target.enabled:
            return source, None
        settings = {
            "target_data": self.target_data,
            "target_domain": self.target_domain,
            "target_indices": None if self.target_data is None else self.target_splits["train"],
        }
        cross = build_source("cross_domain", self.supervision, replace(request, settings=settings))
        return source, cross

    def setup(self, stage: str) -> None:
        if self.source is not None:
            return
        device = torch.device("cpu")
        if self.trainer is not None:
            device = self.trainer.strategy.root_device
            self.rank, self.world_size = int(self.trainer.global_rank), int(self.trainer.world_size)
        self.source, self.cross = self._build(device, self.world_size)
        if self._pending_state is not None:
            self.load_state_dict(self._pending_state)
            self._pending_state = None

    def train_dataloader(self) -> StepTokens:
        return StepTokens(self.cfg.steps_per_epoch)

    def draw(self) -> PairBatch:
        """This rank's share of the next pair batch, on the training device, with only what the supervision level
        reveals (the one place where factor classes are dropped)."""
        if self.source is None:
            raise RuntimeError("the data module has no pair source")
        batch = self.source.sample()
        if self.cross is not None:
            batch = replace(batch, cross=self.cross.sample())
        batch = reveal(batch, self.supervision, self.cfg.target.labelled)
        if self.world_size == 1:
            return batch
        b = self.cfg.batch_size
        return batch.rows(self.rank * b, (self.rank + 1) * b)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, int):
            return self.draw()
        return batch

    def state_dict(self) -> dict[str, Any]:
        if self.source is None:
            return {} if self._pending_state is None else dict(self._pending_state)
        state = {"sampler": self.source.state_dict()}
        if self.cross is not None:
            state["cross"] = self.cross.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "sampler" not in state_dict:
            return
        if self.source is None:
            self._pending_state = dict(state_dict)
            return
        self.source.load_state_dict(state_dict["sampler"])
        if self.cross is not None and "cross" in state_dict:
            self.cross.load_state_dict(state_dict["cross"])


def _domain(name: str | None, seed: int, key: str) -> Domain | None:
    """The domain ``name`` of config key ``key`` (``None`` for none); an unknown name is one ConfigError line."""
    if name is None:
        return None
    from disco.data.domains import DOMAINS, make_domain

    if name not in DOMAINS:
        raise ConfigError(f"unknown {key} {name!r}; choose one of {', '.join(DOMAINS)}")
    return make_domain(name, seed)
