"""NaN guard (names the term, keeps the last good checkpoint) and TorchScript export round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from conftest import tiny_config

from disco.cli import main as disco_main
from disco.losses.base import LossOutput
from disco.train.guard import FiniteGuard, NonFiniteLossError
from disco.train.run import train


class PoisonTerm(pl.Callback):
    """From step ``at`` on, the ``localisation`` term returns NaN."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        term: Any = pl_module.objective.terms["localisation"]  # type: ignore[union-attr,index]
        original = term.forward

        def forward(inputs: Any) -> LossOutput:
            out: LossOutput = original(inputs)
            if inputs.step >= self.at:
                return LossOutput(out.loss * float("nan"), out.diagnostics)
            return out

        term.forward = forward


def test_guard_names_first_bad_term_only() -> None:
    guard = FiniteGuard(("loss", "contrastive", "vae"), check_every=10)
    ok = torch.tensor(1.0)
    guard.update([ok, ok, ok], step=0)
    guard.check(0)
    guard.update([torch.tensor(float("nan")), ok, torch.tensor(float("inf"))], step=1)
    guard.update([torch.tensor(float("nan"))] * 3, step=2)  # everything is NaN after the first bad step
    guard.maybe_check(5)  # not a check step: no host read
    with pytest.raises(NonFiniteLossError, match=r"loss term vae became NaN/inf at step 1 \(noticed at step 9\)"):
        guard.maybe_check(9)


def test_nan_stops_run_and_keeps_last_good_checkpoint(tiny_dsprites: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dsprites, tmp_path / "run", trainer__max_steps=12, trainer__nan_check_every=4)
    with pytest.raises(NonFiniteLossError, match="localisation") as info:
        train(cfg, extra_callbacks=[PoisonTerm(at=4)])
    assert "at step 4" in str(info.value) and "\n" not in str(info.value)
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    assert ckpts == ["last.ckpt", "step0000003.ckpt"]  # the step-6 checkpoint was refused
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


def test_nan_through_cli_is_one_line(tiny_dsprites: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = disco_main(
        ["train", f"--data.dataset={tiny_dsprites}", f"--run_dir={tmp_path}", "--model.encoder=mlp",
         "--model.encoder_kwargs={hidden: [8]}", "--objective.vae.weight=0", "--optim.lr=1e30",
         "--model.subspaces=shape=1,scale=1,orientation=2,pos_x=1,pos_y=1", "--trainer.max_steps=6",
         "--trainer.nan_check_every=1", "--trainer.accelerator=cpu", "--trainer.progress_bar=false",
         "--eval.every_n_steps=0", "--eval.at_end=false", "--logger=none", "--data.batch_size=8"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: loss term ") and err.count("\n") == 1


def test_export_round_trip(tiny_dsprites: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = train(tiny_config(tiny_dsprites, tmp_path / "run", "--model.encoder=conv64", "--model.encoder_kwargs={}"))
    ckpt, out = result.checkpoint_dir / "last.ckpt", tmp_path / "encoder.pt"
    assert disco_main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    scripted = torch.jit.load(str(out))
    x = torch.rand(5, 1, 64, 64)
    module = result.module.eval()
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), module.encoder(x)[0])
    extra = {"subspaces.json": "", "factor_names.json": ""}
    torch.jit.load(str(out), _extra_files=extra)
    assert b'"orientation": [2, "orientation"]' in extra["subspaces.json"]  # type: ignore[operator]
    # refuses to overwrite without --force, then overwrites with it
    before = out.stat().st_mtime_ns
    capsys.readouterr()
    assert disco_main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.stat().st_mtime_ns == before
    assert disco_main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--force"]) == 0
    # the evaluation CLI's loader takes the TorchScript file too
    from disco.models.checkpoint import load_any_encoder

    loaded = load_any_encoder(str(out))
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), module.encoder(x)[0])


def test_export_missing_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert disco_main(["export", "--checkpoint", str(tmp_path / "no.ckpt"), "--out", str(tmp_path / "e.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and not (tmp_path / "e.pt").exists()
