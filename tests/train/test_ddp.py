"""Two CPU processes (DDP, gloo) step exactly like one process with the doubled batch, batch-statistic terms included:
the dependence penalty and β-TCVAE's log q(z) are evaluated on the codes of both ranks, and localisation is the mean
over the valid pairs of both ranks (see :mod:`disco.losses.distributed`).

Without the β-VAE term the codes are the encoder means, and the remaining terms (contrastive with squared distances,
which ``auto`` picks for subspaces of width 1-2, localisation, dCor) are invariant to a translation of the codes: the
gradient of the mean half of the encoder's output bias is zero up to float rounding, and that rounding differs between
one pass over 2B rows and two ranks' sums of B rows (as between two micro-batch settings of one process). Adam's step
is ~lr·g/(|g|+eps) per coordinate, so it moves that bias by O(lr) on rounding noise alone, in a direction no term sees.
The test without the β-VAE term therefore compares the gradients of every step, and the weights under a small weight
decay, which gives that direction a gradient far above rounding."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import assert_ddp_matches_one_process, tiny_config

from disco.train.run import train

TERMS = {
    # random_subset pairs: some pairs change one factor, so the number of localisation rows differs between the ranks
    "data__pair_mode": "random_subset",
    "objective__localisation__weight": 1.0,  # mean over the valid pairs of the WORLD (global count normalisation)
    "objective__independence__weight": 1.0,  # dCor is a batch statistic: evaluated on the codes gathered from all ranks
    "objective__independence__estimator": "dcor",
    "objective__vae__weight": 0.1,  # reparameterised codes: noise is drawn for the whole world and sliced by rank
    "objective__vae__tc_beta": 6.0,  # β-TCVAE: log q(z) is estimated on the minibatch of both ranks
    "trainer__max_steps": 4,
    "checkpoint__every_n_steps": 100,
}


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_double_batch(tiny_dsprites: Path, tmp_path: Path) -> None:
    assert_ddp_matches_one_process(tiny_dsprites, tmp_path, **TERMS)


@pytest.mark.slow
def test_ddp_with_auxiliary_club_nets(tiny_dsprites: Path, tmp_path: Path) -> None:
    sets = {**TERMS, "objective__independence__weight": 0.1, "objective__independence__estimator": "club"}
    result = train(
        tiny_config(
            tiny_dsprites,
            tmp_path / "club",
            data__batch_size=4,
            trainer__devices=2,
            trainer__strategy="ddp_spawn",
            **sets,
        )
    )
    ckpt = torch.load(tmp_path / "club" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4  # the auxiliary optimiser does not count as a Lightning step
    club = {k: v for k, v in ckpt["state_dict"].items() if ".club." in k}
    assert club and all(torch.isfinite(v).all() for v in club.values())
    assert result.module.objective.auxiliary_parameters()


class GradientRecorder(pl.Callback):
    """Saves the gradients the model optimiser is about to apply (after DDP's all-reduce) of each step and rank."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        grads = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters() if p.grad is not None}
        torch.save(grads, self.folder / f"step{trainer.global_step}_rank{trainer.global_rank}.pt")


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_double_batch_without_vae(
    tiny_dsprites: Path, tmp_path: Path
) -> None:
    # codes = encoder means (configs/quickstart.yaml); the weight decay gives the translation of the codes, which no
    # remaining term sees, a gradient above float rounding (see the module docstring)
    sets = {**TERMS, "objective__vae__weight": 0.0, "optim__weight_decay": 1e-2}
    grads = {"one": tmp_path / "grads_one", "two": tmp_path / "grads_two"}
    for folder in grads.values():
        folder.mkdir()
    single, _ = assert_ddp_matches_one_process(
        tiny_dsprites, tmp_path, callbacks=lambda name: [GradientRecorder(grads[name])], **sets
    )
    assert single.module.decoder is None and not single.module.objective.needs_reparameterisation
    for step in range(4):
        g_one = torch.load(grads["one"] / f"step{step}_rank0.pt", weights_only=True)
        for rank in range(2):
            g_two = torch.load(grads["two"] / f"step{step}_rank{rank}.pt", weights_only=True)
            assert g_two.keys() == g_one.keys()
            for key, value in g_one.items():
                torch.testing.assert_close(g_two[key], value, rtol=1e-4, atol=1e-6, msg=f"step {step} {key}")
