"""When does each fusion help? Single views vs early, intermediate and late fusion on synthetic two-view codes.

Draws ``--rows`` grid points uniformly on the dSprites factor grid (shape 3, scale 6, orientation 40, pos_x 32,
pos_y 32 classes: colour dropped) and builds two views' codes of them, each with one 2-dim subspace per factor, in
factor order (10 dims per view). A view that CARRIES a factor encodes its class as a point on a curve: orientation (an
angle) as (cos, sin) of 2π·class/40, every other factor on the half circle (cos, sin) of π·class/(n−1), plus
independent N(0, ``--noise``²) noise per view; a view that does not carry a factor has N(0, 0.5²) noise of the same
width there instead. Scenarios:

* redundant       both views carry every factor (independent noise);
* complementary   view a carries shape, scale, orientation; view b carries pos_x, pos_y;
* redundant, b corrupted       the redundant models tested with view b + N(0, (s·σ_j)²) noise (s = ``--corrupt``,
                               σ_j the column's training std; metrics/fusion.py, ``corrupt=("b", "noise", s)``);
* complementary, b corrupted   the same for the complementary views;
* ..., b corrupted, trained with corruption   the same test, with every model trained on codes whose view b is
                               corrupted the same way in ``--train-corrupt`` of the training rows (``train_corrupt``:
                               corruption-aware training, ModDrop-style).

The corrupted rows come from the same call as the clean ones (``details["clean_accuracy"]``): one training per view
pair. Each cell is the mean held-out accuracy over the five factors (``fusion_probes``: logistic probes on each view,
early = probe on [a, b], late = mean of the two probes' probabilities, intermediate = cross-attention over the
subspace tokens), trained on half of the rows and tested on the other half. Prints a markdown table and the runtime.

    python scripts/fusion_table.py                    # 6000 rows, seed 0
    python scripts/fusion_table.py --rows 10000 --seed 1

With ``--encoder`` (a disco checkpoint or TorchScript file) the two views are REAL codes instead: ``--rows`` held-out
rows of ``--dataset`` rendered in the two ``--domains`` (default plain and noisy; :mod:`disco.data.domains`) and encoded
by the encoder, with the subspaces of its checkpoint as tokens; scenarios: clean, view b corrupted by noise, view b
missing (mean code) for half of the test rows, and (``--train-corrupt``) both corruptions with corruption-aware training.

    python scripts/fusion_table.py --encoder outputs/transfer/noisy/mmd/seed0/checkpoints/last.ckpt \
        --dataset data/dsprites.h5 --rows 10000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from metrics.fusion import fusion_probes
from metrics.types import MetricResult

#: dSprites factor grid without colour, and its factor names.
SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "pos_x", "pos_y")
#: The factor whose classes are an angle (a full circle).
ANGLE_FACTOR = 2
#: Std of the filler noise in the subspace of a factor that a view does not carry.
FILLER_STD = 0.5
COLUMNS = ("view_a", "view_b", "early", "intermediate", "late")


def view_codes(classes: np.ndarray, carried: set[int], noise: float, rng: np.random.Generator) -> np.ndarray:
    """One view's codes (N, 2K) of the factor classes (N, K): the carried factors on a curve plus noise, filler noise
    in the others (module docstring)."""
    cols = []
    for k, size in enumerate(SIZES):
        if k in carried:
            angle = 2 * np.pi * classes[:, k] / size if k == ANGLE_FACTOR else np.pi * classes[:, k] / (size - 1)
            point = np.column_stack([np.cos(angle), np.sin(angle)])
            cols.append(point + noise * rng.normal(size=point.shape))
        else:
            cols.append(FILLER_STD * rng.normal(size=(classes.shape[0], 2)))
    return np.hstack(cols)


def run(
    rows: int, seed: int, noise: float, corrupt: float, train_corrupt: float = 0.5
) -> tuple[list[tuple[str, dict[str, float]]], float]:
    """The table's rows ``(scenario, {method: mean accuracy})`` and the wall seconds of the fusion runs."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, SIZES, size=(rows, len(SIZES)))
    everything = set(range(len(SIZES)))
    views = {
        "redundant": (everything, everything),
        "complementary": ({0, 1, 2}, {3, 4}),
    }
    subspaces = [(name, 2) for name in NAMES]
    table: list[tuple[str, dict[str, float]]] = []
    corrupted: list[tuple[str, dict[str, float]]] = []
    aware: list[tuple[str, dict[str, float]]] = []
    start = time.perf_counter()
    for scenario, (carried_a, carried_b) in views.items():
        a = view_codes(classes, carried_a, noise, rng)
        b = view_codes(classes, carried_b, noise, rng)
        common: dict[str, Any] = {
            "subspaces": subspaces,
            "seed": seed,
            "num_train": rows // 2,
            "num_test": rows - rows // 2,
            "corrupt": ("b", "noise", corrupt),
            "factor_names": NAMES,
        }
        result: MetricResult = fusion_probes(a, b, classes, **common)
        table.append((scenario, result.details["clean_mean_accuracy"]))
        corrupted.append((f"{scenario}, b corrupted", result.details["mean_accuracy"]))
        if train_corrupt > 0:
            trained = fusion_probes(a, b, classes, train_corrupt=train_corrupt, **common)
            label = f"{scenario}, b corrupted, trained with corruption ({train_corrupt:g} of rows)"
            aware.append((label, trained.details["mean_accuracy"]))
            aware.append((f"{scenario}, clean, trained with corruption", trained.details["clean_mean_accuracy"]))
    return table + corrupted + aware, time.perf_counter() - start


def run_encoder(
    path: str, dataset: str, domains: list[str], rows: int, seed: int, corrupt: float, train_corrupt: float = 0.5
) -> tuple[list[tuple[str, dict[str, float]]], float]:
    """The table's rows on real codes: ``rows`` held-out rows of ``dataset`` in two domains, encoded by ``path``; with
    ``train_corrupt`` > 0 also each corruption with corruption-aware training (that share of training rows corrupted the
    same way) and the clean test of those models."""
    from disco.data.datasets import load_dataset
    from disco.data.domains import make_domain
    from disco.evaluate import Representer, select_rows
    from disco.models.checkpoint import load_any_encoder

    loaded = load_any_encoder(path)
    data = load_dataset(dataset)
    picked = select_rows(len(data.images), "test", int(loaded.info.get("split_seed", 0)), limit=rows, sample_seed=seed)
    encoder = loaded.module.eval()
    a, b = (
        Representer(encoder, data, domain=make_domain(d, seed=i)).encode_rows(picked) for i, d in enumerate(domains)
    )
    classes = data.classes[picked].numpy()
    spec = loaded.subspaces
    subspaces = None if spec is None else [(s.name, s.width) for s in spec]
    names = tuple(data.factors.names)
    half = len(picked) // 2
    common: dict[str, Any] = {"subspaces": subspaces, "seed": seed, "num_train": half, "num_test": len(picked) - half}
    start = time.perf_counter()
    scenarios = (
        (f"{domains[1]} corrupted (noise {corrupt}σ)", ("b", "noise", corrupt)),
        (f"{domains[1]} missing in half the test rows", ("b", "drop", 0.5)),
    )
    plain = [fusion_probes(a, b, classes, corrupt=how, factor_names=names, **common) for _, how in scenarios]
    table = [(f"{domains[0]} + {domains[1]}", plain[0].details["clean_mean_accuracy"])]
    table += [(label, result.details["mean_accuracy"]) for (label, _), result in zip(scenarios, plain, strict=True)]
    for label, how in scenarios if train_corrupt > 0 else ():
        aware = fusion_probes(a, b, classes, corrupt=how, train_corrupt=train_corrupt, factor_names=names, **common)
        table.append((f"{label}, trained with corruption ({train_corrupt:g} of rows)", aware.details["mean_accuracy"]))
        table.append(
            (f"{domains[0]} + {domains[1]} clean, trained with {how[1]}", aware.details["clean_mean_accuracy"])
        )
    return table, time.perf_counter() - start


def markdown(rows: list[tuple[str, dict[str, float]]]) -> str:
    """A markdown table: one row per scenario, one column per method, the best of each row in bold."""
    lines = ["| scenario | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for scenario, mean in rows:
        best = max(mean[m] for m in COLUMNS)
        cells = [f"**{mean[m]:.3f}**" if mean[m] == best else f"{mean[m]:.3f}" for m in COLUMNS]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000, help="grid points drawn (half train, half test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the grid points, the codes and the models")
    parser.add_argument("--noise", type=float, default=0.1, help="std of each view's code noise")
    parser.add_argument("--corrupt", type=float, default=3.0, help="test-time noise on view b, in training stds")
    parser.add_argument(
        "--train-corrupt",
        type=float,
        default=0.5,
        help="share of training rows with view b corrupted (0: no such rows)",
    )
    parser.add_argument("--encoder", default=None, help="score real codes of this encoder instead of synthetic ones")
    parser.add_argument("--dataset", default="data/dsprites.h5", help="with --encoder: the labelled dataset")
    parser.add_argument("--domains", nargs=2, default=["plain", "noisy"], help="with --encoder: the two views' domains")
    args = parser.parse_args()
    if args.encoder:
        rows, seconds = run_encoder(
            args.encoder, args.dataset, args.domains, args.rows, args.seed, args.corrupt, args.train_corrupt
        )
    else:
        rows, seconds = run(args.rows, args.seed, args.noise, args.corrupt, args.train_corrupt)
    print(markdown(rows))
    print(f"\n{args.rows} rows, seed {args.seed}, noise {args.noise}, corruption {args.corrupt}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
