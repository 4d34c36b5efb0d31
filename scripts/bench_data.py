"""Benchmark of disco's data layer: replica generation, pair-batch throughput, memory, cost vs a training step.

    python scripts/bench_data.py            # full-size dSprites (737,280) and 3D Shapes (480,000) replicas
    python scripts/bench_data.py --quick    # subsampled replicas (seconds)

Prints medians over ``--repeats`` runs. The baseline is one conv64 training step (forward + backward + Adam on both
images of a pair batch, REFERENCE.md encoder) measured in the same run on the same device; the goal is a pair batch
costing < 5% of that step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from disco.data.datasets import load_dataset
from disco.data.pairs import PairBatch
from disco.data.replicas import make_replica
from disco.data.sampler import PairSampler

QUICK = {
    "dsprites": {"orientation": 4, "pos_x": 2, "pos_y": 2},
    "shapes3d": {"floor_hue": 2, "wall_hue": 2, "object_hue": 2},
}


def rss_mib() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def median_time(fn: Callable[[], object], repeats: int, inner: int, sync: Callable[[], None]) -> float:
    """Median over ``repeats`` of the mean seconds per call of ``fn`` over ``inner`` calls."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def conv64(in_channels: int, latent: int = 10) -> nn.Module:
    try:
        from disco.models.encoders import ConvEncoder

        return ConvEncoder(in_channels, latent)
    except ImportError:  # models package not there yet: the same REFERENCE.md layer list
        return _LocalConv64(in_channels, latent)


class _LocalConv64(nn.Module):
    def __init__(self, in_channels: int, latent: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, 2 * latent),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.net(x).chunk(2, dim=1)
        return mean, logvar


def train_step(model: nn.Module, opt: torch.optim.Optimizer, batch: PairBatch) -> Callable[[], None]:
    """One optimiser step of the encoder on both images of ``batch`` (a stand-in loss on the mean and log-variance)."""

    def step() -> None:
        mean, logvar = model(torch.cat([batch.x_a, batch.x_b]))
        loss = mean.square().mean() + logvar.square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time subsampled replicas instead of the full ones")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out-dir", type=Path, default=None, help="where replicas are written (default: a temp dir)")
    parser.add_argument(
        "--existing", type=Path, default=None, help="folder holding dsprites.h5 and shapes3d.h5: time only pairs"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}, device {device}")
    with tempfile.TemporaryDirectory(dir=args.out_dir) as tmp:
        paths = {name: args.existing / f"{name}.h5" for name in QUICK} if args.existing else {}
        for name in () if args.existing else ("dsprites", "shapes3d"):
            sub = QUICK[name] if args.quick else None
            start, cpu_start = time.perf_counter(), time.process_time()
            paths[name] = make_replica(name, Path(tmp) / f"{name}.h5", sub)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            size = paths[name].stat().st_size / 2**20
            print(
                f"generate {name:<9} {'quick' if args.quick else 'full '}: wall {seconds:7.1f} s, CPU {cpu:7.1f} s "
                f"(all threads; wall on {torch.get_num_threads()} idle cores >= CPU/{torch.get_num_threads()}), "
                f"file {size:8.1f} MiB",
                flush=True,
            )
        for name in ("dsprites", "shapes3d"):
            before = rss_mib()
            start = time.perf_counter()
            data = load_dataset(str(paths[name]))
            load_s = time.perf_counter() - start
            held = data.images.numel() / 2**20
            print(
                f"load {name:<9}: {len(data)} images in {load_s:.1f} s; images hold {held:.0f} MiB uint8, "
                f"process RSS +{rss_mib() - before:.0f} MiB (now {rss_mib():.0f} MiB)",
                flush=True,
            )
            model = conv64(data.num_channels).to(device)
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            for batch_size in (64, 256):
                sampler = PairSampler(data, None, batch_size, "share_one", device, seed=0)
                t_pair = median_time(sampler.sample, args.repeats, 20, sync)
                t_step = median_time(train_step(model, opt, sampler.sample()), args.repeats, 5, sync)
                print(
                    f"  {name} batch {batch_size:>3}: pair batch {t_pair * 1e3:6.2f} ms ({1 / t_pair:7.1f} batches/s, "
                    f"{batch_size / t_pair:8.0f} pairs/s); conv64 train step on the pair {t_step * 1e3:7.2f} ms; "
                    f"ratio {t_pair / t_step:.1%}",
                    flush=True,
                )
            del data, sampler


if __name__ == "__main__":
    main()
