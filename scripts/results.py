"""Results table: N seeds of each config, each under a time budget; the median held-out scores as Markdown.

    python scripts/results.py                                       # disco default, β-VAE, β-TCVAE × 3 seeds, 15 min each
    python scripts/results.py --configs configs/dsprites.yaml configs/ablations/with_dcor.yaml --seeds 5 --max-minutes 60
    python scripts/results.py --replica shapes3d --max-steps 600 --max-minutes 0    # a step budget, load-independent
    python scripts/results.py --subsample orientation=4 --max-minutes 1 --seeds 1 --set trainer.max_steps=20   # smoke
    python scripts/results.py --configs --row "pairs_c1=configs/dsprites_pairs.yaml --data.pair_mode=change_one" \
        --max-steps 600 --max-minutes 0 --columns mig mig_subspace dci dci/completeness activity/exclusivity probes

``--row NAME=CONFIG [OVERRIDES]`` adds a named row (a config with its own overrides, e.g. an ablation or a study
variant). Each run writes to outputs/results/<dataset file stem>/<row>/seed<k>/; the table goes to ``--out`` (default outputs/results.md,
written atomically) and to stdout, with a supervision column (what each config's learner saw: none, augment, pairs or
labels). Extra arguments are config overrides applied to every run.

``--reuse`` keeps every seed whose folder already holds a finished run of exactly the same config (saved in its
checkpoint) and trains only the others, e.g. to add seeds 1 and 2 to a table run with ``--seeds 1``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from disco.cli import run_guarded
from disco.errors import ConfigError
from disco.train.checkpointing import atomic_write_text
from disco.train.experiment import (
    HEADLINE,
    config_supervision,
    ensure_replica,
    finished_scores,
    median_table,
    parse_subsample,
    train_config,
)

DEFAULT_CONFIGS = ("configs/dsprites.yaml", "configs/betavae.yaml", "configs/betatcvae.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="*", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--row", action="append", default=[], help='named row: "NAME=CONFIG --key=value ..."')
    parser.add_argument(
        "--columns", nargs="+", default=list(HEADLINE), help="scores in the table (metric or metric/detail)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-minutes", type=float, default=15.0, help="wall-clock budget of each run; 0: none")
    parser.add_argument("--max-steps", type=int, default=None, help="step budget of each run (default: the config's)")
    parser.add_argument("--dataset", default=None, help="dataset file; default: make/use a dSprites replica")
    parser.add_argument("--replica", default="dsprites", choices=("dsprites", "shapes3d"))
    parser.add_argument("--subsample", default=None, help="replica subsampling, e.g. orientation=4,pos_x=2")
    parser.add_argument("--out", default="outputs/results.md")
    parser.add_argument("--force", action="store_true", help="replace the run folders of an earlier table")
    parser.add_argument("--reuse", action="store_true", help="keep finished runs of the same config; train the rest")
    args, overrides = parser.parse_known_args(argv)

    def run() -> int:
        dataset = ensure_replica(args.replica, args.dataset, parse_subsample(args.subsample))
        plan = [(Path(c).stem, c, list(overrides)) for c in args.configs] + [_row(r, overrides) for r in args.row]
        if len({name for name, _, _ in plan}) < len(plan):
            raise ConfigError("two rows have the same name; give each --row its own NAME")
        metrics = sorted({c.split("/")[0] for c in args.columns})
        rows: dict[str, list[dict[str, float]]] = {}
        run_dirs: dict[str, list[str]] = {}
        supervision = {name: config_supervision(c, extra) for name, c, extra in plan}  # checks every config now
        scored = {name: _applicable(metrics, c, extra, name) for name, c, extra in plan}
        folder = Path("outputs/results") / Path(dataset).stem

        def seed_dir(name: str, seed: int) -> Path:
            return folder / name / f"seed{seed}"

        def run_args(name: str, seed: int, extra: list[str]) -> list[str]:
            budget = [f"--trainer.max_minutes={args.max_minutes or 'null'}"]
            budget += [f"--trainer.max_steps={args.max_steps}"] if args.max_steps else []
            return [f"--seed={seed}", f"--run_dir={seed_dir(name, seed)}", *budget,
                    f"--eval.final=[{', '.join(scored[name])}]", *extra]  # fmt: skip

        seeds = [(name, config, extra, seed) for name, config, extra in plan for seed in range(args.seeds)]
        reused: dict[tuple[str, int], dict[str, float]] = {}
        for name, config, extra, seed in seeds if args.reuse else []:
            done = finished_scores(config, dataset, run_args(name, seed, extra), seed_dir(name, seed), scored[name])
            if done is not None:
                reused[name, seed] = done
        taken = [
            str(seed_dir(name, seed))
            for name, _, _, seed in seeds
            if (name, seed) not in reused and any(seed_dir(name, seed).glob("checkpoints/*.ckpt"))
        ]
        if taken and not args.force:
            raise ConfigError(
                f"{taken[0]} holds a run of an earlier table"
                + (" with another config" if args.reuse else "")
                + "; pass --force to replace it, --reuse to keep finished runs of the same config, or rename the row"
            )
        for name, config, extra, seed in seeds:
            run_dir = seed_dir(name, seed)
            start = time.perf_counter()
            if (name, seed) in reused:
                scores = reused[name, seed]
                print(f"{name} seed {seed}: reused {run_dir}", flush=True)
            else:
                force = ["--overwrite=true"] if args.force else []
                scores = train_config(config, dataset, [*force, *run_args(name, seed, extra)])
            rows.setdefault(name, []).append(scores)
            run_dirs.setdefault(name, []).append(str(run_dir))
            took = time.perf_counter() - start
            print(f"{name} seed {seed}: " + ", ".join(f"{m}={scores.get(m, float('nan')):.3f}" for m in args.columns)
                  + f" ({took:.0f} s)", flush=True)  # fmt: skip
        table = median_table(rows, args.columns, supervision=supervision)
        budget = (
            " and ".join(
                ([f"{args.max_minutes} min"] if args.max_minutes else [])
                + ([f"{args.max_steps} steps"] if args.max_steps else [])
            )
            or "the config's steps"
        )
        header = (
            f"# Held-out results (median over {args.seeds} seeds; per-seed values in brackets)\n\n"
            f"dataset: {dataset}; budget per run: {budget}; overrides: {' '.join(overrides) or 'none'}\n\n"
        )
        out = Path(args.out)
        raw = {
            name: {"supervision": supervision[name], "runs": runs, "run_dirs": run_dirs[name]}
            for name, runs in rows.items()
        }
        atomic_write_text(out, header + table)
        atomic_write_text(out.with_suffix(".json"), json.dumps(raw, indent=2))
        print(table, end="")
        print(f"wrote {out}")
        return 0

    return run_guarded(run)


def _applicable(metrics: list[str], config: str, overrides: list[str], name: str) -> list[str]:
    """``metrics`` without those the row's code cannot have (mig_subspace needs two subspaces or more); the table
    shows n/a for them."""
    from disco.models.subspaces import SubspaceSpec
    from disco.train.cli import parse_config

    spec = SubspaceSpec.parse(parse_config(["--config", config, *overrides]).model.subspaces)
    if "mig_subspace" in metrics and len(spec.names) < 2:
        print(f"{name}: one subspace ({spec.names[0]}), so no mig_subspace (n/a in the table)", flush=True)
        return [m for m in metrics if m != "mig_subspace"]
    return metrics


def _row(text: str, overrides: list[str]) -> tuple[str, str, list[str]]:
    """``"NAME=CONFIG --key=value ..."`` → (name, config, overrides common to every row + the row's own)."""
    name, sep, rest = text.partition("=")
    words = shlex.split(rest)
    if not sep or not name.strip() or not words:
        raise ConfigError(f"bad --row {text!r}; write NAME=CONFIG [--key=value ...]")
    return name.strip(), words[0], [*overrides, *words[1:]]


if __name__ == "__main__":
    sys.exit(main())
