"""Every supervision level trains end to end; below ``labels`` no objective term ever receives a factor class; the
augmentation source resumes exactly and runs under 2-process DDP like one process with the doubled batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import Crash, assert_ddp_matches_one_process, tiny_config

from disco.train.run import train

AUGMENT = (
    "--data.augment={factors: {orientation: rotation, position: {kind: translation, range: [-0.15, 0.15]}, "
    "scale: zoom}, content: content}"
)
LEVELS: dict[str, tuple[str, ...]] = {
    "labels": (),
    "pairs": ("--data.supervision=pairs",),
    "augment": (
        "--data.supervision=augment",
        AUGMENT,
        "--model.subspaces=orientation=2,position=2,scale=1,content=1",
        "--eval.factor_map={position: [pos_x, pos_y], content: [shape]}",
        "--objective.equivariance.weight=1.0",
    ),
}


def _spy(result_module: Any, seen: list[tuple[Any, Any]]) -> None:
    for term in result_module.objective.terms.values():
        term.register_forward_pre_hook(lambda _m, args: seen.append((args[0].batch.classes_a, args[0].batch.classes_b)))


@pytest.mark.slow
@pytest.mark.parametrize("level", list(LEVELS))
def test_level_trains_end_to_end_and_records_its_supervision(level: str, tiny_dsprites: Path, tmp_path: Path) -> None:
    final = "[mig, mig_subspace, activity, augmentation_activity]" if level == "augment" else "[mig, mig_subspace]"
    cfg = tiny_config(
        tiny_dsprites, tmp_path / level, *LEVELS[level], "--eval.at_end=true", f"--eval.final={final}",
        "--eval.augment_pairs=64", "--eval.images=false",
    )  # fmt: skip
    result = train(cfg)
    record = json.loads((tmp_path / level / "metrics.json").read_text())
    assert record["supervision"] == level
    assert 0.0 <= record["scores"]["mig"] <= 1.0 and 0.0 <= record["scores"]["mig_subspace"] <= 1.0
    ckpt = torch.load(result.checkpoint_dir / "last.ckpt", weights_only=True)
    assert ckpt["disco"]["supervision"] == level and ckpt["disco"]["config"]["data"]["supervision"] == level
    if level == "augment":
        assert result.module.factor_names == ("orientation", "position", "scale", "content")
        aug = result.evaluation.final["augmentation_activity"] if result.evaluation else None
        assert aug is not None and list(aug.details["factor_names"]) == ["orientation", "position", "scale"]
        assert 0.0 <= record["scores"]["augmentation_activity"] <= 1.0
        # factor_map ties the "position" subspace to both true position factors for the activity exclusivity
        assert set(record["scores"]) >= {"activity/exclusivity", "mig_subspace/named_score"}


@pytest.mark.parametrize("level", ["pairs", "augment", "labels"])
def test_no_term_receives_classes_below_labels(level: str, tiny_dsprites: Path, tmp_path: Path) -> None:
    """The data path is the one place classes are dropped: a spy on EVERY active term sees None below labels (and,
    so that the spy can fail, the classes themselves at labels)."""
    cfg = tiny_config(tiny_dsprites, tmp_path / level, *LEVELS[level], "--trainer.max_steps=3")
    seen: list[tuple[Any, Any]] = []

    from pytorch_lightning import Callback

    class Spy(Callback):
        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            _spy(pl_module, seen)

    result = train(cfg, extra_callbacks=[Spy()])
    assert len(seen) == 3 * len(result.module.objective.terms) and len(result.module.objective.terms) >= 3
    if level == "labels":
        assert all(a is not None and b is not None for a, b in seen)
    else:
        assert all(a is None and b is None for a, b in seen)


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
def test_augment_resume_after_crash_matches_uninterrupted_run(tiny_dsprites: Path, tmp_path: Path) -> None:
    sets = {"trainer__max_steps": 8, "checkpoint__every_n_steps": 4}
    full = train(tiny_config(tiny_dsprites, tmp_path / "full", *LEVELS["augment"], **sets))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(
            tiny_config(tiny_dsprites, tmp_path / "crashed", *LEVELS["augment"], **sets), extra_callbacks=[Crash(at=6)]
        )
    ckpt = tmp_path / "crashed" / "checkpoints" / "step0000004.ckpt"
    assert "augmenter" in torch.load(ckpt, weights_only=True)["PairDataModule"]["sampler"]
    resumed = train(tiny_config(tiny_dsprites, tmp_path / "crashed", *LEVELS["augment"], **sets), resume=ckpt)
    got, want = _weights(resumed.module), _weights(full.module)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert torch.equal(got[key], value), key


@pytest.mark.slow
def test_augment_two_gloo_processes_match_one_process(tiny_dsprites: Path, tmp_path: Path) -> None:
    sets = {"trainer__max_steps": 4, "checkpoint__every_n_steps": 100}
    assert_ddp_matches_one_process(tiny_dsprites, tmp_path, *LEVELS["augment"], **sets)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["dsprites_pairs", "dsprites_augment", "shapes3d_pairs"])
def test_shipped_weak_supervision_configs_train_end_to_end(config: str, tiny_dsprites: Path, tmp_path: Path) -> None:
    """The shipped configs themselves (conv64, their own terms and augmenter), a few steps on a small replica, with
    the final evaluation written to metrics.json."""
    from disco.train.cli import parse_config

    data = tiny_dsprites
    if config.startswith("shapes3d"):
        from disco.data.replicas import make_replica

        steps = {"floor_hue": 5, "wall_hue": 5, "object_hue": 5, "orientation": 5, "scale": 2}
        data = make_replica("shapes3d", tmp_path / "s3.h5", steps)
    repo = Path(__file__).resolve().parents[2]
    cfg = parse_config([
        "--config", str(repo / "configs" / f"{config}.yaml"), f"--data.dataset={data}", f"--run_dir={tmp_path / 'run'}",
        "--data.batch_size=8", "--trainer.max_steps=3", "--trainer.accelerator=cpu", "--trainer.devices=1",
        "--trainer.progress_bar=false", "--eval.every_n_steps=0", "--eval.final=[mig, activity]",
        "--eval.images=false", "--logger=none",
    ])  # fmt: skip
    result = train(cfg)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["supervision"] == cfg.data.supervision and result.trainer.global_step == 3
    assert 0.0 <= record["scores"]["mig"] <= 1.0
