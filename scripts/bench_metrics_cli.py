"""End-to-end cost of ``disco-metrics --metrics all`` on the full dSprites replica with an external TorchScript encoder.

Each run is a fresh ``disco-metrics`` process (loading the 737,280 images, encoding the observational sample and every
distinct grid point the interventional metrics ask for, then every metric); its wall time, user and system CPU seconds
and minor page faults come from ``wait4`` (the process and its worker processes). Prints the median over ``--repeats``
runs of each configuration, interleaved so that both see the same machine:

  default    what a user gets: the encoder frozen and optimised for inference, 128 images per pass on the CPU;
  baseline   the encoder as loaded (``--no-optimize``) at 512 images per pass (disco-metrics before this benchmark).

Without ``--encoder`` a randomly initialised conv64 (REFERENCE.md layers, seed 0) is scripted and saved first; pass a
trained one (``disco export``) for realistic codes. Needs ``data/dsprites.h5`` (``disco data make dsprites``).

    python scripts/bench_metrics_cli.py --repeats 3
    python scripts/bench_metrics_cli.py --encoder outputs/bench/trained.pt --configs default
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS: dict[str, list[str]] = {
    "default": [],
    "baseline": ["--no-optimize", "--batch-size", "512"],
}


def random_encoder(path: Path) -> Path:
    """Script a seed-0 conv64 with 10 latents to ``path`` (an encoder 'trained elsewhere').

    A random network's means barely vary (every unit below the FactorVAE score's 0.05 activity threshold), so its last
    layer is rescaled to unit std per unit over 512 random dSprites images, as a trained encoder's roughly are.
    """
    import numpy as np
    import torch

    from disco.data.datasets import DSPRITES
    from disco.data.replicas.dsprites import render_dsprites
    from disco.models.encoders import ConvEncoder

    torch.manual_seed(0)
    encoder = ConvEncoder(1, 10).eval()
    classes = np.random.default_rng(0).integers(0, np.array(DSPRITES.sizes), size=(512, len(DSPRITES.sizes)))
    v = DSPRITES.classes_to_values(classes)
    images = torch.from_numpy(render_dsprites(v[:, 1], v[:, 2], v[:, 3], v[:, 4], v[:, 5])).float().div(255)
    with torch.inference_mode():
        std = encoder(images.reshape(-1, 1, 64, 64))[0].std(dim=0)
    last = encoder.head[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight[:10] /= std[:, None]
        last.bias[:10] /= std
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(encoder).save(str(path))
    return path


def run_once(cmd: list[str]) -> dict[str, float]:
    """Wall seconds, user/system CPU seconds and minor faults of one process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"disco-metrics failed: {err.strip().splitlines()[-1] if err.strip() else status}")
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime, "faults": float(usage.ru_minflt)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="data/dsprites.h5")
    parser.add_argument("--encoder", help="TorchScript encoder (default: a random conv64 saved to outputs/bench/)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", default="default,baseline", help=f"comma-separated of {', '.join(CONFIGS)}")
    parser.add_argument("--out", default="outputs/bench/cli", help="report folders (replaced)")
    args = parser.parse_args()
    if not Path(args.dataset).is_file():
        sys.exit(f"{args.dataset} not found; make it with `disco data make dsprites --out {args.dataset}`")
    encoder = Path(args.encoder) if args.encoder else random_encoder(Path("outputs/bench/conv64_random.pt"))
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in names if c not in CONFIGS]
    if bad:
        sys.exit(f"unknown config(s) {', '.join(bad)}; choose from {', '.join(CONFIGS)}")
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in names}
    seconds: dict[str, dict[str, float]] = {}
    samples: dict[str, dict[str, float]] = {}
    for rep in range(args.repeats):
        for config in names:
            out = Path(args.out) / config
            cmd = [sys.executable, "-m", "disco.metrics_cli", "--dataset", args.dataset, "--encoder", str(encoder)]
            cmd += ["--metrics", "all", "--out", str(out), "--force", "--no-progress", *CONFIGS[config]]
            result = run_once(cmd)
            runs[config].append(result)
            report = json.loads((out / "metrics.json").read_text())
            seconds[config] = {k: v["details"].get("seconds", 0.0) for k, v in report["metrics"].items()}
            samples[config] = report["samples"]
            print(
                f"run {rep + 1} {config:<9} wall {result['wall']:6.1f} s  user {result['user']:6.1f} s  "
                f"sys {result['sys']:5.1f} s  faults {result['faults'] / 1e6:6.2f} M",
                flush=True,
            )
    print(f"\nmedian of {args.repeats} (encoder {encoder}; {os.cpu_count()} CPUs)")
    print(f"{'config':<9} {'wall s':>7} {'user s':>7} {'sys s':>6} {'sys/user':>8} {'faults M':>9}")
    medians = {}
    for config in names:
        med = {k: statistics.median(r[k] for r in runs[config]) for k in ("wall", "user", "sys", "faults")}
        medians[config] = med
        print(
            f"{config:<9} {med['wall']:7.1f} {med['user']:7.1f} {med['sys']:6.1f} {med['sys'] / med['user']:8.1%} "
            f"{med['faults'] / 1e6:9.2f}"
        )
    if "default" in medians and "baseline" in medians:
        print(f"\nbaseline / default wall: {medians['baseline']['wall'] / medians['default']['wall']:.2f}x")
    for config in names:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in seconds[config].items())
        enc = samples[config]
        images = enc["observational_samples"] + enc["interventional_images_encoded"]
        print(
            f"{config} (last run): {images:,} images encoded in {enc.get('encoding_seconds', float('nan')):.1f} s "
            f"({enc.get('images_per_second', float('nan')):,.0f} images/s, batch {enc.get('encoder_batch_size', '?')}); "
            f"seconds inside each metric (encoding included): {parts}"
        )


if __name__ == "__main__":
    main()
