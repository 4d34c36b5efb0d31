"""A resumed run logs into the same W&B run (same id, history continuing after the checkpoint step), offline too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import wandb_reader
from conftest import Crash, tiny_config

from disco.train.checkpointing import atomic_torch_save
from disco.train.run import WANDB_ID_FILE, WandbRunId, checkpoint_wandb_id, train


def _run_files(run_dir: Path) -> set[Path]:
    return set((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def _new_run_file(run_dir: Path, before: set[Path]) -> Path:
    new = _run_files(run_dir) - before
    assert len(new) == 1, new
    return new.pop()


def _train_steps(path: Path) -> list[int]:
    return [int(r["trainer/global_step"]) for r in wandb_reader.history(path) if "loss" in r]


@pytest.mark.slow
def test_resumed_run_continues_the_same_offline_wandb_run(
    tiny_dsprites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from disco.train.cli import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    monkeypatch.delenv("WANDB_RESUME", raising=False)
    run_dir = tmp_path / "run"
    sets = {"trainer__max_steps": 6, "checkpoint__every_n_steps": 3, "logger": "wandb"}

    # 1. a run killed at step 5: its last checkpoint is at step 3, and it carries the W&B run id
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_dsprites, run_dir, **sets), extra_callbacks=[Crash(at=5)])
    first = _new_run_file(run_dir, set())
    first_info = wandb_reader.run_info(first)
    run_id = first_info["run_id"]
    assert run_id and not first_info["resume"]
    assert (run_dir / "wandb" / WANDB_ID_FILE).read_text() == run_id
    assert _train_steps(first) == [0, 1, 2, 3, 4]  # Lightning logs the row of step k (1-based) at global step k - 1
    ckpt = run_dir / "checkpoints" / "step0000003.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 3 and saved["callbacks"][WandbRunId.KEY] == {"run_id": run_id}

    # 2. `disco train --resume` (config from the checkpoint): same W&B run, history continues after the checkpoint's
    # 3 steps (the rows of steps 4-5 lost in the crash are logged again)
    before = _run_files(run_dir)
    assert main(["--resume", str(ckpt)]) == 0
    second = _new_run_file(run_dir, before)
    second_info = wandb_reader.run_info(second)
    assert second_info["run_id"] == run_id and second_info["resume"], second_info
    assert second.name == f"run-{run_id}.wandb"  # the folder may get a "-1" suffix when both start in one second
    assert _train_steps(second) == [3, 4, 5]
    assert wandb_reader.summary(second)["trainer/global_step"] == 5
    assert (run_dir / "wandb" / WANDB_ID_FILE).read_text() == run_id
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 6 and last["callbacks"][WandbRunId.KEY] == {"run_id": run_id}

    # 3. a fresh run (no --resume) in the same run dir is a different W&B run, never merged into the old one
    before = _run_files(run_dir)
    train(tiny_config(tiny_dsprites, run_dir, **{**sets, "trainer__max_steps": 2, "overwrite": "true"}))
    third = _new_run_file(run_dir, before)
    fresh = wandb_reader.run_info(third)
    assert fresh["run_id"] != run_id and not fresh["resume"]
    assert (run_dir / "wandb" / WANDB_ID_FILE).read_text() == fresh["run_id"]


def test_wandb_id_survives_a_resume_without_wandb(tiny_dsprites: Path, tmp_path: Path) -> None:
    """A run resumed with ``logger: none`` keeps the W&B id it loaded, so a later W&B resume still finds it."""
    run_dir = tmp_path / "run"
    sets = {"trainer__max_steps": 3, "checkpoint__every_n_steps": 3}
    first = train(tiny_config(tiny_dsprites, run_dir, **sets))
    ckpt = first.checkpoint_dir / "step0000003.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert WandbRunId.KEY not in saved["callbacks"] and checkpoint_wandb_id(ckpt) is None  # never logged to W&B
    saved["callbacks"][WandbRunId.KEY] = {"run_id": "abc12345"}  # as a W&B run would have stored it
    atomic_torch_save(saved, ckpt)
    assert checkpoint_wandb_id(ckpt) == "abc12345"

    resumed = train(tiny_config(tiny_dsprites, run_dir, **{**sets, "trainer__max_steps": 6}), resume=ckpt)
    assert resumed.trainer.global_step == 6
    last = torch.load(resumed.checkpoint_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 6 and last["callbacks"][WandbRunId.KEY] == {"run_id": "abc12345"}
    assert not (run_dir / "wandb" / WANDB_ID_FILE).exists()
