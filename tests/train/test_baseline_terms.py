"""The baseline terms as the objective builds them: the weak VAE's factor-to-dimension tie from the subspace spec and
its loss on StepInputs, the supervised term on both views' encoder means and classes, and their config errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from disco.data.pairs import PairBatch
from disco.errors import ConfigError
from disco.losses.weak_vae import WeakVAELoss
from disco.models.subspaces import SubspaceSpec
from disco.train.config import ObjectiveConfig
from disco.train.objective import Objective, needs_decoder
from disco.train.step import StepInputs, TermContext

NAMES = ("shape", "scale")
SIZES = (3, 4)
SPEC = SubspaceSpec.parse("scale=1,free=2,shape=2")  # scale: dim 0, free: 1-2, shape: 3-4


def _inputs(b: int = 6, seed: int = 0) -> StepInputs:
    g = torch.Generator().manual_seed(seed)
    shared = torch.rand(b, 2, generator=g) > 0.5
    classes_a = torch.stack([torch.randint(0, s, (b,), generator=g) for s in SIZES], 1)
    classes_b = torch.where(shared, classes_a, (classes_a + 1) % torch.tensor(SIZES))
    x = torch.rand(2 * b, 1, 8, 8, generator=g)
    mean = torch.randn(2 * b, SPEC.dim, generator=g)
    logvar = 0.3 * torch.randn(2 * b, SPEC.dim, generator=g)
    z = mean + 0.1  # deliberately not the mean: the supervised term must read the means
    decoder = torch.nn.Sequential(torch.nn.Linear(SPEC.dim, 64), torch.nn.Unflatten(1, (1, 8, 8)))
    return StepInputs(PairBatch(x[:b], x[b:], shared, NAMES, classes_a, classes_b), x, mean, logvar, z, 0, decoder)


def _objective(supervision: str = "labels", has_decoder: bool = True, **sections: dict[str, object]) -> Objective:
    cfg = ObjectiveConfig()
    cfg.contrastive.weight = 0.0
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(cfg, name), key, value)
    ctx = TermContext(SPEC, NAMES, 100, has_decoder, supervision=supervision, factor_sizes=SIZES)
    return Objective(cfg, ctx)


@pytest.mark.parametrize("aggregation", ["gvae", "mlvae"])
def test_weak_vae_labels_ties_each_factor_to_its_subspace_columns(aggregation: str) -> None:
    objective = _objective(weak_vae={"weight": 1.0, "shared": "labels", "aggregation": aggregation, "beta": 2.0})
    loss = objective.terms["weak_vae"].loss
    assert isinstance(loss, WeakVAELoss) and loss.tie is not None
    assert loss.tie.tolist() == [[False, False, False, True, True], [True, False, False, False, False]]
    inputs = _inputs()
    assert inputs.decode is not None
    torch.manual_seed(3)
    out = objective(inputs)
    torch.manual_seed(3)
    ref = WeakVAELoss(beta=2.0, aggregation=aggregation, shared="labels", tie=loss.tie)(
        inputs.x, inputs.mean, inputs.logvar, inputs.decode, inputs.batch.shared
    )
    torch.testing.assert_close(out.total, ref.loss)
    assert objective.names == ("weak_vae",) and not objective.needs_reparameterisation


def test_weak_vae_needs_a_decoder_and_the_module_builds_one() -> None:
    cfg = ObjectiveConfig()
    assert not needs_decoder(cfg)
    cfg.weak_vae.weight = 1.0
    assert needs_decoder(cfg)
    with pytest.raises(ConfigError, match="needs a decoder"):
        _objective(has_decoder=False, weak_vae={"weight": 1.0})


def test_supervised_term_is_cross_entropy_of_both_views_means_per_factor() -> None:
    torch.manual_seed(0)
    objective = _objective(supervised={"weight": 2.0, "head": "linear"})
    heads = objective.terms["supervised"].loss.heads
    inputs = _inputs()
    ca, cb, m = inputs.batch.classes_a, inputs.batch.classes_b, inputs.mean
    assert ca is not None and cb is not None
    # heads in code order: scale (dim 0, factor column 1), then shape (dims 3-4, column 0)
    expected = F.cross_entropy(heads[0](m[:, 0:1]), torch.cat([ca[:, 1], cb[:, 1]]))
    expected = expected + F.cross_entropy(heads[1](m[:, 3:5]), torch.cat([ca[:, 0], cb[:, 0]]))
    out = objective(inputs)
    torch.testing.assert_close(out.total, 2.0 * expected)
    assert {"acc", "acc/shape", "acc/scale", "ce/shape"} <= set(out.terms["supervised"].diagnostics)


def test_supervised_default_head_regresses_both_views_means_onto_standardised_classes() -> None:
    objective = _objective(supervised={"weight": 1.0})
    inputs = _inputs()
    ca, cb, m = inputs.batch.classes_a, inputs.batch.classes_b, inputs.mean
    assert ca is not None and cb is not None
    expected = torch.zeros(())
    # scale: dim 0, factor column 1; shape: dims 3-4 (the second unit held at 0), column 0
    for cols, k in ((slice(0, 1), 1), (slice(3, 5), 0)):
        n = int(objective.terms["supervised"].loss.sizes[0 if k == 1 else 1])
        target = (torch.cat([ca[:, k], cb[:, k]]).float() - (n - 1) / 2) / ((n * n - 1) / 12) ** 0.5
        sub = m[:, cols]
        expected = expected + ((sub[:, 0] - target) ** 2 + sub[:, 1:].pow(2).sum(1)).mean()
    torch.testing.assert_close(objective(inputs).total, expected)


@pytest.mark.parametrize("level", ["pairs", "augment"])
def test_supervised_term_below_labels_is_one_config_error(level: str) -> None:
    with pytest.raises(ConfigError, match=r"^objective.supervised reads factor classes; it needs data.supervision: "):
        _objective(supervision=level, supervised={"weight": 1.0})
