"""MIG against training steps, one line per row of a results table, coloured by what the learner saw.

    python scripts/plot_mig_steps.py outputs/results.json --out docs/mig_vs_steps.png

Reads the JSON that ``scripts/results.py`` writes beside its table (rows, their supervision and run folders) and each
run's ``metrics.json`` history (periodic evaluations: train the table with ``--eval.every_n_steps=N
--eval.periodic=[mig]``); plots the median over seeds at every evaluated step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from disco.cli import run_guarded
from disco.errors import ConfigError
from disco.train.experiment import load_results

COLOURS = {"none": "tab:grey", "augment": "tab:orange", "pairs": "tab:blue", "labels": "tab:green"}
STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "v", "D")


def curves(table: dict[str, dict[str, Any]], metric: str = "mig") -> dict[str, tuple[str, list[int], list[float]]]:
    """Row -> (supervision, steps, median ``metric`` over the row's seeds at each step all seeds evaluated)."""
    out: dict[str, tuple[str, list[int], list[float]]] = {}
    for name, row in table.items():
        by_step: dict[int, list[float]] = {}
        runs = [Path(str(d)) for d in row.get("run_dirs", [])]
        for run in runs:
            record = json.loads((run / "metrics.json").read_text())
            for entry in record.get("history", []):
                if metric in entry:
                    by_step.setdefault(int(entry["step"]), []).append(float(entry[metric]))
        steps = sorted(s for s, v in by_step.items() if len(v) == len(runs))
        if steps:
            out[name] = (str(row["supervision"]), steps, [statistics.median(by_step[s]) for s in steps])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", type=Path, help="JSON files written by scripts/results.py")
    parser.add_argument("--out", type=Path, default=Path("outputs/mig_vs_steps.png"))
    parser.add_argument("--metric", default="mig")
    parser.add_argument("--title", default="dSprites replica, held-out MIG (median of seeds)")
    args = parser.parse_args(argv)

    def run() -> int:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        lines = curves(load_results(args.tables), args.metric)
        if not lines:
            raise ConfigError(
                "no run has periodic evaluations; train with --eval.every_n_steps=N --eval.periodic=[mig]"
            )
        fig, ax = plt.subplots(figsize=(7, 4.2))
        used: dict[str, int] = {}
        for name, (level, steps, values) in lines.items():
            k = used.get(level, 0)  # the k-th row of its level: a line style and a marker of its own
            used[level] = k + 1
            style, marker = STYLES[k % len(STYLES)], MARKERS[k % len(MARKERS)]
            colour = COLOURS.get(level, "black")
            ax.plot(steps, values, style, marker=marker, ms=4, color=colour, label=f"{name} ({level})")
        ax.set_xlabel("training steps")
        ax.set_ylabel(args.metric)
        ax.set_title(args.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        tmp.replace(args.out)
        print(f"wrote {args.out} ({len(lines)} lines)")
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    sys.exit(main())
