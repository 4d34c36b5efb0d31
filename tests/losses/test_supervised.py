"""The supervised ceiling: per-factor cross-entropy of linear / MLP heads and the L2 loss on standardised classes, each
on the factor's OWN subspace, against hand computations over the right slices; free subspaces are unused; errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from disco.errors import ConfigError
from disco.losses.supervised import FactorClassification, standardised_classes
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
    loss = FactorClassification(SPEC, NAMES, SIZES, head="linear")
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


def test_only_named_subspaces_get_a_head_on_their_own_slice() -> None:
    torch.manual_seed(0)
    loss = FactorClassification(SPEC, NAMES, SIZES, head="linear", only=["pos"])
    z, classes = _data()
    assert loss.names == ["pos"] and [h.out_features for h in loss.heads] == [5]
    torch.testing.assert_close(loss(z, classes).loss, F.cross_entropy(loss.heads[0](z[:, 5:6]), classes[:, 2]))
    with pytest.raises(ConfigError, match="not tied subspaces"):
        FactorClassification(SPEC, NAMES, SIZES, only=["free"])
    with pytest.raises(ConfigError, match="not tied subspaces"):
        FactorClassification(SPEC, NAMES, SIZES, only=[])


def test_free_dimensions_are_unused_and_heads_get_gradients() -> None:
    loss = FactorClassification(SPEC, NAMES, SIZES, head="linear")
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
        FactorClassification(SPEC, NAMES, SIZES, head="svm")


def test_standardised_classes_have_zero_mean_and_unit_variance_over_the_grid() -> None:
    for n in (2, 3, 32, 40):
        t = standardised_classes(torch.arange(n), n).double()
        torch.testing.assert_close(t.mean(), torch.zeros((), dtype=torch.float64), atol=1e-6, rtol=0)
        torch.testing.assert_close(t.pow(2).mean(), torch.ones((), dtype=torch.float64), atol=1e-6, rtol=0)
        assert bool((t[1:] > t[:-1]).all())
    # hand case: 3 classes are -sqrt(3/2), 0, sqrt(3/2)
    torch.testing.assert_close(
        standardised_classes(torch.tensor([0, 1, 2]), 3), torch.tensor([-(1.5**0.5), 0.0, 1.5**0.5])
    )


def test_regression_head_is_the_squared_error_to_standardised_classes_with_extra_units_held_at_zero() -> None:
    loss = FactorClassification(SPEC, NAMES, SIZES, head="regression")
    assert list(loss.parameters()) == []
    z, classes = _data()
    expected = torch.zeros(())
    for cols, k, n in ((slice(3, 5), 0, 3), (slice(0, 1), 1, 4), (slice(5, 6), 2, 5)):
        mean, std = (n - 1) / 2, ((n * n - 1) / 12) ** 0.5
        sub = z[:, cols]
        per_row = (sub[:, 0] - (classes[:, k].float() - mean) / std) ** 2 + sub[:, 1:].pow(2).sum(1)
        expected = expected + per_row.mean()
    out = loss(z, classes)
    torch.testing.assert_close(out.loss, expected)
    # a code that IS the standardised class scores zero and full accuracy; a shift of half a step flips the class
    exact = torch.zeros(len(classes), SPEC.dim)
    for cols, k, n in ((3, 0, 3), (0, 1, 4), (5, 2, 5)):
        exact[:, cols] = standardised_classes(classes[:, k], n)
    perfect = loss(exact, classes)
    assert float(perfect.loss) < 1e-10 and float(perfect.diagnostics["acc"]) == 1.0
    step = 1 / ((5 * 5 - 1) / 12) ** 0.5
    shifted = exact.clone()
    shifted[:, 5] += 0.6 * step
    top = (classes[:, 2] == 4).float().mean()  # only the top class has no upper neighbour to flip to
    assert 0 < float(top) < 1
    torch.testing.assert_close(loss(shifted, classes).diagnostics["acc/pos"], top)


def test_mlp_head_is_cross_entropy_of_a_two_layer_map_of_the_subspace() -> None:
    torch.manual_seed(0)
    loss = FactorClassification(SPEC, NAMES, SIZES, head="mlp")
    z, classes = _data()
    heads = dict(zip(loss.names, loss.heads, strict=True))
    pos = heads["pos"]
    hand = F.linear(F.relu(F.linear(z[:, 5:6], pos[0].weight, pos[0].bias)), pos[2].weight, pos[2].bias)
    expected = (
        F.cross_entropy(heads["shape"](z[:, 3:5]), classes[:, 0])
        + F.cross_entropy(heads["scale"](z[:, 0:1]), classes[:, 1])
        + F.cross_entropy(hand, classes[:, 2])
    )
    torch.testing.assert_close(loss(z, classes).loss, expected)
