"""Adapters from :class:`~disco.train.step.StepInputs` to each loss module of :mod:`disco.losses` (one builder each).

The builders are registered in :data:`disco.train.objective.TERMS`. Loss modules are imported inside the builders so
that a run only imports what it uses.

Under DDP every batch-level term sees the batch of the whole world (see :mod:`disco.losses.distributed`): the
contrastive candidates, the dependence penalty between subspaces (and its auxiliary nets' loss), β-TCVAE's minibatch
estimate of log q(z) and the alignment terms (:mod:`disco.train.alignment`) gather the codes of all ranks with gradients, and the localisation
mean is normalised by the valid pairs of all ranks. The codes are passed with ``views=2`` (rows ``[view a; view b]``)
so the gathered batch has the row order of one process, and N ranks × B pairs step like one process with N·B pairs.
Terms that draw from the global random stream (CLUB's and the TC discriminator's permutations, the prior alignment's
samples) match that process in distribution only: Lightning reseeds the stream when it sets up DDP.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.train.config import (
    AuxiliaryConfig,
    ContrastiveConfig,
    EquivarianceConfig,
    IndependenceConfig,
    InvarianceConfig,
    LocalisationConfig,
    SupervisedConfig,
    VAEConfig,
    VarianceConfig,
    WeakVAEConfig,
)
from disco.train.step import StepInputs, TermContext


class ContrastiveTerm(nn.Module):
    """Per-subspace contrastive loss on the two views (:class:`disco.losses.contrastive.SubspaceContrastive`)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, inputs: StepInputs) -> LossOutput:
        b = inputs.batch
        out: LossOutput = self.loss(inputs.z_a, inputs.z_b, b.shared, b.classes_a, b.classes_b, b.ids)
        return out


def build_contrastive(cfg: ContrastiveConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.contrastive import SubspaceContrastive

    if cfg.kernel and ctx.supervision != "labels":
        raise ConfigError(
            f"objective.contrastive.kernel reads factor values, which data.supervision: {ctx.supervision} does not "
            "give; drop the kernel or train with labels"
        )
    return ContrastiveTerm(
        SubspaceContrastive(
            ctx.spec,
            ctx.factor_names,
            temperature=cfg.temperature,
            similarity=cfg.similarity,
            symmetric=cfg.symmetric,
            mask_same_value=cfg.mask_same_value,
            same_value=cfg.same_value,
            gather_distributed=cfg.gather_distributed,
            weights=cfg.weights,
            kernels=cfg.kernel,
            cyclic=cfg.cyclic,
            factor_sizes=ctx.factor_sizes or None,
            symmetries=ctx.symmetries,
        )
    )


class SharedPairTerm(nn.Module):
    """A loss read on the two views and which factors they share: change localisation
    (:class:`disco.losses.localisation.ChangeLocalisation`) and invariance
    (:class:`disco.losses.invariance.SubspaceInvariance`)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, inputs: StepInputs) -> LossOutput:
        out: LossOutput = self.loss(inputs.z_a, inputs.z_b, inputs.batch.shared)
        return out


def build_localisation(cfg: LocalisationConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.localisation import ChangeLocalisation

    return SharedPairTerm(
        ChangeLocalisation(
            ctx.spec,
            ctx.factor_names,
            temperature=cfg.temperature,
            include_free=cfg.include_free,
            energy=cfg.energy,
            eps=cfg.eps,
        )
    )


def build_invariance(cfg: InvarianceConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.invariance import SubspaceInvariance

    return SharedPairTerm(SubspaceInvariance(ctx.spec, ctx.factor_names))


class EquivarianceTerm(nn.Module):
    """Code differences of augmented subspaces against the applied parameters
    (:class:`disco.losses.equivariance.AugmentationEquivariance`)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, inputs: StepInputs) -> LossOutput:
        delta = inputs.batch.delta
        if delta is None:
            raise ConfigError("the equivariance term needs augmented pairs; train with data.supervision: augment")
        out: LossOutput = self.loss(inputs.z_a, inputs.z_b, delta)
        return out


def build_equivariance(cfg: EquivarianceConfig, ctx: TermContext) -> nn.Module:
    from disco.data.augment import augmenter_from_config
    from disco.losses.equivariance import UNSUPPORTED, AugmentationEquivariance

    if ctx.augment is None:
        raise ConfigError("objective.equivariance needs augmented pairs; set data.supervision: augment")
    tagged = augmenter_from_config(ctx.augment, seed=0).factors
    unknown = sorted(set(cfg.factors) - set(tagged))
    if unknown:
        raise ConfigError(
            f"objective.equivariance.factors {unknown} are not tagged in data.augment; use {sorted(tagged)}"
        )
    names = cfg.factors or [n for n, k in tagged.items() if k not in UNSUPPORTED and n in ctx.spec.names]
    kinds = {n: tagged[n] for n in names}
    dims = {n: 2 if k == "translation" else 1 for n, k in kinds.items()}
    return EquivarianceTerm(AugmentationEquivariance(ctx.spec, kinds, dims, scale=cfg.scale))


class VarianceTerm(nn.Module):
    """Variance floor on the codes of both views (:class:`disco.losses.variance.VarianceFloor`)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, inputs: StepInputs) -> LossOutput:
        out: LossOutput = self.loss(inputs.z)
        return out


def build_variance(cfg: VarianceConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.variance import VarianceFloor

    dims = None if cfg.all_units else [i for s in ctx.spec.tied for i in range(s.slice.start, s.slice.stop)]
    if dims is not None and not dims:
        raise ConfigError("objective.variance holds up the tied subspaces but there are none; set all_units: true")
    return VarianceTerm(VarianceFloor(cfg.gamma, dims))


class IndependenceTerm(nn.Module):
    """Dependence penalty between subspaces on the codes of both views
    (:class:`disco.losses.independence.SubspaceIndependence`); exposes the estimator's auxiliary networks."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, inputs: StepInputs) -> LossOutput:
        out: LossOutput = self.loss(inputs.z, views=2)
        return out

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        fn: Any = self.loss.auxiliary_parameters
        params: list[nn.Parameter] = fn()
        return params

    def auxiliary_loss(self, z: torch.Tensor) -> torch.Tensor:
        fn: Any = self.loss.auxiliary_loss
        out: torch.Tensor = fn(z, views=2)
        return out


def build_independence(cfg: IndependenceConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.independence import SubspaceIndependence

    return IndependenceTerm(SubspaceIndependence(ctx.spec, cfg.estimator, **_kwargs(cfg.kwargs, "independence")))


class VAETerm(nn.Module):
    """Negative ELBO of both views (:class:`disco.losses.vae.VAELoss`); decodes the sampled codes."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, inputs: StepInputs) -> LossOutput:
        if inputs.decode is None:
            raise ConfigError("the vae term needs a decoder; set model.decoder (e.g. conv64)")
        z = inputs.z if inputs.sample is None else inputs.sample
        logits = inputs.decode(z)
        out: LossOutput = self.loss(inputs.x, logits, inputs.mean, inputs.logvar, z, inputs.step, views=2)
        return out


def build_vae(cfg: VAEConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.vae import CapacitySchedule, VAELoss

    if not ctx.has_decoder:
        raise ConfigError("objective.vae.weight > 0 needs a decoder; set model.decoder (e.g. conv64)")
    capacity = None
    if cfg.capacity_max is not None:
        capacity = CapacitySchedule(cfg.capacity_max, cfg.capacity_gamma, cfg.capacity_steps)
    return VAETerm(
        VAELoss(
            likelihood=cfg.likelihood,
            beta=cfg.beta,
            capacity=capacity,
            tc_beta=cfg.tc_beta,
            dataset_size=ctx.dataset_size,
        )
    )


class WeakVAETerm(nn.Module):
    """Ada-GVAE / Ada-ML-VAE on the pair (:class:`disco.losses.weak_vae.WeakVAELoss`): samples its own codes from the
    aggregated posteriors and decodes them."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, inputs: StepInputs) -> LossOutput:
        if inputs.decode is None:
            raise ConfigError("the weak_vae term needs a decoder; set model.decoder (e.g. conv64)")
        out: LossOutput = self.loss(inputs.x, inputs.mean, inputs.logvar, inputs.decode, inputs.batch.shared)
        return out


def build_weak_vae(cfg: WeakVAEConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.weak_vae import WeakVAELoss

    if not ctx.has_decoder:
        raise ConfigError("objective.weak_vae.weight > 0 needs a decoder; set model.decoder (e.g. conv64)")
    tie = None
    if cfg.shared == "labels":
        tie = torch.zeros(len(ctx.factor_names), ctx.spec.dim, dtype=torch.bool)
        for s, k in zip(ctx.spec.tied, ctx.spec.factor_columns(ctx.factor_names), strict=True):
            tie[k, s.slice] = True
    return WeakVAETerm(
        WeakVAELoss(likelihood=cfg.likelihood, beta=cfg.beta, aggregation=cfg.aggregation, shared=cfg.shared, tie=tie)
    )


class ClassificationTerm(nn.Module):
    """A classifier of both views' factor classes on per-image features: the encoder means for ``objective.supervised``
    (:class:`disco.losses.supervised.FactorClassification`, a reference ceiling, not a disentanglement method), the
    trunk's hidden features for ``objective.auxiliary`` (:class:`disco.losses.auxiliary.TrunkClassification`).

    Args:
        loss: ``(features (2B, ...), classes (2B, K)) -> LossOutput``.
        name: the term's config section, for errors.
        hidden: read :attr:`StepInputs.hidden` (the module computes it only for terms with :attr:`needs_hidden`).
    """

    def __init__(self, loss: nn.Module, name: str, hidden: bool = False) -> None:
        super().__init__()
        self.loss = loss
        self.name = name
        self.needs_hidden = hidden

    def forward(self, inputs: StepInputs) -> LossOutput:
        b = inputs.batch
        if b.classes_a is None or b.classes_b is None:
            raise ConfigError(f"objective.{self.name} reads factor classes; it needs data.supervision: labels")
        features = inputs.hidden if self.needs_hidden else inputs.mean
        if features is None:
            raise ConfigError(
                f"objective.{self.name} needs the encoder's hidden features; use encoder conv64 or resnet64"
            )
        out: LossOutput = self.loss(features, torch.cat([b.classes_a, b.classes_b]))
        return out


def _require_labels(ctx: TermContext, name: str) -> None:
    if ctx.supervision != "labels":
        raise ConfigError(f"objective.{name} reads factor classes; it needs data.supervision: labels")


def build_supervised(cfg: SupervisedConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.supervised import FactorClassification

    _require_labels(ctx, "supervised")
    return ClassificationTerm(
        FactorClassification(ctx.spec, ctx.factor_names, ctx.factor_sizes, head=cfg.head, only=cfg.subspaces or None),
        "supervised",
    )


def build_auxiliary(cfg: AuxiliaryConfig, ctx: TermContext) -> nn.Module:
    from disco.losses.auxiliary import TrunkClassification

    _require_labels(ctx, "auxiliary")
    width = getattr(ctx.encoder, "hidden_dim", None)
    if not isinstance(width, int) or not hasattr(ctx.encoder, "encode_with_hidden"):
        raise ConfigError(
            "objective.auxiliary reads the encoder's hidden features, which this encoder does not expose; use "
            "model.encoder conv64 or resnet64 without a private branch"
        )
    return ClassificationTerm(
        TrunkClassification(width, ctx.factor_names, ctx.factor_sizes, cfg.factors, ctx.symmetries),
        "auxiliary",
        hidden=True,
    )


def _kwargs(kwargs: dict[str, Any], term: str) -> dict[str, Any]:
    if not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
        raise ConfigError(f"objective.{term}.kwargs keys must be argument names, got {sorted(map(str, kwargs))}")
    return dict(kwargs)
