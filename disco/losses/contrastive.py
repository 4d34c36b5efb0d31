"""Per-subspace contrastive loss on factor-aware pairs.

For every subspace tied to a factor k, the two views of a pair that share factor k are positives in that subspace and
every other view of the batch is a candidate, as in SimCLR's NT-Xent (Chen et al. 2020; InfoNCE, Oord et al. 2018). When
factor classes are known, candidates showing the anchor's value of k are also positives, as in supervised contrastive
learning (Khosla et al. 2020, the L_out form: mean over positives of the log-softmax over candidates), so same-value
views are never pushed apart as false negatives. For an ordered (or cyclic) factor a Gaussian kernel on the distance
between the two views' values can weight every candidate as a partial positive instead (the y-aware InfoNCE of
Dufumier et al. 2021, "Contrastive Learning with Continuous Proxy Meta-Data for 3D MRI Classification"), so a view
9 degrees away is pulled nearly as hard as a same-value view rather than pushed as far as one 180 degrees away.
Under DDP candidates are gathered across ranks with gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from disco.data.symmetry import FactorSymmetry
from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.distributed import all_reduce_sum, gather_no_grad, gather_with_grad, is_distributed, rank_offset
from disco.models.subspaces import SubspaceSpec

SimilarityKind = Literal["cosine", "neg_sq_dist", "auto"]
SameValue = Literal["positive", "exclude"]


def resolve_similarity(kind: str, width: int) -> str:
    """``auto`` is cosine for subspaces of width >= 3 and negative squared distance for width 1-2, where the cosine of
    a 1-d code is only its sign and that of a 2-d code ignores the radius."""
    if kind not in ("cosine", "neg_sq_dist", "auto"):
        raise ConfigError(f"unknown similarity {kind!r}; use cosine, neg_sq_dist or auto")
    if kind == "auto":
        return "cosine" if width >= 3 else "neg_sq_dist"
    return kind


def similarity_logits(anchors: torch.Tensor, candidates: torch.Tensor, kind: str, temperature: float) -> torch.Tensor:
    """``(A, M)`` matrix of similarity / temperature between ``anchors (A, d)`` and ``candidates (M, d)``.

    ``cosine`` normalises both sides; ``neg_sq_dist`` is ``-||a - c||^2`` computed from explicit differences (no
    ``|a|^2 + |c|^2 - 2ac`` cancellation for large codes).
    """
    if kind == "cosine":
        return F.normalize(anchors, dim=-1) @ F.normalize(candidates, dim=-1).T / temperature
    if kind == "neg_sq_dist":
        return -(anchors[:, None, :] - candidates[None, :, :]).pow(2).sum(-1) / temperature
    raise ConfigError(f"unknown similarity {kind!r}; use cosine or neg_sq_dist")


def kernel_weights(values: torch.Tensor, size: int, sigma: float, cyclic: bool = False) -> torch.Tensor:
    """``(V, V)`` Gaussian kernel ``exp(-d^2 / (2 sigma^2))`` between class indices ``values (V,)`` of a factor with
    ``size`` values, ``d`` the index distance as a fraction of the factor's range: ``|i - j| / (size - 1)``, or for a
    cyclic factor the shorter way round the circle, ``min(|i - j|, size - |i - j|) / size``."""
    if sigma <= 0:
        raise ConfigError(f"contrastive kernel width {sigma} must be > 0 (a fraction of the factor's range)")
    diff = (values[:, None] - values[None, :]).abs().to(torch.float64)
    if cyclic:
        d = torch.minimum(diff, size - diff) / size
    else:
        d = diff / max(size - 1, 1)
    return torch.exp(-(d**2) / (2 * sigma**2))


def multi_positive_nce(
    logits: torch.Tensor, positive: torch.Tensor, candidate: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Supervised-contrastive (L_out) loss per anchor with numerically safe masking.

    ``logits``, ``positive`` and ``candidate`` are ``(A, M)``; the softmax runs over the candidates of each row and the
    loss of an anchor is minus the mean log-probability of its positives (positives outside ``candidate`` are ignored).
    With ``weights (A, M)`` in [0, 1] every candidate is a partial positive of weight ``max(positive, weights)`` and
    the mean is weighted (y-aware InfoNCE). Returns ``(loss (A,), valid (A,) bool, correct (A,) bool)``: anchors
    without a positive are not valid and get loss 0 (with zero gradient); ``correct`` marks anchors whose most similar
    candidate is a positive.
    """
    positive = positive & candidate
    masked = logits.masked_fill(~candidate, float("-inf"))
    has_cand = candidate.any(dim=1, keepdim=True)
    row_max = torch.where(has_cand, masked.amax(dim=1, keepdim=True), torch.zeros_like(logits[:, :1])).detach()
    sum_exp = torch.exp(masked - row_max).sum(dim=1, keepdim=True)
    lse = row_max + torch.log(torch.where(has_cand, sum_exp, torch.ones_like(sum_exp)))
    if weights is None:
        w = positive.to(logits.dtype)
    else:
        w = torch.where(candidate, torch.maximum(weights.to(logits.dtype), positive.to(logits.dtype)), 0.0)
    log_prob = torch.where(w > 0, logits - lse, torch.zeros_like(logits))
    n_pos = w.sum(dim=1)
    valid = n_pos > 0
    loss = -(w * log_prob).sum(dim=1) / torch.where(valid, n_pos, torch.ones_like(n_pos))
    best = masked.argmax(dim=1, keepdim=True)
    correct = positive.gather(1, best).squeeze(1) & valid
    return loss, valid, correct


def view_masks(
    shared: torch.Tensor,
    classes_a: torch.Tensor | None = None,
    classes_b: torch.Tensor | None = None,
    same_value: str | None = "positive",
    ids: torch.Tensor | None = None,
    same: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and candidate masks ``(2N, 2N)`` over the views ``[a_0..a_{N-1}, b_0..b_{N-1}]`` of N pairs.

    ``shared (N,)`` makes a pair's two views positives of each other; with classes ``(N,)`` and ``same_value`` set to
    ``"positive"`` every other view of the anchor's class is a positive too, with ``"exclude"`` it is dropped from the
    candidates; ``None`` ignores classes. ``ids (N,)``: the identity of each pair's view a (pairs drawn in groups
    around one anchor image); views of pairs with the same id are positives when each shows the anchor's value (a
    view a always, a view b when its pair shares the factor): sharing is transitive through the common image. A view
    is never its own candidate, nor is another copy of the same anchor image. ``same (2N, 2N)`` bool, with classes:
    which views show the same value, in place of equal classes (a factor symmetry,
    :meth:`disco.data.symmetry.FactorSymmetry.equivalent`).
    """
    n = shared.shape[0]
    idx = torch.arange(2 * n, device=shared.device)
    not_self = idx[:, None] != idx[None, :]
    positive = torch.zeros(2 * n, 2 * n, dtype=torch.bool, device=shared.device)
    positive[idx, (idx + n) % (2 * n)] = shared.bool().repeat(2)
    if ids is not None:
        group = ids.repeat(2)
        holds = torch.cat([torch.ones_like(shared, dtype=torch.bool), shared.bool()])
        grouped = group[:, None] == group[None, :]
        positive = positive | (grouped & holds[:, None] & holds[None, :] & not_self)
        is_a = idx < n
        not_self = not_self & ~(grouped & is_a[:, None] & is_a[None, :])  # a group's copies of its anchor are one image
    candidate = not_self
    if same_value is not None and classes_a is not None and classes_b is not None:
        if same is None:
            cls = torch.cat([classes_a, classes_b])
            same = cls[:, None] == cls[None, :]
        same = same & not_self
        if same_value == "positive":
            positive = positive | same
        elif same_value == "exclude":
            candidate = candidate & ~(same & ~positive)
        else:
            raise ConfigError(f"unknown same_value mode {same_value!r}; use positive or exclude")
    return positive & candidate, candidate


class SubspaceContrastive(nn.Module):
    """One InfoNCE/SupCon term per tied subspace, averaged over valid anchors and then over subspaces.

    Args:
        spec: the subspace split of the code.
        factor_names: the dataset's factor names (columns of ``shared`` and ``classes``).
        temperature: softmax temperature (Chen et al. 2020 use 0.1-0.5; Khosla et al. 2020 0.07-0.1).
        similarity: ``cosine``, ``neg_sq_dist`` or ``auto`` (cosine from width 3 up, squared distance below).
        symmetric: use the b-views as anchors too.
        mask_same_value: with classes, same-value candidates become positives instead of negatives.
        same_value: ``positive`` (SupCon) or ``exclude`` (only drop them from the candidates) when masking.
        gather_distributed: under DDP use the candidates of all ranks (gathered with gradients).
        weights: optional per-subspace weights (by subspace name), default 1.
        kernels: optional Gaussian kernel width per subspace (by name, as a fraction of its factor's range): with
            factor classes, every candidate of that subspace is a positive of weight ``exp(-d^2 / (2 sigma^2))``
            (:func:`kernel_weights`, Dufumier et al. 2021) instead of only the same-value ones.
        cyclic: subspaces whose factor wraps around (orientation), for the kernel's distance.
        factor_sizes: classes per factor (in ``factor_names`` order); needed with ``kernels``.
        symmetries: factor symmetries (:class:`disco.data.symmetry.FactorSymmetry`): with classes, views of a
            symmetric factor that show the same image (a square at 0° and at 90°) count as same-value views.
    """

    def __init__(
        self,
        spec: SubspaceSpec,
        factor_names: Sequence[str],
        temperature: float = 0.1,
        similarity: SimilarityKind = "auto",
        symmetric: bool = True,
        mask_same_value: bool = True,
        gather_distributed: bool = True,
        weights: Mapping[str, float] | None = None,
        same_value: SameValue = "positive",
        kernels: Mapping[str, float] | None = None,
        cyclic: Sequence[str] = (),
        factor_sizes: Sequence[int] | None = None,
        symmetries: Sequence[FactorSymmetry] = (),
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"contrastive temperature {temperature} must be > 0; typical values are 0.05-0.5")
        if not spec.tied:
            raise ConfigError(
                "the subspace spec has no subspace tied to a factor; the contrastive loss needs at least one"
            )
        unknown = set(weights or {}) - set(spec.names)
        if unknown:
            raise ConfigError(
                f"contrastive weights name unknown subspaces {sorted(unknown)}; use names of {spec.names}"
            )
        self.spec = spec
        self.factor_names = list(factor_names)
        self.columns = spec.factor_columns(self.factor_names)
        self.temperature = float(temperature)
        self.kinds = [resolve_similarity(similarity, s.width) for s in spec.tied]
        self.symmetric = symmetric
        self.same_value: str | None = same_value if mask_same_value else None
        if same_value not in ("positive", "exclude"):
            raise ConfigError(f"unknown same_value mode {same_value!r}; use positive or exclude")
        self.gather_distributed = gather_distributed
        self.weights = [float((weights or {}).get(s.name, 1.0)) for s in spec.tied]
        widths, wraps = dict(kernels or {}), set(cyclic)
        tied_names = {s.name for s in spec.tied}
        for what, names in (("kernels", set(widths)), ("cyclic", wraps)):
            if names - tied_names:
                raise ConfigError(
                    f"contrastive {what} name {sorted(names - tied_names)}, which are not tied subspaces; use names "
                    f"of {sorted(tied_names)}"
                )
        for name, sigma in widths.items():
            if not sigma > 0:
                raise ConfigError(f"contrastive kernel width of {name!r} is {sigma}; give a fraction > 0, e.g. 0.05")
        if widths and (factor_sizes is None or len(factor_sizes) != len(self.factor_names)):
            raise ConfigError("a contrastive kernel needs the number of classes of every factor (factor_sizes)")
        self.kernels = [(float(widths[s.name]), s.name in wraps) if s.name in widths else None for s in spec.tied]
        self.factor_sizes = list(factor_sizes or [])
        by_column = {sym.column: sym for sym in symmetries}
        self.symmetries = [by_column.get(col) for col in self.columns]

    def forward(
        self,
        z_a: torch.Tensor,
        z_b: torch.Tensor,
        shared: torch.Tensor,
        classes_a: torch.Tensor | None = None,
        classes_b: torch.Tensor | None = None,
        ids: torch.Tensor | None = None,
    ) -> LossOutput:
        b = z_a.shape[0]
        if z_a.shape != z_b.shape or z_a.ndim != 2 or z_a.shape[1] != self.spec.dim:
            raise ConfigError(
                f"codes of shape {tuple(z_a.shape)} and {tuple(z_b.shape)} do not match the subspace spec of width "
                f"{self.spec.dim}; give both views as (batch, {self.spec.dim})"
            )
        if shared.shape != (b, len(self.factor_names)):
            raise ConfigError(
                f"shared has shape {tuple(shared.shape)}, expected ({b}, {len(self.factor_names)}) for factors "
                f"{self.factor_names}"
            )
        if (classes_a is None) != (classes_b is None):
            raise ConfigError("give both classes_a and classes_b (or neither) to the contrastive loss")
        for c in (classes_a, classes_b):
            if c is not None and c.shape != shared.shape:
                raise ConfigError(f"classes have shape {tuple(c.shape)}, expected {tuple(shared.shape)} like shared")
        with_classes = classes_a is not None and classes_b is not None
        distributed = self.gather_distributed and is_distributed()
        world = torch.distributed.get_world_size() if distributed else 1
        if distributed:
            za, zb, sh = gather_with_grad(z_a), gather_with_grad(z_b), gather_no_grad(shared)
            ca = gather_no_grad(classes_a) if with_classes and classes_a is not None else None
            cb = gather_no_grad(classes_b) if with_classes and classes_b is not None else None
            offset = rank_offset(b, z_a.device)
            group = gather_no_grad(ids) if ids is not None else None
        else:
            za, zb, sh, ca, cb, offset, group = z_a, z_b, shared, classes_a, classes_b, 0, ids
        n = za.shape[0]
        rows = torch.arange(offset, offset + b, device=z_a.device)
        if self.symmetric:
            rows = torch.cat([rows, rows + n])
        diagnostics: dict[str, torch.Tensor] = {}
        terms, weighted, active, accs = [], [], [], []
        if any(k is not None for k in self.kernels) and not with_classes:
            raise ConfigError(
                "a contrastive kernel reads factor values: give classes (data.supervision: labels) or drop the kernel"
            )
        for sub, col, kind, weight, kern, sym in zip(
            self.spec.tied, self.columns, self.kinds, self.weights, self.kernels, self.symmetries, strict=True
        ):
            views = torch.cat([za[:, sub.slice], zb[:, sub.slice]])
            same = None
            if sym is not None and ca is not None and cb is not None:
                same = sym.equivalent(
                    torch.cat([ca[:, col], cb[:, col]]), torch.cat([ca[:, sym.by_column], cb[:, sym.by_column]])
                )
            positive, candidate = view_masks(
                sh[:, col],
                ca[:, col] if ca is not None else None,
                cb[:, col] if cb is not None else None,
                self.same_value,
                group,
                same,
            )
            logits = similarity_logits(views[rows], views, kind, self.temperature)
            soft = None
            if kern is not None and ca is not None and cb is not None:
                values = torch.cat([ca[:, col], cb[:, col]])
                soft = kernel_weights(values, self.factor_sizes[col], kern[0], kern[1])[rows].to(logits.dtype)
            loss_i, valid, correct = multi_positive_nce(logits, positive[rows], candidate[rows], soft)
            n_valid = valid.sum()
            n_global = all_reduce_sum(n_valid) if distributed else n_valid
            term = loss_i.sum() * world / n_global.clamp_min(1).to(loss_i.dtype)
            terms.append(term)
            weighted.append(term * weight)
            active.append(n_global > 0)
            acc = correct.sum().to(loss_i.dtype) / n_valid.clamp_min(1).to(loss_i.dtype)
            accs.append(acc)
            diagnostics[f"raw/{sub.name}"] = term.detach()
            diagnostics[f"acc/{sub.name}"] = acc.detach()
            diagnostics[f"valid/{sub.name}"] = n_valid.detach()
        n_active = torch.stack(active).sum().clamp_min(1).to(z_a.dtype)
        loss = torch.stack(weighted).sum() / n_active
        diagnostics["raw"] = (torch.stack(terms).sum() / n_active).detach()
        diagnostics["acc"] = (torch.stack(accs).sum() / n_active).detach()
        return LossOutput(loss, diagnostics)
