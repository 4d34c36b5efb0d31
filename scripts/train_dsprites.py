"""Train disco on dSprites and print the held-out metric table.

    python scripts/train_dsprites.py                                  # full replica (made once under data/), configs/dsprites.yaml
    python scripts/train_dsprites.py --subsample orientation=4,pos_x=2,pos_y=2 --max-minutes 15
    python scripts/train_dsprites.py --dataset data/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz --set trainer.max_steps=300000

Extra arguments are config overrides (``--objective.vae.beta 4``, ``--set key=value``).
"""

from __future__ import annotations

import argparse
import sys

from disco.cli import run_guarded
from disco.train.experiment import config_supervision, ensure_replica, parse_subsample, train_config


def main(
    argv: list[str] | None = None, *, name: str = "dsprites", default_config: str = "configs/dsprites.yaml"
) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=default_config)
    parser.add_argument("--dataset", default=None, help="dataset file or name; default: make/use a replica under data/")
    parser.add_argument("--subsample", default=None, help="replica subsampling, e.g. orientation=4,pos_x=2")
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of the training run")
    args, overrides = parser.parse_known_args(argv)
    if args.max_minutes is not None:
        overrides = [f"--trainer.max_minutes={args.max_minutes}", *overrides]

    def run() -> int:
        dataset = ensure_replica(name, args.dataset, parse_subsample(args.subsample))
        scores = train_config(args.config, dataset, overrides)
        print(f"\nsupervision: {config_supervision(args.config, overrides)}")
        print("\n| metric | held-out score |\n|---|---:|")
        for key, value in scores.items():
            if "/" not in key:
                print(f"| {key} | {value:.4f} |")
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    sys.exit(main())
