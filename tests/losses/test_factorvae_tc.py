"""FactorVAE's total correlation (Kim & Mnih 2018) as the tc estimator over single dimensions: every column permuted on
its own, the TC estimate is the mean discriminator logit, the discriminator's loss is the cross-entropy by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from disco.losses.independence import SubspaceIndependence
from disco.losses.tc_discriminator import permute_subspaces
from disco.models.subspaces import SubspaceSpec

SPEC = SubspaceSpec.parse("shape=2,scale=1,free=3")


def _codes(b: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, SPEC.dim, generator=g)


def test_per_dimension_mode_splits_every_subspace_into_columns() -> None:
    tc = SubspaceIndependence(SPEC, "tc", per_dimension=True)
    assert tc.tc is not None
    assert [(s.name, s.width) for s in tc.tc.spec] == [
        ("shape[0]", 1), ("shape[1]", 1), ("scale", 1), ("free[0]", 1), ("free[1]", 1), ("free[2]", 1)
    ]  # fmt: skip
    assert len(SubspaceIndependence(SPEC, "tc").tc.spec) == 3  # type: ignore[union-attr]


def test_each_dimension_is_permuted_independently() -> None:
    b = 64
    z = torch.arange(b * SPEC.dim, dtype=torch.float32).reshape(SPEC.dim, b).T.contiguous()  # distinct values
    tc = SubspaceIndependence(SPEC, "tc", per_dimension=True)
    assert tc.tc is not None
    perm = permute_subspaces(z, tc.tc.spec, torch.Generator().manual_seed(1))
    rows = []
    for j in range(SPEC.dim):
        # each column holds exactly the original column's values, in another order
        assert torch.equal(perm[:, j].sort().values, z[:, j].sort().values)
        rows.append((perm[:, j] - z[0, j]).long())  # which original row each entry came from
        assert not torch.equal(rows[-1], torch.arange(b))
    assert len({tuple(r.tolist()) for r in rows}) == SPEC.dim  # no two columns share a permutation
    # the subspace mode, by contrast, moves the two shape columns together
    whole = permute_subspaces(z, SubspaceIndependence(SPEC, "tc").sub_spec, torch.Generator().manual_seed(1))
    assert torch.equal((whole[:, 0] - z[0, 0]).long(), (whole[:, 1] - z[0, 1]).long())


def test_tc_estimate_is_the_mean_discriminator_logit() -> None:
    torch.manual_seed(0)
    tc = SubspaceIndependence(SPEC, "tc", per_dimension=True, tc_hidden=(16, 16))
    assert tc.tc is not None
    z = _codes().requires_grad_()
    out = tc(z)
    net = tc.tc.net
    h = F.leaky_relu(net[0](z), 0.2)
    h = F.leaky_relu(net[2](h), 0.2)
    expected = net[4](h).squeeze(1).mean()
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.diagnostics["raw"], expected.detach())
    out.loss.backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.parameters())  # the penalty does not train the discriminator


def test_discriminator_loss_is_the_binary_cross_entropy_by_hand() -> None:
    torch.manual_seed(0)
    tc = SubspaceIndependence(SPEC, "tc", per_dimension=True, tc_hidden=(16,))
    assert tc.tc is not None
    z = _codes().requires_grad_()
    torch.manual_seed(123)
    loss = tc.auxiliary_loss(z)
    torch.manual_seed(123)  # the same draws: one permutation per column, in column order
    z0 = z.detach()
    permuted = torch.stack([z0[torch.randperm(z0.shape[0]), j] for j in range(SPEC.dim)], 1)
    d_real = torch.sigmoid(tc.tc.net(z0).squeeze(1))
    d_fake = torch.sigmoid(tc.tc.net(permuted).squeeze(1))
    expected = 0.5 * (-torch.log(d_real).mean() - torch.log(1 - d_fake).mean())
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert z.grad is None  # trained on detached codes
    assert all(p.grad is not None for p in tc.auxiliary_parameters())
