"""Pair batches for Lightning without DataLoader workers: images stay on the training device and are gathered there.

The data module builds the pair source that ``data.source`` / ``data.supervision`` name (:mod:`disco.data.sources`)
and cuts every batch down to the supervision level in ONE place, :meth:`PairDataModule.draw` (via
:func:`disco.data.supervision.reveal`): below ``labels`` no factor class ever reaches the objective.

The "dataloader" yields step tokens only; the pair batch is drawn in :meth:`PairDataModule.on_before_batch_transfer`,
which Lightning calls once per training step, after the previous step's checkpoint was written. The source's
random state is therefore exactly the state before the next step, and Lightning stores it in every checkpoint
through :meth:`state_dict` (exact resume). Lightning's one-batch prefetch only prefetches a token.

Under DDP every rank seeds its source identically, draws the batch of the whole world (``world_size × batch_size``
pairs) and keeps its own slice, so N processes see exactly the pairs one process would see with an N× batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch

from disco.data.datasets import GroundTruthData, load_dataset
from disco.data.pairs import PairBatch
from disco.data.sources import PairSource, SourceRequest, build_source
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


def slice_batch(batch: PairBatch, start: int, stop: int) -> PairBatch:
    """Rows ``start:stop`` of a pair batch."""
    ca, cb = batch.classes_a, batch.classes_b
    return PairBatch(
        batch.x_a[start:stop],
        batch.x_b[start:stop],
        batch.shared[start:stop],
        batch.factor_names,
        None if ca is None else ca[start:stop],
        None if cb is None else cb[start:stop],
    )


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
        # Built once on the CPU so that a config the source cannot serve fails before any training starts, and so
        # that its factor names are known to the model; setup() builds the real one on the training device (a source
        # holds torch generators, which cannot be pickled into ddp_spawn workers).
        self.factor_names: tuple[str, ...] = self._build(torch.device("cpu"), 1).factor_names
        self.source: PairSource | None = None

    def _build(self, device: torch.device, world_size: int) -> PairSource:
        request = SourceRequest(
            data=self.data,
            indices=self.splits["train"],
            batch_size=self.cfg.batch_size * world_size,
            device=device,
            seed=self.seed,
            settings={"pair_mode": self.cfg.pair_mode, "change_k": self.cfg.change_k, "augment": self.cfg.augment},
        )
        return build_source(self.cfg.source, self.supervision, request)

    def setup(self, stage: str) -> None:
        if self.source is not None:
            return
        device = torch.device("cpu")
        if self.trainer is not None:
            device = self.trainer.strategy.root_device
            self.rank, self.world_size = int(self.trainer.global_rank), int(self.trainer.world_size)
        self.source = self._build(device, self.world_size)
        if self._pending_state is not None:
            self.source.load_state_dict(self._pending_state)
            self._pending_state = None

    def train_dataloader(self) -> StepTokens:
        return StepTokens(self.cfg.steps_per_epoch)

    def draw(self) -> PairBatch:
        """This rank's share of the next pair batch, on the training device, with only what the supervision level
        reveals (the one place where factor classes are dropped)."""
        if self.source is None:
            raise RuntimeError("the data module has no pair source")
        batch = reveal(self.source.sample(), self.supervision)
        if self.world_size == 1:
            return batch
        b = self.cfg.batch_size
        return slice_batch(batch, self.rank * b, (self.rank + 1) * b)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, int):
            return self.draw()
        return batch

    def state_dict(self) -> dict[str, Any]:
        if self.source is None:
            return {} if self._pending_state is None else {"sampler": self._pending_state}
        return {"sampler": self.source.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("sampler")
        if state is None:
            return
        if self.source is None:
            self._pending_state = state
        else:
            self.source.load_state_dict(state)
