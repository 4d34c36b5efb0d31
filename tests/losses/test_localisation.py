"""ChangeLocalisation against a per-pair loop and hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from disco.errors import ConfigError
from disco.losses.localisation import ChangeLocalisation, change_energies
from disco.models.subspaces import SubspaceSpec

FACTORS = ["shape", "scale", "orient", "pos"]


def spec() -> SubspaceSpec:
    return SubspaceSpec.parse("shape=3,scale=1,orient=2,free=2")


def loop_reference(za, zb, shared, temperature, include_free=True, energy="squared", eps=1e-3):
    s = spec()
    subs = [x for x in s if include_free or x.factor is not None]
    cols = {x.name: FACTORS.index(x.factor) for x in s.tied}
    losses, hits = [], []
    for b in range(za.shape[0]):
        changed = [x.name for x in s.tied if not shared[b, cols[x.name]]]
        if len(changed) != 1:
            continue
        e = [float(((za[b, x.slice] - zb[b, x.slice]) ** 2).sum()) / x.width for x in subs]
        t = [x.name for x in subs].index(changed[0])
        logits = (np.array(e) if energy == "squared" else np.log(np.array(e) + eps)) / temperature
        losses.append(-(logits[t] - logsumexp(logits)))
        hits.append(int(np.argmax(e)) == t)
    return (float(np.mean(losses)) if losses else 0.0), (float(np.mean(hits)) if hits else 0.0), len(losses)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("include_free", [True, False])
@pytest.mark.parametrize("energy", ["squared", "log"])
def test_matches_loop_reference(dtype, include_free, energy):
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(12, 8, generator=g, dtype=dtype), torch.randn(12, 8, generator=g, dtype=dtype)
    shared = torch.ones(12, 4, dtype=torch.bool)
    for b in range(12):
        shared[b, b % 3] = False  # exactly one of the tied factors changes
    shared[0, 1] = False  # two changes: ignored
    shared[1, 3] = False  # an untied factor also changes: still exactly one tied change
    loss_fn = ChangeLocalisation(spec(), FACTORS, temperature=0.7, include_free=include_free, energy=energy, eps=0.01)
    out = loss_fn(za, zb, shared)
    ref, acc, count = loop_reference(za.double(), zb.double(), shared, 0.7, include_free, energy, eps=0.01)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert out.loss.item() == pytest.approx(ref, rel=tol)
    assert out.diagnostics["acc"].item() == pytest.approx(acc)
    assert out.diagnostics["valid"].item() == count == 11


def test_perfectly_localised_change_has_full_accuracy_and_small_loss():
    s = spec()
    za = torch.zeros(3, 8)
    zb = za.clone()
    shared = torch.ones(3, 4, dtype=torch.bool)
    for b, name in enumerate(["shape", "scale", "orient"]):
        zb[b, s[name].slice] = 10.0
        shared[b, FACTORS.index(name)] = False
    out = ChangeLocalisation(s, FACTORS)(za, zb, shared)
    assert out.diagnostics["acc"].item() == 1.0
    assert out.loss.item() == pytest.approx(0.0, abs=1e-30)
    # no change at all: uniform energies give log of the number of subspaces
    out = ChangeLocalisation(s, FACTORS)(za, za.clone(), shared)
    assert out.loss.item() == pytest.approx(math.log(4))


def test_no_single_change_pairs_gives_zero():
    za = torch.randn(4, 8, requires_grad=True)
    shared = torch.ones(4, 4, dtype=torch.bool)
    out = ChangeLocalisation(spec(), FACTORS)(za, torch.randn(4, 8), shared)
    out.loss.backward()
    assert out.loss.item() == 0.0 and out.diagnostics["valid"].item() == 0
    assert torch.isfinite(za.grad).all() and (za.grad == 0).all()


def test_energies_and_gradcheck():
    s = spec()
    za, zb = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    e = change_energies(za, zb, list(s))
    assert torch.allclose(e[:, 2], (za[:, 4:6] - zb[:, 4:6]).pow(2).sum(1) / 2)
    shared = torch.ones(5, 4, dtype=torch.bool)
    shared[torch.arange(5), torch.tensor([0, 1, 2, 0, 1])] = False
    loss_fn = ChangeLocalisation(s, FACTORS)
    za.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: loss_fn(a, zb, shared).loss, (za,))


def test_log_energy_is_the_share_of_change_and_opens_a_collapsed_subspace():
    """At temperature 1 the log form's loss is -log of the changed subspace's share of the change energy (hand
    values), is unchanged when the code is scaled, and still pulls on a changed subspace that barely moves, where the
    squared form's gradient vanishes."""
    s = SubspaceSpec.parse("shape=1,scale=1")
    za = torch.zeros(1, 2)
    zb = torch.tensor([[1.0, 2.0]])  # energies 1 (shape) and 4 (scale); shape changed
    shared = torch.tensor([[False, True, True, True]])
    log_fn = ChangeLocalisation(s, FACTORS, energy="log", eps=1e-12)
    assert log_fn(za, zb, shared).loss.item() == pytest.approx(-math.log(1 / 5), rel=1e-6)
    assert log_fn(za, 10 * zb, shared).loss.item() == pytest.approx(-math.log(1 / 5), rel=1e-6)
    collapsed = torch.tensor([[1e-3, 2.0]], requires_grad=True)  # the shape subspace moved by 1e-3 only
    grads = {}
    for energy in ("squared", "log"):
        collapsed.grad = None
        ChangeLocalisation(s, FACTORS, energy=energy, eps=1e-6)(za, collapsed, shared).loss.backward()
        grads[energy] = -collapsed.grad[0, 0].item()  # descent direction on the shape unit: positive = open it
    # squared: d/dz(-z^2 + logsumexp) = -2z(1 - p) ~ -2e-3; log: -2z/(z^2 + eps) (1 - p) ~ -1.0e3
    assert 0 < grads["squared"] < 3e-3
    assert grads["log"] > 500


def test_bad_inputs():
    with pytest.raises(ConfigError):
        ChangeLocalisation(spec(), FACTORS, temperature=-1)
    with pytest.raises(ConfigError):
        ChangeLocalisation(spec(), FACTORS, energy="cubic")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ChangeLocalisation(spec(), FACTORS, energy="log", eps=0.0)
    with pytest.raises(ConfigError):
        ChangeLocalisation(spec(), FACTORS)(torch.randn(2, 8), torch.randn(2, 8), torch.ones(2, 3, dtype=torch.bool))
