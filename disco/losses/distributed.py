"""Cross-rank gathering for contrastive losses under data parallelism.

Contrastive losses get better with more negatives (Chen et al. 2020, SimCLR, gather negatives across devices). Under DDP
each rank keeps its own anchors but uses the candidates of all ranks; gradients must flow back to the rank that produced
each candidate. :func:`gather_with_grad` does an all-gather whose backward sums the incoming gradients over ranks
(all-reduce) and keeps the local slice, which works on every backend (gloo has no reduce-scatter). Ranks may hold batches
of different sizes: the first dimension is padded to the largest one and trimmed after the gather.
"""

from __future__ import annotations

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
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        sizes = _sizes(t.shape[0], t.device)
        ctx.sizes = sizes
        ctx.rank = dist.get_rank()
        return _gather_padded(t, sizes)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]]


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` (``(n_r, ...)`` on rank r) over ranks in rank order, differentiably.

    The gradient reaching rank r's input is the sum over all ranks of the gradient of their loss with respect to rank r's
    rows; DDP then averages parameter gradients over ranks, so the update equals that of the mean of the rank losses.
    Without an initialised multi-process group the input is returned unchanged.
    """
    if not is_distributed():
        return t
    out: torch.Tensor = _GatherWithGrad.apply(t)
    return out


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
