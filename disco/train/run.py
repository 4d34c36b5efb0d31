"""Builds the data module, model, loggers, callbacks and Trainer of a run from a :class:`TrainConfig`, and fits."""

from __future__ import annotations

import netrc
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

from disco.data.datasets import GroundTruthData
from disco.train.callbacks import EvaluationCallback
from disco.train.checkpointing import AtomicCheckpointIO
from disco.train.config import TrainConfig, to_plain
from disco.train.datamodule import PairDataModule
from disco.train.module import DiscoModule


@dataclass
class RunResult:
    """What a finished run leaves behind."""

    module: DiscoModule
    trainer: pl.Trainer
    run_dir: Path
    evaluation: EvaluationCallback | None
    checkpoint_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)


def wandb_logged_in() -> bool:
    """Whether a W&B login is configured (``WANDB_API_KEY`` or an api.wandb.ai entry in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def make_logger(cfg: TrainConfig, run_dir: Path) -> Logger | bool:
    """W&B (offline unless logged in, or as ``wandb.mode``/``WANDB_MODE`` say), CSV, or none."""
    if cfg.logger == "none":
        return False
    if cfg.logger == "csv":
        return CSVLogger(save_dir=str(run_dir), name="csv", version="")
    mode: str = cfg.wandb.mode
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
    (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
    logger = WandbLogger(
        project=cfg.wandb.project,
        entity=cfg.wandb.entity,
        name=run_dir.name,
        save_dir=str(run_dir),
        offline=mode != "online",
        tags=list(cfg.wandb.tags) or None,
        log_model=False,
    )
    return logger


def make_callbacks(cfg: TrainConfig, run_dir: Path, data: GroundTruthData, module: DiscoModule) -> list[Callback]:
    ck = cfg.checkpoint
    checkpoint = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        filename="step{step:07d}",
        auto_insert_metric_name=False,
        every_n_train_steps=ck.every_n_steps,
        save_top_k=ck.keep,
        monitor="step",
        mode="max",
        save_last=ck.save_last,
    )
    callbacks: list[Callback] = [checkpoint]
    if cfg.trainer.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, min(50, cfg.trainer.log_every_n_steps))))
    callbacks.append(EvaluationCallback(data, cfg.eval, module.spec, run_dir, cfg.data.split_seed))
    return callbacks


def make_trainer(
    cfg: TrainConfig, run_dir: Path, callbacks: Sequence[Callback], logger: Logger | bool, auxiliary: bool = False
) -> pl.Trainer:
    """The Trainer of a run; with auxiliary nets (CLUB, TC discriminator) DDP must tolerate parameters that the main
    backward does not reach, so ``ddp``/``ddp_spawn`` become their ``_find_unused_parameters_true`` variants."""
    t = cfg.trainer
    strategy = t.strategy
    if auxiliary and strategy in ("ddp", "ddp_spawn"):
        strategy = f"{strategy}_find_unused_parameters_true"
    devices: Any = int(t.devices) if isinstance(t.devices, str) and t.devices.isdigit() else t.devices
    return pl.Trainer(
        max_steps=t.max_steps,
        max_time=None if t.max_minutes is None else timedelta(minutes=t.max_minutes),
        max_epochs=-1,
        accelerator=t.accelerator,
        devices=devices,
        num_nodes=t.num_nodes,
        strategy=strategy,
        precision=t.precision,  # type: ignore[arg-type]
        log_every_n_steps=t.log_every_n_steps,
        logger=logger,
        callbacks=list(callbacks),
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        default_root_dir=str(run_dir),
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        use_distributed_sampler=False,
        deterministic=t.deterministic,
    )


def train(
    cfg: TrainConfig,
    *,
    resume: str | Path | None = None,
    data: GroundTruthData | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> RunResult:
    """Train (or resume) a run described by ``cfg``; returns the module, trainer and where things were written."""
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=False, verbose=False)
    datamodule = PairDataModule(cfg.data, seed=cfg.seed, data=data)
    dataset = datamodule.data
    module = DiscoModule(
        cfg, tuple(dataset.factors.names), dataset.num_channels, int(datamodule.splits["train"].numel())
    )
    logger = make_logger(cfg, run_dir)
    callbacks = [*make_callbacks(cfg, run_dir, dataset, module), *extra_callbacks]
    trainer = make_trainer(cfg, run_dir, callbacks, logger, bool(module.objective.auxiliary_parameters()))
    if isinstance(logger, Logger):
        logger.log_hyperparams(to_plain(cfg))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*that ended before the epoch ended.*")
        warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
        trainer.fit(module, datamodule=datamodule, ckpt_path=None if resume is None else str(resume), weights_only=True)
    if isinstance(logger, WandbLogger) and trainer.is_global_zero:
        logger.experiment.finish()
    evaluation = next((c for c in trainer.callbacks if isinstance(c, EvaluationCallback)), None)  # type: ignore[attr-defined]
    return RunResult(module, trainer, run_dir, evaluation, run_dir / "checkpoints")
