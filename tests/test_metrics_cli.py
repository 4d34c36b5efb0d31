"""End-to-end runs of ``disco-metrics`` on a tiny dSprites replica, plus every user error it must refuse cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import wandb_reader

from disco.data.datasets import GroundTruthData, load_dataset
from disco.data.replicas.dsprites import make_dsprites
from disco.data.splits import split_indices
from disco.metrics_cli import main
from disco.models.factory import build_encoder
from disco.models.subspaces import SubspaceSpec
from disco.report import to_jsonable, wandb_mode
from metrics.mig import mig
from metrics.suite import run_suite

# 3 shapes x 3 scales x 2 orientations x 4 x 4 positions = 288 images
SUBSAMPLE = {"scale": 2, "orientation": 20, "pos_x": 8, "pos_y": 8}
SMALL = ["--num-train", "150", "--num-test", "100", "--set", "probes.num_train=[10,100]", "--no-progress"]


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dsprites(tmp_path_factory.mktemp("data") / "dsprites_tiny.h5", SUBSAMPLE)


@pytest.fixture(scope="module")
def data(replica: Path) -> GroundTruthData:
    return load_dataset(str(replica))


@pytest.fixture(scope="module")
def conv() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_encoder("conv64", in_channels=1, latent_dim=5).eval()


@pytest.fixture(scope="module")
def torchscript(tmp_path_factory: pytest.TempPathFactory, conv: torch.nn.Module) -> Path:
    path = tmp_path_factory.mktemp("enc") / "encoder.pt"
    torch.jit.save(torch.jit.script(conv), str(path))
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, conv: torch.nn.Module) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    ckpt = {
        "disco": {
            "encoder": {"name": "conv64", "kwargs": {"in_channels": 1, "latent_dim": 5}},
            "subspaces": SubspaceSpec.parse("shape=1,scale=1,pos_x=1,pos_y=1,free=1").to_dict(),
            "factor_names": ["color", "shape", "scale", "orientation", "pos_x", "pos_y"],
            "dataset": "dsprites",
            "config": {},
        },
        "state_dict": {"encoder." + k: v for k, v in conv.state_dict().items()},
    }
    torch.save(ckpt, path)
    return path


def _encode(enc: torch.nn.Module, data: GroundTruthData, rows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return enc(data.images[torch.as_tensor(rows)].float() / 255)[0].double().numpy()


def _json(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def _assert_clean_failure(capsys: pytest.CaptureFixture[str], rc: int, out: Path, match: str) -> None:
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: ") and "\n" not in err, err
    assert match in err, err
    assert not out.exists() or not any(out.iterdir())
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_torchscript_end_to_end_matches_direct_suite(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    data: GroundTruthData,
    replica: Path,
    torchscript: Path,
    conv: torch.nn.Module,
) -> None:
    out = tmp_path / "report"
    names = ["mig", "dci", "activity", "probes"]
    args = ["--dataset", str(replica), "--encoder", str(torchscript), "--metrics", ",".join(names), "--split", "all"]
    rc = main([*args, "--set", "activity.num_samples=300", "--out", str(out), "--no-optimize", *SMALL])
    stdout = capsys.readouterr().out
    assert rc == 0
    report = _json(out)
    rows = np.arange(len(data))
    codes = _encode(conv, data, rows)

    overrides = {
        "mig": {"num_train": 150},
        "dci": {"num_train": 150, "num_test": 100},
        "probes": {"num_test": 100, "num_train": (10, 100)},
        "activity": {"num_samples": 300},
    }
    assert report["overrides"] == to_jsonable(overrides)

    def represent(classes: np.ndarray) -> np.ndarray:
        return _encode(conv, data, np.asarray(data.factors.classes_to_index(classes)))

    direct = run_suite(
        names,
        codes=codes,
        factors=data.classes.numpy(),
        represent=represent,
        factor_sizes=list(data.factors.sizes),
        factor_names=list(data.factors.names),
        seed=0,
        overrides=overrides,
    )
    for name in names:
        assert report["metrics"][name]["score"] == pytest.approx(direct[name].score, rel=1e-6, abs=1e-9)
        assert report["metrics"][name]["settings"] == to_jsonable(direct[name].settings)
    np.testing.assert_allclose(report["metrics"]["mig"]["details"]["mi_matrix"], direct["mig"].details["mi_matrix"])
    assert report["samples"]["observational_samples"] == len(data)
    assert report["encoder_kind"] == "torchscript" and report["seed"] == 0
    assert set(report["versions"]) >= {"disco", "torch", "numpy", "sklearn"}
    assert report["elapsed_seconds"] > 0
    assert sorted(report["plots"]) == ["activity_matrix.png", "mi_matrix.png", "probe_curves.png"]
    for plot in report["plots"]:
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "metrics.md").read_text()
    assert stdout in table and stdout.startswith("| metric | score |")
    assert f"| mig | {direct['mig'].score:.4f} |" in stdout


def test_checkpoint_default_test_split_and_subspaces(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    data: GroundTruthData,
    replica: Path,
    checkpoint: Path,
    conv: torch.nn.Module,
) -> None:
    out = tmp_path / "ckpt_report"
    args = ["--dataset", str(replica), "--encoder", str(checkpoint), "--metrics", "mig", "--num-train", "28"]
    rc = main([*args, "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    report = _json(out)
    rows = np.sort(split_indices(len(data), seed=0)["test"].numpy())
    assert len(rows) == 28
    expected = mig(_encode(conv, data, rows), data.classes.numpy()[rows], num_train=28)
    assert report["metrics"]["mig"]["score"] == pytest.approx(expected.score, rel=1e-6)
    assert report["samples"]["observational_samples"] == len(rows)
    assert report["subspaces"] == "shape=1,scale=1,pos_x=1,pos_y=1,free=1"
    assert report["encoder_kind"] == "checkpoint" and report["split"] == "test"


def test_codes_file_perfect_code_gives_direct_mig(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    factors = rng.integers(0, [3, 6, 10], size=(12000, 3))
    codes = factors + rng.normal(scale=0.01, size=factors.shape)
    np.savez(tmp_path / "codes.npz", codes=codes, factors=factors, factor_names=np.array(["shape", "scale", "x"]))
    out = tmp_path / "r"
    rc = main(["--codes", str(tmp_path / "codes.npz"), "--metrics", "mig", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    report = _json(out)
    assert report["metrics"]["mig"]["score"] == pytest.approx(mig(codes, factors, num_train=10000).score, rel=1e-12)
    assert report["metrics"]["mig"]["score"] > 0.9
    assert report["codes"].endswith("codes.npz")


def test_module_callable_and_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], replica: Path
) -> None:
    (tmp_path / "user_encoders.py").write_text(
        textwrap.dedent(
            """
            import torch

            class Pool(torch.nn.Module):
                def forward(self, x):
                    return torch.nn.functional.avg_pool2d(x, 16).flatten(1)

            def build():
                return Pool()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    args = ["--dataset", str(replica), "--encoder", "user_encoders:build", "--metrics", "mig", "--out", str(out)]
    rc = main(args)
    _assert_clean_failure(capsys, rc, tmp_path / "unused", "not empty")
    assert (out / "mine.txt").read_text() == "user data"
    assert main([*args, "--force", "--split", "all", "--num-train", "288", "--no-progress"]) == 0
    assert not (out / "mine.txt").exists()
    report = _json(out)
    assert report["encoder_kind"] == "callable" and report["samples"]["code_dim"] == 16
    sys.modules.pop("user_encoders", None)


def test_wandb_offline_run_records_the_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    rng = np.random.default_rng(1)
    factors = rng.integers(0, 4, size=(500, 2))
    np.savez(tmp_path / "c.npz", codes=factors + rng.normal(scale=0.3, size=factors.shape), factors=factors)
    out = tmp_path / "r"
    args = ["--codes", str(tmp_path / "c.npz"), "--metrics", "mig,sap", "--num-train", "300", "--num-test", "150"]
    rc = main([*args, "--out", str(out), "--wandb", "--wandb-project", "disco-test"])
    assert rc == 0, capsys.readouterr().err
    report = _json(out)
    runs = list(tmp_path.glob("wandb/offline-run-*"))
    assert len(runs) == 1
    summary = wandb_reader.summary(next(runs[0].glob("*.wandb")))
    assert summary["mig"] == pytest.approx(report["metrics"]["mig"]["score"])
    assert summary["sap"] == pytest.approx(report["metrics"]["sap"]["score"])
    assert json.loads((runs[0] / "files" / "metrics.json").read_text()) == report


def test_wandb_mode_is_offline_unless_logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode() == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / "netrc").chmod(0o600)
    assert wandb_mode() == "online"
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "k")
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def _corrupt_torchscript(src: Path, dst: Path) -> None:
    """A valid zip that looks like TorchScript but whose code entries are garbage."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            body = zin.read(item)
            zout.writestr(item, b"def forward(self, x):\n    return ((((\n" if item.filename.endswith(".py") else body)


def _write_user_module(tmp_path: Path) -> None:
    (tmp_path / "bad_encoders.py").write_text(
        textwrap.dedent(
            """
            import torch

            class F(torch.nn.Module):
                def __init__(self, fn):
                    super().__init__()
                    self.fn = fn

                def forward(self, x):
                    return self.fn(x)

            def wrong_shape():
                return F(lambda x: x[:, :, :2, :2])

            def nan_codes():
                return F(lambda x: x.flatten(1)[:, :3] * float("nan"))

            def inf_codes():
                return F(lambda x: x.flatten(1)[:, :3] / 0.0 + 1)

            def constant():
                return F(lambda x: torch.ones(x.shape[0], 4))
            """
        )
    )


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing_encoder", "neither an existing file"),
        ("corrupt_encoder", "cannot read checkpoint"),
        ("corrupt_torchscript", "cannot load TorchScript"),
        ("missing_dataset", "not found"),
        ("corrupt_dataset", "dsprites_bad.h5"),
        ("wrong_shape", "expected ("),
        ("nan_codes", "NaN or infinite"),
        ("inf_codes", "NaN or infinite"),
        ("constant", "constant"),
        ("unknown_metric", "unknown metric(s) nope"),
        ("too_few", "samples"),
        ("bad_subspaces", "sum to 4"),
        ("codes_mismatch", "factor rows"),
        ("codes_interventional", "need an encoder"),
        ("bad_set", "has no setting"),
        ("no_encoder", "--dataset needs --encoder"),
        ("bad_flag", "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    replica: Path,
    torchscript: Path,
    case: str,
    match: str,
) -> None:
    _write_user_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bad_encoders", None)
    out = tmp_path / "report"
    ds, enc, metrics_, extra = str(replica), str(torchscript), "mig", ["--split", "all", "--no-progress"]
    rng = np.random.default_rng(0)
    codes_file = tmp_path / "codes.npz"
    if case == "missing_encoder":
        enc = str(tmp_path / "nope.pt")
    elif case == "corrupt_encoder":
        enc = str(tmp_path / "junk.ckpt")
        Path(enc).write_bytes(os.urandom(256))
    elif case == "corrupt_torchscript":
        enc = str(tmp_path / "broken.pt")
        _corrupt_torchscript(torchscript, Path(enc))
    elif case == "missing_dataset":
        ds = str(tmp_path / "none.h5")
    elif case == "corrupt_dataset":
        ds = str(tmp_path / "dsprites_bad.h5")
        Path(ds).write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(500))
    elif case in {"wrong_shape", "nan_codes", "inf_codes", "constant"}:
        enc = f"bad_encoders:{case}"
    elif case == "unknown_metric":
        metrics_ = "mig,nope"
    elif case == "too_few":
        metrics_ = "dci"
        extra += ["--num-train", "5000"]
    elif case == "bad_subspaces":
        extra += ["--subspaces", "shape=2,scale=2"]
    elif case == "bad_set":
        extra += ["--set", "mig.bogus=1"]
    elif case == "bad_flag":
        extra += ["--bogus"]
    if case == "no_encoder":
        args = ["--dataset", ds, "--metrics", metrics_]
    elif case.startswith("codes_"):
        factors = rng.integers(0, 3, size=(50, 2))
        n = 49 if case == "codes_mismatch" else 50
        np.savez(codes_file, codes=rng.normal(size=(n, 3)), factors=factors)
        metrics_ = "mig" if case == "codes_mismatch" else "mig,factor_vae"
        args = ["--codes", str(codes_file), "--metrics", metrics_]
    else:
        args = ["--dataset", ds, "--encoder", enc, "--metrics", metrics_, *extra]
    rc = main([*args, "--out", str(out)])
    _assert_clean_failure(capsys, rc, out, match)


def test_console_script_subprocess(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, size=(400, 2))
    np.savez(tmp_path / "c.npz", codes=factors + 0.01 * rng.normal(size=factors.shape), factors=factors)
    script = Path(sys.executable).with_name("disco-metrics")
    ok = subprocess.run(
        [
            str(script),
            "--codes",
            str(tmp_path / "c.npz"),
            "--metrics",
            "mig",
            "--num-train",
            "400",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("| metric | score |") and "| mig |" in ok.stdout
    assert "error" not in ok.stderr and (tmp_path / "r" / "metrics.json").is_file()
