"""Builds the data module, model, loggers, callbacks and Trainer of a run from a :class:`TrainConfig`, and fits.

W&B runs survive resumes: the run id is stored in every checkpoint (callback state ``WandbRunId``) and in
``<run_dir>/wandb/run_id``; ``train(cfg, resume=ckpt)`` reopens the W&B run of that checkpoint (``id=..., resume="allow"``,
online and offline), while a run started without ``resume`` always gets a new W&B id.
"""

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
from disco.data.domains import Domain
from disco.errors import ConfigError
from disco.train.callbacks import EvaluationCallback
from disco.train.checkpointing import AtomicCheckpointIO, atomic_write_text, load_checkpoint
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


WANDB_ID_FILE = "run_id"
"""Name of the file in ``<run_dir>/wandb/`` that holds the id of the run's latest W&B run."""


class WandbRunId(Callback):
    """Carries the W&B run id in checkpoints (``ckpt["callbacks"]["WandbRunId"] == {"run_id": ...}``).

    :func:`train` sets :attr:`run_id` from the live W&B run; a run resumed without W&B (``logger: csv``/``none``) keeps
    the id it loaded, so a later resume with W&B still continues the original W&B run.
    """

    KEY = "WandbRunId"

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id

    @property
    def state_key(self) -> str:
        """The key of this callback's state in ``ckpt["callbacks"]`` (fixed, so renaming the class breaks nothing)."""
        return self.KEY

    def state_dict(self) -> dict[str, Any]:
        """``{"run_id": id}``, or nothing when the run has never logged to W&B."""
        return {} if self.run_id is None else {"run_id": self.run_id}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the checkpoint's id unless a live W&B run already set one."""
        stored = state_dict.get("run_id")
        if self.run_id is None and isinstance(stored, str):
            self.run_id = stored


def checkpoint_wandb_id(path: str | Path) -> str | None:
    """The W&B run id stored in a training checkpoint by :class:`WandbRunId`, or ``None`` (no W&B, older checkpoint)."""
    state = load_checkpoint(path).get("callbacks", {}).get(WandbRunId.KEY, {})
    run_id = state.get("run_id") if isinstance(state, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


def write_wandb_id(run_dir: Path, run_id: str) -> Path:
    """Write ``run_id`` to ``<run_dir>/wandb/run_id`` atomically (temporary file + :func:`os.replace`)."""
    path = run_dir / "wandb" / WANDB_ID_FILE
    atomic_write_text(path, run_id)
    return path


def make_logger(cfg: TrainConfig, run_dir: Path, run_id: str | None = None) -> Logger | bool:
    """W&B (offline unless logged in, or as ``wandb.mode``/``WANDB_MODE`` say), CSV, or none.

    With ``run_id`` the W&B logger continues that W&B run (``resume="allow"``: it is created if the server has never
    seen it, e.g. when the earlier part was logged offline and not synced yet); without it W&B makes a new run with a
    new id (``resume`` unset, so ``WANDB_RESUME``/``WANDB_RUN_ID`` still apply).
    """
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
        id=run_id,
        resume="allow" if run_id else None,  # Lightning's default is "allow" for every run
    )
    return logger


class SaveLastAtEnd(Callback):
    """Write ``last.ckpt`` at the end of fitting when it does not hold the final step.

    Lightning's ModelCheckpoint refreshes ``last.ckpt`` only at a periodic save or an epoch end, so a run whose
    ``max_steps`` falls inside an epoch after a periodic save (2,400 steps in epochs of 1,000 with saves every 2,000)
    kept the step-2,000 weights in ``last.ckpt`` while its scores were those of step 2,400."""

    def __init__(self, checkpoint: ModelCheckpoint) -> None:
        self.checkpoint = checkpoint

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        saved = getattr(self.checkpoint, "_last_global_step_saved", -1)
        if (
            self.checkpoint.save_last
            and self.checkpoint.dirpath
            and trainer.global_step > 0
            and saved != trainer.global_step
        ):
            name = f"{self.checkpoint.CHECKPOINT_NAME_LAST}{self.checkpoint.FILE_EXTENSION}"
            # the full training state (optimiser, loops), as ModelCheckpoint writes it, so that a resume continues
            trainer.save_checkpoint(str(Path(self.checkpoint.dirpath) / name), weights_only=False)


def make_callbacks(
    cfg: TrainConfig, run_dir: Path, data: GroundTruthData, module: DiscoModule, domain: Domain | None = None
) -> list[Callback]:
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
        # overwrite, never write last-v1.ckpt: a run resumed from its first periodic checkpoint (saved before any
        # last.ckpt, so its state names none) would otherwise leave last.ckpt behind at the resumed-from step
        enable_version_counter=False,
    )
    callbacks: list[Callback] = [checkpoint, SaveLastAtEnd(checkpoint)]
    if cfg.trainer.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, min(50, cfg.trainer.log_every_n_steps))))
    callbacks.append(
        EvaluationCallback(
            data,
            cfg.eval,
            module.spec,
            run_dir,
            cfg.data.split_seed,
            supervision=module.supervision,
            augment=cfg.data.augment,
            domain=domain,
        )
    )
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


def refuse_earlier_run(run_dir: Path, allowed: bool) -> None:
    """Stop a fresh run before it overwrites the checkpoints of an earlier run in ``run_dir`` (unless ``allowed``)."""
    found = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    if found and not allowed:
        last = run_dir / "checkpoints" / "last.ckpt"
        latest = last if last in found else found[-1]
        raise ConfigError(
            f"run_dir {run_dir} already holds checkpoints of an earlier run; continue it with --resume {latest}, "
            "pick another --run_dir, or pass --overwrite true to replace it"
        )


def train(
    cfg: TrainConfig,
    *,
    resume: str | Path | None = None,
    data: GroundTruthData | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> RunResult:
    """Train (or resume) a run described by ``cfg``; returns the module, trainer and where things were written.

    With ``resume`` (a checkpoint) and ``logger: wandb`` the W&B run whose id the checkpoint holds is continued; a run
    without ``resume`` starts a new W&B run even in a run dir that has one. If fitting raises, the W&B run is finished
    with exit code 1 (marked failed) before the error propagates.
    """
    run_dir = Path(cfg.run_dir)
    refuse_earlier_run(run_dir, cfg.overwrite or resume is not None)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=False, verbose=False)
    datamodule = PairDataModule(cfg.data, seed=cfg.seed, data=data)
    dataset = datamodule.data
    module = DiscoModule(
        cfg,
        datamodule.factor_names,
        datamodule.num_channels,
        int(datamodule.splits["train"].numel()),
        factor_sizes=tuple(dataset.factors.sizes),
        target=datamodule.target_kind,
    )
    wandb_id = checkpoint_wandb_id(resume) if resume is not None and cfg.logger == "wandb" else None
    logger = make_logger(cfg, run_dir, wandb_id)
    id_keeper = WandbRunId(wandb_id)
    callbacks = [*make_callbacks(cfg, run_dir, dataset, module, datamodule.source_domain), id_keeper, *extra_callbacks]
    trainer = make_trainer(cfg, run_dir, callbacks, logger, bool(module.objective.auxiliary_parameters()))
    if isinstance(logger, Logger):
        logger.log_hyperparams({**to_plain(cfg), "supervision": module.supervision})  # rank zero: starts the W&B run
    if isinstance(logger, WandbLogger) and trainer.is_global_zero and logger.version:
        id_keeper.run_id = str(logger.version)
        write_wandb_id(run_dir, id_keeper.run_id)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*that ended before the epoch ended.*")
        warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
        try:
            trainer.fit(
                module, datamodule=datamodule, ckpt_path=None if resume is None else str(resume), weights_only=True
            )
        except BaseException:
            if isinstance(logger, WandbLogger) and trainer.is_global_zero:
                logger.experiment.finish(exit_code=1)  # else a later run in this process would log into it
            raise
    if isinstance(logger, WandbLogger) and trainer.is_global_zero:
        logger.experiment.finish()
    evaluation = next((c for c in trainer.callbacks if isinstance(c, EvaluationCallback)), None)  # type: ignore[attr-defined]
    return RunResult(module, trainer, run_dir, evaluation, run_dir / "checkpoints")
