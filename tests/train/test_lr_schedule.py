"""The model's learning-rate schedule: closed-form values, the rates a real run steps with, and exact resume."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from conftest import Crash, tiny_config

from disco.errors import ConfigError
from disco.train.lr_schedule import learning_rate
from disco.train.run import train


def test_closed_form_values() -> None:
    # warmup 4 steps to 1e-3: (step + 1) / 4 of the rate
    assert [learning_rate(s, 1e-3, "cosine", 14, 4) for s in range(4)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    # cosine over the 10 steps after the warmup: 1, (1 + cos(pi/2))/2 = 0.5 at step 9, 0 at step 14 and after
    assert learning_rate(4, 1e-3, "cosine", 14, 4) == pytest.approx(1e-3)
    assert learning_rate(9, 1e-3, "cosine", 14, 4) == pytest.approx(5e-4)
    assert learning_rate(14, 1e-3, "cosine", 14, 4) == learning_rate(99, 1e-3, "cosine", 14, 4) == pytest.approx(0)
    # min ratio 0.1: half-way is 0.1 + 0.9 * 0.5 = 0.55 of the rate; step 2 of 10 without warmup
    assert learning_rate(5, 2.0, "cosine", 10, 0, 0.1) == pytest.approx(1.1)
    assert learning_rate(2, 2.0, "cosine", 10, 0, 0.1) == pytest.approx(
        2.0 * (0.1 + 0.9 * (1 + math.cos(0.2 * math.pi)) / 2)
    )
    assert [learning_rate(s, 3e-4, "constant", 10) for s in (0, 5, 50)] == [3e-4] * 3
    with pytest.raises(ConfigError, match="lr_schedule"):
        learning_rate(0, 1e-3, "step", 10)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="warmup_steps"):
        learning_rate(0, 1e-3, "cosine", 10, -1)
    with pytest.raises(ConfigError, match="min_lr_ratio"):
        learning_rate(0, 1e-3, "cosine", 10, 0, 1.5)


class RecordLR(pl.Callback):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


SETS = {
    "trainer__max_steps": 8,
    "checkpoint__every_n_steps": 4,
    "optim__lr_schedule": "cosine",
    "optim__warmup_steps": 2,
    "optim__min_lr_ratio": 0.1,
}


def test_run_steps_with_the_schedule_and_resumes_exactly(tiny_dsprites: Path, tmp_path: Path) -> None:
    record = RecordLR()
    full = train(tiny_config(tiny_dsprites, tmp_path / "full", **SETS), extra_callbacks=[record])
    assert record.rates == pytest.approx([learning_rate(s, 1e-3, "cosine", 8, 2, 0.1) for s in range(8)])
    assert record.rates[0] == pytest.approx(5e-4) and record.rates[-1] < 2e-4

    run_dir = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_dsprites, run_dir, **SETS), extra_callbacks=[Crash(at=6)])
    resumed = train(tiny_config(tiny_dsprites, run_dir, **SETS), resume=run_dir / "checkpoints" / "step0000004.ckpt")
    for key, value in full.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[key], value), key
    constant = train(tiny_config(tiny_dsprites, tmp_path / "constant", trainer__max_steps=8))
    assert not torch.equal(
        constant.module.encoder.state_dict()["net.0.weight"], full.module.encoder.state_dict()["net.0.weight"]
    )


def test_bad_schedule_is_refused_before_training(tiny_dsprites: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="warmup_steps"):
        train(tiny_config(tiny_dsprites, tmp_path / "bad", optim__warmup_steps=-3))
    assert not (tmp_path / "bad" / "checkpoints").exists()
