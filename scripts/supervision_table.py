"""One results table grouped by what the learner saw: none, pairs, augment, then labels.

    python scripts/supervision_table.py outputs/final/disco3.json outputs/final/baselines1.json \\
        --columns mig mig_subspace dci dci/completeness activity/exclusivity probes \\
        --name "adagvae=Ada-GVAE" --saw "adagvae=that the two images form a pair" --out outputs/final/table.md

Reads the JSON files that ``scripts/results.py`` writes beside its tables (each row's supervision level and per-seed
scores), orders the rows by supervision level (rows of one level keep the order of ``--name``, then of the files),
and writes one Markdown table with a supervision column and, for rows given ``--saw``, what the learner saw in words;
medians over seeds with the per-seed values in brackets, as ``results.py`` prints them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from disco.cli import run_guarded
from disco.errors import ConfigError
from disco.train.checkpointing import atomic_write_text
from disco.train.experiment import load_results, median_table

LEVELS = ("none", "pairs", "augment", "labels")


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad {flag} {item!r}; write {flag} ROW=TEXT")
        out[key.strip()] = value.strip()
    return out


def grouped(table: dict[str, dict[str, Any]], order: list[str]) -> list[str]:
    """Row names ordered by supervision level (``LEVELS``; unknown levels last), then by ``order``, then as given."""
    rank = {name: i for i, name in enumerate([*order, *(n for n in table if n not in order)])}

    def key(name: str) -> tuple[int, int]:
        level = str(table[name]["supervision"])
        return (LEVELS.index(level) if level in LEVELS else len(LEVELS), rank[name])

    return sorted(table, key=key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", type=Path, help="JSON files written by scripts/results.py")
    parser.add_argument("--columns", nargs="+", default=["mig", "dci", "activity", "probes"])
    parser.add_argument("--name", action="append", default=[], help="ROW=display name (also fixes the row order)")
    parser.add_argument("--saw", action="append", default=[], help="ROW=what the learner saw, in words")
    parser.add_argument("--out", type=Path, default=Path("outputs/supervision_table.md"))
    args = parser.parse_args(argv)

    def run() -> int:
        names, saw = _pairs(args.name, "--name"), _pairs(args.saw, "--saw")
        table = load_results(args.tables)
        unknown = sorted((set(names) | set(saw)) - set(table))
        if unknown:
            raise ConfigError(f"--name/--saw row {unknown[0]!r} is in none of the tables; rows: {', '.join(table)}")
        rows = grouped(table, list(names))
        shown = {name: names.get(name, name) for name in rows}
        text = median_table(
            {shown[n]: table[n]["runs"] for n in rows},
            args.columns,
            supervision={shown[n]: str(table[n]["supervision"]) for n in rows},
            saw={shown[n]: saw.get(n, "") for n in rows},
        )
        atomic_write_text(args.out, text)
        print(text, end="")
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    sys.exit(main())
