"""vae.other_terms_read: with the β-VAE branch on, the code terms read its sampled codes (``sample``) or the encoder
means (``mean``), while the branch itself always decodes the sample; checked against the loss modules called by hand."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import tiny_config

from disco.data.datasets import load_dataset
from disco.data.sampler import PairSampler
from disco.train.module import DiscoModule


def _module(data: Path, run_dir: Path, read: str) -> DiscoModule:
    cfg = tiny_config(data, run_dir, f"--objective.vae.other_terms_read={read}")
    dataset = load_dataset(str(data))
    torch.manual_seed(0)
    return DiscoModule(cfg, tuple(dataset.factors.names), dataset.num_channels, len(dataset))


def test_code_terms_read_the_means_and_the_branch_decodes_the_sample(tiny_dsprites: Path, tmp_path: Path) -> None:
    sampled, means = _module(tiny_dsprites, tmp_path, "sample"), _module(tiny_dsprites, tmp_path, "mean")
    means.load_state_dict(sampled.state_dict())
    assert {"contrastive", "localisation", "vae"} <= set(means.objective.names)
    batch = PairSampler(load_dataset(str(tiny_dsprites)), batch_size=6, seed=3).sample()
    a, b = sampled.step_inputs(batch, step=4), means.step_inputs(batch, step=4)
    torch.testing.assert_close(a.mean, b.mean)
    assert a.sample is None and b.sample is not None
    assert torch.equal(b.z, b.mean) and not torch.allclose(a.z, a.mean)
    torch.testing.assert_close(b.sample, a.z)  # the same noise: the branch's sample is unchanged
    out_a, out_b = sampled.objective(a), means.objective(b)
    torch.testing.assert_close(out_a.terms["vae"].loss, out_b.terms["vae"].loss)
    s = batch
    contrastive = means.objective.terms["contrastive"].loss
    by_hand = contrastive(b.mean[: len(s)], b.mean[len(s) :], s.shared, s.classes_a, s.classes_b, s.ids).loss
    torch.testing.assert_close(out_b.terms["contrastive"].loss, by_hand)
    on_samples = contrastive(a.z[: len(s)], a.z[len(s) :], s.shared, s.classes_a, s.classes_b, s.ids).loss
    torch.testing.assert_close(out_a.terms["contrastive"].loss, on_samples)
    assert not torch.allclose(by_hand, on_samples)
