"""Benchmark the metric suite at the reference sample counts on the dSprites factor grid (1, 3, 6, 40, 32, 32).

Representations:
  synthetic  a fixed random linear map of the normalised factor classes plus fixed per-grid-point noise (numpy): the
             pure cost of the metrics.
  conv64     a randomly initialised ``disco.models.encoders.ConvEncoder`` on dSprites replica images rendered on the fly
             (torch, ``--threads`` threads, batches of 128 (see disco.evaluate.DEFAULT_BATCH_SIZE), ``torch.inference_mode``, channels-last).

Prints per-metric seconds of one full-suite run, the median of ``--repeats`` runs for the metrics cheaper than
``--cheap`` seconds, the encoder traffic (grid points requested vs distinct points encoded by the suite's cache), and
three baselines measured in the same run: the per-vote loop of disentanglement_lib for the FactorVAE score (vs the bulk
votes), the reference GBT for DCI (vs the hist GBT) on the small-class factors, and the sequential per-factor fits
(``n_jobs=1``) of DCI, explicitness and the probes vs their default worker processes (``metrics.defaults.N_JOBS``), with
a check that both give identical results.

    python scripts/bench_metrics.py --encoder synthetic
    python scripts/bench_metrics.py --encoder conv64 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from metrics import defaults
from metrics.dci import dci
from metrics.factor_vae import factor_vae_score
from metrics.sampling import grid_index, sample_factors
from metrics.suite import AVAILABLE, INTERVENTIONAL, run_suite
from metrics.types import MetricResult, Representer

SIZES = (1, 3, 6, 40, 32, 32)
NAMES = ["color", "shape", "scale", "orientation", "pos_x", "pos_y"]
SUBSPACES = [("shape", 1), ("scale", 1), ("orientation", 2), ("pos_x", 1), ("pos_y", 1), ("free", 4)]
LATENT = 10


def synthetic_representer(seed: int = 0) -> Representer:
    """Codes = normalised classes @ W + noise fixed per grid point (so that repeated points get the same code)."""
    rng = np.random.default_rng(seed)
    w = (np.eye(len(SIZES), LATENT) + 0.2 * rng.normal(size=(len(SIZES), LATENT))).astype(np.float32)
    noise = (0.05 * rng.normal(size=(int(np.prod(SIZES)), LATENT))).astype(np.float32)

    def represent(classes: np.ndarray) -> np.ndarray:
        return (classes / np.array(SIZES, dtype=np.float32)) @ w + noise[grid_index(classes, SIZES)]

    return represent


class Conv64Representer:
    """Render dSprites replica images for the requested classes and encode them (posterior means) in batches."""

    def __init__(self, threads: int, batch: int = 128) -> None:
        import torch

        from disco.data.datasets import DSPRITES
        from disco.data.replicas.dsprites import render_dsprites
        from disco.models.encoders import ConvEncoder

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        self.space = DSPRITES
        self.render = render_dsprites
        self.encoder = ConvEncoder(1, LATENT).eval()
        self.encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.batch = batch
        self.render_s = 0.0
        self.encode_s = 0.0
        self.images = 0
        # A random network's posterior means barely vary (std << 0.05, all units inactive); rescale its last layer so
        # that every unit has unit std over 512 random grid images, as a trained encoder's would roughly have.
        calib = self(np.random.default_rng(0).integers(0, np.array(SIZES), size=(512, len(SIZES))))
        last = self.encoder.head[-1]
        assert isinstance(last, torch.nn.Linear)
        scale = torch.from_numpy(calib.std(axis=0))
        with torch.no_grad():
            last.weight[:LATENT] /= scale[:, None]
            last.bias[:LATENT] /= scale
        self.render_s = 0.0
        self.encode_s = 0.0
        self.images = 0

    def __call__(self, classes: np.ndarray) -> np.ndarray:
        torch = self.torch
        out = np.empty((classes.shape[0], LATENT), dtype=np.float32)
        for start in range(0, classes.shape[0], 8192):
            chunk = classes[start : start + 8192]
            t0 = time.perf_counter()
            v = self.space.classes_to_values(chunk)
            imgs = torch.from_numpy(self.render(v[:, 1], v[:, 2], v[:, 3], v[:, 4], v[:, 5]))
            t1 = time.perf_counter()
            with torch.inference_mode():
                for b in range(0, chunk.shape[0], self.batch):
                    x = imgs[b : b + self.batch, None].float().contiguous(memory_format=torch.channels_last)
                    mean, _ = self.encoder(x)
                    out[start + b : start + b + x.shape[0]] = mean.numpy()
            self.render_s += t1 - t0
            self.encode_s += time.perf_counter() - t1
        self.images += classes.shape[0]
        return out


def loop_factor_vae(represent: Representer, num_votes: int, seed: int = 0) -> float:
    """disentanglement_lib's structure: one representer call per vote of 64 samples (baseline for the bulk votes)."""
    rng = np.random.default_rng(seed)
    sizes = np.array(SIZES)
    variances = np.var(represent(sample_factors(SIZES, 10000, rng)), axis=0, ddof=1)
    active = np.sqrt(variances) >= 0.05
    votes = np.zeros((LATENT, len(SIZES)), dtype=np.int64)
    for _ in range(num_votes):
        k = int(rng.integers(1, len(SIZES)))
        classes = rng.integers(0, sizes, size=(64, len(SIZES)))
        classes[:, k] = classes[0, k]
        local = np.var(represent(classes), axis=0, ddof=1)
        votes[np.flatnonzero(active)[np.argmin(local[active] / variances[active])], k] += 1
    return float(votes.max(axis=1).sum() / votes.sum())


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    return timed_result(fn)[0]


def timed_result(fn: Callable[[], object]) -> tuple[float, object]:
    """Wall seconds and result of one call."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def rerun(name: str, represent: Representer | None, codes: np.ndarray, factors: np.ndarray) -> float:
    """Seconds of one more suite run of the metric ``name`` alone (through the representer, or on the shared codes)."""
    start = time.perf_counter()
    if represent is not None:
        run_suite([name], represent=represent, factor_sizes=SIZES, factor_names=NAMES, subspaces=SUBSPACES)
    else:
        run_suite([name], codes=codes, factors=factors, factor_names=NAMES, factor_sizes=SIZES, subspaces=SUBSPACES)
    return time.perf_counter() - start


def same_result(a: MetricResult, b: MetricResult) -> bool:
    """Whether two results hold exactly the same score and details (arrays compared element by element)."""

    def equal(x: object, y: object) -> bool:
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            return bool(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True))
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x)
        return bool(x == y)

    keys = set(a.details) - {"seconds"}
    return a.score == b.score and equal({k: a.details[k] for k in keys}, {k: b.details[k] for k in keys})


def run_with_jobs(name: str, n_jobs: int, codes: np.ndarray, factors: np.ndarray) -> MetricResult:
    """One suite run of the metric ``name`` alone on the shared codes with ``n_jobs`` worker processes."""
    return run_suite(
        [name],
        codes=codes,
        factors=factors,
        factor_names=NAMES,
        factor_sizes=SIZES,
        subspaces=SUBSPACES,
        overrides={name: {"n_jobs": n_jobs}},
    )[name]


def compare_jobs(names: list[str], codes: np.ndarray, factors: np.ndarray, repeats: int, cheap: float) -> None:
    """Sequential (n_jobs=1) vs parallel (defaults.N_JOBS) per-factor fits on the same codes, alternating the two."""
    jobs = defaults.N_JOBS
    print(
        f"\nper-factor fits, n_jobs=1 vs n_jobs={jobs} (same codes, alternating; median when cheaper than {cheap} s):"
    )
    for name in (n for n in ("dci", "explicitness", "probes") if n in names):
        times: dict[int, list[float]] = {1: [], jobs: []}
        results: dict[int, MetricResult] = {}
        for attempt in range(repeats):
            for n_jobs in (1, jobs):
                seconds, out = timed_result(partial(run_with_jobs, name, n_jobs, codes, factors))
                assert isinstance(out, MetricResult)
                times[n_jobs].append(seconds)
                results[n_jobs] = out
            if attempt == 0 and max(times[1][0], times[jobs][0]) >= cheap:
                break
        serial, parallel = statistics.median(times[1]), statistics.median(times[jobs])
        print(
            f"  {name:14s} n_jobs=1 {serial:7.2f} s, n_jobs={jobs} {parallel:7.2f} s (x{serial / max(parallel, 1e-9):.2f}),"
            f" identical results: {same_result(results[1], results[jobs])}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", choices=["synthetic", "conv64"], default="synthetic")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cheap", type=float, default=10.0, help="repeat metrics faster than this many seconds")
    parser.add_argument("--metrics", nargs="*", default=list(AVAILABLE))
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument(
        "--votes-scale",
        type=float,
        default=1.0,
        help="scale num_train/num_eval of the FactorVAE and BetaVAE scores (default 1: the reference counts)",
    )
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))

    conv = Conv64Representer(args.threads) if args.encoder == "conv64" else None
    represent: Representer = conv if conv is not None else synthetic_representer()
    calls: list[int] = []

    def counted(classes: np.ndarray) -> np.ndarray:
        calls.append(classes.shape[0])
        return represent(classes)

    print(f"encoder={args.encoder} threads={args.threads} factor sizes={SIZES} grid={int(np.prod(SIZES))}")
    overrides = {
        name: {"num_train": round(10000 * args.votes_scale), "num_eval": round(5000 * args.votes_scale)}
        for name in ("factor_vae", "beta_vae")
        if name in args.metrics and args.votes_scale != 1.0
    }
    start = time.perf_counter()
    results = run_suite(
        args.metrics,
        overrides=overrides,
        represent=counted,
        factor_sizes=SIZES,
        factor_names=NAMES,
        subspaces=SUBSPACES,
        progress=lambda msg: print(f"  [{time.perf_counter() - start:7.1f} s] {msg}", flush=True),
    )
    total = time.perf_counter() - start
    print(f"\nfull suite: {total:.1f} s wall; encoder calls {len(calls)}, distinct grid points encoded {sum(calls)}")
    if conv is not None:
        print(
            f"conv64: {conv.images} images, render {conv.render_s:.1f} s ({conv.images / max(conv.render_s, 1e-9):.0f}"
            f" img/s), encode {conv.encode_s:.1f} s ({conv.images / max(conv.encode_s, 1e-9):.0f} img/s)"
        )

    shared = sample_factors(SIZES, 15000, np.random.default_rng(0))
    codes = represent(shared)
    print(f"\n{'metric':16s} {'score':>8s} {'suite s':>8s} {'median s':>9s}")
    for name, result in results.items():
        seconds = float(result.details["seconds"])
        median = ""
        if seconds < args.cheap and args.repeats > 1:
            interventional = name in INTERVENTIONAL or name == "activity"
            if not (interventional and conv is not None):
                extra = 1 if interventional else args.repeats - 1
                runs = [rerun(name, represent if interventional else None, codes, shared) for _ in range(extra)]
                median = f"{statistics.median([seconds, *runs]):9.2f}"
        print(f"{name:16s} {result.score:8.4f} {seconds:8.2f} {median:>9s}")

    if not args.skip_baselines:
        print("\nbaselines (same run):")
        votes = 2000
        synth = synthetic_representer()
        t_loop = statistics.median(timed(lambda: loop_factor_vae(synth, votes)) for _ in range(args.repeats))
        t_bulk = statistics.median(
            timed(lambda: factor_vae_score(synth, SIZES, num_train=votes // 2, num_eval=votes // 2))
            for _ in range(args.repeats)
        )
        print(
            f"  FactorVAE {votes} votes, synthetic codes (median of {args.repeats}): per-vote loop {t_loop:.2f} s, "
            f"bulk {t_bulk:.2f} s (x{t_loop / max(t_bulk, 1e-9):.1f})"
        )
        small = shared[:, :3]
        t_ref, ref = timed_result(lambda: dci(codes, small, method="reference"))
        t_hist, hist = timed_result(lambda: dci(codes, small, method="hist"))
        assert isinstance(ref, MetricResult) and isinstance(hist, MetricResult)
        print(
            f"  DCI on the 3- and 6-class factors (10000/5000): reference GBT {t_ref:.1f} s "
            f"(D {ref.score:.3f} C {ref.details['completeness']:.3f} I {ref.details['informativeness_test']:.3f}), "
            f"hist GBT {t_hist:.1f} s (D {hist.score:.3f} C {hist.details['completeness']:.3f} "
            f"I {hist.details['informativeness_test']:.3f}), x{t_ref / max(t_hist, 1e-9):.1f}"
        )
        compare_jobs(args.metrics, codes, shared, args.repeats, args.cheap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
