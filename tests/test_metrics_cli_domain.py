"""``disco-metrics --domain``: the dataset scored as rendered under a domain shift equals encoding the shifted images
directly; bad domain flags are one line before anything is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from disco.data.datasets import load_dataset
from disco.data.domains import make_domain
from disco.data.replicas.dsprites import make_dsprites
from disco.evaluate import select_rows
from disco.metrics_cli import main
from disco.models.factory import build_encoder
from metrics.mig import mig

SUBSAMPLE = {"scale": 2, "orientation": 20, "pos_x": 8, "pos_y": 8}


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dsprites(tmp_path_factory.mktemp("data") / "dsprites_tiny.h5", SUBSAMPLE)


@pytest.fixture(scope="module")
def rgb_encoder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    enc = build_encoder("conv64", in_channels=3, latent_dim=5).eval()
    path = tmp_path_factory.mktemp("enc") / "rgb.pt"
    torch.jit.save(torch.jit.script(enc), str(path))
    return path, enc


def test_domain_scores_the_shifted_images(
    tmp_path: Path, replica: Path, rgb_encoder: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    path, enc = rgb_encoder
    out = tmp_path / "noisy"
    argv = ["--dataset", str(replica), "--encoder", str(path), "--metrics", "mig", "--split", "all"]
    argv += ["--num-train", "200", "--domain", "noisy", "--domain-seed", "3", "--no-optimize", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["domain"] == {"name": "noisy", "seed": 3}
    data = load_dataset(str(replica))
    rows = torch.as_tensor(select_rows(len(data.images), "all", 0, limit=200, sample_seed=0))
    with torch.no_grad():
        x = make_domain("noisy", seed=3)(data.images[rows].float() / 255, rows)
        codes = enc(x)[0].double().numpy()
    direct = mig(codes, data.classes[rows].numpy(), num_train=200)
    assert report["metrics"]["mig"]["score"] == pytest.approx(direct.score, abs=1e-9)
    plain = tmp_path / "plain_rgb_fails"
    rc = main([a for a in argv if a not in ("--domain", "noisy", "--domain-seed", "3")] + ["--out", str(plain)])
    assert rc == 2 and not plain.exists()  # the RGB encoder cannot read grey dSprites without a domain
    assert "score them under a domain, e.g. --domain plain" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--domain", "sepia"], "--domain: unknown domain 'sepia'; choose from plain, color, noisy, texture, shift"),
        (["--domain", "noisy", "--metrics", "augmentation_activity"], "augmentation_activity cannot run under"),
    ],
)
def test_bad_domain_flags(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    replica: Path,
    rgb_encoder: tuple[Path, torch.nn.Module],
    extra: list[str],
    match: str,
) -> None:
    out = tmp_path / "r"
    rc = main(["--dataset", str(replica), "--encoder", str(rgb_encoder[0]), *extra, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "\n" not in err and match in err, err
    assert not out.exists()


def test_domain_with_codes_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "a.npy", np.zeros((4, 2)))
    rc = main(["--codes", str(tmp_path / "a.npy"), "--domain", "color", "--out", str(tmp_path / "r")])
    assert rc == 2 and "no effect with --codes" in capsys.readouterr().err


def test_transfer_from_a_source_domain(
    tmp_path: Path, replica: Path, rgb_encoder: tuple[Path, torch.nn.Module]
) -> None:
    from metrics.transfer import domain_gap, transfer_probes

    path, enc = rgb_encoder
    out = tmp_path / "transfer"
    argv = ["--dataset", str(replica), "--encoder", str(path), "--metrics", "mig", "--split", "all", "--num-train"]
    argv += ["144", "--num-test", "144", "--domain", "noisy", "--source-domain", "plain", "--no-optimize"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["source_domain"] == "plain"
    data = load_dataset(str(replica))
    rows = torch.as_tensor(select_rows(len(data.images), "all", 0, limit=10000, sample_seed=0))  # all 288 rows
    x = data.images[rows].float() / 255
    with torch.no_grad():
        codes = [enc(make_domain(d)(x, rows))[0].double().numpy() for d in ("plain", "noisy")]
    factors = data.classes[rows].numpy()
    n = 144
    gap = domain_gap(codes[0], codes[1], num_train=n, num_test=n)
    assert report["metrics"]["domain_gap"]["score"] == pytest.approx(gap.score, abs=1e-12)
    probes = transfer_probes(codes[0], codes[1], factors, num_train=n, num_test=n)
    assert report["metrics"]["transfer_probes"]["score"] == pytest.approx(probes.score, abs=1e-12)
