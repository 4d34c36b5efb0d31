"""Transfer runs end to end: a target domain, cross-domain pairs and the alignment terms in real Lightning training;
exact resume with the momentum encoder, queues, online centres and the cross-domain sampler; two gloo processes step
like one process with the doubled batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import Crash, assert_ddp_matches_one_process, tiny_config

from disco.errors import ConfigError
from disco.train.run import train

SUBSPACES = "--model.subspaces=shape=1,scale=1,orientation=2,pos_x=1,pos_y=1,domain=1"
TERMS = (
    "[{kind: mmd, weight: 1.0}, {kind: dann, weight: 0.5}, {kind: moco, weight: 0.5, kwargs: {queue: 12}},"
    " {kind: triplet, weight: 0.5}, {kind: margin, weight: 0.2}, {kind: center, weight: 0.3},"
    " {kind: coral, weight: 0.5}, {kind: factor_nce, weight: 0.5}, {kind: domain_head, weight: 0.5}]"
)


def test_transfer_run_trains_on_rgb_renders_and_records_what_it_saw(tiny_dsprites: Path, tmp_path: Path) -> None:
    cfg = tiny_config(
        tiny_dsprites,
        tmp_path / "run",
        SUBSPACES,
        "--data.target.domain=noisy",
        f"--objective.alignment={TERMS}",
        "--eval.at_end=true",
        "--eval.final=[mig]",
        "--eval.images=false",
    )
    result = train(cfg)
    module = result.module
    assert module.encoder_kwargs["input_dim"] == 3 * 64 * 64  # the plain source and the noisy target are RGB
    assert module.target_supervision == "cross-domain pairs" and module.supervision == "labels"
    ckpt = torch.load(result.checkpoint_dir / "last.ckpt", weights_only=True)
    assert ckpt["disco"]["target_supervision"] == "cross-domain pairs"
    assert {"sampler", "cross"} <= set(ckpt["PairDataModule"])
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= record["scores"]["mig"] <= 1.0  # the held-out evaluation encodes plain (RGB) renders
    labels = module.objective.terms["alignment"].labels
    assert labels == ["mmd", "dann", "moco", "triplet", "margin", "center", "coral", "factor_nce", "domain_head"]


def test_resume_with_alignment_state_matches_uninterrupted_run(tiny_dsprites: Path, tmp_path: Path) -> None:
    sets = {
        "trainer__max_steps": 8,
        "checkpoint__every_n_steps": 4,
        "data__target__domain": "color",
        "objective__alignment": "[{kind: moco, kwargs: {queue: 20}}, {kind: center}, {kind: dann}]",
    }
    full = train(tiny_config(tiny_dsprites, tmp_path / "full", SUBSPACES, **sets))
    reference = {k: v.clone() for k, v in full.module.state_dict().items()}
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_dsprites, crashed, SUBSPACES, **sets), extra_callbacks=[Crash(at=6)])
    resumed = train(
        tiny_config(tiny_dsprites, crashed, SUBSPACES, **sets), resume=crashed / "checkpoints" / "step0000004.ckpt"
    )
    got = resumed.module.state_dict()
    assert any(".queue.queue" in k for k in got) and any("momentum.target" in k for k in got)
    for key, value in reference.items():
        assert torch.equal(got[key], value), key


def test_bad_target_configs_fail_before_training(tiny_dsprites: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown data\.target\.domain 'fog'"):
        train(tiny_config(tiny_dsprites, tmp_path / "a", "--data.target.domain=fog"))
    with pytest.raises(ConfigError, match=r"set data\.target\.domain"):
        train(tiny_config(tiny_dsprites, tmp_path / "b", "--objective.alignment=[{kind: mmd}]"))
    assert not (tmp_path / "a" / "checkpoints").exists() and not (tmp_path / "b" / "checkpoints").exists()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_alignment_terms(tiny_dsprites: Path, tmp_path: Path) -> None:
    sets = {
        "trainer__max_steps": 4,
        "checkpoint__every_n_steps": 100,
        "objective__vae__weight": 0.0,
        "data__target__domain": "noisy",
        "objective__alignment": TERMS,
    }
    assert_ddp_matches_one_process(tiny_dsprites, tmp_path, SUBSPACES, **sets)


def test_target_file_is_paired_on_the_same_grid_and_unpaired_otherwise(tiny_dsprites: Path, tmp_path: Path) -> None:
    from disco.data.replicas import make_replica
    from disco.train.datamodule import PairDataModule

    cfg = tiny_config(tiny_dsprites, tmp_path / "a", "--data.target.dataset", str(tiny_dsprites), "--data.domain=plain")
    with pytest.raises(ConfigError, match="give the grey one a domain"):  # a grey target file against an RGB source
        PairDataModule(cfg.data)
    sets = ["--data.target.dataset", str(tiny_dsprites), "--data.target.domain=color"]
    module = PairDataModule(tiny_config(tiny_dsprites, tmp_path / "a", *sets).data)
    assert module.target_kind == "paired" and module.num_channels == 3  # an RGB target makes the grey source plain RGB
    grey = PairDataModule(tiny_config(tiny_dsprites, tmp_path / "a", "--data.target.dataset", str(tiny_dsprites)).data)
    assert grey.target_kind == "paired" and grey.num_channels == 1 and grey.source_domain is None
    other = make_replica("dsprites", tmp_path / "other.h5", {"scale": 3, "orientation": 8, "pos_x": 8, "pos_y": 8})
    sets = ["--data.target.dataset", str(other), "--data.target.domain=noisy"]
    assert PairDataModule(tiny_config(tiny_dsprites, tmp_path / "b", *sets).data).target_kind == "unpaired"
    with pytest.raises(ConfigError, match="needs cross-domain pairs"):
        train(tiny_config(tiny_dsprites, tmp_path / "b", *sets, "--objective.alignment=[{kind: triplet}]"))


def test_private_branch_run_saves_an_encoder_that_reloads(tiny_dsprites: Path, tmp_path: Path) -> None:
    from disco.models.checkpoint import load_encoder
    from disco.models.private import PrivateBranchEncoder, StylePool

    cfg = tiny_config(
        tiny_dsprites, tmp_path / "run", SUBSPACES, "--data.target.domain=noisy", "--model.private_branch=true",
        "--model.private_pool=logstyle",
        "--objective.alignment=[{kind: factor_nce, weight: 1.0}, {kind: domain_head, weight: 1.0}]",
    )  # fmt: skip
    result = train(cfg)
    encoder = result.module.encoder
    assert isinstance(encoder, PrivateBranchEncoder) and encoder.columns.tolist() == [6]  # domain=1 is column 6
    assert isinstance(encoder.private[0], StylePool) and encoder.private[0].log  # the config's pooling
    loaded, spec = load_encoder(result.checkpoint_dir / "last.ckpt")
    assert isinstance(loaded, PrivateBranchEncoder) and spec is not None and spec.names[-1] == "domain"
    x = torch.rand(3, 3, 64, 64)
    torch.testing.assert_close(loaded(x)[0], encoder.eval()(x)[0])
    with pytest.raises(ConfigError, match="private_branch needs a private subspace"):
        train(tiny_config(tiny_dsprites, tmp_path / "b", "--model.private_branch=true"))
