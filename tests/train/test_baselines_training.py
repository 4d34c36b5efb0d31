"""The baseline configs (configs/baselines/): each loads from its YAML file, reports the supervision its learner saw,
and trains a few steps on a tiny replica (MLP encoder/decoder) with its term's networks updated by the right
optimiser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from disco.errors import ConfigError
from disco.train.cli import parse_config
from disco.train.config import TrainConfig
from disco.train.experiment import config_supervision
from disco.train.run import train

BASELINES = Path(__file__).resolve().parents[2] / "configs" / "baselines"
#: config -> resolved supervision (what the learner saw)
EXPECTED = {
    "adagvae": "pairs",
    "adamlvae": "pairs",
    "gvae_labels": "pairs",
    "mlvae_labels": "pairs",
    "factorvae": "none",
    "supervised": "labels",
}
EXPECTED |= {f"shapes3d_{name}": level for name, level in EXPECTED.items()}
#: weak-VAE configs -> (aggregation, shared rule)
WEAK = {"adagvae": ("gvae", "adaptive"), "adamlvae": ("mlvae", "adaptive")}
WEAK |= {"gvae_labels": ("gvae", "labels"), "mlvae_labels": ("mlvae", "labels")}
FAST = (
    "--data.batch_size=8",
    "--data.steps_per_epoch=50",
    "--model.encoder=mlp",
    "--model.encoder_kwargs={hidden: [32]}",
    "--model.decoder=mlp",
    "--model.decoder_kwargs={hidden: [32]}",
    "--trainer.max_steps=6",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.progress_bar=false",
    "--checkpoint.every_n_steps=100",
    "--eval.every_n_steps=0",
    "--eval.at_end=false",
    "--logger=none",
)


@pytest.fixture(scope="module")
def tiny_shapes3d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 192-image 3D Shapes replica (2 × 2 × 2 hues, 4 scales, 2 shapes, 3 orientations)."""
    from disco.data.replicas import make_replica

    steps = {"floor_hue": 5, "wall_hue": 5, "object_hue": 5, "orientation": 5, "scale": 2, "shape": 2}
    return make_replica("shapes3d", tmp_path_factory.mktemp("s3") / "tiny_s3.h5", steps)


def test_every_baseline_config_reports_its_supervision() -> None:
    assert {p.stem for p in BASELINES.glob("*.yaml")} == set(EXPECTED)
    for name, level in EXPECTED.items():
        assert config_supervision(BASELINES / f"{name}.yaml") == level, name


def _config(name: str, data: Path, run_dir: Path, *extra: str) -> TrainConfig:
    return parse_config(["--config", str(BASELINES / f"{name}.yaml"), f"--data.dataset={data}",
                         f"--run_dir={run_dir}", *FAST, *extra])  # fmt: skip


class Snapshot(pl.Callback):
    """The module's parameters (by name) when fitting starts."""

    def __init__(self) -> None:
        self.before: dict[str, torch.Tensor] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.before = {k: p.detach().clone() for k, p in pl_module.named_parameters()}


def _changed(snap: Snapshot, module: Any, prefix: str) -> bool:
    params = {k: p for k, p in module.named_parameters() if k.startswith(prefix)}
    assert params, prefix
    return all(not torch.equal(snap.before[k], p.detach()) for k, p in params.items() if p.ndim > 1)


def _train(name: str, data: Path, tmp_path: Path, *extra: str) -> tuple[TrainConfig, Any, Snapshot]:
    cfg = _config(name, data, tmp_path / name, *extra)
    snap = Snapshot()
    result = train(cfg, extra_callbacks=[snap])
    assert result.trainer.global_step == 6
    assert result.module.supervision == EXPECTED[name]
    return cfg, result, snap


@pytest.mark.parametrize("name", list(WEAK))
def test_weak_vae_configs_train(name: str, tiny_dsprites: Path, tmp_path: Path) -> None:
    cfg, result, snap = _train(name, tiny_dsprites, tmp_path)
    w = cfg.objective.weak_vae
    assert (w.weight, w.beta, w.likelihood, (w.aggregation, w.shared)) == (1.0, 1.0, "bernoulli", WEAK[name])
    assert cfg.optim.lr == 1e-4 and cfg.data.supervision == "pairs"
    module = result.module
    assert module.objective.names == ("weak_vae",) and module.decoder is not None
    assert _changed(snap, module, "encoder.") and _changed(snap, module, "decoder.")


def test_factorvae_config_trains_the_discriminator_with_the_auxiliary_optimiser(
    tiny_dsprites: Path, tmp_path: Path
) -> None:
    cfg, result, snap = _train("factorvae", tiny_dsprites, tmp_path)
    ind = cfg.objective.independence
    assert (ind.weight, ind.estimator, ind.kwargs["per_dimension"]) == (35.0, "tc", True)
    assert (cfg.objective.vae.weight, cfg.objective.vae.beta, cfg.optim.lr, cfg.optim.aux_lr) == (1.0, 1.0, 1e-4, 1e-4)
    module = result.module
    assert set(module.objective.names) == {"vae", "independence"}
    disc = module.objective.terms["independence"].loss.tc
    assert len(disc.spec) == module.spec.dim == 10  # one permuted block per dimension
    main, aux = result.trainer.optimizers
    aux_ids = {id(p) for g in aux.param_groups for p in g["params"]}
    main_ids = {id(p) for g in main.param_groups for p in g["params"]}
    assert aux_ids == {id(p) for p in disc.parameters()} and not aux_ids & main_ids
    assert _changed(snap, module, "objective.terms.independence.") and _changed(snap, module, "encoder.")


def test_supervised_config_regresses_each_factor_onto_its_subspace(tiny_dsprites: Path, tmp_path: Path) -> None:
    cfg, result, snap = _train("supervised", tiny_dsprites, tmp_path)
    assert cfg.objective.supervised.weight == 1.0 and cfg.data.supervision == "labels"
    loss = result.module.objective.terms["supervised"].loss
    assert loss.kind == "regression" and list(loss.parameters()) == []
    assert loss.sizes == [3, 3, 5, 4, 4]  # shape, scale, orientation, pos_x, pos_y classes
    assert _changed(snap, result.module, "encoder.")


def test_supervised_config_trains_its_heads_with_the_model(tiny_dsprites: Path, tmp_path: Path) -> None:
    cfg, result, snap = _train("supervised", tiny_dsprites, tmp_path, "--objective.supervised.head=linear")
    assert cfg.objective.supervised.weight == 1.0 and cfg.data.supervision == "labels"
    module = result.module
    assert module.objective.names == ("supervised",) and module.decoder is None
    heads = module.objective.terms["supervised"].loss.heads
    assert [h.out_features for h in heads] == [3, 3, 5, 4, 4]  # shape, scale, orientation, pos_x, pos_y classes
    (main,) = result.trainer.optimizers
    main_ids = {id(p) for g in main.param_groups for p in g["params"]}
    assert {id(p) for p in heads.parameters()} <= main_ids
    assert _changed(snap, module, "objective.terms.supervised.") and _changed(snap, module, "encoder.")


def test_supervised_config_below_labels_stops_with_one_line(tiny_dsprites: Path, tmp_path: Path) -> None:
    cfg = _config("supervised", tiny_dsprites, tmp_path / "x", "--data.supervision=pairs")
    with pytest.raises(ConfigError, match=r"needs data\.supervision: labels"):
        train(cfg)
    assert not (tmp_path / "x" / "checkpoints").exists()


@pytest.mark.parametrize("name", [n for n in EXPECTED if n.startswith("shapes3d_")])
def test_shapes3d_configs_train(name: str, tiny_shapes3d: Path, tmp_path: Path) -> None:
    cfg, result, snap = _train(name, tiny_shapes3d, tmp_path)
    assert cfg.data.dataset == str(tiny_shapes3d) and result.module.spec.dim == 10
    base = name.removeprefix("shapes3d_")
    if base in WEAK:
        assert (cfg.objective.weak_vae.aggregation, cfg.objective.weak_vae.shared) == WEAK[base]
        assert cfg.objective.vae.likelihood == cfg.objective.weak_vae.likelihood == "bernoulli"
    if base == "factorvae":
        assert cfg.objective.independence.weight == 20.0 and cfg.objective.independence.kwargs["per_dimension"]
    assert _changed(snap, result.module, "encoder.")
