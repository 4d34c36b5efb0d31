"""Config parsing: YAML bases, overrides, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from disco.cli import main as disco_main
from disco.train.cli import all_keys, parse_config
from disco.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_shipped_config_parses(path: Path) -> None:
    cfg = parse_config(["--config", str(path)])
    assert isinstance(cfg, TrainConfig)


def test_base_merge_and_overrides(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"seed": 3, "objective": {"vae": {"weight": 1.0, "beta": 2.0}}}))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"base": "base.yaml", "objective": {"vae": {"beta": 4.0}}}))
    cfg = parse_config(["--config", str(child), "--objective.vae.tc_beta", "6", "--set", "trainer.max_steps=7"])
    assert cfg.seed == 3
    assert cfg.objective.vae.weight == 1.0 and cfg.objective.vae.beta == 4.0 and cfg.objective.vae.tc_beta == 6.0
    assert cfg.trainer.max_steps == 7


def test_dotted_key_into_a_mapping_changes_that_entry_only(capsys: pytest.CaptureFixture[str]) -> None:
    """``--data.augment.factors.position.range=...`` keeps the file's other augmentations and the position's kind;
    nested overrides compose in order, reach past a file's whole-mapping value, and start from the default mapping
    where no file set one; a typo under a dataclass key is still one error line."""
    augment = str(REPO / "configs" / "dsprites_augment.yaml")
    file_factors = parse_config(["--config", augment]).data.augment["factors"]
    cfg = parse_config(["--config", augment, "--data.augment.factors.position.range=[-0.35, 0.35]"])
    factors = cfg.data.augment["factors"]
    assert factors["position"] == {"kind": "translation", "range": [-0.35, 0.35]}
    assert {k: v for k, v in factors.items() if k != "position"} == {
        k: v for k, v in file_factors.items() if k != "position"
    }
    assert cfg.data.augment["pivot"] == "mass" and set(factors) == {"orientation", "position", "scale"}
    both = parse_config(
        ["--config", augment, "--data.augment.pivot=centre", "--data.augment.factors.scale.range", "[0.8, 1.2]"]
    ).data.augment
    assert both["pivot"] == "centre" and both["factors"]["scale"]["range"] == [0.8, 1.2]
    assert both["factors"]["position"] == file_factors["position"]
    hidden = parse_config(["--model.encoder_kwargs.hidden=[8]", "--model.encoder_kwargs.act=relu"]).model
    assert hidden.encoder_kwargs == {"hidden": [8], "act": "relu"}
    assert parse_config(["--objective.vae.beta", "4"]).objective.vae.beta == 4.0
    assert disco_main(["train", "--config", augment, "--objective.vae.betaa=3", "--print-config"]) == 2
    assert "objective.vae.betaa" in capsys.readouterr().err


def test_baselines_zero_other_weights() -> None:
    cfg = parse_config(["--config", str(REPO / "configs" / "betatcvae.yaml")])
    o = cfg.objective
    assert (o.contrastive.weight, o.localisation.weight, o.independence.weight) == (0.0, 0.0, 0.0)
    assert o.vae.weight == 1.0 and o.vae.tc_beta == 6.0


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = disco_main(["train", *args])
    return code, capsys.readouterr().err


def test_unknown_key_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "--objective.vae.bta", "4")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: unknown config key objective.vae.bta")
    assert "objective.vae.beta" in err  # the suggested fix


def test_unknown_key_in_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  max_stepz: 3\n")
    code, err = _run(capsys, "--config", str(path))
    assert code == 2 and err.count("\n") == 1
    assert "trainer.max_stepz" in err and "trainer.max_steps" in err


def test_wrong_type_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "--set", "data.batch_size=many")
    assert code == 2 and err.count("\n") == 1
    assert "data.batch_size" in err and "int" in err and "'many'" in err


def test_wrong_literal_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "--objective.independence.estimator", "mine")
    assert code == 2 and err.count("\n") == 1
    assert "objective.independence.estimator" in err and "dcor" in err


def test_print_config_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert disco_main(["train", "--config", str(REPO / "configs" / "quickstart.yaml"), "--print-config"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# supervision: labels (pairs + factor classes of both images)\n")
    dumped = yaml.safe_load(text)
    assert (
        dumped["trainer"]["max_steps"]
        == parse_config(["--config", str(REPO / "configs/quickstart.yaml")]).trainer.max_steps
    )
    assert "base" not in dumped


@pytest.mark.parametrize(
    ("config", "level"),
    [("dsprites_pairs", "pairs"), ("dsprites_augment", "augment"), ("betavae", "none"), ("shapes3d_pairs", "pairs")],
)
def test_print_config_names_the_resolved_supervision(
    config: str, level: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert disco_main(["train", "--config", str(REPO / "configs" / f"{config}.yaml"), "--print-config"]) == 0
    assert capsys.readouterr().out.startswith(f"# supervision: {level} (")


def test_unlabelled_data_with_pairs_stops_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    path = tmp_path / "mine.npz"
    np.savez(path, images=np.zeros((20, 64, 64), dtype=np.uint8))
    code = disco_main(["train", "--config", str(REPO / "configs/dsprites_pairs.yaml"), f"--data.dataset={path}",
                       f"--run_dir={tmp_path / 'run'}", "--logger=none"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "data.supervision: augment" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_greyworld_shared_input_without_a_private_branch_is_refused() -> None:
    """Grey world on the whole encoder would hide the domain from the private subspaces too: one ConfigError line,
    raised when the config is parsed; with the private branch the kwarg reaches the encoder (and a checkpoint)."""
    from disco.data.datasets import SHAPES3D
    from disco.errors import ConfigError
    from disco.train.module import DiscoModule

    base = ["--config", str(REPO / "configs/transfer_shapes3d.yaml"), "--model.shared_input=greyworld"]
    sizes = tuple(SHAPES3D.sizes)
    module = DiscoModule(parse_config(base), tuple(SHAPES3D.names), 3, 1000, factor_sizes=sizes)
    assert module.encoder_kwargs["shared_input"] == "greyworld"
    with pytest.raises(ConfigError, match=r"model\.shared_input greyworld needs model\.private_branch: true"):
        parse_config([*base, "--model.private_branch=false"])


def test_all_keys_lists_nested_keys() -> None:
    keys = all_keys()
    assert "objective.vae.schedule.warmup_steps" in keys and "trainer.precision" in keys


def test_console_exit_code_is_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "disco.cli", "train", "--trainer.max_step", "3"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "trainer.max_steps" in proc.stderr


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_shipped_config_builds_its_model(path: Path) -> None:
    from disco.data.augment import augmenter_from_config
    from disco.data.datasets import DSPRITES, SHAPES3D
    from disco.train.module import DiscoModule

    cfg = parse_config(["--config", str(path)])
    space, channels = (SHAPES3D, 3) if "shapes3d" in cfg.data.dataset else (DSPRITES, 1)
    names = tuple(space.names)
    if cfg.data.supervision == "augment":  # subspaces tie to the augmenter's tags, not to the dataset's factors
        names = augmenter_from_config(cfg.data.augment, seed=0).factor_names
    sizes = tuple(space.sizes) if names == tuple(space.names) else ()
    module = DiscoModule(cfg, names, channels, 1000, factor_sizes=sizes)
    assert module.objective.names  # at least one term is on
    shape = module.encoder_kwargs.get("base_kwargs", module.encoder_kwargs)  # a private branch wraps its base encoder
    assert module.spec.dim == shape["latent_dim"]
    if cfg.model.private_branch:
        assert module.encoder_name == "private_branch" and module.encoder_kwargs["in_channels"] == channels
        assert module.encoder_kwargs["pool"] == cfg.model.private_pool


def test_fresh_run_refuses_an_earlier_runs_checkpoints(
    tiny_dsprites: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second fresh run in the same run_dir stops with one line and leaves the first run's checkpoints untouched;
    --resume continues it and --overwrite true replaces it."""
    from conftest import tiny_config

    from disco.train.run import train

    train(tiny_config(tiny_dsprites, tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = {p.name: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()}
    args = ["--config", "configs/quickstart.yaml", f"--data.dataset={tiny_dsprites}", f"--run_dir={tmp_path}"]
    code, err = _run(capsys, *args, "--trainer.max_steps=2", "--logger=none")
    assert code == 2 and err.count("\n") == 1
    assert "already holds checkpoints" in err and f"--resume {last}" in err and "--overwrite true" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()} == before
    train(tiny_config(tiny_dsprites, tmp_path, "--overwrite=true", "--seed=1"))
    assert last.read_bytes() != before["last.ckpt"]


def test_pairs_config_decays_its_variance_floor() -> None:
    """configs/dsprites_pairs.yaml: invariance instead of InfoNCE, and a floor at full weight for 100 steps that decays
    to 0.001 by step 250 (the recipe of README "What the learner saw", third round)."""
    from disco.models.subspaces import SubspaceSpec
    from disco.train.objective import Objective
    from disco.train.step import TermContext

    cfg = parse_config(["--config", str(REPO / "configs/dsprites_pairs.yaml")])
    names = ("color", "shape", "scale", "orientation", "pos_x", "pos_y")
    objective = Objective(cfg.objective, TermContext(SubspaceSpec.parse(cfg.model.subspaces), names, 1000, False))
    assert set(objective.names) == {"invariance", "localisation", "variance"}
    assert [objective.weight("variance", t) for t in (0, 100)] == [1.0, 1.0]
    assert objective.weight("variance", 175) == pytest.approx(1.0 - 0.999 * 75 / 150)
    assert objective.weight("variance", 250) == objective.weight("variance", 600) == pytest.approx(0.001)
    assert objective.weight("invariance", 600) == 10.0
    assert (cfg.optim.lr, cfg.optim.lr_schedule, cfg.optim.warmup_steps) == (5e-4, "cosine", 0)


def test_labels_default_floor_and_the_configs_measured_before_it() -> None:
    """configs/dsprites.yaml: one unit per scalar factor, no free units, and the decaying floor (fourth round of README
    "What the learner saw"); the configs measured on the former base keep that code and run without the floor."""
    from disco.models.subspaces import SubspaceSpec
    from disco.train.objective import Objective
    from disco.train.step import TermContext

    cfg = parse_config(["--config", str(REPO / "configs/dsprites.yaml")])
    assert cfg.model.subspaces == "shape=1,scale=1,orientation=2,pos_x=1,pos_y=1"
    names = ("color", "shape", "scale", "orientation", "pos_x", "pos_y")
    objective = Objective(cfg.objective, TermContext(SubspaceSpec.parse(cfg.model.subspaces), names, 1000, False))
    assert set(objective.names) == {"contrastive", "variance"}
    assert objective.weight("variance", 100) == 1.0 and objective.weight("variance", 250) == pytest.approx(0.001)
    former = "shape=2,scale=1,orientation=2,pos_x=1,pos_y=1,free=2"
    for name in ("dsprites_pairs", "baselines/supervised", "ablations/former_default"):
        assert parse_config(["--config", str(REPO / f"configs/{name}.yaml")]).model.subspaces == former, name
    for name in (
        "betavae",
        "dsprites_augment",
        "transfer_dsprites",
        "shapes3d",
        "shapes3d_pairs",
        "baselines/supervised",
    ):
        assert parse_config(["--config", str(REPO / f"configs/{name}.yaml")]).objective.variance.weight == 0.0, name


def test_shapes3d_default_has_no_free_units_and_pairs_keeps_its_code() -> None:
    """configs/shapes3d.yaml: one unit per factor and no free units (fourth round); shapes3d_pairs.yaml keeps the two
    free units it was measured with."""
    base = "floor_hue=1,wall_hue=1,object_hue=1,scale=1,shape=1,orientation=1"
    assert parse_config(["--config", str(REPO / "configs/shapes3d.yaml")]).model.subspaces == base
    assert parse_config(["--config", str(REPO / "configs/shapes3d_pairs.yaml")]).model.subspaces == base + ",free=2"
