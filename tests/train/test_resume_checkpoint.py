"""Checkpoints: contract contents, weights_only loading, exact resume after a crash, atomic writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import Crash, tiny_config

from disco.train.checkpointing import AtomicCheckpointIO, atomic_torch_save, atomic_write_text, load_checkpoint
from disco.train.run import train


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_checkpoint_contract_and_safe_types(tiny_dsprites: Path, tmp_path: Path) -> None:
    result = train(tiny_config(tiny_dsprites, tmp_path / "run"))
    ckpt = torch.load(result.checkpoint_dir / "last.ckpt", map_location="cpu", weights_only=True)
    meta = ckpt["disco"]
    assert meta["encoder"]["name"] == "mlp" and meta["encoder"]["kwargs"]["latent_dim"] == 6
    assert meta["factor_names"] == ["color", "shape", "scale", "orientation", "pos_x", "pos_y"]
    assert meta["dataset"] == str(tiny_dsprites)
    assert meta["config"]["trainer"]["max_steps"] == 6
    assert list(meta["subspaces"]) == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    enc = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
    for k, v in result.module.encoder.state_dict().items():
        torch.testing.assert_close(enc[f"encoder.{k}"], v)
    assert ckpt["global_step"] == 6
    assert "sampler" in ckpt["PairDataModule"]
    # the evaluation CLI's loader rebuilds the same encoder from the checkpoint
    from disco.models.checkpoint import load_encoder

    encoder, spec = load_encoder(str(result.checkpoint_dir / "last.ckpt"))
    assert spec == result.module.spec
    x = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x)[0], result.module.encoder(x)[0])


def test_resume_after_crash_matches_uninterrupted_run(tiny_dsprites: Path, tmp_path: Path) -> None:
    sets = {
        "trainer__max_steps": 8,
        "checkpoint__every_n_steps": 4,
        "objective__alignment": "[{kind: prior, weight: 0.1}]",
    }
    full = train(tiny_config(tiny_dsprites, tmp_path / "full", **sets))
    reference = _weights(full.module)

    crashed_dir = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_dsprites, crashed_dir, **sets), extra_callbacks=[Crash(at=6)])
    ckpt = crashed_dir / "checkpoints" / "step0000004.ckpt"
    assert ckpt.is_file() and not (crashed_dir / "checkpoints" / "step0000008.ckpt").exists()

    resumed = train(tiny_config(tiny_dsprites, crashed_dir, **sets), resume=ckpt)
    assert resumed.trainer.global_step == 8
    got = _weights(resumed.module)
    assert got.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(got[key], value), key


def test_cli_resume_uses_the_saved_config(tiny_dsprites: Path, tmp_path: Path) -> None:
    from disco.train.cli import main

    first = train(tiny_config(tiny_dsprites, tmp_path / "run"))
    assert main(["--resume", str(first.checkpoint_dir / "last.ckpt"), "--trainer.max_steps", "9"]) == 0
    last = torch.load(first.checkpoint_dir / "last.ckpt", weights_only=True)
    assert last["global_step"] == 9 and last["disco"]["config"]["trainer"]["max_steps"] == 9


class _Unpicklable:
    def __reduce__(self) -> Any:
        raise RuntimeError("disk full")


def test_failed_write_keeps_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "step": 1}, path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "bad": _Unpicklable()}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left behind
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))


def test_atomic_save_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    atomic_torch_save({"a": torch.arange(5)}, path)
    atomic_torch_save({"a": torch.arange(2)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.arange(2))


def test_atomic_write_text_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.md"
    atomic_write_text(path, "old text, longer than the new one")
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and sorted(p.name for p in path.parent.iterdir()) == ["t.md"]


def test_trainer_uses_atomic_io(tiny_dsprites: Path, tmp_path: Path) -> None:
    result = train(tiny_config(tiny_dsprites, tmp_path / "run", trainer__max_steps=1))
    assert isinstance(result.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


class Payload:
    """A custom class: a weights_only load must refuse to rebuild it."""

    def __init__(self) -> None:
        self.x = 1


def test_resume_refuses_unsafe_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from disco.cli import main as disco_main

    path = tmp_path / "evil.ckpt"
    torch.save({"disco": {"config": {}}, "state_dict": {}, "payload": Payload()}, path)
    assert disco_main(["train", "--resume", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read checkpoint" in err
    with pytest.raises(Exception, match=r"[Ww]eights"):
        AtomicCheckpointIO().load_checkpoint(path)


def test_last_checkpoint_holds_the_final_step_between_periodic_saves(tiny_dsprites: Path, tmp_path: Path) -> None:
    """A run that stops inside an epoch after a periodic save (7 steps, epochs of 4, saves every 3): ``last.ckpt`` holds
    step 7 and the weights the run ended with, not step 6's."""
    cfg = tiny_config(tiny_dsprites, tmp_path / "run", trainer__max_steps=7, data__steps_per_epoch=4)
    result = train(cfg)
    folder = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in folder.glob("step*.ckpt")) == ["step0000003.ckpt", "step0000006.ckpt"]
    last = load_checkpoint(folder / "last.ckpt")
    assert last["global_step"] == 7 and load_checkpoint(folder / "step0000006.ckpt")["global_step"] == 6
    for key, value in result.module.state_dict().items():
        assert torch.equal(last["state_dict"][key], value), key
