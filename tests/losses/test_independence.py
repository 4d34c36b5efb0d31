"""SubspaceIndependence: pairwise means and diagnostics, CLUB and the TC discriminator (training, detached parameters,
per-subspace permutation), errors."""

from __future__ import annotations

import pytest
import torch

from disco.errors import ConfigError
from disco.losses.dependence import cross_covariance, distance_correlation, hsic_unbiased
from disco.losses.independence import ESTIMATORS, SubspaceIndependence
from disco.losses.tc_discriminator import permute_subspaces
from disco.models.subspaces import SubspaceSpec

SPEC = SubspaceSpec.parse("a=2,b=1,c=3")


def dependent_codes(n: int, g: torch.Generator, noise: float = 0.1) -> torch.Tensor:
    """a ~ N(0, I); b and c are noisy functions of a, so every pair of subspaces is dependent."""
    a = torch.randn(n, 2, generator=g)
    b = a[:, :1] + noise * torch.randn(n, 1, generator=g)
    c = torch.cat(
        [
            a[:, 1:] ** 2,
            torch.sin(2 * a),
        ],
        dim=1,
    ) + noise * torch.randn(n, 3, generator=g)
    return torch.cat([a, b, c], dim=1)


def independent_codes(n: int, g: torch.Generator) -> torch.Tensor:
    """The same marginals per subspace, drawn independently (rows of different subspaces come from different draws)."""
    parts = [dependent_codes(n, g)[:, s.slice] for s in SPEC]
    return torch.cat(parts, dim=1)


@pytest.mark.parametrize(
    ("estimator", "fn"),
    [("dcor", distance_correlation), ("hsic", hsic_unbiased), ("crosscov", cross_covariance)],
)
def test_module_is_the_mean_of_the_pairwise_function(estimator: str, fn: object) -> None:
    z = dependent_codes(64, torch.Generator().manual_seed(0))
    out = SubspaceIndependence(SPEC, estimator, weight=3.0)(z)
    pairs = {"a|b": (0, 2, 2, 3), "a|c": (0, 2, 3, 6), "b|c": (2, 3, 3, 6)}
    expected = {k: fn(z[:, i:j], z[:, u:v]) for k, (i, j, u, v) in pairs.items()}  # type: ignore[operator]
    assert set(out.diagnostics) == {"raw"} | {f"raw/{k}" for k in pairs}
    for k, v in expected.items():
        torch.testing.assert_close(out.diagnostics[f"raw/{k}"], v)
    mean = torch.stack(list(expected.values())).mean()
    torch.testing.assert_close(out.diagnostics["raw"], mean)
    torch.testing.assert_close(out.loss, 3.0 * mean)
    assert out.loss.requires_grad is False  # z does not require grad here


def test_subset_of_subspaces_and_gradient_flow() -> None:
    z = dependent_codes(32, torch.Generator().manual_seed(0)).requires_grad_()
    out = SubspaceIndependence(SPEC, "dcor", subspaces=["a", "c"])(z)
    assert set(out.diagnostics) == {"raw", "raw/a|c"}
    out.loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert torch.equal(z.grad[:, 2], torch.zeros(32))  # b is not penalised


def test_errors() -> None:
    with pytest.raises(ConfigError, match="valid names: dcor, hsic, crosscov, club, tc"):
        SubspaceIndependence(SPEC, "mine")
    with pytest.raises(ConfigError, match="at least two subspaces"):
        SubspaceIndependence(SubspaceSpec.parse("a=3"))
    with pytest.raises(ConfigError, match="expects"):
        SubspaceIndependence(SPEC)(torch.zeros(4, 5))
    assert ESTIMATORS == ("dcor", "hsic", "crosscov", "club", "tc")


def test_closed_form_estimators_have_no_auxiliary_networks() -> None:
    m = SubspaceIndependence(SPEC, "hsic")
    assert not m.has_auxiliary and m.auxiliary_parameters() == []
    assert m.auxiliary_loss(torch.randn(8, 6)).item() == 0.0


def train_aux(m: SubspaceIndependence, make: object, steps: int, lr: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(m.auxiliary_parameters(), lr=lr)
    for _ in range(steps):
        m.update_auxiliary(make(256, g), opt)  # type: ignore[operator]


def test_club_bound_larger_on_dependent_data_after_training() -> None:
    torch.manual_seed(0)
    dep, ind = SubspaceIndependence(SPEC, "club"), SubspaceIndependence(SPEC, "club")
    assert len(dep.auxiliary_parameters()) == 3 * 8  # one q(y|x) per pair: 2 MLPs x 2 layers x (W, b)
    train_aux(dep, dependent_codes, 150, 1e-2, 0)
    train_aux(ind, independent_codes, 150, 1e-2, 0)
    g = torch.Generator().manual_seed(99)
    on_dep = dep(dependent_codes(512, g)).diagnostics
    on_ind = ind(independent_codes(512, g)).diagnostics
    assert on_dep["raw"] > 1.0
    assert abs(on_ind["raw"].item()) < 0.25
    for pair in ("a|b", "a|c", "b|c"):
        assert on_dep[f"raw/{pair}"] > on_ind[f"raw/{pair}"] + 0.3


def test_permute_subspaces_keeps_each_subspace_marginal() -> None:
    z = torch.arange(10 * 6, dtype=torch.float32).reshape(10, 6)
    zp = permute_subspaces(z, SPEC, torch.Generator().manual_seed(0))
    rows = []
    for s in SPEC:
        block, pblock = z[:, s.slice], zp[:, s.slice]
        # same multiset of rows; each permuted row is a whole original row of that block
        assert sorted(map(tuple, pblock.tolist())) == sorted(map(tuple, block.tolist()))
        rows.append((pblock[:, 0] - block[0, 0]) / 6)  # original row index of each permuted row
    assert not (torch.equal(rows[0], rows[1]) and torch.equal(rows[1], rows[2]))  # independent permutations


def test_tc_discriminator_separates_dependent_from_independent_codes() -> None:
    torch.manual_seed(0)
    m = SubspaceIndependence(SPEC, "tc")
    train_aux(m, dependent_codes, 300, 1e-3, 0)
    g = torch.Generator().manual_seed(99)
    tc_dep = m(dependent_codes(512, g)).diagnostics["raw"].item()
    tc_ind = m(independent_codes(512, g)).diagnostics["raw"].item()
    assert tc_dep > 1.0
    assert tc_dep - tc_ind > 2.0


@pytest.mark.parametrize("estimator", ["club", "tc"])
def test_penalty_leaves_estimator_params_alone_and_survives_an_aux_step_before_backward(estimator: str) -> None:
    torch.manual_seed(0)
    m = SubspaceIndependence(SPEC, estimator)
    enc = torch.nn.Linear(6, 6)
    z = enc(dependent_codes(64, torch.Generator().manual_seed(0)))
    penalty = m(z).loss
    opt = torch.optim.Adam(m.auxiliary_parameters(), lr=1e-2)
    before = [p.detach().clone() for p in m.auxiliary_parameters()]
    m.update_auxiliary(z, opt, steps=2)  # in-place parameter update while the encoder's graph is alive
    assert any(not torch.equal(b, p) for b, p in zip(before, m.auxiliary_parameters(), strict=True))
    for p in m.auxiliary_parameters():
        p.grad = None
    penalty.backward()
    assert enc.weight.grad is not None and torch.isfinite(enc.weight.grad).all()
    assert all(p.grad is None for p in m.auxiliary_parameters())


@pytest.mark.parametrize("estimator", ["dcor", "hsic", "crosscov"])
def test_half_precision_codes_are_scored_in_float32(estimator: str) -> None:
    z = dependent_codes(64, torch.Generator().manual_seed(0))
    low = z.bfloat16()
    m = SubspaceIndependence(SPEC, estimator)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(low)
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, m(low.float()).loss)


def test_subspace_names_with_dots_work_with_club() -> None:
    spec = SubspaceSpec.parse("pos.x=1,pos.y=1")
    m = SubspaceIndependence(spec, "club")
    out = m(torch.randn(16, 2))
    assert set(out.diagnostics) == {"raw", "raw/pos.x|pos.y"}


def test_max_samples_scores_evenly_spaced_rows() -> None:
    z = dependent_codes(100, torch.Generator().manual_seed(0))
    out = SubspaceIndependence(SPEC, "dcor", max_samples=50)(z)
    rows = [round(i * 99 / 49) for i in range(50)]
    torch.testing.assert_close(out.loss, SubspaceIndependence(SPEC, "dcor")(z[rows]).loss)
    with pytest.raises(ConfigError, match="max_samples"):
        SubspaceIndependence(SPEC, max_samples=2)


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 1e4])
def test_dcor_penalty_is_scale_invariant_far_from_unit_scale(scale: float) -> None:
    # The reference value at scale 1 must be reproduced for tiny and huge codes (the eps guards are relative).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 2, generator=g, dtype=torch.float64)
    y = x[:, :1] ** 2 + 0.1 * torch.randn(128, 1, generator=g, dtype=torch.float64)
    z = torch.cat([x, y], 1)
    module = SubspaceIndependence(SubspaceSpec.parse("a=2,b=1"), "dcor")
    expected = distance_correlation(x, y)
    assert torch.allclose(module(z * scale).loss, expected, rtol=1e-6)
    assert torch.allclose(distance_correlation(x * scale, y * scale), expected, rtol=1e-6)
    zs = (z * scale).requires_grad_()
    module(zs).loss.backward()
    assert zs.grad is not None and torch.isfinite(zs.grad).all()
