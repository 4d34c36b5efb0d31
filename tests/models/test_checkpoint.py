"""Loading encoders: disco checkpoints (weights_only), TorchScript files, and explicit module:callable specs."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from disco.errors import DiscoError, EncoderError
from disco.models.checkpoint import is_torchscript, load_any_encoder, load_encoder
from disco.models.factory import build_encoder
from disco.models.subspaces import SubspaceSpec


def _conv(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_encoder("conv64", in_channels=1, latent_dim=4).eval()


def _write_ckpt(path: Path, enc: torch.nn.Module, spec: SubspaceSpec | None) -> Path:
    ckpt = {
        "disco": {
            "encoder": {"name": "conv64", "kwargs": {"in_channels": 1, "latent_dim": 4}},
            "subspaces": spec.to_dict() if spec is not None else None,
            "factor_names": ["shape", "scale", "pos_x"],
            "dataset": "dsprites",
            "config": {"lr": 1e-4},
        },
        "state_dict": {**{"encoder." + k: v for k, v in enc.state_dict().items()}, "decoder.w": torch.zeros(2)},
        "epoch": 3,
    }
    torch.save(ckpt, path)
    return path


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(1))


def test_checkpoint_round_trip_rebuilds_same_encoder(tmp_path: Path, images: torch.Tensor) -> None:
    enc = _conv()
    spec = SubspaceSpec.parse("shape=2,scale=1,free=1")
    path = _write_ckpt(tmp_path / "model.ckpt", enc, spec)
    module, loaded_spec = load_encoder(path)
    assert loaded_spec == spec
    assert not module.training
    with torch.no_grad():
        torch.testing.assert_close(module(images)[0], enc(images)[0], rtol=0, atol=0)
    loaded = load_any_encoder(str(path))
    assert loaded.kind == "checkpoint" and loaded.subspaces == spec
    assert loaded.info["dataset"] == "dsprites" and loaded.info["encoder_name"] == "conv64"


def test_checkpoint_without_subspaces(tmp_path: Path) -> None:
    _, spec = load_encoder(_write_ckpt(tmp_path / "m.ckpt", _conv(), None))
    assert spec is None


def test_torchscript_file_is_detected_and_loaded(tmp_path: Path, images: torch.Tensor) -> None:
    enc = _conv(2)
    path = tmp_path / "enc.pt"
    torch.jit.save(torch.jit.script(enc), str(path))
    assert is_torchscript(path)
    assert not is_torchscript(_write_ckpt(tmp_path / "m.ckpt", enc, None))
    loaded = load_any_encoder(str(path))
    assert loaded.kind == "torchscript" and loaded.subspaces is None
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(images)[0], enc(images)[0])


def test_module_callable_imports_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, images: torch.Tensor
) -> None:
    (tmp_path / "my_enc_pkg.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            class Lin(nn.Module):
                def __init__(self):
                    super().__init__()
                    torch.manual_seed(0)
                    self.fc = nn.Linear(64 * 64, 3)

                def forward(self, x):
                    return self.fc(x.flatten(1))

            def build():
                return Lin()

            def not_a_module():
                return 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_any_encoder("my_enc_pkg:build")
    assert loaded.kind == "callable"
    torch.manual_seed(0)
    ref = torch.nn.Linear(64 * 64, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(images), ref(images.flatten(1)))
    assert load_any_encoder("my_enc_pkg:Lin").module.fc.out_features == 3
    with pytest.raises(EncoderError, match=r"not a torch\.nn\.Module"):
        load_any_encoder("my_enc_pkg:not_a_module")
    with pytest.raises(EncoderError, match="no attribute"):
        load_any_encoder("my_enc_pkg:missing")
    with pytest.raises(EncoderError, match="cannot import"):
        load_any_encoder("no_such_pkg_xyz.mod:build")
    sys.modules.pop("my_enc_pkg", None)


def test_weights_only_refuses_code_in_a_checkpoint(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # type: ignore[return-value]

    path = tmp_path / "evil.ckpt"
    torch.save({"disco": {}, "state_dict": {}, "x": Evil()}, path)
    with pytest.raises(EncoderError, match="cannot read checkpoint"):
        load_any_encoder(str(path))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p.write_bytes(b"not a checkpoint at all"), "cannot read checkpoint"),
        (lambda p: torch.save({"state_dict": {}}, p), "not a disco checkpoint"),
        (lambda p: torch.save({"disco": {"encoder": {}}, "state_dict": {}}, p), "lacks disco.encoder.name"),
        (
            lambda p: torch.save(
                {"disco": {"encoder": {"name": "conv64", "kwargs": {"latent_dim": 4}}}, "state_dict": {"x": 1}}, p
            ),
            "no 'encoder.'-prefixed weights",
        ),
        (
            lambda p: torch.save(
                {
                    "disco": {"encoder": {"name": "conv64", "kwargs": {"latent_dim": 7}}},
                    "state_dict": {"encoder." + k: v for k, v in _conv().state_dict().items()},
                },
                p,
            ),
            "do not fit encoder",
        ),
    ],
)
def test_bad_checkpoints_raise_one_line(tmp_path: Path, make: object, match: str) -> None:
    path = tmp_path / "bad.ckpt"
    make(path)  # type: ignore[operator]
    with pytest.raises(EncoderError, match=match) as info:
        load_any_encoder(str(path))
    assert "\n" not in str(info.value)


def test_missing_and_unparseable_specs(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="neither an existing file"):
        load_any_encoder(str(tmp_path / "nope.pt"))
    with pytest.raises(EncoderError, match="is a directory"):
        load_any_encoder(str(tmp_path))
    with pytest.raises(EncoderError, match="does not exist"):
        load_encoder(tmp_path / "nope.ckpt")
    with pytest.raises(DiscoError, match="unknown encoder"):
        torch.save(
            {"disco": {"encoder": {"name": "vit", "kwargs": {}}}, "state_dict": {"encoder.a": 1}}, tmp_path / "v"
        )
        load_any_encoder(str(tmp_path / "v"))
