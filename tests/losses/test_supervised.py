"""The supervised ceiling: per-factor cross-entropy of linear heads on each factor's OWN subspace, against a hand
computation with F.cross_entropy over the right slices; free subspaces are unused; errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from disco.errors import ConfigError
from disco.losses.supervised import FactorClassification
from disco.models.subspaces import SubspaceSpec

NAMES = ("shape", "scale", "pos")
SIZES = (3, 4, 5)
# code columns: scale 0, free 1-2, shape 3-4, pos 5; factor "pos" is column 2 of the classes
SPEC = SubspaceSpec.parse("scale=1,free=2,shape=2,pos=1")


def _data(n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, SPEC.dim, generator=g)
    classes = torch.stack([torch.randint(0, s, (n,), generator=g) for s in SIZES], 1)
    return z, classes


def test_loss_is_the_sum_of_per_factor_cross_entropies_on_the_right_slices() -> None:
    torch.manual_seed(0)
    loss = FactorClassification(SPEC, NAMES, SIZES)
    z, classes = _data()
    heads = dict(zip(loss.names, loss.heads, strict=True))
    assert [h.in_features for h in loss.heads] == [1, 2, 1] and [h.out_features for h in loss.heads] == [4, 3, 5]
    expected = (
        F.cross_entropy(heads["shape"](z[:, 3:5]), classes[:, 0])
        + F.cross_entropy(heads["scale"](z[:, 0:1]), classes[:, 1])
        + F.cross_entropy(heads["pos"](z[:, 5:6]), classes[:, 2])
    )
    out = loss(z, classes)
    torch.testing.assert_close(out.loss, expected)
    acc = (heads["pos"](z[:, 5:6]).argmax(1) == classes[:, 2]).float().mean()
    torch.testing.assert_close(out.diagnostics["acc/pos"], acc)


def test_free_dimensions_are_unused_and_heads_get_gradients() -> None:
    loss = FactorClassification(SPEC, NAMES, SIZES)
    z, classes = _data()
    z.requires_grad_()
    out = loss(z, classes)
    out.loss.backward()
    assert z.grad is not None
    assert float(z.grad[:, 1:3].abs().sum()) == 0.0  # the free subspace
    assert float(z.grad[:, [0, 3, 4, 5]].abs().sum()) > 0.0
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in loss.parameters())


def test_errors() -> None:
    with pytest.raises(ConfigError, match="tied to factors"):
        FactorClassification(SubspaceSpec.parse("free=3"), NAMES, SIZES)
    with pytest.raises(ConfigError, match="number of classes"):
        FactorClassification(SPEC, NAMES, ())
    with pytest.raises(ConfigError, match="head"):
        FactorClassification(SPEC, NAMES, SIZES, head="mlp")
