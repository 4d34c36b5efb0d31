"""NT-Xent / InfoNCE on two views, with an optional MoCo memory queue and momentum encoder.

InfoNCE (Oord et al. 2018, CPC) scores one positive against negatives with a softmax; NT-Xent (Chen et al. 2020, SimCLR)
uses cosine similarity over temperature and the other 2B-2 views of the batch as negatives. MoCo (He et al. 2020) adds a
queue of keys from earlier batches as extra negatives and produces the keys with a momentum (EMA) copy of the encoder.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.contrastive import multi_positive_nce, similarity_logits, view_masks
from disco.losses.distributed import all_reduce_sum, gather_no_grad, gather_with_grad, is_distributed, rank_offset


class MemoryQueue(nn.Module):
    """First-in-first-out queue of ``size`` keys of width ``dim`` (He et al. 2020); state lives in buffers, so it is
    saved in ``state_dict`` and moves with ``.to(device)``."""

    queue: torch.Tensor
    ptr: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ConfigError(f"memory queue size {size} and dim {dim} must both be >= 1")
        self.size, self.dim = int(size), int(dim)
        self.register_buffer("queue", torch.zeros(self.size, self.dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys (n, dim)`` over the oldest entries, wrapping around; with ``n > size`` only the last ``size``
        keys are kept."""
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ConfigError(f"queue keys have shape {tuple(keys.shape)}, expected (n, {self.dim})")
        n = keys.shape[0]
        kept = keys.detach()[-self.size :].to(self.queue.dtype)
        start = (self.ptr + n - kept.shape[0]) % self.size
        idx = (start + torch.arange(kept.shape[0], device=self.queue.device)) % self.size
        self.queue[idx] = kept.to(self.queue.device)
        self.ptr.copy_((self.ptr + n) % self.size)
        self.count.copy_(torch.clamp(self.count + n, max=self.size))

    def get(self) -> torch.Tensor:
        """The stored keys ``(min(count, size), dim)`` (slot order, not age order), detached."""
        return self.queue[: int(self.count.item())].detach()


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online`` for parameters; buffers are copied (He et al. 2020)."""
    for p_t, p_o in zip(target.parameters(), online.parameters(), strict=True):
        p_t.mul_(momentum).add_(p_o.detach(), alpha=1.0 - momentum)
    for b_t, b_o in zip(target.buffers(), online.buffers(), strict=True):
        b_t.copy_(b_o)


class MomentumEncoder(nn.Module):
    """A frozen copy of ``online`` updated only by :meth:`update` (exponential moving average, MoCo key encoder)."""

    def __init__(self, online: nn.Module, momentum: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"momentum {momentum} must lie in [0, 1]; MoCo uses 0.999")
        self.momentum = float(momentum)
        self.target = copy.deepcopy(online)
        self.target.requires_grad_(False)

    def update(self, online: nn.Module) -> None:
        momentum_update(online, self.target, self.momentum)

    @torch.no_grad()
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)


class NTXentLoss(nn.Module):
    """Normalised-temperature cross-entropy over the 2B views of B pairs (Chen et al. 2020).

    Each view's partner is its positive; the other views (of all ranks, with ``gather_distributed`` under DDP) and the
    keys of an optional :class:`MemoryQueue` are negatives. With ``labels`` the views of all same-label pairs are
    positives (Khosla et al. 2020). In training mode the queue receives ``z_b`` (the keys) after each call.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        gather_distributed: bool = True,
        queue: MemoryQueue | None = None,
        similarity: str = "cosine",
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"NT-Xent temperature {temperature} must be > 0; typical values are 0.07-0.5")
        if similarity not in ("cosine", "neg_sq_dist"):
            raise ConfigError(f"unknown similarity {similarity!r}; use cosine or neg_sq_dist")
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed
        self.queue = queue
        self.similarity = similarity

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor, labels: torch.Tensor | None = None) -> LossOutput:
        if z_a.shape != z_b.shape or z_a.ndim != 2:
            raise ConfigError(f"views of shape {tuple(z_a.shape)} and {tuple(z_b.shape)} differ; give two (B, d) codes")
        b = z_a.shape[0]
        distributed = self.gather_distributed and is_distributed()
        world = torch.distributed.get_world_size() if distributed else 1
        za = gather_with_grad(z_a) if distributed else z_a
        zb = gather_with_grad(z_b) if distributed else z_b
        lab = gather_no_grad(labels) if distributed and labels is not None else labels
        offset = rank_offset(b, z_a.device) if distributed else 0
        n = za.shape[0]
        rows = torch.arange(offset, offset + b, device=z_a.device)
        rows = torch.cat([rows, rows + n])
        views = torch.cat([za, zb])
        positive, candidate = view_masks(torch.ones(n, dtype=torch.bool, device=z_a.device), lab, lab, "positive")
        positive, candidate = positive[rows], candidate[rows]
        if self.queue is not None and int(self.queue.count.item()) > 0:
            keys = self.queue.get().to(views.dtype)
            views = torch.cat([views, keys])
            positive = torch.cat([positive, positive.new_zeros(len(rows), keys.shape[0])], dim=1)
            candidate = torch.cat([candidate, candidate.new_ones(len(rows), keys.shape[0])], dim=1)
        logits = similarity_logits(views[rows], views, self.similarity, self.temperature)
        loss_i, valid, correct = multi_positive_nce(logits, positive, candidate)
        n_global = all_reduce_sum(valid.sum()) if distributed else valid.sum()
        loss = loss_i.sum() * world / n_global.clamp_min(1).to(loss_i.dtype)
        if self.queue is not None and self.training:
            self.queue.enqueue(gather_no_grad(z_b) if distributed else z_b.detach())
        acc = correct.sum().to(loss.dtype) / valid.sum().clamp_min(1).to(loss.dtype)
        return LossOutput(
            loss, {"raw": loss.detach(), "acc": acc.detach(), "candidates": torch.tensor(logits.shape[1] - 1)}
        )
