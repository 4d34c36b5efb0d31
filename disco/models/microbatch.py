"""Run a network over a large batch in micro-batches and concatenate the outputs (gradients flow through).

On CPU the 64×64 conv nets cost ~3.5 ms per image at batch 256–512 but ~2.5 ms in micro-batches of 64 (the working
set of each convolution then stays in cache; measured with ``scripts/bench_objective.py``). The result and its gradients
equal the single pass up to float rounding; activations kept for backward are the same in total. On GPUs use
``chunk=None`` (one pass).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def microbatched(
    fn: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]], x: torch.Tensor, chunk: int | None
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """``fn(x)`` computed on consecutive slices of at most ``chunk`` rows (one call when ``chunk`` is None or ≥ B).

    ``fn`` returns a tensor or a tuple of tensors (e.g. an encoder's ``(mean, logvar)``), each batch-first.
    """
    if chunk is None or chunk <= 0 or x.shape[0] <= chunk:
        return fn(x)
    outs = [fn(part) for part in x.split(chunk)]
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat([o for o in outs if isinstance(o, torch.Tensor)])
    return tuple(torch.cat([o[i] for o in outs if isinstance(o, tuple)]) for i in range(len(first)))
