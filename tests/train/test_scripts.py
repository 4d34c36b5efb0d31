"""The runnable scripts on tiny settings: results table, train script, train-step benchmark, bf16 on CPU."""

from __future__ import annotations

import gc
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from conftest import tiny_config

from disco.data.datasets import GroundTruthData
from disco.train.experiment import finished_scores, median_table, parse_subsample, train_config
from disco.train.run import train

REPO = Path(__file__).resolve().parents[2]
FAST = [
    "--model.encoder=mlp",
    "--model.encoder_kwargs={hidden: [16]}",
    "--model.decoder=mlp",
    "--model.decoder_kwargs={hidden: [16]}",
    "--model.subspaces=shape=1,scale=1,orientation=2,pos_x=1,pos_y=1",
    "--data.batch_size=8",
    "--trainer.max_steps=3",
    "--trainer.accelerator=cpu",
    "--trainer.progress_bar=false",
    "--eval.every_n_steps=0",
    "--logger=none",
]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "scripts"))
    spec.loader.exec_module(module)
    return module


def test_median_table_by_hand() -> None:
    table = median_table({"a": [{"mig": 0.1}, {"mig": 0.5}, {"mig": 0.3}], "b": [{}]}, metrics=("mig", "dci"))
    lines = table.splitlines()
    assert lines[2] == "| a | 3 | 0.300 (0.100, 0.500, 0.300) | n/a |"
    assert lines[3] == "| b | 1 | n/a | n/a |"
    with_level = median_table({"a": [{"mig": 0.2}]}, metrics=("mig",), supervision={"a": "pairs"}).splitlines()
    assert (
        with_level[0] == "| config | supervision | seeds | mig |"
        and with_level[2] == "| a | pairs | 1 | 0.200 (0.200) |"
    )
    assert parse_subsample("orientation=4, pos_x=2") == {"orientation": 4, "pos_x": 2}


def test_supervision_table_groups_rows_by_what_the_learner_saw(tmp_path: Path) -> None:
    """Rows from several results JSONs come out grouped none → pairs → augment → labels, renamed, with the words."""
    one = {
        "lab": {"supervision": "labels", "runs": [{"mig": 0.4}, {"mig": 0.2}, {"mig": 0.3}]},
        "vae": {"supervision": "none", "runs": [{"mig": 0.05}]},
    }
    two = {"aug": {"supervision": "augment", "runs": [{"mig": 0.25}]}, "ada": {"supervision": "pairs", "runs": [{}]}}
    (tmp_path / "a.json").write_text(json.dumps(one))
    (tmp_path / "b.json").write_text(json.dumps(two))
    table = _script("supervision_table")
    out = tmp_path / "t.md"
    argv = [str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--columns", "mig", "--out", str(out)]
    assert table.main([*argv, "--name", "ada=Ada-GVAE", "--saw", "ada=that two images form a pair"]) == 0
    assert out.read_text().splitlines() == [
        "| config | supervision | what the learner saw | seeds | mig |",
        "|---|---|---|---:|---:|",
        "| vae | none |  | 1 | 0.050 (0.050) |",
        "| Ada-GVAE | pairs | that two images form a pair | 1 | n/a |",
        "| aug | augment |  | 1 | 0.250 (0.250) |",
        "| lab | labels |  | 3 | 0.300 (0.400, 0.200, 0.300) |",
    ]
    assert table.main([*argv, "--saw", "nope=x"]) != 0 and table.main([*argv, "--name", "=x"]) != 0


@pytest.mark.slow
def test_results_script_writes_table(tiny_dsprites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = _script("results")
    configs = [str(REPO / "configs" / "dsprites.yaml"), str(REPO / "configs" / "betavae.yaml")]
    budget = ["--max-minutes", "0", "--max-steps", "3"]
    argv = ["--configs", *configs, "--seeds", "2", *budget, "--dataset", str(tiny_dsprites), *FAST]
    assert results.main([*argv, "--out", "outputs/t.md"]) == 0
    text = (tmp_path / "outputs" / "t.md").read_text()
    assert (
        "| dsprites | labels | 2 |" in text and "| betavae | none | 2 |" in text and "budget per run: 3 steps;" in text
    )
    raw = json.loads((tmp_path / "outputs" / "t.json").read_text())
    assert raw["dsprites"]["supervision"] == "labels" and raw["betavae"]["supervision"] == "none"
    runs = raw["dsprites"]["runs"]
    assert len(runs) == 2 and {"mig", "dci", "activity", "probes"} <= set(runs[0])
    assert (tmp_path / "outputs" / "results" / "tiny" / "betavae" / "seed1" / "metrics.json").is_file()


@pytest.mark.slow
def test_results_named_rows_columns_and_the_mig_plot(
    tiny_dsprites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--row`` trains a config under its own overrides and name, ``--columns`` picks the scores, the JSON names each
    run folder, and plot_mig_steps draws the periodic MIG history of every row."""
    monkeypatch.chdir(tmp_path)
    results = _script("results")
    config = str(REPO / "configs" / "dsprites.yaml")
    argv = [
        "--configs", "--row", f"lab={config}", "--row", f"par={config} --data.supervision=pairs",
        "--seeds", "1", "--max-minutes", "0", "--max-steps", "3", "--dataset", str(tiny_dsprites),
        "--columns", "mig", "dci/completeness", *FAST, "--eval.every_n_steps=1", "--eval.periodic=[mig]",
    ]  # fmt: skip
    assert results.main([*argv, "--out", "outputs/r.md"]) == 0
    text = (tmp_path / "outputs" / "r.md").read_text()
    assert "| config | supervision | seeds | mig | dci/completeness |" in text
    assert "| lab | labels | 1 |" in text and "| par | pairs | 1 |" in text
    raw = json.loads((tmp_path / "outputs" / "r.json").read_text())
    run = Path(raw["par"]["run_dirs"][0])
    record = json.loads((run / "metrics.json").read_text())
    assert record["supervision"] == "pairs" and [h["step"] for h in record["history"]] == [1, 2, 3]
    assert raw["par"]["runs"][0]["mig"] == pytest.approx(record["scores"]["mig"])
    plot = _script("plot_mig_steps")
    lines = plot.curves(raw)
    assert lines["par"] == ("pairs", [1, 2, 3], pytest.approx([h["mig"] for h in record["history"]]))
    assert plot.main(["outputs/r.json", "--out", "outputs/m.png"]) == 0
    assert (tmp_path / "outputs" / "m.png").read_bytes()[:4] == b"\x89PNG"
    # a row whose code has one subspace gets no mig_subspace (n/a), instead of failing after training
    vae = ["--configs", "--row", f"vae={REPO / 'configs' / 'betavae.yaml'}", "--seeds", "1", "--max-minutes", "0"]
    args = [
        *vae,
        "--dataset",
        str(tiny_dsprites),
        "--columns",
        "mig",
        "mig_subspace",
        *FAST,
        "--model.subspaces=free=4",
        "--out",
        "outputs/v.md",
    ]
    assert results.main(args) == 0
    assert (
        "| vae | none | 1 |" in (tmp_path / "outputs" / "v.md").read_text()
        and "n/a" in (tmp_path / "outputs" / "v.md").read_text()
    )
    # an earlier table's runs are not replaced without --force: one error before any training
    assert results.main(args) != 0
    # --reuse keeps the finished seed 0 (same config: not retrained, same scores) and trains only seed 1
    seed0 = tmp_path / "outputs" / "results" / tiny_dsprites.stem / "vae" / "seed0" / "checkpoints" / "last.ckpt"
    before = seed0.stat().st_mtime_ns
    first = json.loads((tmp_path / "outputs" / "v.json").read_text())["vae"]["runs"][0]
    more = [*args[:4], "2", *args[5:-1], "outputs/v2.md", "--reuse"]
    assert results.main(more) == 0
    again = json.loads((tmp_path / "outputs" / "v2.json").read_text())["vae"]
    assert seed0.stat().st_mtime_ns == before and again["runs"][0] == first and len(again["runs"]) == 2
    assert (seed0.parents[2] / "seed1" / "metrics.json").is_file()
    # settings of a term of weight 0 (never built) do not make another config; an active term's do
    run_args = ["--seed=0", f"--run_dir={seed0.parents[1]}", "--trainer.max_minutes=null", "--eval.final=[mig]"]
    run_args += [*FAST, "--model.subspaces=free=4"]
    betavae, dataset = str(REPO / "configs" / "betavae.yaml"), str(tiny_dsprites)
    assert finished_scores(betavae, dataset, run_args, seed0.parents[1], ["mig"]) == pytest.approx(first)
    inactive = [*run_args, "--objective.supervised.head=mlp"]
    assert finished_scores(betavae, dataset, inactive, seed0.parents[1], ["mig"]) == pytest.approx(first)
    assert finished_scores(betavae, dataset, [*run_args, "--objective.vae.beta=2.0"], seed0.parents[1], ["mig"]) is None
    assert finished_scores(betavae, dataset, run_args, seed0.parents[1], ["mig", "dci"]) is None  # not scored
    # a run saved before a config key existed reads that key as its default
    ckpt = torch.load(seed0, weights_only=True)
    del ckpt["disco"]["config"]["objective"]["vae"]["other_terms_read"]
    torch.save(ckpt, seed0)
    assert finished_scores(betavae, dataset, run_args, seed0.parents[1], ["mig"]) == pytest.approx(first)
    before = seed0.stat().st_mtime_ns
    # a finished run of ANOTHER config is not reused: one error, nothing trained
    assert results.main([*more, "--objective.vae.beta=2.0"]) != 0
    assert seed0.stat().st_mtime_ns == before
    assert results.main(["--configs", "--row", "bad", "--dataset", str(tiny_dsprites)]) != 0
    assert results.main(["--configs", "--row", f"a={config}", "--row", f"a={config}", "--dataset", "x.h5"]) != 0
    assert not (tmp_path / "outputs" / "results" / "x").exists()


def _live_datasets() -> int:
    return sum(isinstance(o, GroundTruthData) for o in gc.get_objects())


def test_train_config_frees_the_run(tiny_dsprites: Path, tmp_path: Path) -> None:
    """A process that trains runs in turn (results.py) must not keep each run's images: with the automatic cyclic
    collector off, nothing of the finished run may stay alive."""
    before = _live_datasets()
    gc.disable()
    try:
        config = str(REPO / "configs" / "quickstart.yaml")
        for seed in range(2):
            scores = train_config(config, str(tiny_dsprites), [f"--seed={seed}", f"--run_dir={tmp_path / str(seed)}",
                                                               "--eval.final=[mig]", *FAST])  # fmt: skip
            assert 0.0 <= scores["mig"] <= 1.0
            assert _live_datasets() == before
    finally:
        gc.enable()


@pytest.mark.slow
def test_train_script_prints_table(tiny_dsprites: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _script("train_dsprites")
    code = script.main(["--dataset", str(tiny_dsprites), f"--run_dir={tmp_path}", "--eval.final=[mig, probes]", *FAST])
    assert code == 0
    out = capsys.readouterr().out
    assert "| mig |" in out and "| probes |" in out


@pytest.mark.slow
def test_bench_train_reports_ratio(tiny_dsprites: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _script("bench_train")
    args = ["--dataset", str(tiny_dsprites), "--steps", "3", "--warmup", "1", "--repeats", "1", f"--run_dir={tmp_path}"]
    assert bench.main([*args, *FAST]) == 0
    assert "speed ratio (sampling / in-memory):" in capsys.readouterr().out


def test_bf16_mixed_precision_runs_on_cpu(tiny_dsprites: Path, tmp_path: Path) -> None:
    result = train(tiny_config(tiny_dsprites, tmp_path / "run", trainer__precision="bf16-mixed", trainer__max_steps=2))
    assert result.trainer.precision == "bf16-mixed" and result.trainer.global_step == 2
