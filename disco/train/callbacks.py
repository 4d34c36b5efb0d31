"""Lightning callbacks: periodic held-out evaluation through :mod:`metrics`, figures, and W&B/CSV logging of both.

Hooks used are the Lightning 2 names (``on_train_batch_end(trainer, module, outputs, batch, batch_idx)`` and
``on_train_end``); ``tests/train`` counts the calls so that a rename cannot silently switch evaluation off.
Evaluation runs on rank 0 only, in eval mode, inside :func:`torch.random.fork_rng` so that it does not perturb the
training random streams (an interrupted and resumed run stays identical to an uninterrupted one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from disco.data.datasets import GroundTruthData
from disco.data.domains import Domain
from disco.errors import ConfigError
from disco.evaluate_augment import AUGMENTATION_ACTIVITY, plan_metrics, subspace_factor_map
from disco.models.subspaces import SubspaceSpec
from disco.train import figures
from disco.train.checkpointing import atomic_write_text
from disco.train.config import EvalConfig
from metrics.types import MetricResult

#: heatmaps drawn at each evaluation: (metric, detail key, what the matrix's non-factor axis is, factors on rows?).
#: MIG's MI matrix is latents × factors; the activity matrices are factors × latents and factors × subspaces.
HEATMAPS: tuple[tuple[str, str, str, bool], ...] = (
    ("mig", "mi_matrix", "latents", False),
    ("activity", "intervention.dimension_matrix", "latents", True),
    ("activity", "intervention.subspace_matrix", "subspaces", True),
    ("augmentation_activity", "subspace_matrix", "subspaces", True),
)


def flat_scores(results: dict[str, MetricResult]) -> dict[str, float]:
    """``{metric: score}`` plus every finite scalar detail as ``metric/detail``."""
    out: dict[str, float] = {}
    for name, res in results.items():
        out[name] = float(res.score)
        for key, val in res.details.items():
            if isinstance(val, int | float | np.number) and not isinstance(val, bool) and np.isfinite(val):
                out[f"{name}/{key}"] = float(val)
    return out


_TRAIN_ONLY = ("mig", "mig_continuous", "mig_subspace", "modularity", "unsupervised")
_TRAIN_TEST = ("dci", "sap", "explicitness")


def fit_sample_sizes(names: list[str], n: int, user: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric overrides that keep the protocol's sample sizes (10000 train / 5000 test) when the held-out split has
    that many rows, and shrink them to the split otherwise (a small replica); ``user`` overrides win."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in _TRAIN_ONLY and n < 10000:
            out[name] = {"num_train": n}
        elif name in _TRAIN_TEST and n < 15000:
            out[name] = {"num_train": n - n // 3, "num_test": n // 3}
        elif name == "probes" and n < 15000:
            test = n // 3
            sizes = tuple(s for s in (10, 100, 1000, 10000) if s <= n - test) or (n - test,)
            out[name] = {"num_train": sizes, "num_test": test, "subspace_num_train": sizes[-1]}
    for name, kwargs in user.items():
        if name in names:
            out[name] = {**out.get(name, {}), **dict(kwargs)}
    return out


def matrices(details: dict[str, Any], prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """Every numeric 2-D array in ``details`` (one level of nested dicts), keyed ``outer.inner``."""
    out: list[tuple[str, np.ndarray]] = []
    for key, val in details.items():
        if isinstance(val, dict) and not prefix:
            out.extend(matrices(val, f"{key}."))
        elif isinstance(val, np.ndarray | list):
            arr = np.asarray(val)
            if arr.ndim == 2 and np.issubdtype(arr.dtype, np.number) and min(arr.shape) > 0:
                out.append((f"{prefix}{key}", arr))
    return out


class EvaluationCallback(pl.Callback):
    """Scores the encoder on the held-out ``test`` split every ``every_n_steps`` and runs the final suite at the end.

    ``history`` keeps ``(step, scores)`` of every evaluation and ``calls`` counts them; the final results are written
    to ``<run_dir>/metrics.json`` (with the run's ``supervision`` and the headline scores of every evaluation, periodic
    ones included, under ``history``) and figures under ``<run_dir>/figures``. Data
    without factors is scored with the codes-only metrics and the augmentation activity matrix
    (:mod:`disco.evaluate_augment`); every metric list is checked when the callback is made, before training.
    """

    def __init__(
        self,
        data: GroundTruthData,
        cfg: EvalConfig,
        spec: SubspaceSpec,
        run_dir: Path,
        split_seed: int = 0,
        *,
        supervision: str = "labels",
        augment: dict[str, Any] | None = None,
        domain: Domain | None = None,
    ) -> None:
        super().__init__()
        self.data = data
        self.domain = domain
        self.cfg = cfg
        self.spec = spec
        self.run_dir = Path(run_dir)
        self.split_seed = split_seed
        self.supervision = supervision
        self.augment = augment
        plan = {"has_factors": data.has_factors, "on_grid": data.on_grid, "with_augmentation": supervision == "augment"}
        self.periodic = plan_metrics(list(cfg.periodic), what="eval.periodic", **plan)[0]
        self.final_names = plan_metrics(list(cfg.final), what="eval.final", **plan)[0]
        if domain is not None and AUGMENTATION_ACTIVITY in (*self.periodic, *self.final_names):
            raise ConfigError(
                f"{AUGMENTATION_ACTIVITY} cannot score images rendered in domain {domain.name!r}; drop it from eval"
            )
        if AUGMENTATION_ACTIVITY in (*self.periodic, *self.final_names):
            from disco.data.augment import augmenter_from_config

            augmenter_from_config(dict(augment or {}), seed=0)  # a bad augmenter config fails now, not after training
        self.subspace_factors = subspace_factor_map(spec, tuple(data.factors.names), dict(cfg.factor_map))
        self.calls = 0
        self.history: list[tuple[int, dict[str, float]]] = []
        self.final: dict[str, MetricResult] = {}
        self.images: list[Path] = []

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every, step = self.cfg.every_n_steps, int(trainer.global_step)
        last = self.cfg.at_end and step >= int(trainer.max_steps)  # the final suite covers the last step
        if every > 0 and step % every == 0 and not last and trainer.is_global_zero:
            self.evaluate(trainer, pl_module, self.periodic, self.cfg.num_samples, prefix="eval")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not self.cfg.at_end:
            return
        self.final = self.evaluate(trainer, pl_module, self.final_names, 0, prefix="final")
        scores = flat_scores(self.final)
        history = [{"step": s, **{k: v for k, v in sc.items() if "/" not in k}} for s, sc in self.history]
        record = {
            "step": int(trainer.global_step),
            "supervision": self.supervision,
            "scores": scores,
            "history": history,
        }
        atomic_write_text(self.run_dir / "metrics.json", json.dumps(record, indent=2))

    def evaluate(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, names: list[str], num_samples: int, prefix: str
    ) -> dict[str, MetricResult]:
        """Score ``names`` on the held-out split (``num_samples`` rows of it, 0: all), log them and draw figures."""
        from disco.evaluate import Representer, score_rows, select_rows

        encoder: nn.Module = pl_module.encoder  # type: ignore[assignment]
        was_training = encoder.training
        encoder.eval()
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        suite = [n for n in names if n != AUGMENTATION_ACTIVITY]
        try:
            with torch.random.fork_rng(devices=devices):
                rows = select_rows(len(self.data), "test", self.split_seed)
                if 0 < num_samples < rows.size:
                    rows = np.sort(np.random.default_rng(0).choice(rows, num_samples, replace=False))
                represent = Representer(encoder, self.data, domain=self.domain)
                codes = represent.encode_rows(rows)
                results = score_rows(
                    names,
                    represent,
                    rows,
                    codes,
                    subspaces=self.spec,
                    subspace_factors=self.subspace_factors,
                    overrides=fit_sample_sizes(suite, int(rows.size), self.cfg.overrides),
                    augment=self.augment,
                    augment_pairs=self.cfg.augment_pairs,
                )
                step = int(trainer.global_step)
                scores = flat_scores(results)
                self.calls += 1
                self.history.append((step, scores))
                for logger in trainer.loggers:
                    logger.log_metrics({f"{prefix}/{k}": v for k, v in scores.items()}, step=step)
                if self.cfg.images:
                    self._figures(trainer, pl_module, results, codes, prefix, step)
        finally:
            encoder.train(was_training)
        return results

    def _figures(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        results: dict[str, MetricResult],
        codes: np.ndarray,
        prefix: str,
        step: int,
    ) -> None:
        out_dir = self.run_dir / "figures"
        made: list[tuple[str, Path]] = []
        axis_labels = {"latents": figures.latent_labels(self.spec), "subspaces": list(self.spec.names)}
        factor_names = list(self.data.factors.names)
        for metric, key, axis, factors_on_rows in HEATMAPS:
            res = results.get(metric)
            arr = dict(matrices(res.details)).get(key) if res is not None else None
            if arr is None:
                continue
            arr = arr.T if factors_on_rows else arr
            labels = axis_labels[axis]
            rows_of = [str(n) for n in res.details.get("factor_names", factor_names)] if res is not None else []
            if arr.shape != (len(labels), len(rows_of)):
                continue
            path = out_dir / f"{prefix}_{metric}_{key}_step{step:07d}.png"
            title = f"{metric} {key} (step {step})"
            made.append((f"{prefix}/{metric}/{key}", figures.save_heatmap(arr, labels, rows_of, title, path)))
        decoder = getattr(pl_module, "decoder", None)
        if decoder is not None:
            low, mid, high = (
                torch.as_tensor(np.percentile(codes, q, axis=0), dtype=torch.float32, device=pl_module.device)
                for q in (2, 50, 98)
            )
            grids = figures.traversal_images(decoder, mid, self.spec, low, high, steps=self.cfg.traversal_steps)
            for name, grid in grids.items():
                path = out_dir / f"{prefix}_traversal_{name}_step{step:07d}.png"
                made.append(
                    (f"{prefix}/traversal/{name}", figures.save_image(grid, path, f"traversal {name} (step {step})"))
                )
        self.images.extend(p for _, p in made)
        for logger in trainer.loggers:
            log_image = getattr(logger, "log_image", None)
            if log_image is not None:
                for key, path in made:
                    log_image(key=key, images=[str(path)], step=step)
