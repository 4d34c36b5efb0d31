"""Benchmark: does the device-resident batch path keep up with a batch already in memory?

Runs the same model and Lightning training loop twice, interleaved, ``--repeats`` times each: (a) with pair batches
drawn on the device every step (the real path: uint8 images gathered by index, converted there), and (b) stepping on one
pre-drawn batch kept in memory. Prints the median step time of each and the ratio speed(a) / speed(b), which should be
at least 0.95.

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
    """Wall time between consecutive batch ends (data fetch + draw + step), device-synchronised."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last: float | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


class InMemory(PairDataModule):
    """Serves one pre-drawn batch every step (the in-memory baseline)."""

    cached: PairBatch | None = None

    def draw(self) -> PairBatch:
        if self.cached is None:
            self.cached = super().draw()
        return self.cached


def one_run(argv: list[str], in_memory: bool, steps: int, warmup: int) -> float:
    cfg = parse_config(argv)
    cfg.trainer.max_steps = steps + warmup
    cfg.trainer.progress_bar = False
    cfg.checkpoint.every_n_steps = 10**9
    cfg.checkpoint.save_last = False
    cfg.eval.every_n_steps, cfg.eval.at_end, cfg.logger = 0, False, "none"
    pl.seed_everything(cfg.seed, verbose=False)
    dm = (InMemory if in_memory else PairDataModule)(cfg.data, seed=cfg.seed)
    module = DiscoModule(cfg, tuple(dm.data.factors.names), dm.data.num_channels, len(dm.splits["train"]))
    timer = StepTimer()
    trainer = make_trainer(cfg, Path(cfg.run_dir), [timer], False)
    trainer.fit(module, datamodule=dm)
    return statistics.median(timer.times[warmup:])


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
        real.append(one_run(argv, False, args.steps, args.warmup))
        memory.append(one_run(argv, True, args.steps, args.warmup))
    t_real, t_mem = statistics.median(real), statistics.median(memory)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}; {args.repeats} runs × {args.steps} steps each (after {args.warmup} warm-up steps)")
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
