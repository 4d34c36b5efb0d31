"""Shared fixtures: a tiny dSprites replica and a fast CPU training config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

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


def assert_ddp_matches_one_process(
    data: Path,
    tmp_path: Path,
    *overrides: str,
    callbacks: Callable[[str], Sequence[pl.Callback]] = lambda _name: (),
    **sets: Any,
) -> tuple[Any, Any]:
    """Train ``sets["trainer__max_steps"]`` steps with 8 pairs in one process ("one") and 2 × 4 pairs on two gloo
    processes ("two", ddp_spawn); assert that both end with the same weights (the spawned workers' weights returned
    to this process and rank 0's checkpoint) and that a 1-step run differs from them (the runs really trained).
    ``callbacks(name)`` gives extra callbacks of each run. Returns both run results."""
    from disco.train.run import train

    steps = int(sets["trainer__max_steps"])
    single = train(
        tiny_config(data, tmp_path / "one", *overrides, data__batch_size=8, **sets), extra_callbacks=callbacks("one")
    )
    double = train(
        tiny_config(
            data, tmp_path / "two", *overrides, data__batch_size=4, trainer__devices=2, trainer__strategy="ddp_spawn",
            **sets,
        ),
        extra_callbacks=callbacks("two"),
    )  # fmt: skip
    assert double.trainer.world_size == 2
    ckpt = torch.load(tmp_path / "two" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == steps
    one, two = single.module.state_dict(), double.module.state_dict()
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-5, msg=key)
        torch.testing.assert_close(ckpt["state_dict"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    init = train(
        tiny_config(data, tmp_path / "zero", *overrides, data__batch_size=8, **{**sets, "trainer__max_steps": 1})
    )
    change = max(float((init.module.state_dict()[k] - v).abs().max()) for k, v in one.items())
    assert change > 1e-3  # the runs really trained: the comparison is not between untouched weights
    return single, double
