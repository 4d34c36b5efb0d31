"""How fast can the conv64 trunk learn a factor on its own? A linear softmax on the encoder's hidden features, trained
with Adam on random images of a dataset file, prints the cross-entropy and the accuracy per shape every 100 steps.

    python scripts/orientation_probe.py --dataset data/dsprites.h5 --factor orientation --lr 1e-3 --batch 128 --steps 600

A diagnostic for the sixth labels round (README): it tells whether a factor is slow for the trunk itself (then no
objective on a one-unit subspace can be faster) or only for the subspace.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from disco.data.datasets import load_dataset
from disco.models.encoders import ConvEncoder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="data/dsprites.h5")
    p.add_argument("--factor", default="orientation")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = load_dataset(args.dataset)  # uint8 (N, C, 64, 64) in 0..255, dSprites' 0/1 pixels scaled
    names = list(data.factors.names)
    if args.factor not in names:
        raise SystemExit(f"error: {args.factor!r} is not a factor of {args.dataset}; choose one of {names}")
    k, shape_col = names.index(args.factor), names.index("shape") if "shape" in names else None
    classes = data.classes.numpy()
    # a subsampled replica keeps the full grid's class indices: relabel the values present as 0..n-1
    values, target = np.unique(classes[:, k], return_inverse=True)
    encoder, head = ConvEncoder(data.images.shape[1], 2), torch.nn.Linear(256, len(values))
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=args.lr)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = np.sort(rng.choice(len(classes), args.batch, replace=False))
        x = data.images[torch.from_numpy(idx)].float() / 255.0
        y = torch.from_numpy(target[idx])
        logits = head(encoder.encode_with_hidden(x)[2])
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            hit = (logits.argmax(1) == y).float()
            per_shape = (
                [round(hit[torch.from_numpy(classes[idx, shape_col] == s)].mean().item(), 2) for s in range(3)]
                if shape_col is not None
                else []
            )
            print(
                f"step {step} ce {loss.item():.3f} acc {hit.mean().item():.3f} per shape {per_shape} "
                f"{time.perf_counter() - start:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
