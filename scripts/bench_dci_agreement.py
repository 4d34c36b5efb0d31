"""Agreement of DCI's fast methods with ``method="reference"`` (scikit-learn's GradientBoostingClassifier()).

Builds a battery of synthetic codes on the dSprites factor grid (3, 6, 40, 32, 32 classes: colour dropped) and the
3D Shapes grid (10, 10, 10, 8, 4, 15), draws ``--num-train + --num-test`` grid points uniformly (10000 + 5000, the
protocol of disentanglement_lib), and scores every code with DCI's methods. Prints |ΔD|, |ΔC|, |ΔI| (I = the test
accuracy, ``informativeness_test``; the train accuracy is listed too) of each method against the reference, and the
CPU and wall seconds of each run (single process, ``n_jobs=1``, so that CPU seconds are this process's own).

Codes (each a deterministic function of the grid point plus, where said, per-sample noise):

* perfect         the factor classes as dimensions (one integer dimension per factor);
* mixed           the normalised classes times a fixed random K x K Gaussian matrix (every dimension mixes all);
* angle           the orientation factor as (cos, sin) of its angle, the other factors' normalised classes,
                  plus N(0, 0.02^2) noise;
* noise           10 dimensions of N(0, 1) noise, independent of the factors;
* near-collapsed  normalised classes plus N(0, 0.05^2) noise, every second factor's dimension shrunk to a
                  standard deviation of 1e-6 (consecutive values are ~1e-9 apart: almost all closer than
                  scikit-learn's 1e-7 tie threshold), plus two N(0, 1e-6^2) noise dimensions;
* near-collapsed-mild  the same with 1e-4 (consecutive values ~1e-7 apart: some ties, many not);
* constant-unit   normalised classes plus N(0, 0.05^2) noise, plus one dimension that is exactly 0.

The reference GBT takes minutes per 32- or 40-class factor; ``--reference-train`` scores the reference (and the
other methods, for a like-for-like comparison) on fewer training rows when asked, and the table says so. Results are
cached in ``--cache`` (a JSON file, one entry per grid/code/method/sample counts) so that reruns only compute what is
missing.

    python scripts/bench_dci_agreement.py                       # full protocol, all codes, both grids
    python scripts/bench_dci_agreement.py --grids 3dshapes --codes mixed angle --methods hist exact
    python scripts/bench_dci_agreement.py --timing              # DCI at the defaults on dSprites, 10-dim code
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from metrics import defaults
from metrics.dci import completeness, dci, disentanglement, importance_matrix
from metrics.sampling import split_indices

GRIDS: dict[str, tuple[int, ...]] = {
    "dsprites": (3, 6, 40, 32, 32),
    "3dshapes": (10, 10, 10, 8, 4, 15),
}
#: The factor whose classes are an angle (dSprites: orientation; 3D Shapes: orientation).
ANGLE_FACTOR = {"dsprites": 2, "3dshapes": 5}
CODES = ("perfect", "mixed", "angle", "noise", "near-collapsed", "near-collapsed-mild", "constant-unit")
METHODS = ("hist", "exact", "reference")


def make_code(name: str, grid: str, classes: np.ndarray, seed: int = 0) -> np.ndarray:
    """The code ``name`` of the factor classes (N, K) on ``grid`` (see the module docstring)."""
    sizes = np.array(GRIDS[grid])
    rng = np.random.default_rng([seed, CODES.index(name)])
    n, k = classes.shape
    unit = (classes + 0.5) / sizes  # normalised classes in (0, 1)
    if name == "perfect":
        return classes.astype(np.float64)
    if name == "mixed":
        return unit @ rng.normal(size=(k, k))
    if name == "angle":
        j = ANGLE_FACTOR[grid]
        theta = 2 * np.pi * classes[:, j] / sizes[j]
        rest = np.delete(unit, j, axis=1)
        code = np.column_stack([rest, np.cos(theta), np.sin(theta)])
        return code + 0.02 * rng.normal(size=code.shape)
    if name == "noise":
        return rng.normal(size=(n, 10))
    if name in ("near-collapsed", "near-collapsed-mild"):
        scale = 1e-6 if name == "near-collapsed" else 1e-4
        code = unit + 0.05 * rng.normal(size=unit.shape)
        code[:, 1::2] *= scale / code[:, 1::2].std(axis=0)
        return np.column_stack([code, scale * rng.normal(size=(n, 2))])
    if name == "constant-unit":
        code = unit + 0.05 * rng.normal(size=unit.shape)
        return np.column_stack([code, np.zeros(n)])
    raise ValueError(f"unknown code {name!r}")


def sample(grid: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` grid points drawn uniformly (factor classes, (n, K))."""
    return np.random.default_rng(seed).integers(0, np.array(GRIDS[grid]), size=(n, len(GRIDS[grid])))


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Result, CPU seconds (this process) and wall seconds of ``fn()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def score(grid: str, code: str, method: str, num_train: int, num_test: int) -> dict[str, float]:
    """DCI of one code with one method on ``num_train + num_test`` sampled grid points (single process).

    ``method`` is a DCI method, optionally ``@seed``: the classifiers' random state (default 0, as ``dci(seed=0)``)
    on the same train/test split; e.g. ``reference@1`` shows how much the reference moves with its tie-breaking.
    """
    name, _, gbt_seed = method.partition("@")
    classes = sample(grid, num_train + num_test)
    codes = make_code(code, grid, classes)
    if not gbt_seed:
        result, cpu, wall = measure(
            lambda: dci(codes, classes, num_train=num_train, num_test=num_test, method=name, n_jobs=1)
        )
        d = result.details
        return {
            "D": d["disentanglement"],
            "C": d["completeness"],
            "I": d["informativeness_test"],
            "I_train": d["informativeness_train"],
            "cpu_s": cpu,
            "wall_s": wall,
        }
    # dci()'s split and dropped factors, with another random state for the classifiers.
    train, test = split_indices(codes.shape[0], num_train, num_test, np.random.default_rng(defaults.SEED))
    kept = [j for j in range(classes.shape[1]) if np.unique(classes[train, j]).size > 1]
    (r, acc_train, acc_test), cpu, wall = measure(
        lambda: importance_matrix(
            codes[train],
            classes[train][:, kept],
            codes[test],
            classes[test][:, kept],
            method=name,
            seed=int(gbt_seed),
            n_jobs=1,
        )
    )
    return {
        "D": disentanglement(r),
        "C": completeness(r),
        "I": float(acc_test.mean()),
        "I_train": float(acc_train.mean()),
        "cpu_s": cpu,
        "wall_s": wall,
    }


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def save(path: Path, cache: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    os.replace(tmp, path)


def agreement(args: argparse.Namespace) -> None:
    cache_path = Path(args.cache)
    cache = load(cache_path)
    counts = (args.reference_train or args.num_train, args.num_test)
    if args.reference_train:
        print(
            f"NOTE: every method is scored on {counts[0]} training rows (not {args.num_train}) so that the "
            f"reference GBT stays affordable; test rows: {counts[1]}."
        )
    rows = []
    for grid in args.grids:
        for code in args.codes:
            results = {}
            for method in args.methods:
                key = f"{grid}/{code}/{method}/{counts[0]}/{counts[1]}"
                if key not in cache:
                    print(f"  scoring {key} ...", flush=True)
                    cache[key] = score(grid, code, method, *counts)
                    save(cache_path, cache)
                results[method] = cache[key]
            rows.append((grid, code, results))
    methods = [m for m in args.methods if m != "reference"]
    header = f"{'grid':9s} {'code':15s} {'method':7s} {'|dD|':>7s} {'|dC|':>7s} {'|dI|':>7s} {'|dItr|':>7s}"
    header += f" {'D':>6s} {'C':>6s} {'I':>6s} {'cpu s':>7s} {'wall s':>7s}"
    print(header)
    worst: dict[str, list[float]] = {m: [0.0, 0.0, 0.0] for m in methods}
    for grid, code, results in rows:
        ref = results.get("reference")
        for method in args.methods:
            r = results[method]
            if ref is not None and method != "reference":
                deltas = [abs(r[q] - ref[q]) for q in ("D", "C", "I", "I_train")]
                worst[method] = [max(a, b) for a, b in zip(worst[method], deltas[:3], strict=True)]
                delta_text = " ".join(f"{x:7.4f}" for x in deltas)
            else:
                delta_text = " ".join(f"{'':>7s}" for _ in range(4))
            print(
                f"{grid:9s} {code:15s} {method:7s} {delta_text} {r['D']:6.3f} {r['C']:6.3f} {r['I']:6.3f}"
                f" {r['cpu_s']:7.1f} {r['wall_s']:7.1f}"
            )
    if "reference" in args.methods:
        for method in methods:
            d, c, i = worst[method]
            print(f"max over the battery, {method:7s}: |dD| {d:.4f}  |dC| {c:.4f}  |dI| {i:.4f}")


def worker_cpu() -> float:
    """CPU seconds so far of this process's live child processes (the joblib workers; Linux /proc, else 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():  # ppid
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def timing(args: argparse.Namespace) -> None:
    """DCI at the defaults (10000/5000) on the dSprites factors with a 10-dim code: n_jobs=1 and the default."""
    classes = sample("dsprites", args.num_train + args.num_test, seed=1)
    rng = np.random.default_rng(2)
    sizes = np.array(GRIDS["dsprites"])
    w = np.eye(len(sizes), 10) + 0.2 * rng.normal(size=(len(sizes), 10))
    codes = (classes + 0.5) / sizes @ w + 0.05 * rng.normal(size=(classes.shape[0], 10))
    print(f"DCI timing: dSprites factors, 10-dim code, {args.num_train}/{args.num_test}")
    for method in args.methods:
        for jobs in sorted({1, defaults.N_JOBS}):

            def run(method: str = method, jobs: int = jobs) -> Any:
                return dci(codes, classes, num_train=args.num_train, num_test=args.num_test, method=method, n_jobs=jobs)

            workers = worker_cpu()
            result, cpu, wall = measure(run)
            cpu += max(0.0, worker_cpu() - workers)
            print(
                f"  {method:9s} n_jobs={jobs}: wall {wall:7.1f} s, CPU {cpu:7.1f} s (this process and its workers);"
                f" D {result.score:.4f} C {result.details['completeness']:.4f}"
                f" I {result.details['informativeness_test']:.4f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grids", nargs="+", choices=list(GRIDS), default=list(GRIDS))
    parser.add_argument("--codes", nargs="+", choices=CODES, default=list(CODES))
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), help=f"of {METHODS}, each optionally @seed (see score())"
    )
    parser.add_argument("--num-train", type=int, default=defaults.DCI.num_train)
    parser.add_argument("--num-test", type=int, default=defaults.DCI.num_test)
    parser.add_argument("--reference-train", type=int, default=None, help="score on this many training rows instead")
    parser.add_argument("--cache", default="outputs/bench/dci_agreement_cache.json")
    parser.add_argument("--timing", action="store_true", help="time DCI at the defaults instead (dSprites, 10 dims)")
    args = parser.parse_args()
    if args.timing:
        timing(args)
    else:
        agreement(args)


if __name__ == "__main__":
    main()
