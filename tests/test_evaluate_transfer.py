"""Transfer scores on encoders whose answers are known: a domain-invariant shared code with a domain-revealing private
code, and the row names of the transfer study script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from disco.data.datasets import load_dataset
from disco.data.domains import make_domain
from disco.errors import ConfigError
from disco.evaluate_transfer import shared_private_columns, transfer_scores
from disco.models.subspaces import SubspaceSpec

ROOT = Path(__file__).resolve().parents[1]


class MaskEncoder(nn.Module):
    """Shared code: a fixed projection of the sprite mask (pixels at 1, white in the plain AND the noisy render), so it
    is identical in both domains; private code: whether any pixel is strictly grey (never in the black-and-white plain
    render, always in the noisy one): constant within each domain, so it carries no factor."""

    def __init__(self, private_factors: bool = False) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("proj", torch.randn(64 * 64, 6, generator=g))
        self.private_factors = private_factors

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = (x.min(dim=1).values >= 1.0).flatten(1).float()
        shared = mask @ self.proj
        private = ((x > 0) & (x < 1)).flatten(1).any(dim=1).float()[:, None].expand(-1, 2)
        if self.private_factors:  # the private code also copies shared columns, shifted by 10 in the target only
            private = shared[:, :2] + 10 * private
        mean = torch.cat([shared, private], dim=1)
        return mean, torch.zeros_like(mean)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from disco.data.replicas import make_replica

    return make_replica("dsprites", tmp_path_factory.mktemp("d") / "t.h5", {"orientation": 4, "pos_x": 4, "pos_y": 4})


def test_invariant_shared_code_transfers_and_private_code_keeps_the_domain(tiny: Path) -> None:
    data = load_dataset(str(tiny))
    spec = SubspaceSpec.parse("free=6,domain=2")
    assert shared_private_columns(spec) == ([0, 1, 2, 3, 4, 5], [6, 7])
    scores = transfer_scores(MaskEncoder(), data, spec, make_domain("plain"), make_domain("noisy", 3), num_samples=600)
    assert scores["target_mig"] == pytest.approx(scores["source_mig"], abs=1e-12)  # the same shared codes
    assert scores["transfer_probe"] == scores["in_domain_probe"] and scores["transfer_ratio"] == 1.0
    assert abs(scores["domain_acc_shared"] - 0.5) < 1e-12  # identical codes: the classifier cannot beat chance
    assert scores["domain_acc_private"] == 1.0 and scores["mmd_private"] > 0.5 > abs(scores["mmd_shared"])
    # transfer probes read the shared subspaces only: a private code that carries factors AND the domain (a probe on the
    # whole code would use it and fail on the target) leaves the transfer scores unchanged
    other = transfer_scores(
        MaskEncoder(True), data, spec, make_domain("plain"), make_domain("noisy", 3), num_samples=600
    )
    for key in ("transfer_probe", "in_domain_probe", "transfer_ratio", "domain_acc_shared"):
        assert other[key] == scores[key], key


def _script() -> object:
    spec = importlib.util.spec_from_file_location("transfer_results", ROOT / "scripts" / "transfer_results.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["transfer_results"] = module
    spec.loader.exec_module(module)
    return module


def test_study_rows_name_their_alignment_terms() -> None:
    script = _script()
    yaml = script.alignment_yaml  # type: ignore[attr-defined]
    assert yaml("none") == "[]"
    assert yaml("mmd+triplet", 0.5) == (
        "[{kind: mmd, weight: 1.0}, {kind: triplet, weight: 3.0}, {kind: domain_head, weight: 0.5}]"
    )
    assert yaml("coral", 0) == "[{kind: coral, weight: 50.0}]"
    assert yaml("factor_nce", 0.1, 1.0) == (
        "[{kind: factor_nce, weight: 1.0}, {kind: domain_head, weight: 0.1, kwargs: {purity: 1.0}}]"
    )
    with pytest.raises(ConfigError, match="unknown row term 'fog'"):
        yaml("mmd+fog")


def test_private_branch_probe_script(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scripts/probe_private_branch.py: an unknown domain is one error line before any data is read; a run prints one
    held-out accuracy per evaluation, on as many test rows of both domains as it holds out."""
    spec = importlib.util.spec_from_file_location("probe_private_branch", ROOT / "scripts" / "probe_private_branch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--dataset", "no/such/file.h5", "--target", "sepia"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: unknown domain 'sepia'; choose from "
                                                           "plain, color, noisy, texture, shift"]  # fmt: skip
    assert module.main(["--dataset", str(tiny), "--target", "noisy", "--pools", "logstyle", "--steps", "4",
                        "--every", "2"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[3] for line in lines] == ["0", "2", "4"]
    assert all(0.0 <= float(line.split()[6]) <= 1.0 for line in lines)


def test_first_seed_picks_which_seeds_a_process_trains(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    """Seeds FIRST..FIRST+N-1, so parallel processes can share one --runs folder (training replaced by a recorder:
    this checks the seed loop only; the training path is the README transfer runs)."""
    script = _script()
    seen: list[int] = []

    def record(config, dataset, target, row, seed, args):
        seen.append(seed)
        scores = {key: float(seed) for key, _ in script.COLUMNS}  # type: ignore[attr-defined]
        return {**scores, "train_seconds": 0.0, "supervision": "labels (source); target: unseen"}

    monkeypatch.setattr(script, "run_one", record)
    argv = ["--dataset", str(tiny), "--rows", "none", "--targets", "noisy", "--out", str(tmp_path / "t.md")]
    assert script.main([*argv, "--seeds", "2", "--first-seed", "1"]) == 0  # type: ignore[attr-defined]
    assert seen == [1, 2]
    assert "| 1.500 (1.00, 2.00)" in (tmp_path / "t.md").read_text()
