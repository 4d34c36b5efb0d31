"""Cross-rank gathering for batch-level losses under data parallelism.

Contrastive losses get better with more negatives (Chen et al. 2020, SimCLR, gather negatives across devices). Under DDP
each rank keeps its own anchors but uses the candidates of all ranks; gradients must flow back to the rank that produced
each candidate. :func:`gather_with_grad` does an all-gather whose backward sums the incoming gradients over ranks
(all-reduce) and keeps the local slice, which works on every backend (gloo has no reduce-scatter). Ranks may hold batches
of different sizes: the first dimension is padded to the largest one and trimmed after the gather.

The convention every loss follows: the training update is that of the MEAN OF THE RANK LOSSES (DDP averages parameter
gradients over ranks, and the gather's backward sums each row's gradient over the ranks that used it). So

- a loss that is a mean over rows (contrastive anchors, localisation pairs, β-TCVAE's per-code terms) sums its local
  rows and divides by the global row count over ``world`` (:func:`all_reduce_sum`): the rank losses average to the
  loss of the global batch;
- a batch statistic (dCor, HSIC, cross-covariance, CLUB, the TC discriminator) is evaluated on the gathered batch
  (:func:`gather_views`), so every rank holds the same value, the loss of the global batch.

Either way N ranks × B rows step exactly like one process with N·B rows; with one process nothing is gathered.
"Exactly" means the gradients agree up to float rounding (the sums run in another order). Where the objective is
invariant to a direction of parameter space its gradient there is pure rounding, e.g. the bias of the mean codes when
every term is translation-invariant (no β-VAE term; squared-distance contrastive, localisation, dCor), and Adam's
update ~lr·g/(|g|+eps) turns that noise into steps of order lr which differ between setups (DDP or not, micro-batch
size) without changing any loss; the rest of the weights still match (``tests/train/test_ddp.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when ``torch.distributed`` is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _sizes(n: int, device: torch.device) -> list[int]:
    local = torch.tensor([n], device=device, dtype=torch.long)
    out = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(out, local)
    return [int(s.item()) for s in out]


def _gather_padded(t: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    longest = max(sizes)
    padded = t.new_zeros((longest, *t.shape[1:]))
    padded[: t.shape[0]] = t
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded.contiguous())
    return torch.cat([o[:s] for o, s in zip(out, sizes, strict=True)], dim=0)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        ctx.sizes = sizes
        ctx.rank = dist.get_rank()
        return _gather_padded(t, sizes)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` (``(n_r, ...)`` on rank r) over ranks in rank order, differentiably.

    The gradient reaching rank r's input is the sum over all ranks of the gradient of their loss with respect to rank r's
    rows; DDP then averages parameter gradients over ranks, so the update equals that of the mean of the rank losses.
    Without an initialised multi-process group the input is returned unchanged.
    """
    if not is_distributed():
        return t
    out: torch.Tensor = _GatherWithGrad.apply(t, _sizes(t.shape[0], t.device))
    return out


@dataclass(frozen=True)
class GlobalBatch:
    """The rows of all ranks (:func:`gather_views`): ``rows`` ``(views·N, ...)`` in the order one process holding the
    whole batch would have them, ``local`` the indices of this rank's rows in it (``rows[local]`` is the input), and
    ``world`` the number of ranks (1 when not distributed)."""

    rows: torch.Tensor
    local: torch.Tensor
    world: int

    @property
    def total(self) -> int:
        """Number of rows of the global batch."""
        return int(self.rows.shape[0])

    def mean_scale(self) -> float:
        """``world · n_local / N_global``: turns a mean over this rank's rows into its share of the global mean, so the
        rank losses average to the mean over the global batch (1 when alone or when the ranks hold equal batches)."""
        return self.world * int(self.local.shape[0]) / max(self.total, 1)


def gather_views(t: torch.Tensor, views: int = 1, grad: bool = True) -> GlobalBatch:
    """Gather ``t`` made of ``views`` equal blocks of rows (e.g. ``[view a; view b]`` of a pair batch) from all ranks.

    Each block is gathered separately and the gathered blocks are stacked again, so the global batch has exactly the
    row order of one process that holds the batches of all ranks (``[a_0 … a_{N−1}; b_0 … b_{N−1}]``); statistics that
    look at row order (subsampling, stratified weights, permutations) match that process. One all-gather of the data
    (plus one of the sizes); gradients flow back to every rank's rows as in :func:`gather_with_grad` (``grad=False``
    detaches). Without an initialised multi-process group nothing is communicated and ``rows`` is ``t`` itself.
    """
    n = t.shape[0]
    if views < 1 or n % views:
        raise ValueError(f"cannot split {n} rows into {views} equal views")
    if not is_distributed():
        return GlobalBatch(t, torch.arange(n, device=t.device), 1)
    b = n // views
    sizes = _sizes(b, t.device)
    blocks = t.reshape(views, b, *t.shape[1:]).transpose(0, 1).contiguous()
    if grad:
        gathered: torch.Tensor = _GatherWithGrad.apply(blocks, sizes)
    else:
        gathered = _gather_padded(blocks.detach(), sizes)
    total = sum(sizes)
    rows = gathered.transpose(0, 1).reshape(views * total, *t.shape[1:])
    start = sum(sizes[: dist.get_rank()])
    local = torch.arange(views, device=t.device)[:, None] * total + torch.arange(start, start + b, device=t.device)
    return GlobalBatch(rows, local.reshape(-1), dist.get_world_size())


def gather_no_grad(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` over ranks in rank order without gradient (labels, masks, queue keys)."""
    if not is_distributed():
        return t
    t = t.detach()
    return _gather_padded(t, _sizes(t.shape[0], t.device))


def rank_offset(n: int, device: torch.device) -> int:
    """Index of this rank's first row (it holds ``n`` rows) in the concatenation made by the gathers; 0 when alone."""
    if not is_distributed():
        return 0
    return sum(_sizes(n, device)[: dist.get_rank()])


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of a detached tensor over ranks (counts used for global normalisation); identity when not distributed."""
    if not is_distributed():
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
