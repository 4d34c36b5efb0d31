"""Where each factor went: per-factor MIG gaps and the units and subspaces that carry each factor, for trained runs.

    python scripts/diagnose_code.py outputs/results/dsprites_replica/pairs/seed0 [more run folders] [--dataset F]
    python scripts/diagnose_code.py outputs/transfer/noisy/triplet/seed0 --domain noisy   # a transfer run's target

For every run folder (its ``checkpoints/last.ckpt``), the encoder means of held-out rows (the dlib MIG protocol:
10,000 test-split rows, 20 equal-width bins per unit) give the normalised mutual information of each unit with each
factor; printed per factor: the gap (MIG's term), the best unit and the subspace it belongs to, and the share of the
factor's information that its own subspace holds. A study tool: it says which subspace collapsed or took whose factor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from disco.cli import run_guarded
from disco.errors import ConfigError


def _unit_owner(spec: object, dim: int) -> list[str]:
    names = ["?"] * dim
    for sub in getattr(spec, "subspaces", ()):
        for i in range(sub.slice.start, sub.slice.stop):
            names[i] = sub.name
    return names


def diagnose(run: Path, dataset: str, samples: int = 10000, domain: str | None = None) -> str:
    """A text report of where each factor went in the encoder of ``run`` on ``dataset``'s test split, rendered under
    ``domain`` (``plain``, ``noisy``, ...; RGB) when given."""
    from disco.data.datasets import load_dataset
    from disco.data.domains import make_domain
    from disco.evaluate import Representer, select_rows
    from disco.models.checkpoint import load_encoder
    from metrics._checks import discrete_entropy, discrete_mutual_info, discretize

    ckpt = run / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise ConfigError(f"{run} has no checkpoints/last.ckpt; give a run folder of disco train")
    encoder, spec = load_encoder(ckpt)
    encoder.eval()
    data = load_dataset(dataset)
    rows = select_rows(len(data.images), "test", 0, limit=samples, sample_seed=0)
    with torch.inference_mode():
        codes = Representer(encoder, data, domain=make_domain(domain) if domain else None).encode_rows(rows)
    y = data.classes[torch.as_tensor(rows)].numpy()
    mi = discrete_mutual_info(discretize(codes, 20), y)
    h = discrete_entropy(y)
    nmi = mi / np.maximum(h, 1e-12)[None, :]
    owner = _unit_owner(spec, codes.shape[1])
    names = list(data.factors.names)
    lines = [f"{run}: code std per unit " + " ".join(f"{s:.2f}" for s in codes.std(0))]
    lines.append("factor       gap    best unit (subspace)   own-subspace share   top-2 nmi")
    for k, name in enumerate(names):
        order = np.argsort(nmi[:, k])[::-1]
        own = [i for i, o in enumerate(owner) if o == name]
        share = nmi[own, k].sum() / max(nmi[:, k].sum(), 1e-12) if own else float("nan")
        lines.append(
            f"{name:12s} {nmi[order[0], k] - nmi[order[1], k]:.3f}  {order[0]:2d} ({owner[order[0]]:12s})   "
            f"{share:.2f}                 {nmi[order[0], k]:.2f} {nmi[order[1], k]:.2f}"
        )
    lines.append("normalised MI, units (rows) x factors: ")
    for i in range(codes.shape[1]):
        lines.append(f"  {i:2d} {owner[i]:12s} " + " ".join(f"{v:.2f}" for v in nmi[i]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--dataset", default="data/dsprites.h5")
    parser.add_argument("--domain", default=None, help="render the images under this domain (transfer runs read RGB)")
    args = parser.parse_args(argv)

    def run() -> int:
        from disco.data.domains import DOMAINS

        if args.domain is not None and args.domain not in DOMAINS:
            raise ConfigError(f"unknown --domain {args.domain!r}; choose from {', '.join(DOMAINS)}")
        for path in args.runs:
            print(diagnose(path, args.dataset, domain=args.domain), flush=True)
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    sys.exit(main())
