"""Alignment terms of a transfer run: the feature-alignment losses of :mod:`disco.losses`, each given a job.

Alignment makes the codes of two domains comparable, not identical: every term acts on chosen subspaces (by default all
but the PRIVATE ones, named ``domain*``), and ``domain_head`` keeps the domain in the private subspaces. Terms are listed
under ``objective.alignment``, each with its own weight and schedule (:class:`AlignmentTerms` sums them).

* Batch-level, between the source codes of the step (view a of the pair batch, source domain) and the target codes
  (view b of the cross-domain pairs): :class:`MMDAlignment` (multi-kernel, unbiased; Long et al. 2015, "Learning
  Transferable Features with Deep Adaptation Networks"), :class:`CORALAlignment` (Sun & Saenko 2016, "Deep CORAL"),
  :class:`DANNAlignment` (Ganin et al. 2016, "Domain-Adversarial Training of Neural Networks": discriminator and
  gradient reversal with the ramp λ(p) = 2 / (1 + exp(−10 p)) − 1, p the fraction of training done).
* Instance-level, on the cross-domain pairs (one input rendered in both domains):
  :class:`MoCoAlignment` (InfoNCE with a momentum key encoder and a memory queue per direction; He et al. 2020,
  "Momentum Contrast for Unsupervised Visual Representation Learning"), :class:`MarginAlignment` (Hadsell et al. 2006,
  "Dimensionality Reduction by Learning an Invariant Mapping": each pair pulled together, each source code pushed
  beyond the margin from the next pair's target code), :class:`TripletAlignment` (Schroff et al. 2015, FaceNet; the
  other render of the same input is the positive, with a batch-hard or semi-hard miner), :class:`CenterAlignment`
  (Wen et al. 2016: per factor a classification head and class centres updated online, on both renders),
  :class:`FactorNCEAlignment` (disco's per-subspace contrastive loss on the renders, which share every factor; with
  factor classes, SupCon positives across domains, Khosla et al. 2020).
* :class:`DomainHeadAlignment`: a logistic domain classifier on the private subspaces; :class:`PriorAlignment`: codes
  against samples of N(0, I) (InfoVAE, Zhao et al. 2019), which needs no target.

Under DDP every term gathers its codes (and ids, classes) from all ranks first and evaluates the loss of the global
batch, so each rank holds the same value and N ranks step like one process with the N× batch (the batch-statistic
convention of :mod:`disco.losses.distributed`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.contrastive import SimilarityKind, SubspaceContrastive
from disco.losses.dependence import distance_correlation
from disco.losses.distributed import gather_no_grad, gather_views, is_distributed
from disco.models.subspaces import Subspace, SubspaceSpec
from disco.train.config import AlignmentTermConfig
from disco.train.schedules import Schedule
from disco.train.step import CrossInputs, StepInputs, TermContext


def select_subspaces(spec: SubspaceSpec, names: list[str] | None, kind: str, private: bool = False) -> list[Subspace]:
    """The subspaces a term acts on: ``names`` (checked), or every shared (``private=False``) or every private one."""
    if names is None:
        chosen = [s for s in spec if s.private == private]
    else:
        chosen = [spec[n] for n in names]
        wrong = [s.name for s in chosen if s.private != private]
        if wrong:
            what = "shared subspaces only" if private else "no private subspace (names starting with 'domain')"
            raise ConfigError(
                f"objective.alignment {kind} acts on {what}; remove {', '.join(wrong)} from its subspaces"
            )
    if not chosen:
        need = "a private subspace, e.g. model.subspaces ...,domain=2" if private else "at least one shared subspace"
        raise ConfigError(f"objective.alignment {kind} has no subspace to act on; give it {need}")
    return chosen


def standardised(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both samples centred and scaled per column by the mean and std of the pooled sample, WITH gradient through the
    statistics: a loss of the result is invariant to any per-column affine map applied to both domains, so the encoder
    cannot lower it by shrinking every code (the collapse a Gaussian-kernel MMD or CORAL otherwise rewards)."""
    pooled = torch.cat([source, target])
    mean, std = pooled.mean(0), pooled.std(0).clamp_min(1e-6)
    return (source - mean) / std, (target - mean) / std


def gathered(t: torch.Tensor) -> torch.Tensor:
    """The rows of all ranks, differentiably (``t`` itself in one process)."""
    return gather_views(t, views=1).rows if is_distributed() else t


class AlignmentLoss(nn.Module):
    """One alignment term on the columns of its subspaces. ``needs``: what of the target it reads: ``none``,
    ``target`` (target images), ``pairs`` (cross-domain pairs), ``labels`` (cross-domain pairs and factor classes)."""

    needs: ClassVar[str] = "target"
    private: ClassVar[bool] = False
    columns: torch.Tensor

    def __init__(self, subspaces: list[Subspace]) -> None:
        super().__init__()
        self.subspaces = subspaces
        cols = [c for s in subspaces for c in range(s.start, s.stop)]
        self.register_buffer("columns", torch.tensor(cols, dtype=torch.long), persistent=False)

    @property
    def width(self) -> int:
        return int(self.columns.numel())

    def pick(self, z: torch.Tensor) -> torch.Tensor:
        """The term's columns of codes ``z``."""
        return z.index_select(1, self.columns)

    @classmethod
    def build(cls, cfg: AlignmentTermConfig, ctx: TermContext) -> AlignmentLoss:
        return cls(select_subspaces(ctx.spec, cfg.subspaces, cfg.kind, cls.private), **_kwargs(cfg))

    def cross(self, inputs: StepInputs) -> CrossInputs:
        if inputs.cross is None:
            raise ConfigError("this alignment term needs the cross-domain pairs of a target; set data.target")
        return inputs.cross

    def domains(self, inputs: StepInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Source codes (view a of the pair batch) and target codes (view b of the cross-domain pairs), this term's
        columns, gathered over ranks."""
        cross = self.cross(inputs)
        return gathered(self.pick(inputs.mean[: len(inputs.batch)])), gathered(self.pick(cross.z_b))

    def pairs(self, inputs: StepInputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Codes of the cross-domain pairs (source render, target render; this term's columns) and the inputs' ids,
        gathered over ranks."""
        cross = self.cross(inputs)
        if cross.batch.ids is None:
            raise ConfigError("this alignment term needs cross-domain pairs of the same inputs; the target has none")
        ids = gather_no_grad(cross.batch.ids) if is_distributed() else cross.batch.ids
        return gathered(self.pick(cross.z_a)), gathered(self.pick(cross.z_b)), ids


class MMDAlignment(AlignmentLoss):
    """Unbiased multi-kernel MMD² between source and target codes (:class:`disco.losses.mmd.MMDLoss`; kwargs
    ``multipliers`` of the median-heuristic bandwidth or fixed ``bandwidths``), on :func:`standardised` codes unless
    ``standardise: false`` (measured: raw codes collapsed to a median distance of 0.006 within 10 steps on the dSprites
    replica, contrastive loss stuck at chance, source MIG 0.31 -> 0.01)."""

    def __init__(self, subspaces: list[Subspace], standardise: bool = True, **kwargs: Any) -> None:
        super().__init__(subspaces)
        from disco.losses.mmd import MMDLoss

        self.standardise = bool(standardise)
        self.loss = MMDLoss(**kwargs)

    def forward(self, inputs: StepInputs) -> LossOutput:
        source, target = self.domains(inputs)
        out: LossOutput = self.loss(*(standardised(source, target) if self.standardise else (source, target)))
        return out


class CORALAlignment(AlignmentLoss):
    """Distance between the covariances of source and target codes (:class:`disco.losses.coral.CORALLoss`), on
    :func:`standardised` codes unless ``standardise: false`` (raw CORAL falls with the fourth power of the codes'
    scale, so shrinking them is a way out)."""

    def __init__(self, subspaces: list[Subspace], standardise: bool = True) -> None:
        super().__init__(subspaces)
        from disco.losses.coral import CORALLoss

        self.standardise = bool(standardise)
        self.loss = CORALLoss()

    def forward(self, inputs: StepInputs) -> LossOutput:
        source, target = self.domains(inputs)
        out: LossOutput = self.loss(*(standardised(source, target) if self.standardise else (source, target)))
        return out


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """Ganin et al.'s ramp ``2 / (1 + exp(−gamma·p)) − 1`` of the reversal strength, ``p`` clipped to [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class DANNAlignment(AlignmentLoss):
    """Domain discriminator on reversed gradients (:class:`disco.losses.adversarial.DomainAdversarialLoss`), its
    reversal strength ramped by :func:`dann_lambda` over ``ramp_steps`` (default: the run's ``trainer.max_steps``).
    The discriminator is trained by the model's optimiser through the reversal layer, as in the paper."""

    def __init__(self, subspaces: list[Subspace], ramp_steps: int, hidden: int = 64, gamma: float = 10.0) -> None:
        super().__init__(subspaces)
        from disco.losses.adversarial import DomainAdversarialLoss

        if ramp_steps < 1:
            raise ConfigError(f"dann ramp_steps {ramp_steps} must be >= 1 (default: trainer.max_steps)")
        self.ramp_steps, self.gamma = int(ramp_steps), float(gamma)
        self.loss = DomainAdversarialLoss(self.width, hidden)

    @classmethod
    def build(cls, cfg: AlignmentTermConfig, ctx: TermContext) -> AlignmentLoss:
        kwargs = {"ramp_steps": max(ctx.max_steps, 1), **_kwargs(cfg)}
        return cls(select_subspaces(ctx.spec, cfg.subspaces, cfg.kind), **kwargs)

    def forward(self, inputs: StepInputs) -> LossOutput:
        lam = dann_lambda(inputs.step / self.ramp_steps, self.gamma)
        self.loss.lambda_ = lam
        out: LossOutput = self.loss(*self.domains(inputs))
        return LossOutput(out.loss, {**out.diagnostics, "lambda": torch.tensor(lam)})


class MoCoAlignment(AlignmentLoss):
    """Symmetric InfoNCE between the renders of one input: online codes of the source render against momentum-encoder
    keys of the target render (negatives: the batch's other keys and a queue of earlier ones), and the reverse, each
    direction with its own queue (:class:`disco.losses.infonce.NTXentLoss`, :class:`MemoryQueue`,
    :class:`MomentumEncoder`). The key encoder is an exponential moving average of the online encoder, updated before
    each training step's keys are computed (He et al. 2020)."""

    needs = "pairs"

    def __init__(
        self,
        subspaces: list[Subspace],
        encoder: nn.Module,
        temperature: float = 0.1,
        queue: int = 4096,
        momentum: float = 0.99,
        similarity: str = "cosine",
    ) -> None:
        super().__init__(subspaces)
        from disco.losses.infonce import MemoryQueue, MomentumEncoder, NTXentLoss

        self._online = [encoder]  # a list: the online encoder belongs to the model, not to this term
        self.momentum = MomentumEncoder(encoder, momentum)
        self.to_target = NTXentLoss(temperature, False, MemoryQueue(queue, self.width), similarity)
        self.to_source = NTXentLoss(temperature, False, MemoryQueue(queue, self.width), similarity)

    @classmethod
    def build(cls, cfg: AlignmentTermConfig, ctx: TermContext) -> AlignmentLoss:
        if ctx.encoder is None:
            raise ConfigError("objective.alignment moco needs the model's encoder for its momentum copy")
        return cls(select_subspaces(ctx.spec, cfg.subspaces, cfg.kind), ctx.encoder, **_kwargs(cfg))

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        out = self.momentum(x)
        mean = out[0] if isinstance(out, tuple) else out
        return gathered(self.pick(mean)).detach()

    def forward(self, inputs: StepInputs) -> LossOutput:
        cross = self.cross(inputs)
        if self.training:
            self.momentum.update(self._online[0])
        q_a, q_b = gathered(self.pick(cross.z_a)), gathered(self.pick(cross.z_b))
        k_a, k_b = self.keys(cross.batch.x_a), self.keys(cross.batch.x_b)
        fwd, back = self.to_target(q_a, k_b), self.to_source(q_b, k_a)
        loss = 0.5 * (fwd.loss + back.loss)
        acc = 0.5 * (fwd.diagnostics["acc"] + back.diagnostics["acc"])
        return LossOutput(loss, {"raw": loss.detach(), "acc": acc, "candidates": fwd.diagnostics["candidates"]})


class MarginAlignment(AlignmentLoss):
    """Margin contrastive loss (:class:`disco.losses.margin.MarginContrastiveLoss`, kwarg ``margin``): each pair's two
    renders are similar; each source render and the NEXT pair's target render are dissimilar unless they show the
    same input."""

    needs = "pairs"

    def __init__(self, subspaces: list[Subspace], margin: float = 1.0) -> None:
        super().__init__(subspaces)
        from disco.losses.margin import MarginContrastiveLoss

        self.loss = MarginContrastiveLoss(margin)

    def forward(self, inputs: StepInputs) -> LossOutput:
        q, k, ids = self.pairs(inputs)
        same = torch.cat([torch.ones_like(ids, dtype=torch.bool), ids == ids.roll(1)])
        out: LossOutput = self.loss(torch.cat([q, q]), torch.cat([k, k.roll(1, dims=0)]), same)
        return out


class TripletAlignment(AlignmentLoss):
    """Triplet loss over both renders of the batch with the input's id as label, so an anchor's positive is its other
    render (:class:`disco.losses.triplet.TripletLoss`; kwargs ``margin``, ``miner`` = batch_hard / semi_hard /
    batch_all, ``distance``)."""

    needs = "pairs"

    def __init__(
        self, subspaces: list[Subspace], margin: float = 0.2, miner: str = "batch_hard", distance: str = "euclidean"
    ) -> None:
        super().__init__(subspaces)
        from disco.losses.triplet import TripletLoss

        self.loss = TripletLoss(margin, miner, distance)

    def forward(self, inputs: StepInputs) -> LossOutput:
        q, k, ids = self.pairs(inputs)
        out: LossOutput = self.loss(torch.cat([q, k]), torch.cat([ids, ids]))
        return out


class CenterAlignment(AlignmentLoss):
    """Per factor tied to a chosen subspace: ``CE(head(z_s), y) + center_weight · L_center(z_s, y)`` over both renders
    of the cross-domain pairs (:class:`disco.losses.center.CenterLoss`, centres updated online with ``alpha``; Wen et
    al. 2016). A labelled target's renders get their own classes; otherwise they get the source render's (both show
    one input), so the target needs no labels when it is paired. The term reads factor classes, so it needs
    ``data.supervision: labels``."""

    needs = "labels"

    def __init__(
        self,
        subspaces: list[Subspace],
        factor_names: tuple[str, ...],
        factor_sizes: tuple[int, ...],
        center_weight: float = 0.1,
        alpha: float | None = 0.5,
    ) -> None:
        tied = [s for s in subspaces if s.factor is not None and s.factor in factor_names]
        if not tied:
            raise ConfigError("objective.alignment center needs subspaces tied to factors; name one after a factor")
        super().__init__(tied)
        from disco.losses.center import CenterLoss

        self.factor_index = [factor_names.index(str(s.factor)) for s in tied]
        sizes = [factor_sizes[i] for i in self.factor_index]
        self.heads = nn.ModuleList(nn.Linear(s.width, n) for s, n in zip(tied, sizes, strict=True))
        self.centers = nn.ModuleList(CenterLoss(n, s.width, alpha) for s, n in zip(tied, sizes, strict=True))
        self.center_weight = float(center_weight)

    @classmethod
    def build(cls, cfg: AlignmentTermConfig, ctx: TermContext) -> AlignmentLoss:
        if len(ctx.factor_sizes) != len(ctx.factor_names):
            raise ConfigError("objective.alignment center needs the dataset's factor sizes")
        chosen = select_subspaces(ctx.spec, cfg.subspaces, cfg.kind)
        return cls(chosen, ctx.factor_names, ctx.factor_sizes, **_kwargs(cfg))

    def forward(self, inputs: StepInputs) -> LossOutput:
        cross = self.cross(inputs)
        ca, cb = cross.batch.classes_a, cross.batch.classes_b
        if ca is None:
            raise ConfigError("objective.alignment center reads factor classes; it needs data.supervision: labels")
        if cb is None:
            if cross.batch.ids is None:
                raise ConfigError("objective.alignment center needs cross-domain pairs or a labelled target")
            cb = ca  # both renders show the same input
        labels_a = gather_no_grad(ca) if is_distributed() else ca
        labels_b = gather_no_grad(cb) if is_distributed() else cb
        za, zb = gathered(cross.z_a), gathered(cross.z_b)
        ce_sum = za.new_zeros(())
        center_sum = za.new_zeros(())
        correct = za.new_zeros(())
        for s, k, head, center in zip(self.subspaces, self.factor_index, self.heads, self.centers, strict=True):
            feats = torch.cat([za[:, s.slice], zb[:, s.slice]])
            y = torch.cat([labels_a[:, k], labels_b[:, k]])
            logits = head(feats)
            ce_sum = ce_sum + F.cross_entropy(logits, y)
            center_sum = center_sum + center(feats, y).loss
            correct = correct + (logits.argmax(1) == y).to(za.dtype).mean()
        n = len(self.subspaces)
        ce, cl = ce_sum / n, center_sum / n
        loss = ce + self.center_weight * cl
        return LossOutput(loss, {"raw": loss.detach(), "ce": ce.detach(), "center": cl.detach(), "acc": correct / n})


class FactorNCEAlignment(AlignmentLoss):
    """disco's own per-subspace contrastive loss (:class:`disco.losses.contrastive.SubspaceContrastive`) on the
    cross-domain pairs, read as pairs that share EVERY factor: in each chosen tied subspace a render's positive is the
    other domain's render of the same input, plus, when the run has factor classes (``data.supervision: labels``),
    every render of the batch with the same class of that factor, in either domain (SupCon, Khosla et al. 2020, applied
    across domains, one term per factor subspace). Target codes are pulled into the source's per-factor clusters at
    the main term's own scale and temperature. Shrinking every code to one point gives the chance level log(2N − 1),
    above the value of any code whose renders match better than chance, whereas a raw pull (``margin``, ``triplet``)
    is lowest there: on texture-dSprites those kept the code collapsed from the first steps. Kwargs ``temperature``
    (default 0.1) and ``similarity`` (``auto``: squared distance below width 3, cosine above)."""

    needs = "pairs"

    def __init__(
        self,
        subspaces: list[Subspace],
        factor_names: tuple[str, ...],
        temperature: float = 0.1,
        similarity: str = "auto",
    ) -> None:
        tied = [s for s in subspaces if s.factor is not None and s.factor in factor_names]
        if not tied:
            raise ConfigError("objective.alignment factor_nce needs subspaces tied to factors; name one after a factor")
        super().__init__(tied)
        starts = [sum(s.width for s in tied[:i]) for i in range(len(tied))]
        spec = SubspaceSpec([Subspace(s.name, s.width, a, s.factor) for s, a in zip(tied, starts, strict=True)])
        self.num_factors = len(factor_names)
        self.loss = SubspaceContrastive(spec, factor_names, temperature, cast(SimilarityKind, similarity))

    @classmethod
    def build(cls, cfg: AlignmentTermConfig, ctx: TermContext) -> AlignmentLoss:
        return cls(select_subspaces(ctx.spec, cfg.subspaces, cfg.kind), ctx.factor_names, **_kwargs(cfg))

    def forward(self, inputs: StepInputs) -> LossOutput:
        cross = self.cross(inputs)
        if cross.batch.ids is None:
            raise ConfigError("objective.alignment factor_nce needs cross-domain pairs of the same inputs")
        za, zb = self.pick(cross.z_a), self.pick(cross.z_b)
        shared = torch.ones(len(za), self.num_factors, dtype=torch.bool, device=za.device)
        classes = cross.batch.classes_a
        out: LossOutput = self.loss(za, zb, shared, classes, classes)
        return out


class DomainHeadAlignment(AlignmentLoss):
    """A logistic classifier of the domain (source 1, target 0) on the PRIVATE subspaces, trained with the encoder:
    the private code is asked to keep what tells the domains apart while the other terms remove it elsewhere.

    Kwarg ``purity`` (default 0) adds ``purity · dCor(private, shared)`` within each domain (the mean over the source
    rows and the target rows; distance correlation, Székely et al. 2007, with the shared code detached, so only the
    private code moves), in the spirit of the difference loss of Domain Separation Networks (Bousmalis et al. 2016):
    the private code should hold the domain and nothing the shared code holds. Without it a private branch keeps what
    its initial features carry: on dSprites its two units held scale (normalised MI 0.72, 0.67) and took scale's MIG
    gap from the shared scale unit."""

    private = True
    shared_columns: torch.Tensor

    def __init__(self, subspaces: list[Subspace], code_dim: int = 0, purity: float = 0.0) -> None:
        super().__init__(subspaces)
        if purity < 0:
            raise ConfigError(f"domain_head purity {purity} must be >= 0")
        self.head = nn.Linear(self.width, 1)
        self.purity = float(purity)
        own = set(self.columns.tolist())
        shared = [c for c in range(code_dim) if c not in own]
        self.register_buffer("shared_columns", torch.tensor(shared, dtype=torch.long), persistent=False)

    @classmethod
    def build(cls, cfg: AlignmentTermConfig, ctx: TermContext) -> AlignmentLoss:
        chosen = select_subspaces(ctx.spec, cfg.subspaces, cfg.kind, private=True)
        return cls(chosen, ctx.spec.dim, **_kwargs(cfg))

    def forward(self, inputs: StepInputs) -> LossOutput:
        source, target = self.domains(inputs)
        logits = self.head(torch.cat([source, target])).squeeze(1)
        labels = torch.cat([logits.new_ones(len(source)), logits.new_zeros(len(target))])
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        acc = ((logits > 0).to(labels.dtype) == labels).to(logits.dtype).mean()
        diagnostics = {"acc": acc.detach()}
        if self.purity and self.shared_columns.numel():
            full = (gathered(inputs.mean[: len(inputs.batch)]), gathered(self.cross(inputs).z_b))
            dcor = [
                distance_correlation(own, codes.index_select(1, self.shared_columns).detach())
                for own, codes in zip((source, target), full, strict=True)
            ]
            impurity = 0.5 * (dcor[0] + dcor[1])
            loss = loss + self.purity * impurity
            diagnostics["dcor_shared"] = impurity.detach()
        return LossOutput(loss, {"raw": loss.detach(), **diagnostics})


class PriorAlignment(AlignmentLoss):
    """The codes of both views against as many samples of N(0, I) (MMD as in InfoVAE, Zhao et al. 2019, or CORAL;
    kwarg ``loss``). Prior samples come from the global random stream, so resumed runs repeat them."""

    needs = "none"

    def __init__(self, subspaces: list[Subspace], loss: str = "mmd") -> None:
        super().__init__(subspaces)
        from disco.losses.coral import CORALLoss
        from disco.losses.mmd import MMDLoss

        if loss not in ("mmd", "coral"):
            raise ConfigError(f"objective.alignment prior loss {loss!r} must be mmd or coral")
        self.loss: nn.Module = MMDLoss() if loss == "mmd" else CORALLoss()

    def forward(self, inputs: StepInputs) -> LossOutput:
        z = gather_views(inputs.z, views=2).rows if is_distributed() else inputs.z
        z = self.pick(z)
        out: LossOutput = self.loss(z, torch.randn(z.shape, device=z.device, dtype=z.dtype))
        return out


#: ``kind`` -> term class; a new alignment term is one class and one line here.
ALIGNMENTS: dict[str, type[AlignmentLoss]] = {
    "mmd": MMDAlignment,
    "coral": CORALAlignment,
    "dann": DANNAlignment,
    "moco": MoCoAlignment,
    "margin": MarginAlignment,
    "triplet": TripletAlignment,
    "center": CenterAlignment,
    "factor_nce": FactorNCEAlignment,
    "domain_head": DomainHeadAlignment,
    "prior": PriorAlignment,
}


def check_needs(kind: str, needs: str, ctx: TermContext) -> None:
    """One ConfigError line when the run cannot give term ``kind`` what it reads."""
    if needs == "none":
        return
    if ctx.target is None:
        raise ConfigError(
            f"objective.alignment {kind} aligns the source with a target; set data.target.domain (e.g. noisy) or "
            "data.target.dataset"
        )
    needs_pairs = needs == "pairs" or (needs == "labels" and not ctx.target_labelled)
    if needs_pairs and ctx.target != "paired":
        raise ConfigError(
            f"objective.alignment {kind} needs cross-domain pairs of the same inputs, but the target shares no factor "
            "grid with the source; use mmd, coral or dann (or a labelled target for center)"
        )
    if needs == "labels" and ctx.supervision != "labels":
        raise ConfigError(f"objective.alignment {kind} reads factor classes; it needs data.supervision: labels")


class AlignmentTerms(nn.Module):
    """The ``objective.alignment`` list: ``Σ_i weight_i · schedule_i(step) · term_i``; diagnostics per term under its
    label (the kind, numbered when a kind repeats: ``mmd``, ``mmd_2``)."""

    def __init__(self, cfgs: list[AlignmentTermConfig], ctx: TermContext) -> None:
        super().__init__()
        self.losses = nn.ModuleList()
        self.labels: list[str] = []
        self.weights: list[float] = []
        self.schedules: list[Schedule] = []
        seen: dict[str, int] = {}
        for cfg in cfgs:
            if float(cfg.weight) == 0.0:
                continue
            if cfg.kind not in ALIGNMENTS:
                raise ConfigError(
                    f"unknown objective.alignment kind {cfg.kind!r}; choose one of {', '.join(ALIGNMENTS)}"
                )
            cls = ALIGNMENTS[cfg.kind]
            check_needs(cfg.kind, cls.needs, ctx)
            try:
                self.losses.append(cls.build(cfg, ctx))
            except TypeError as err:  # an unknown or missing kwarg
                raise ConfigError(f"objective.alignment {cfg.kind}: {err}; check its kwargs") from None
            seen[cfg.kind] = seen.get(cfg.kind, 0) + 1
            self.labels.append(cfg.kind if seen[cfg.kind] == 1 else f"{cfg.kind}_{seen[cfg.kind]}")
            self.weights.append(float(cfg.weight))
            self.schedules.append(Schedule.from_config(cfg.schedule))

    @property
    def needs(self) -> set[str]:
        return {str(loss.needs) for loss in self.losses}

    def forward(self, inputs: StepInputs) -> LossOutput:
        total = inputs.z.new_zeros(())
        diagnostics: dict[str, torch.Tensor] = {}
        for label, loss, weight, schedule in zip(self.labels, self.losses, self.weights, self.schedules, strict=True):
            out = loss(inputs)
            w = weight * schedule(inputs.step)
            total = total + w * out.loss
            diagnostics[f"{label}/weighted"] = (w * out.loss).detach()
            diagnostics.update({f"{label}/{k}": v for k, v in out.diagnostics.items()})
        return LossOutput(total, {"raw": total.detach(), **diagnostics})


def build_alignment(cfgs: list[AlignmentTermConfig], ctx: TermContext) -> nn.Module:
    return AlignmentTerms(cfgs, ctx)


def _kwargs(cfg: AlignmentTermConfig) -> dict[str, Any]:
    if not all(isinstance(k, str) and k.isidentifier() for k in cfg.kwargs):
        raise ConfigError(
            f"objective.alignment {cfg.kind} kwargs keys must be argument names, got {sorted(cfg.kwargs)}"
        )
    return dict(cfg.kwargs)
