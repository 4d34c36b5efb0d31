"""Periodic evaluation really fires under the installed Lightning; CSV and offline W&B runs hold every term and metric."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import wandb_reader
from conftest import tiny_config

from disco.train.run import train

EVAL = ("--eval.periodic=[mig, activity]", "--eval.final=[mig, activity, probes]")
TERMS = ("contrastive", "independence", "vae", "localisation")


def test_periodic_and_final_evaluation_fire(tiny_dsprites: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dsprites, tmp_path / "run", *EVAL, eval__every_n_steps=2, eval__at_end="true", logger="csv")
    result = train(cfg)
    ev = result.evaluation
    assert ev is not None
    # steps 2 and 4 periodic, step 6 is the final suite (which includes the periodic metrics)
    assert ev.calls == 3 and [s for s, _ in ev.history] == [2, 4, 6]
    assert set(ev.final) == {"mig", "activity", "probes"}
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["step"] == 6 and saved["scores"]["mig"] == pytest.approx(ev.final["mig"].score)
    assert [h["step"] for h in saved["history"]] == [2, 4, 6]  # every evaluation's headline scores, for MIG-vs-steps
    assert [h["mig"] for h in saved["history"]] == pytest.approx([sc["mig"] for _, sc in ev.history])
    assert "probes" in saved["history"][2] and "probes" not in saved["history"][0]
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    keys = set(rows[0])
    assert {"eval/mig", "eval/activity", "final/mig", "final/probes", "loss"} <= keys
    for term in TERMS:
        assert f"{term}/weighted" in keys and f"train/{term}/raw" in keys
    logged_eval_steps = sorted(int(r["step"]) for r in rows if r.get("eval/mig"))
    assert logged_eval_steps == [2, 4]
    names = {p.name for p in (tmp_path / "run" / "figures").iterdir()}
    assert "eval_mig_mi_matrix_step0000002.png" in names and "final_traversal_orientation_step0000006.png" in names


def test_no_periodic_evaluation_when_disabled(tiny_dsprites: Path, tmp_path: Path) -> None:
    result = train(tiny_config(tiny_dsprites, tmp_path / "run"))
    assert result.evaluation is not None and result.evaluation.calls == 0


@pytest.mark.slow
def test_offline_wandb_run_read_back(tiny_dsprites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = tiny_config(
        tiny_dsprites, tmp_path / "run", *EVAL, eval__every_n_steps=3, eval__at_end="true", logger="wandb"
    )
    train(cfg)
    runs = list((tmp_path / "run").rglob("offline-run-*"))
    assert len(runs) == 1, runs
    run_file = next(runs[0].glob("run-*.wandb"))
    rows = wandb_reader.history(run_file)
    train_rows = [r for r in rows if "loss" in r]
    assert len(train_rows) == 6
    for term in TERMS:
        assert all(f"{term}/weighted" in r and f"train/{term}/raw" in r for r in train_rows)
    eval_rows = [r for r in rows if "eval/mig" in r]
    assert [r["trainer/global_step"] for r in eval_rows] == [3]
    final = next(r for r in rows if "final/mig" in r)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["scores"]
    assert final["final/mig"] == pytest.approx(saved["mig"]) and final["final/probes"] == pytest.approx(saved["probes"])
    images = [k for r in rows for k in r if k.startswith("final/traversal/") and k.endswith("/filenames")]
    assert images, "traversal images were not logged"
    media = list((runs[0] / "files" / "media" / "images").rglob("*.png"))
    assert len(media) >= len(images)
    config = wandb_reader.config(run_file)
    assert config["objective"]["vae"]["weight"] == 0.01 and config["trainer"]["max_steps"] == 6
    assert config["supervision"] == "labels" and config["data"]["supervision"] == "labels"
