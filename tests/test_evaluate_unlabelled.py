"""Evaluation without ground truth: which metrics apply, disco-metrics on an unlabelled file, factor maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from disco.errors import ConfigError
from disco.evaluate_augment import AUGMENTATION_ACTIVITY, plan_metrics, subspace_factor_map
from disco.metrics_cli import main as metrics_main
from disco.models.factory import build_encoder
from disco.models.subspaces import SubspaceSpec
from metrics.activity import _subspace_ties
from metrics.mig import mig_subspace
from metrics.suite import AVAILABLE


def test_plan_all_on_unlabelled_data_runs_what_applies_and_says_why() -> None:
    run, skipped = plan_metrics([], has_factors=False, on_grid=False, with_augmentation=False)
    assert run == ["activity", "unsupervised", AUGMENTATION_ACTIVITY]
    assert set(skipped) == set(AVAILABLE) - {"activity", "unsupervised"}
    assert all("factor labels" in why for why in skipped.values())


def test_plan_all_without_subspaces_or_grid_skips_those_metrics() -> None:
    run, skipped = plan_metrics(["all"], has_factors=True, on_grid=False, with_augmentation=False, has_subspaces=False)
    assert "mig_subspace" in skipped and "factor_vae" in skipped and "beta_vae" in skipped
    assert "mig" in run and AUGMENTATION_ACTIVITY not in run and AUGMENTATION_ACTIVITY in skipped
    with pytest.raises(ConfigError, match="mig_subspace, which needs named subspaces"):
        plan_metrics(
            ["mig", "mig_subspace"], has_factors=True, on_grid=True, with_augmentation=False, has_subspaces=False
        )
    with pytest.raises(ConfigError, match="unknown metric"):
        plan_metrics(["mig", "nope"], has_factors=True, on_grid=True, with_augmentation=False)


def test_factor_map_ties_and_checks() -> None:
    spec = SubspaceSpec.parse("orientation=2,position=2,scale=1,content=2")
    names = ("shape", "scale", "orientation", "pos_x", "pos_y")
    ties = subspace_factor_map(spec, names, {"position": ["pos_x", "pos_y"], "content": ["shape"]})
    assert ties == {
        "orientation": ["orientation"],
        "scale": ["scale"],
        "position": ["pos_x", "pos_y"],
        "content": ["shape"],
    }
    assert subspace_factor_map(spec, names, {}) is None
    with pytest.raises(ConfigError, match="lacks"):
        subspace_factor_map(spec, names, {"position": ["x"]})
    with pytest.raises(ConfigError, match="model lacks"):
        subspace_factor_map(spec, names, {"where": ["pos_x"]})
    # one subspace tied to two factors: both factors point at it
    assert _subspace_ties(["a", "position"], ["pos_x", "pos_y"], {"position": ["pos_x", "pos_y"]}) == {0: [1], 1: [1]}


def test_mig_subspace_named_gaps_follow_the_factor_map() -> None:
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, size=(3000, 2))
    noise = rng.normal(size=(3000, 1))
    codes = np.concatenate([factors + 0.01 * rng.normal(size=(3000, 2)), noise], axis=1)  # "position" = both factors
    subspaces = [("position", 2), ("free", 1)]
    plain = mig_subspace(codes, factors, subspaces, ["pos_x", "pos_y"])
    mapped = mig_subspace(
        codes, factors, subspaces, ["pos_x", "pos_y"], subspace_factors={"position": ["pos_x", "pos_y"]}
    )
    assert np.isnan(plain.details["named_score"])  # no subspace is named after a factor
    gaps = mapped.details["named_gaps"]  # MI with "position" minus MI with the noise dim, over H
    expected = (mapped.details["mi_matrix"][0] - mapped.details["mi_matrix"][1]) / mapped.details["entropy"]
    np.testing.assert_allclose(gaps, expected)
    assert mapped.score == plain.score


@pytest.fixture()
def unlabelled_h5(tmp_path: Path) -> Path:
    import h5py

    rng = np.random.default_rng(0)
    images = np.zeros((200, 64, 64), dtype=np.uint8)
    for i in range(200):  # a bright square at a random place: something for the encoder to see
        r, c, w = rng.integers(5, 40), rng.integers(5, 40), rng.integers(6, 20)
        images[i, r : r + w, c : c + w] = 255
    path = tmp_path / "mine.h5"
    with h5py.File(path, "w") as fh:
        fh["images"] = images
    return path


def _torchscript(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    encoder = build_encoder("mlp", input_dim=64 * 64, latent_dim=4, hidden=[16]).eval()
    path = tmp_path / "enc.pt"
    torch.jit.save(torch.jit.script(encoder), str(path))
    return path


def test_disco_metrics_all_on_unlabelled_images(
    unlabelled_h5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    argv = ["--dataset", str(unlabelled_h5), "--encoder", str(_torchscript(tmp_path)), "--metrics", "all",
            "--split", "all", "--num-train", "200", "--no-progress", "--out", str(out),
            "--augment", "{factors: {orientation: rotation, position: translation}}"]  # fmt: skip
    assert metrics_main(argv) == 0
    err = capsys.readouterr().err
    assert "skipped mig: needs factor labels" in err
    report = json.loads((out / "metrics.json").read_text())
    assert report["metric_names"] == ["activity", "unsupervised", AUGMENTATION_ACTIVITY]
    aug = report["metrics"][AUGMENTATION_ACTIVITY]
    assert aug["details"]["factor_names"] == ["orientation", "position"]
    matrix = np.asarray(aug["details"]["subspace_matrix"])
    assert matrix.shape == (2, 4) and np.allclose(matrix.sum(1), 1.0)  # no subspaces: one per code dimension


def test_disco_metrics_refuses_ground_truth_metric_on_unlabelled_images_before_encoding(
    unlabelled_h5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    argv = ["--dataset", str(unlabelled_h5), "--encoder", str(_torchscript(tmp_path)), "--metrics", "mig,activity",
            "--no-progress", "--out", str(out)]  # fmt: skip
    assert metrics_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "mig, which needs factor labels" in err and "encoding" not in err
    assert not out.exists() or not any(out.iterdir())
