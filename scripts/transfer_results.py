"""Transfer table: per target domain, one row per alignment term (and combinations), N seeds, median scores.

    python scripts/transfer_results.py                                   # noisy target, every row, 3 seeds, 300 steps
    python scripts/transfer_results.py --targets color texture --rows none mmd+moco --seeds 3 --max-steps 300
    python scripts/transfer_results.py --subsample orientation=8,pos_x=4,pos_y=4 --seeds 1 --max-steps 3   # smoke
    python scripts/transfer_results.py --replica shapes3d --dataset data/shapes3d.h5 --targets shift --rows none triplet

Every run trains ``configs/transfer_dsprites.yaml`` (plain RGB source, per-subspace contrastive term with factor
classes, a private ``domain`` subspace) on the dSprites replica with the row's ``objective.alignment`` terms; every
aligned row also has ``domain_head`` (weight ``--domain-head``, default 0.1) on the private subspace. Each finished encoder is scored on 10,000
held-out rows rendered in the source and in the target (:func:`disco.evaluate_transfer.transfer_scores`). A row name
joins terms with ``+`` (``mmd+moco``). Runs write to outputs/transfer/<target>/<row>/seed<k>/, per-run scores to
scores.json there (a finished run is not retrained unless ``--force``), the table to ``--out`` and stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from disco.cli import run_guarded
from disco.errors import ConfigError
from disco.train.checkpointing import atomic_write_text
from disco.train.experiment import ensure_replica, parse_subsample

#: One alignment term per row name; weights put each term's loss at the scale of the contrastive term (~1-5).
TERMS: dict[str, str] = {
    "mmd": "{kind: mmd, weight: 1.0}",
    "coral": "{kind: coral, weight: 50.0}",
    "dann": "{kind: dann, weight: 1.0}",
    "moco": "{kind: moco, weight: 1.0, kwargs: {similarity: neg_sq_dist}}",
    "margin": "{kind: margin, weight: 1.0}",
    "triplet": "{kind: triplet, weight: 3.0}",
    "center": "{kind: center, weight: 1.0}",
    "factor_nce": "{kind: factor_nce, weight: 1.0}",
    # triplet and margin switched on after the code has formed (from step 100, full weight at 200): from step 0 they
    # hold the code at its initial scale and, on texture, keep it collapsed for the whole run
    "triplet_w": "{kind: triplet, weight: 3.0, schedule: {kind: linear, delay_steps: 100, warmup_steps: 100}}",
    "margin_w": "{kind: margin, weight: 1.0, schedule: {kind: linear, delay_steps: 100, warmup_steps: 100}}",
    # triplet_w with margin 1.0 instead of 0.2: batch-hard triplets stop pulling a pair's renders together once they
    # are 0.2 closer than the hardest negative, which leaves the target codes jittered around the source codes
    "tripm1": "{kind: triplet, weight: 3.0, kwargs: {margin: 1.0}, schedule: {kind: linear, delay_steps: 100, "
    "warmup_steps: 100}}",
}
DOMAIN_HEAD = "{kind: domain_head, weight: %s}"
DOMAIN_HEAD_PURE = "{kind: domain_head, weight: %s, kwargs: {purity: %s}}"
ROWS = ("none", *TERMS)
COLUMNS = (
    ("source_mig", "source MIG"),
    ("target_mig", "target MIG"),
    ("transfer_probe", "transfer probe"),
    ("transfer_ratio", "transfer / in-domain"),
    ("domain_acc_shared", "domain acc. shared"),
    ("domain_acc_private", "domain acc. private"),
)


def alignment_yaml(row: str, domain_head: float = 1.0, purity: float = 0.0) -> str:
    """The ``objective.alignment`` list of row ``row`` (``none``, a term, or terms joined with ``+``), with a
    ``domain_head`` of weight ``domain_head`` (and kwarg ``purity`` when > 0) on the private subspace (none when 0)."""
    if row == "none":
        return "[]"
    parts = row.split("+")
    unknown = [p for p in parts if p not in TERMS]
    if unknown:
        raise ConfigError(f"unknown row term {unknown[0]!r}; choose from none, {', '.join(TERMS)} (join with +)")
    entry = DOMAIN_HEAD_PURE % (domain_head, purity) if purity else DOMAIN_HEAD % domain_head
    head = [entry] if domain_head else []
    return "[" + ", ".join([TERMS[p] for p in parts] + head) + "]"


def run_one(config: str, dataset: str, target: str, row: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one run (or read its finished scores) and score it; ``supervision`` says what the learner saw."""
    from disco.data.domains import make_domain
    from disco.evaluate_transfer import transfer_scores
    from disco.train.cli import parse_config
    from disco.train.run import train

    run_dir = Path(args.runs) / target / row / f"seed{seed}"
    record = run_dir / "scores.json"
    if record.is_file() and not args.force:
        saved = json.loads(record.read_text())
        return {**saved["scores"], "supervision": saved["supervision"]}
    alignment = alignment_yaml(row, args.domain_head, args.domain_purity)
    cfg = parse_config(
        [
            "--config", config, f"--data.dataset={dataset}", f"--data.target.domain={target}",
            f"--objective.alignment={alignment}", f"--seed={seed}", f"--run_dir={run_dir}",
            f"--trainer.max_steps={args.max_steps}", "--eval.at_end=false", "--logger=none", "--overwrite=true",
            "--trainer.progress_bar=false", *args.overrides,
        ]
    )  # fmt: skip
    start = time.perf_counter()
    result = train(cfg)
    took = time.perf_counter() - start
    encoder = result.module.encoder.eval()
    datamodule = result.trainer.datamodule  # type: ignore[attr-defined]
    data = datamodule.data
    source = datamodule.source_domain or make_domain("plain")
    scores = transfer_scores(
        encoder, data, result.module.spec, source, make_domain(target, cfg.data.target.seed), seed=seed
    )
    scores["train_seconds"] = took
    seen = f"{result.module.supervision} (source); target: {result.module.target_supervision or 'unseen'}"
    meta = {"row": row, "target": target, "seed": seed, "supervision": seen, "scores": scores}
    atomic_write_text(record, json.dumps(meta, indent=2))
    del result, encoder, data, datamodule
    gc.collect()
    return {**scores, "supervision": seen}


def table(target: str, rows: dict[str, list[dict[str, Any]]]) -> str:
    head = "| alignment | supervision | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [f"**target: {target}**", "", head, "|---|---|---:|" + "---:|" * len(COLUMNS)]
    for name, runs in rows.items():
        cells = []
        for key, _ in COLUMNS:
            vals = [r[key] for r in runs if math.isfinite(r.get(key, float("nan")))]
            med = f"{statistics.median(vals):.3f}" if vals else "n/a"
            cells.append(med + (f" ({', '.join(f'{v:.2f}' for v in vals)})" if len(vals) > 1 else ""))
        lines.append(f"| {name} | {runs[0]['supervision']} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replica", default="dsprites", choices=("dsprites", "shapes3d"))
    parser.add_argument("--config", default=None, help="default: configs/transfer_<replica>.yaml")
    parser.add_argument("--targets", nargs="+", default=["noisy"])
    parser.add_argument("--rows", nargs="+", default=list(ROWS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--first-seed", type=int, default=0,
        help="seeds FIRST..FIRST+SEEDS-1 (run seeds in parallel processes on one --runs folder, then table them all)",
    )  # fmt: skip
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--dataset", default=None, help="dataset file; default: make/use a dSprites replica")
    parser.add_argument("--subsample", default=None, help="replica subsampling, e.g. orientation=4,pos_x=2")
    parser.add_argument("--runs", default="outputs/transfer")
    parser.add_argument("--domain-head", type=float, default=0.1, help="weight of domain_head in aligned rows (0: off)")
    parser.add_argument("--domain-purity", type=float, default=0.0, help="domain_head kwarg purity in aligned rows")
    parser.add_argument("--out", default="outputs/transfer.md")
    parser.add_argument("--force", action="store_true", help="retrain runs that already have scores")
    parser.add_argument(
        "--term", action="append", default=[], metavar="NAME=ENTRY",
        help="define a row term, e.g. 'mmd1={kind: mmd, weight: 1.0}' (repeatable)",
    )  # fmt: skip
    args, overrides = parser.parse_known_args(argv)
    args.overrides = overrides

    def run() -> int:
        from disco.data.domains import DOMAINS

        for item in args.term:
            name, sep, entry = item.partition("=")
            if not sep or not name.strip().isidentifier() or not entry.strip().startswith("{"):
                raise ConfigError(f"bad --term {item!r}; write NAME={{kind: ..., weight: ...}}")
            TERMS[name.strip()] = entry.strip()

        for row in args.rows:
            alignment_yaml(row)  # every row name is checked before any training
        bad = [t for t in args.targets if t not in DOMAINS]
        if bad:
            raise ConfigError(f"unknown --targets {bad[0]!r}; choose from {', '.join(DOMAINS)}")
        dataset = ensure_replica(args.replica, args.dataset, parse_subsample(args.subsample))
        config = args.config or f"configs/transfer_{args.replica}.yaml"
        out = [f"{args.max_steps} steps per run, batch 64 pairs + 64 cross-domain pairs; median (per-seed values)\n"]
        for target in args.targets:
            rows: dict[str, list[dict[str, Any]]] = {}
            for row in args.rows:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    scores = run_one(config, dataset, target, row, seed, args)
                    rows.setdefault(row, []).append(scores)
                    shown = ", ".join(f"{k}={scores[k]:.3f}" for k, _ in COLUMNS)
                    print(f"{target} {row} seed {seed}: {shown} ({scores['train_seconds']:.0f} s)", flush=True)
            out.append(table(target, rows))
        text = "\n".join(out)
        atomic_write_text(args.out, text)
        print(text)
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
