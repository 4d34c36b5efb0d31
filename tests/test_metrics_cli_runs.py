"""``disco-metrics`` with several runs: UDR and cross-seed consistency from repeated --encoder or --codes, equal to
calling the metrics on the same codes; single-run metrics refused before anything is encoded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from disco.data.datasets import load_dataset
from disco.data.replicas.dsprites import make_dsprites
from disco.evaluate import select_rows
from disco.metrics_cli import main
from disco.models.factory import build_encoder
from metrics.consistency import consistency_matrix
from metrics.udr import udr

SUBSAMPLE = {"scale": 2, "orientation": 20, "pos_x": 8, "pos_y": 8}


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dsprites(tmp_path_factory.mktemp("data") / "dsprites_tiny.h5", SUBSAMPLE)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, torch.nn.Module]]:
    out = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        enc = build_encoder("conv64", in_channels=1, latent_dim=4).eval()
        path = tmp_path_factory.mktemp("enc") / f"seed{seed}.pt"
        torch.jit.save(torch.jit.script(enc), str(path))
        out.append((path, enc))
    return out


def _json(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_several_encoders_equal_direct_metrics(
    tmp_path: Path, replica: Path, encoders: list[tuple[Path, torch.nn.Module]]
) -> None:
    out = tmp_path / "runs"
    argv = ["--dataset", str(replica), "--split", "all", "--max-samples", "200", "--metrics", "all", "--out", str(out)]
    for path, _ in encoders:
        argv += ["--encoder", str(path)]
    assert main([*argv, "--num-train", "100", "--num-test", "100", "--no-progress", "--no-optimize"]) == 0
    report = _json(out)
    assert report["runs"] == 3 and set(report["metrics"]) == {"udr", "consistency"}
    data = load_dataset(str(replica))
    rows = select_rows(len(data.images), "all", 0, limit=200, sample_seed=0)
    with torch.no_grad():
        x = data.images[torch.as_tensor(rows)].float() / 255
        codes = [enc(x)[0].double().numpy() for _, enc in encoders]
    assert report["metrics"]["udr"]["score"] == pytest.approx(udr(codes, seed=0).score, abs=1e-5)
    assert report["metrics"]["consistency"]["score"] == pytest.approx(
        consistency_matrix(codes, num_train=100, num_test=100).score, abs=1e-5
    )


def test_several_codes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 3))
    b = a[:, [2, 0, 1]] * np.array([-2.0, 1.0, 0.5]) + 0.01 * rng.normal(size=(400, 3))  # a permuted, flipped, scaled
    np.save(tmp_path / "a.npy", a)
    np.savetxt(tmp_path / "b.csv", b, delimiter=",", header="z0,z1,z2", comments="")
    out = tmp_path / "r"
    argv = ["--codes", str(tmp_path / "a.npy"), "--codes", str(tmp_path / "b.csv"), "--metrics", "consistency"]
    assert (
        main([*argv, "--set", "consistency.num_train=200", "--set", "consistency.num_test=200", "--out", str(out)]) == 0
    )
    report = _json(out)["metrics"]["consistency"]
    direct = consistency_matrix([a, b], num_train=200, num_test=200, seed=0)
    assert report["score"] == pytest.approx(direct.score, abs=1e-9)
    assert report["score"] > 0.99  # identifiable up to permutation and sign
    assert report["details"]["mean_symmetric"]["identity"] < 0.5


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--metrics", "mig"], "with several runs only udr, consistency apply, not mig"),
        (["--metrics", "udr", "--factors", "f.npy"], "--factors has no effect"),
    ],
)
def test_refusals_with_several_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], match: str
) -> None:
    np.save(tmp_path / "a.npy", np.zeros((10, 2)))
    out = tmp_path / "r"
    rc = main(["--codes", str(tmp_path / "a.npy"), "--codes", str(tmp_path / "a.npy"), *extra, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "\n" not in err and match in err, err
    assert not out.exists()


def test_mismatched_rows_and_single_run_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "a.npy", np.random.default_rng(1).normal(size=(10, 2)))
    np.save(tmp_path / "b.npy", np.random.default_rng(2).normal(size=(12, 2)))
    out = tmp_path / "r"
    rc = main(
        ["--codes", str(tmp_path / "a.npy"), "--codes", str(tmp_path / "b.npy"), "--metrics", "udr", "--out", str(out)]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "has 12 rows but" in err, err
    rc = main(["--codes", str(tmp_path / "a.npy"), "--metrics", "udr", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "pass --encoder (or --codes) two or more times" in err, err
    assert not out.exists()
