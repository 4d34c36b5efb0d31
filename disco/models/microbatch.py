"""Run a network over a large batch in micro-batches and concatenate the outputs (gradients flow through).

On CPU the 64×64 conv nets cost ~3.5 ms per image at batch 256–512 but ~2.5 ms in micro-batches of 64 (the working
set of each convolution then stays in cache; measured with ``scripts/bench_objective.py``). The result and its gradients
equal the single pass up to float rounding (the nets normalise per sample, never over the batch); activations kept for
backward are the same in total. On GPUs use ``chunk=None`` (one pass). The trainer picks the chunk with
:func:`resolve_chunk` from ``model.microbatch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import torch

#: Micro-batch size (images) that ``model.microbatch: auto`` uses on CPU.
AUTO_CPU_CHUNK = 64

Out = TypeVar("Out", torch.Tensor, tuple[torch.Tensor, ...])


def microbatched(fn: Callable[[torch.Tensor], Out], x: torch.Tensor, chunk: int | None) -> Out:
    """``fn(x)`` computed on consecutive slices of at most ``chunk`` rows (one call when ``chunk`` is None, ≤ 0 or
    ≥ B).

    ``fn`` returns a tensor or a tuple of tensors (e.g. an encoder's ``(mean, logvar)``), each batch-first.
    """
    if chunk is None or chunk <= 0 or x.shape[0] <= chunk:
        return fn(x)
    outs = [fn(part) for part in x.split(chunk)]
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat([o for o in outs if isinstance(o, torch.Tensor)])
    return tuple(torch.cat([o[i] for o in outs if isinstance(o, tuple)]) for i in range(len(first)))


def resolve_chunk(setting: int | Literal["auto"] | None, device: torch.device) -> int | None:
    """The micro-batch size for ``device`` from a ``model.microbatch`` setting: ``"auto"`` is
    :data:`AUTO_CPU_CHUNK` on CPU and one pass (None) on GPUs and other accelerators; an int > 0 is that size;
    None or 0 is one pass."""
    if setting == "auto":
        return AUTO_CPU_CHUNK if device.type == "cpu" else None
    if setting is None or setting == 0:
        return None
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
        raise ValueError(f"model.microbatch must be 'auto', null or an int >= 0, got {setting!r}")
    return setting
