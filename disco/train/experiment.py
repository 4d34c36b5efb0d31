"""Helpers of the runnable scripts (``scripts/train_*.py``, ``scripts/results.py``): make a replica when no dataset is
given, train a config with overrides, and format the held-out metric table."""

from __future__ import annotations

import gc
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from disco.errors import ConfigError

HEADLINE = ("mig", "dci", "activity", "probes")


def parse_subsample(text: str | None) -> dict[str, int]:
    """``"scale=2,orientation=4"`` → ``{"scale": 2, "orientation": 4}`` (keep every step-th value of those factors)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, step = part.partition("=")
        if not sep or not step.strip().isdigit() or int(step) < 1:
            raise ConfigError(f"bad --subsample entry {part!r}; write factor=step, e.g. orientation=4,pos_x=2")
        out[name.strip()] = int(step)
    return out


def ensure_replica(name: str, dataset: str | None, subsample: Mapping[str, int], data_dir: str | Path = "data") -> str:
    """The dataset to train on: ``dataset`` if given, else a replica of ``name`` under ``data_dir`` (made if missing;
    subsampled replicas get their own file name)."""
    if dataset:
        return dataset
    from disco.data.replicas import make_replica

    tag = "_".join(f"{k}{v}" for k, v in sorted(subsample.items()))
    path = Path(data_dir) / (f"{name}_replica_{tag}.h5" if tag else f"{name}_replica.h5")
    if not path.is_file():
        print(f"making the {name} replica {path} (once) ...", flush=True)
        make_replica(name, path, dict(subsample) or None)
    return str(path)


def train_config(config: str | Path, dataset: str, overrides: Sequence[str]) -> dict[str, float]:
    """Train ``config`` on ``dataset`` with command-line ``overrides``; returns the final held-out scores.

    The run's Trainer, module, callbacks and data module reference each other, so their images (5.6 GiB for 3D Shapes)
    would outlive the run until Python's cyclic collector happens to run; the cycle is collected here so that a process
    training several runs in turn holds one dataset at a time."""
    from disco.train.callbacks import flat_scores
    from disco.train.cli import parse_config
    from disco.train.run import train

    cfg = parse_config(["--config", str(config), f"--data.dataset={dataset}", *overrides])
    result = train(cfg)
    final = result.evaluation.final if result.evaluation is not None else None
    scores = flat_scores(final) if final else {}
    del result, final
    gc.collect()
    return scores


def finished_scores(
    config: str | Path, dataset: str, overrides: Sequence[str], run_dir: str | Path, metrics: Sequence[str]
) -> dict[str, float] | None:
    """The final held-out scores of a run already in ``run_dir`` that :func:`train_config` would train again with
    these arguments, or None when there is none to reuse.

    A run is reused only when its ``checkpoints/last.ckpt`` saved this config, its ``metrics.json`` was written at the
    checkpoint's step (training finished and was scored) and it holds every metric in ``metrics``. Compared: every
    field but ``overwrite`` and ``run_dir`` (this folder, however it was spelt); keys added to the config since the run
    read as their defaults; an objective term of weight 0 is never built, so only its weight counts."""
    from disco.train.checkpointing import load_checkpoint
    from disco.train.cli import parse_config
    from disco.train.config import to_plain

    folder = Path(run_dir)
    ckpt, scores_file = folder / "checkpoints" / "last.ckpt", folder / "metrics.json"
    if not (ckpt.is_file() and scores_file.is_file()):
        return None
    want = to_plain(parse_config(["--config", str(config), f"--data.dataset={dataset}", *overrides]))
    saved = load_checkpoint(ckpt)
    stored = saved.get("disco", {}).get("config")
    if not isinstance(stored, dict):
        return None
    try:  # keys added to the config since the run was saved take their defaults (the behaviour it trained with)
        config_saved = to_plain(parse_config([], base=stored))
    except ConfigError:
        return None
    for plain in (want, config_saved):
        plain.pop("overwrite", None)
        plain.pop("run_dir", None)
        objective = plain.get("objective", {})
        for name, section in objective.items():
            if isinstance(section, dict) and section.get("weight") == 0:
                objective[name] = {"weight": 0}
    record = json.loads(scores_file.read_text())
    scores = record.get("scores", {})
    if config_saved != want or record.get("step") != saved.get("global_step") or not set(metrics) <= set(scores):
        return None
    return {str(k): float(v) for k, v in scores.items()}


def config_supervision(config: str | Path, overrides: Sequence[str] = ()) -> str:
    """The supervision level a config's runs use (:func:`disco.data.supervision.resolve_supervision`), read without
    loading any data."""
    from disco.data.supervision import resolve_supervision
    from disco.train.cli import parse_config

    cfg = parse_config(["--config", str(config), *overrides])
    return resolve_supervision(cfg.data.supervision, cfg.objective)


def load_results(paths: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """The rows of the JSON files ``scripts/results.py`` writes beside its tables (supervision, runs, run folders),
    merged in order; a missing file is one :class:`ConfigError` line."""
    table: dict[str, dict[str, Any]] = {}
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"{path} does not exist; give the .json that scripts/results.py wrote")
        table.update(json.loads(Path(path).read_text()))
    return table


def median_table(
    rows: Mapping[str, Sequence[Mapping[str, float]]],
    metrics: Sequence[str] = HEADLINE,
    supervision: Mapping[str, str] | None = None,
    saw: Mapping[str, str] | None = None,
) -> str:
    """Markdown table: one row per config, the median over seeds of each metric, per-seed values in brackets; with
    ``supervision`` (config -> level) a column says what each config's learner saw, and ``saw`` (config -> text) adds
    a column that says it in words."""
    sup = supervision is not None
    words = "what the learner saw | " if saw is not None else ""
    head = "| config | " + ("supervision | " if sup else "") + words + "seeds | " + " | ".join(metrics) + " |"
    lines = [head, "|---|" + ("---|" if sup else "") + ("---|" if words else "") + "---:|" + "---:|" * len(metrics)]
    for name, runs in rows.items():
        cells = []
        for m in metrics:
            vals = [r[m] for r in runs if m in r and math.isfinite(r[m])]
            cells.append(
                "n/a" if not vals else f"{statistics.median(vals):.3f} ({', '.join(f'{v:.3f}' for v in vals)})"
            )
        level = f"{supervision.get(name, '?')} | " if supervision is not None else ""
        level += f"{saw.get(name, '')} | " if saw is not None else ""
        lines.append(f"| {name} | {level}{len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
