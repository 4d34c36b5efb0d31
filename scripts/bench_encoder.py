"""Encoder throughput on this CPU against its measured FLOP roofline.

Measures (medians over ``--repeats``):
  * the machine's attainable float32 FLOP rate: a large ``torch.mm`` (2·n³ FLOP) with ``--threads`` threads;
  * images/s of the conv64 encoder (REFERENCE.md layers, 16.3 MFLOP per 64×64 grey image, counted from the layer
    shapes below) under the variants disco-metrics can choose from: eager, TorchScript, TorchScript frozen and
    optimised for inference (:func:`disco.evaluate.prepare_encoder`), contiguous vs channels-last input, and several
    batch sizes; each variant's GFLOP/s and its share of the roofline.

    python scripts/bench_encoder.py --threads 2
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from disco.evaluate import prepare_encoder
from disco.models.encoders import ConvEncoder


def conv64_flops(module: nn.Module, shape: tuple[int, int, int]) -> int:
    """Multiply-adds × 2 of the Conv2d and Linear layers of ``module`` for one image of ``shape`` (C, H, W)."""
    total = 0
    hooks = []

    def conv_hook(mod: nn.Conv2d, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += 2 * out[0].numel() * k

    def linear_hook(mod: nn.Linear, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * out[0].numel() * mod.in_features

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.inference_mode():
        module(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return total


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median wall seconds of ``fn`` after a warm-up, and the minor page faults and system seconds per call."""
    fn()  # warm-up (oneDNN primitive creation, first-touch of buffers)
    times = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults = (after.ru_minflt - before.ru_minflt) / repeats
    system = (after.ru_stime - before.ru_stime) / repeats
    return statistics.median(times), faults, system


def matmul_gflops(n: int, repeats: int) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    return 2 * n**3 / median_seconds(lambda: torch.mm(a, b, out=out), repeats)[0] / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=4096, help="images per timed pass")
    parser.add_argument("--batch-sizes", default="64,128,256,512")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    peak = max(matmul_gflops(n, args.repeats) for n in (1024, 2048))
    eager = ConvEncoder(1, 10).eval()
    flops = conv64_flops(eager, (1, 64, 64))
    print(f"threads {args.threads}; matmul roofline {peak:.1f} GFLOP/s; conv64 {flops / 1e6:.2f} MFLOP per image")
    print(f"roofline for conv64: {peak * 1e9 / flops:,.0f} images/s\n")

    images = torch.randint(0, 256, (args.images, 1, 64, 64), dtype=torch.uint8)
    scripted = torch.jit.script(ConvEncoder(1, 10).eval())
    variants: dict[str, nn.Module] = {
        "eager": eager,
        "torchscript": scripted,
        "torchscript frozen+optimised": prepare_encoder(scripted),
    }
    print(
        f"{'variant':<30} {'layout':<14} {'batch':>5} {'images/s':>10} {'GFLOP/s':>8} {'of roofline':>11} "
        f"{'faults/img':>10} {'sys/user':>8}"
    )
    for name, module in variants.items():
        for layout in ("contiguous", "channels_last"):
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            for batch in (int(b) for b in args.batch_sizes.split(",")):

                def run(module: nn.Module = module, batch: int = batch, fmt: torch.memory_format = fmt) -> None:
                    with torch.inference_mode():
                        for start in range(0, args.images, batch):
                            x = images[start : start + batch].float().div_(255.0)
                            module(x.contiguous(memory_format=fmt))

                seconds, faults, system = median_seconds(run, args.repeats)
                rate = args.images / seconds
                gflops = rate * flops / 1e9
                print(
                    f"{name:<30} {layout:<14} {batch:>5} {rate:>10,.0f} {gflops:>8.1f} {gflops / peak:>10.0%} "
                    f"{faults / args.images:>10.1f} {system / max(seconds * args.threads - system, 1e-9):>8.2f}"
                )


if __name__ == "__main__":
    main()
