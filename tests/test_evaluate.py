"""The encoding glue: Representer batching and grid lookup, code checks, codes files, row selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from disco.data.datasets import GroundTruthData
from disco.data.factors import FactorSpace
from disco.data.splits import split_indices
from disco.errors import DataError, EncoderError
from disco.evaluate import Representer, check_codes, evaluate, load_codes, select_rows, subspace_entries
from disco.models.factory import build_encoder
from disco.models.subspaces import SubspaceSpec

SPACE = FactorSpace(("a", "b", "c"), (3, 5, 4))


def _indexed_data() -> GroundTruthData:
    """A full grid whose image ``i`` stores ``i`` in its first two pixels (low byte, high byte)."""
    n = SPACE.size
    images = torch.randint(0, 256, (n, 1, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    idx = torch.arange(n)
    images[:, 0, 0, 0] = (idx % 256).to(torch.uint8)
    images[:, 0, 0, 1] = (idx // 256).to(torch.uint8)
    classes = SPACE.index_to_classes(idx)
    assert isinstance(classes, torch.Tensor)
    return GroundTruthData("toy", images, classes, SPACE, on_grid=True)


class PixelIndex(nn.Module):
    """Reads back the index stored in the first two pixels, plus a pixel mean so the code has 3 dims."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.round(x[:, 0, 0, 0] * 255) + 256 * torch.round(x[:, 0, 0, 1] * 255)
        mean = torch.stack([idx, x.mean(dim=(1, 2, 3)), x[:, 0, 5, 5]], dim=1)
        return mean, torch.full_like(mean, float("nan"))


class Counting(nn.Module):
    """Wraps a module and records the batch size of each call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.sizes.append(int(x.shape[0]))
        assert not torch.is_grad_enabled() and torch.is_inference_mode_enabled()
        return self.inner(x)


def test_representer_maps_classes_to_grid_images() -> None:
    data = _indexed_data()
    rng = np.random.default_rng(0)
    classes = np.stack([rng.integers(0, s, 200) for s in SPACE.sizes], axis=1)
    codes = Representer(PixelIndex(), data, batch_size=64)(classes)
    expected = [c[0] * 20 + c[1] * 4 + c[2] for c in classes.tolist()]  # strides of (3, 5, 4) by hand
    assert codes.dtype == np.float64 and codes.shape == (200, 3)
    np.testing.assert_array_equal(codes[:, 0], expected)
    ref = data.images[torch.as_tensor(expected)].float() / 255
    np.testing.assert_allclose(codes[:, 1], ref.mean(dim=(1, 2, 3)).double().numpy(), rtol=1e-6)


def test_representer_batches_and_matches_direct_pass() -> None:
    torch.manual_seed(0)
    data = _indexed_data()
    enc = build_encoder("conv64", in_channels=1, latent_dim=5).eval()
    counting = Counting(enc)
    rep = Representer(counting, data, batch_size=25)
    rows = np.arange(SPACE.size)[::-1].copy()
    codes = rep.encode_rows(rows)
    assert counting.sizes == [25, 25, 10] and rep.calls == 3 and rep.num_encoded == 60
    with torch.no_grad():
        direct = enc(data.images[torch.as_tensor(rows)].float() / 255)[0].double().numpy()
    np.testing.assert_allclose(codes, direct, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("forward", "match"),
    [
        (lambda x: x.flatten(1)[:, :3].unsqueeze(-1), "expected"),
        (lambda x: x.flatten(1)[:-1, :3], "expected"),
        (lambda x: x.flatten(1)[:, :3] * float("nan"), "NaN or infinite"),
        (lambda x: x.flatten(1)[:, :3] / 0.0, "NaN or infinite"),
        (lambda x: {"mean": x}, "return a tensor"),
        (lambda x: (), "empty tuple"),
        (lambda x: x.view(7, 7), "encoder failed"),
    ],
)
def test_representer_rejects_bad_encoder_output(forward: object, match: str) -> None:
    class Bad(nn.Module):
        def forward(self, x: torch.Tensor) -> object:
            return forward(x)  # type: ignore[operator]

    with pytest.raises(EncoderError, match=match) as info:
        Representer(Bad(), _indexed_data(), batch_size=16).encode_rows(np.arange(20))
    assert "\n" not in str(info.value)


def test_representer_needs_grid_and_valid_classes() -> None:
    data = _indexed_data()
    with pytest.raises(Exception, match="outside the grid"):
        Representer(PixelIndex(), data)(np.array([[0, 5, 0]]))
    data.on_grid = False
    with pytest.raises(DataError, match="interventional metrics"):
        Representer(PixelIndex(), data)(np.zeros((1, 3), dtype=np.int64))


def test_evaluate_refuses_interventions_off_grid() -> None:
    data = _indexed_data()
    data.on_grid = False
    with pytest.raises(DataError, match="factor_vae cannot intervene"):
        evaluate(PixelIndex(), data, ["mig", "factor_vae"], split="all")


def test_check_codes() -> None:
    check_codes(np.array([[0.0, 1.0], [0.0, 2.0]]))
    with pytest.raises(EncoderError, match="constant"):
        check_codes(np.ones((5, 3)))
    check_codes(np.ones((5, 3)), allow_constant=True)
    with pytest.raises(EncoderError, match="shape"):
        check_codes(np.ones(5))


def test_select_rows_is_the_training_split() -> None:
    ref = split_indices(1000, seed=3)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(select_rows(1000, split, seed=3), np.sort(ref[split].numpy()))
    np.testing.assert_array_equal(select_rows(7, "all"), np.arange(7))
    test = np.sort(ref["test"].numpy())
    sub = select_rows(1000, "test", seed=3, limit=40, sample_seed=5)
    np.testing.assert_array_equal(sub, np.sort(np.random.default_rng(5).choice(test, 40, replace=False)))
    assert np.all(np.diff(sub) > 0) and np.isin(sub, test).all()
    np.testing.assert_array_equal(select_rows(1000, "test", seed=3, limit=10_000), test)


def test_subspace_entries_checks_width() -> None:
    spec = SubspaceSpec.parse("a=2,free=1")
    assert subspace_entries(spec, 3) == [("a", 2), ("free", 1)]
    assert subspace_entries(None, 3) is None
    with pytest.raises(Exception, match="sum to 3"):
        subspace_entries(spec, 4)


def test_load_codes(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    codes = np.random.default_rng(0).normal(size=(10, 2))
    factors = np.arange(20).reshape(10, 2) % 3
    np.savez(path, codes=codes.astype(np.float32), factors=factors, factor_names=np.array(["x", "y"]))
    c, f, names = load_codes(path)
    np.testing.assert_allclose(c, codes.astype(np.float32))
    np.testing.assert_array_equal(f, factors)
    assert names == ["x", "y"] and c.dtype == np.float64
    cases = {
        "missing.npz": "does not exist",
        "short.npz": "10 codes but 9 factor rows",
        "nan.npz": "NaN or infinite",
        "nofactors.npz": "lacks array",
        "floatfactors.npz": "integer",
        "corrupt.npz": "cannot read codes file",
    }
    np.savez(tmp_path / "short.npz", codes=codes, factors=factors[:9])
    np.savez(tmp_path / "nan.npz", codes=codes * np.nan, factors=factors)
    np.savez(tmp_path / "nofactors.npz", codes=codes)
    np.savez(tmp_path / "floatfactors.npz", codes=codes, factors=factors * 1.0)
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04garbage")
    for name, match in cases.items():
        with pytest.raises((DataError, EncoderError), match=match):
            load_codes(tmp_path / name)


def test_cpu_encoding_uses_batches_below_the_mmap_threshold() -> None:
    from disco.evaluate import DEFAULT_BATCH_SIZE

    data = _indexed_data()
    represent = Representer(PixelIndex(), data)
    assert represent.batch_size == DEFAULT_BATCH_SIZE["cpu"] == 128
    assert Representer(PixelIndex(), data, batch_size=7).batch_size == 7


@pytest.mark.parametrize("script", [True, False])
def test_prepare_encoder_keeps_the_codes(script: bool) -> None:
    from disco.evaluate import prepare_encoder

    torch.manual_seed(0)
    encoder = build_encoder("conv64", in_channels=1, latent_dim=6).eval()
    module: nn.Module = torch.jit.script(encoder) if script else encoder
    fast = prepare_encoder(module, probe_shape=(1, 64, 64))
    assert fast is not module and isinstance(fast, torch.jit.ScriptModule)
    x = torch.rand(33, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want, got = module(x), fast(x)
    want, got = (want[0], got[0]) if isinstance(want, tuple) else (want, got)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_prepare_encoder_leaves_what_it_cannot_optimise() -> None:
    from disco.evaluate import prepare_encoder

    class NumpyInside(nn.Module):  # not scriptable: calls NumPy in forward
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x.mean(dim=(2, 3))))

    plain = NumpyInside().eval()
    assert prepare_encoder(plain, probe_shape=(1, 64, 64)) is plain
    training = build_encoder("conv64", in_channels=1, latent_dim=4).train()
    assert prepare_encoder(training) is training
