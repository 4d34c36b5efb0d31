"""Can a private branch see the domain? Train the branch alone as a plain-vs-target classifier and print its held-out
accuracy: the pooling that learns this fastest is the one that can keep the domain in a transfer run.

    python scripts/probe_private_branch.py --dataset data/shapes3d.h5 --target shift --pools avg style logstyle
    python scripts/probe_private_branch.py --dataset data/dsprites.h5 --target color --steps 300

The branch (:class:`disco.models.private.PrivateBranchEncoder`'s ``private`` net, with as many outputs as ``--units``)
and a linear head are trained with Adam (lr 5e-4) on 64 images per domain per step, drawn from the first rows of a
random subset of 6,000 rows of the dataset; accuracy is measured on 1,000 other rows (a fifth of a smaller dataset)
rendered in both domains.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from disco.cli import run_guarded
from disco.data.datasets import load_dataset
from disco.data.domains import DOMAINS, make_domain
from disco.errors import ConfigError
from disco.models.private import PrivateBranchEncoder


def probe(images: torch.Tensor, keys: torch.Tensor, target: str, pool: str, steps: int, units: int, every: int) -> None:
    torch.manual_seed(0)
    plain, shifted = make_domain("plain"), make_domain(target)
    enc = PrivateBranchEncoder("conv64", {"in_channels": 3, "latent_dim": units}, list(range(units)), 3, pool=pool)
    head = torch.nn.Linear(units, 2)
    opt = torch.optim.Adam([*enc.private.parameters(), *head.parameters()], lr=5e-4)
    n_train = len(images) - min(1000, len(images) // 5)

    def views(x: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float() / 255  # the domains make grey images RGB themselves
        return torch.cat([plain(x, k), shifted(x, k)]), torch.arange(2).repeat_interleave(len(x))

    test_x, test_y = views(images[n_train:], keys[n_train:])
    start = time.perf_counter()
    for step in range(steps + 1):
        if step % every == 0:
            with torch.no_grad():
                acc = (head(enc.private(test_x)).argmax(1) == test_y).float().mean().item()
            print(
                f"{pool:9s} {target:8s} step {step:4d}  held-out accuracy {acc:.3f}  ({time.perf_counter() - start:.0f} s)"
            )
        if step == steps:
            break
        rows = torch.randint(0, n_train, (64,))
        x, y = views(images[rows], keys[rows])
        loss = F.cross_entropy(head(enc.private(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset file or name (data/shapes3d.h5, data/dsprites.h5)")
    parser.add_argument("--target", default="shift", help="target domain: color, noisy, texture, shift")
    parser.add_argument("--pools", nargs="+", default=["avg", "style", "logstyle"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--units", type=int, default=2, help="private units (the transfer configs use 2)")
    parser.add_argument("--every", type=int, default=100, help="evaluate every this many steps")
    args = parser.parse_args(argv)

    def run() -> int:
        if args.target not in DOMAINS:  # before the dataset is read
            raise ConfigError(f"unknown domain {args.target!r}; choose from {', '.join(DOMAINS)}")
        data = load_dataset(args.dataset)
        rows = np.sort(np.random.default_rng(0).choice(len(data), min(len(data), 6000), replace=False))
        images, keys = data.images[torch.from_numpy(rows)], torch.from_numpy(rows).long()
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))
        images, keys = images[order], keys[order]
        for pool in args.pools:
            probe(images, keys, args.target, pool, args.steps, args.units, args.every)
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
