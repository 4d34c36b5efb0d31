"""Shared fixtures: a tiny dSprites replica and a fast CPU training config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl

from disco.train.cli import parse_config
from disco.train.config import TrainConfig

TINY_SUBSAMPLE = {"scale": 2, "orientation": 8, "pos_x": 8, "pos_y": 8}


@pytest.fixture(scope="session")
def tiny_dsprites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 720-image dSprites replica (3 shapes × 3 scales × 5 orientations × 4 × 4 positions)."""
    from disco.data.replicas import make_replica

    return make_replica("dsprites", tmp_path_factory.mktemp("data") / "tiny.h5", TINY_SUBSAMPLE)


def tiny_config(data: Path, run_dir: Path, *overrides: str, **sets: Any) -> TrainConfig:
    """A small, fast CPU config: MLP encoder/decoder, batch 8, no logger, no evaluation; ``sets`` are key=value."""
    args = [
        f"--data.dataset={data}",
        f"--run_dir={run_dir}",
        "--data.batch_size=8",
        "--data.steps_per_epoch=50",
        "--model.encoder=mlp",
        "--model.encoder_kwargs={hidden: [32]}",
        "--model.decoder=mlp",
        "--model.decoder_kwargs={hidden: [32]}",
        "--model.subspaces=shape=1,scale=1,orientation=2,pos_x=1,pos_y=1",
        "--objective.localisation.weight=0.5",
        "--objective.independence.weight=0.1",
        "--objective.vae.weight=0.01",
        "--optim.lr=0.001",
        "--trainer.max_steps=6",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.progress_bar=false",
        "--trainer.log_every_n_steps=1",
        "--checkpoint.every_n_steps=3",
        "--checkpoint.keep=-1",
        "--eval.every_n_steps=0",
        "--eval.at_end=false",
        "--logger=none",
    ]
    args += list(overrides) + [f"--{k.replace('__', '.')}={v}" for k, v in sets.items()]
    return parse_config(args)


class Crash(pl.Callback):
    """Simulates a killed run: raises at the start of step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.at:
            raise RuntimeError("simulated crash")
