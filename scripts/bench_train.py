"""Benchmark: does the device-resident batch path keep up with a batch already in memory?

One Lightning training run alternates, step by step, between (a) a pair batch drawn on the device (the real path:
uint8 images gathered by index and converted there) and (b) the previous batch, already in memory. Alternating single
steps makes the comparison robust to other load on the machine. Each step's wall time (device-synchronised) is filed
under (a) or (b); the script prints the median step times over ``--repeats`` runs and the ratio speed(a) / speed(b),
which should be at least 0.95.

    python scripts/bench_train.py                                   # dSprites replica (subsampled), configs/dsprites.yaml
    python scripts/bench_train.py --dataset data/dsprites_replica.h5 --set trainer.precision=bf16-mixed --steps 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from disco.data.pairs import PairBatch
from disco.train.cli import parse_config
from disco.train.datamodule import PairDataModule
from disco.train.experiment import ensure_replica, parse_subsample
from disco.train.module import DiscoModule
from disco.train.run import make_trainer


class StepTimer(pl.Callback):
    """Wall time between consecutive batch ends (data fetch + draw + step), device-synchronised, filed by the kind of
    batch the step used."""

    def __init__(self, data: Alternating) -> None:
        self.data = data
        self.times: dict[bool, list[float]] = {True: [], False: []}
        self._last: float | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        now = time.perf_counter()
        if self._last is not None:
            self.times[self.data.last_fresh].append(now - self._last)
        self._last = now


class Alternating(PairDataModule):
    """Draws a fresh batch on even steps and serves the previous one again on odd steps."""

    cached: PairBatch | None = None
    count = 0
    last_fresh = True

    def draw(self) -> PairBatch:
        self.last_fresh = self.cached is None or self.count % 2 == 0
        self.count += 1
        if self.last_fresh:
            self.cached = super().draw()
        assert self.cached is not None
        return self.cached


def one_run(argv: list[str], steps: int, warmup: int) -> tuple[float, float]:
    cfg = parse_config(argv)
    cfg.trainer.max_steps = 2 * (steps + warmup)
    cfg.trainer.progress_bar = False
    cfg.checkpoint.every_n_steps = 10**9
    cfg.checkpoint.save_last = False
    cfg.eval.every_n_steps, cfg.eval.at_end, cfg.logger = 0, False, "none"
    pl.seed_everything(cfg.seed, verbose=False)
    dm = Alternating(cfg.data, seed=cfg.seed)
    module = DiscoModule(cfg, tuple(dm.data.factors.names), dm.data.num_channels, len(dm.splits["train"]))
    timer = StepTimer(dm)
    trainer = make_trainer(cfg, Path(cfg.run_dir), [timer], False)
    trainer.fit(module, datamodule=dm)
    return statistics.median(timer.times[True][warmup:]), statistics.median(timer.times[False][warmup:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/dsprites.yaml")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--subsample", default="orientation=4,pos_x=2,pos_y=2")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args, overrides = parser.parse_known_args(argv)
    dataset = ensure_replica("dsprites", args.dataset, parse_subsample(args.subsample))
    argv = ["--config", args.config, f"--data.dataset={dataset}", "--checkpoint.keep=1", *overrides]
    real, memory = [], []
    for _ in range(args.repeats):
        fresh, cached = one_run(argv, args.steps, args.warmup)
        real.append(fresh)
        memory.append(cached)
    t_real, t_mem = statistics.median(real), statistics.median(memory)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}; {args.repeats} runs × {args.steps} steps of each kind, alternating (after warm-up)")
    print(
        f"step with device-resident sampling: median {1000 * t_real:.2f} ms  (runs: {[round(1000 * t, 2) for t in real]})"
    )
    print(
        f"step on an in-memory batch:         median {1000 * t_mem:.2f} ms  (runs: {[round(1000 * t, 2) for t in memory]})"
    )
    print(f"speed ratio (sampling / in-memory): {t_mem / t_real:.3f}  (target >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
