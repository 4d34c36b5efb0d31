"""Objective assembly: the weighted sum equals the hand-computed sum of the loss modules, with schedules applied."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from disco.data.pairs import PairBatch
from disco.errors import ConfigError
from disco.losses.contrastive import SubspaceContrastive
from disco.losses.independence import SubspaceIndependence
from disco.losses.invariance import SubspaceInvariance
from disco.losses.localisation import ChangeLocalisation
from disco.losses.vae import VAELoss
from disco.models.subspaces import SubspaceSpec
from disco.train.config import AlignmentTermConfig, ObjectiveConfig, ScheduleConfig
from disco.train.objective import TERMS, Objective
from disco.train.step import StepInputs, TermContext

NAMES = ("shape", "scale", "pos")
SPEC = SubspaceSpec.parse("shape=2,scale=1,pos=1,free=1")


def _inputs(step: int, b: int = 8, seed: int = 0) -> tuple[StepInputs, torch.nn.Module]:
    g = torch.Generator().manual_seed(seed)
    shared = torch.zeros(b, 3, dtype=torch.bool)
    shared[torch.arange(b), torch.arange(b) % 3] = True
    classes_a = torch.randint(0, 3, (b, 3), generator=g)
    classes_b = torch.where(shared, classes_a, (classes_a + 1) % 3)
    x = torch.rand(2 * b, 1, 64, 64, generator=g)
    batch = PairBatch(x[:b], x[b:], shared, NAMES, classes_a, classes_b)
    mean = torch.randn(2 * b, SPEC.dim, generator=g)
    logvar = 0.1 * torch.randn(2 * b, SPEC.dim, generator=g)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(2 * b, SPEC.dim, generator=g)
    decoder = torch.nn.Sequential(torch.nn.Linear(SPEC.dim, 64 * 64), torch.nn.Unflatten(1, (1, 64, 64)))
    return StepInputs(batch, x, mean, logvar, z, step, decoder), decoder


def _config() -> ObjectiveConfig:
    cfg = ObjectiveConfig()
    cfg.contrastive.weight = 1.5
    cfg.contrastive.temperature = 0.2
    cfg.localisation.weight = 0.3
    cfg.invariance.weight = 2.5
    cfg.independence.weight = 0.7
    cfg.vae.weight = 0.01
    cfg.vae.beta = 4.0
    cfg.vae.schedule = ScheduleConfig(kind="linear", warmup_steps=100)
    return cfg


def test_registry_matches_config_sections() -> None:
    assert set(TERMS) == {f.name for f in dataclasses.fields(ObjectiveConfig)}


@pytest.mark.parametrize("step", [0, 50, 100, 400])
def test_weighted_sum_matches_hand_computation(step: int) -> None:
    inputs, decoder = _inputs(step)
    ctx = TermContext(SPEC, NAMES, dataset_size=1000, has_decoder=True)
    objective = Objective(_config(), ctx)
    out = objective(inputs)
    b = inputs.batch
    za, zb = inputs.z[:8], inputs.z[8:]
    contrastive = SubspaceContrastive(SPEC, NAMES, temperature=0.2)(za, zb, b.shared, b.classes_a, b.classes_b).loss
    localisation = ChangeLocalisation(SPEC, NAMES)(za, zb, b.shared).loss
    invariance = SubspaceInvariance(SPEC, NAMES)(za, zb, b.shared).loss
    independence = SubspaceIndependence(SPEC, "dcor")(inputs.z).loss
    vae = VAELoss(beta=4.0, dataset_size=1000)(inputs.x, decoder(inputs.z), inputs.mean, inputs.logvar, inputs.z).loss
    warm = min(step / 100, 1.0)
    expected = 1.5 * contrastive + 0.3 * localisation + 2.5 * invariance + 0.7 * independence + 0.01 * warm * vae
    torch.testing.assert_close(out.total, expected)
    assert out.weights["vae"] == pytest.approx(0.01 * warm)
    logged = out.log_values()
    for name in ("contrastive", "localisation", "invariance", "independence", "vae"):
        assert f"{name}/raw" in logged and f"{name}/weighted" in logged
    torch.testing.assert_close(logged["vae/weighted"], (0.01 * warm * vae).detach())


def test_localisation_options_reach_the_loss() -> None:
    """``objective.localisation`` energy / temperature / include_free / eps: the term's value is the module's with the
    same options, and differs from the default squared form."""
    cfg = ObjectiveConfig()
    cfg.contrastive.weight = 0.0
    cfg.localisation.weight = 1.0
    cfg.localisation.energy = "log"
    cfg.localisation.temperature = 0.5
    cfg.localisation.include_free = False
    cfg.localisation.eps = 0.01
    inputs, _ = _inputs(0)
    b = dataclasses.replace(inputs.batch, shared=~inputs.batch.shared)  # every pair changes exactly one factor
    inputs = dataclasses.replace(inputs, batch=b)
    za, zb = inputs.z[:8], inputs.z[8:]
    got = Objective(cfg, TermContext(SPEC, NAMES, 1000, has_decoder=False))(inputs).total
    assert got.item() > 0
    module = ChangeLocalisation(SPEC, NAMES, temperature=0.5, include_free=False, energy="log", eps=0.01)
    torch.testing.assert_close(got, module(za, zb, b.shared).loss)
    assert not torch.allclose(got, ChangeLocalisation(SPEC, NAMES)(za, zb, b.shared).loss)


def test_contrastive_kernel_and_weights_reach_the_loss() -> None:
    """``objective.contrastive.kernel`` / ``cyclic`` / ``weights``: the term is the module's with the same options (and
    the dataset's class counts); a run without factor values refuses the kernel before training."""
    cfg = ObjectiveConfig()
    cfg.contrastive.kernel = {"scale": 0.2}
    cfg.contrastive.cyclic = ["scale"]
    cfg.contrastive.weights = {"shape": 2.0}
    inputs, _ = _inputs(0)
    b = inputs.batch
    ctx = TermContext(SPEC, NAMES, 1000, has_decoder=False, factor_sizes=(3, 3, 3))
    got = Objective(cfg, ctx)(inputs).total
    module = SubspaceContrastive(
        SPEC, NAMES, kernels={"scale": 0.2}, cyclic=["scale"], weights={"shape": 2.0}, factor_sizes=[3, 3, 3]
    )
    torch.testing.assert_close(got, module(inputs.z[:8], inputs.z[8:], b.shared, b.classes_a, b.classes_b).loss)
    plain = SubspaceContrastive(SPEC, NAMES)(inputs.z[:8], inputs.z[8:], b.shared, b.classes_a, b.classes_b).loss
    assert not torch.allclose(got, plain)
    with pytest.raises(ConfigError, match="supervision: pairs"):
        Objective(cfg, dataclasses.replace(ctx, supervision="pairs"))


def test_zero_weight_terms_are_not_built() -> None:
    cfg = ObjectiveConfig()
    objective = Objective(cfg, TermContext(SPEC, NAMES, 1000, has_decoder=False))
    assert objective.names == ("contrastive",)
    assert not objective.needs_reparameterisation
    inputs, _ = _inputs(0)
    b = inputs.batch
    expected = SubspaceContrastive(SPEC, NAMES)(inputs.z[:8], inputs.z[8:], b.shared, b.classes_a, b.classes_b).loss
    torch.testing.assert_close(objective(inputs).total, expected)


def test_alignment_term_and_auxiliary_nets() -> None:
    cfg = ObjectiveConfig()
    cfg.contrastive.weight = 0.0
    cfg.alignment = [AlignmentTermConfig(kind="prior", weight=2.0, kwargs={"loss": "coral"})]
    cfg.independence.weight = 1.0
    cfg.independence.estimator = "club"
    objective = Objective(cfg, TermContext(SPEC, NAMES, 1000, has_decoder=False))
    inputs, _ = _inputs(0)
    out = objective(inputs)
    assert set(out.terms) == {"independence", "alignment"}
    assert torch.isfinite(out.total)
    aux = objective.auxiliary_parameters()
    assert aux and all(p.requires_grad for p in aux)
    loss = objective.auxiliary_loss(inputs.z.requires_grad_())
    loss.backward()
    assert inputs.z.grad is None  # auxiliary nets train on detached codes only
    assert all(p.grad is not None for p in aux)
