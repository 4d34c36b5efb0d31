"""Metric reports: ``metrics.json``, a Markdown table, PNG plots, and optional W&B logging.

A report is written into a temporary folder next to its destination and renamed into place at the end, so a failure
never leaves a half-written report, and an existing non-empty folder is only replaced when the user says ``force``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from disco.errors import ConfigError
from metrics.types import MetricResult


def to_jsonable(value: Any) -> Any:
    """Plain JSON form of metric details: arrays → nested lists, numpy scalars → Python, non-finite floats → None."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers (plug-in MI and classifiers vary across versions)."""
    import sklearn
    import torch

    import disco

    return {
        "disco": disco.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
    }


def build_payload(results: Mapping[str, MetricResult], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The ``metrics.json`` document: one entry per metric (score, details, settings) plus the run's metadata."""
    metrics = {name: {"score": r.score, "details": r.details, "settings": r.settings} for name, r in results.items()}
    return to_jsonable({"metrics": metrics, "versions": versions(), **meta})


def scalar_details(details: Mapping[str, Any]) -> dict[str, float]:
    """The scalar sub-scores of a metric's details (matrices and lists are left to plots and the JSON)."""
    out: dict[str, float] = {}
    for key, val in details.items():
        if isinstance(val, (bool, np.bool_)) or key == "seconds":
            continue
        if isinstance(val, (int, float, np.integer, np.floating)) or (isinstance(val, np.ndarray) and val.ndim == 0):
            out[key] = float(val)
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.4f}"


def markdown_table(results: Mapping[str, MetricResult]) -> str:
    """One row per metric: name, headline score, scalar sub-scores."""
    lines = ["| metric | score | sub-scores |", "|---|---:|---|"]
    for name, r in results.items():
        subs = ", ".join(f"{k}={_fmt(v)}" for k, v in scalar_details(r.details).items())
        lines.append(f"| {name} | {_fmt(float(r.score))} | {subs} |")
    return "\n".join(lines) + "\n"


def markdown_report(results: Mapping[str, MetricResult], meta: Mapping[str, Any]) -> str:
    """``metrics.md``: a heading, the table, and the facts needed to reproduce it."""
    facts = [
        f"- {k}: {meta[k]}" for k in ("dataset", "encoder", "codes", "split", "seed", "elapsed_seconds") if k in meta
    ]
    return "# disco metrics\n\n" + markdown_table(results) + "\n" + "\n".join(facts) + "\n"


def _matrix(details: Mapping[str, Any], keys: Sequence[str]) -> np.ndarray | None:
    """The first of ``keys`` in ``details`` that holds a 2-D numeric matrix."""
    for key in keys:
        if key in details:
            arr = np.asarray(details[key], dtype=np.float64)
            if arr.ndim == 2 and arr.size:
                return arr
    return None


def _dims_by_factor(arr: np.ndarray, factor_names: Sequence[str]) -> np.ndarray:
    """Orient a matrix as code dimensions × factors (metrics store MI as D × K and activity as K × D)."""
    if arr.shape[1] != len(factor_names) and arr.shape[0] == len(factor_names):
        return arr.T
    return arr


def _heatmap(arr: np.ndarray, title: str, row_label: str, cols: Sequence[str], path: Path) -> None:
    """A code-dimension × factor heatmap with its values written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2.0 + 0.7 * arr.shape[1], 1.5 + 0.35 * arr.shape[0]))
    image = ax.imshow(np.nan_to_num(arr), aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=ax)
    ax.set_yticks(range(arr.shape[0]), [str(i) for i in range(arr.shape[0])])
    names = list(cols) if len(cols) == arr.shape[1] else [str(j) for j in range(arr.shape[1])]
    ax.set_xticks(range(arr.shape[1]), names, rotation=45, ha="right")
    ax.set_ylabel(row_label)
    if arr.size <= 400:
        top = np.nanmax(arr) if np.isfinite(arr).any() else 0.0
        for (i, j), val in np.ndenumerate(arr):
            if np.isfinite(val):
                color = "black" if val > 0.6 * top else "white"
                ax.text(j, i, f"{val:.2f}", ha="center", va="center", fontsize=6, color=color)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _probe_curves(result: MetricResult, path: Path) -> bool:
    """Accuracy against training-set size per factor (``details["accuracy"]``: factor -> {size: accuracy})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = result.details.get("accuracy")
    if not isinstance(curves, Mapping) or not curves:
        return False
    mean = result.details.get("mean_accuracy")
    series = dict(curves)
    if isinstance(mean, Mapping):
        series["mean"] = mean
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for factor, accs in series.items():
        if not isinstance(accs, Mapping):
            return False
        xs = sorted(accs, key=float)
        ax.plot(
            [float(x) for x in xs],
            [float(accs[x]) for x in xs],
            marker="o",
            label=str(factor),
            linewidth=2.5 if factor == "mean" else 1.2,
        )
    ax.set_xscale("log")
    ax.set_xlabel("training samples")
    ax.set_ylabel("test accuracy")
    ax.set_title("downstream probes")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_plots(results: Mapping[str, MetricResult], factor_names: Sequence[str], out: Path) -> list[Path]:
    """PNG plots for the metrics that were run: MI matrix (MIG), activity matrix, probe curves."""
    written: list[Path] = []
    mig = results.get("mig")
    if mig is not None and (found := _matrix(mig.details, ("mi_matrix",))) is not None:
        _heatmap(
            _dims_by_factor(found, factor_names),
            "mutual information (nats)",
            "code dimension",
            factor_names,
            out / "mi_matrix.png",
        )
        written.append(out / "mi_matrix.png")
    activity = results.get("activity")
    intervention = activity.details.get("intervention") if activity is not None else None
    if isinstance(intervention, Mapping) and (found := _matrix(intervention, ("dimension_matrix",))) is not None:
        _heatmap(
            _dims_by_factor(found, factor_names),
            "share of each factor's change",
            "code dimension",
            factor_names,
            out / "activity_matrix.png",
        )
        written.append(out / "activity_matrix.png")
    probes = results.get("probes")
    if probes is not None and _probe_curves(probes, out / "probe_curves.png"):
        written.append(out / "probe_curves.png")
    return written


def check_out_dir(out_dir: str | Path, force: bool) -> Path:
    """Refuse (ConfigError) to replace a non-empty ``out_dir`` unless ``force``; returns the resolved path."""
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"output folder {out} is not empty; choose another --out or pass --force to replace it")
    return out


def write_report(
    out_dir: str | Path,
    results: Mapping[str, MetricResult],
    meta: Mapping[str, Any],
    *,
    factor_names: Sequence[str] = (),
    force: bool = False,
) -> dict[str, Any]:
    """Write ``metrics.json``, ``metrics.md`` and plots to ``out_dir`` atomically; returns the JSON payload."""
    out = check_out_dir(out_dir, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = build_payload(results, meta)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        plots = write_plots(results, factor_names, tmp)
        payload["plots"] = [p.name for p in plots]
        (tmp / "metrics.json").write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
        (tmp / "metrics.md").write_text(markdown_report(results, meta))
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return payload


def wandb_mode() -> Literal["online", "offline", "disabled", "shared"]:
    """``"online"`` when the user is logged in to W&B (API key in the environment or netrc), else ``"offline"``;
    an explicit ``WANDB_MODE`` wins."""
    env = os.environ.get("WANDB_MODE", "")
    if env in ("online", "offline", "disabled", "shared"):
        return env  # type: ignore[return-value]
    if env == "dryrun":
        return "offline"
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    import netrc

    try:
        auth = netrc.netrc(os.environ.get("NETRC")).authenticators("api.wandb.ai")
    except (OSError, netrc.NetrcParseError):
        auth = None
    return "online" if auth else "offline"


def flat_scores(payload: Mapping[str, Any]) -> dict[str, float]:
    """``{"mig": 0.4, "mig/gap_shape": ...}``: headline scores and scalar sub-scores, for W&B summaries."""
    out: dict[str, float] = {}
    for name, entry in payload.get("metrics", {}).items():
        if entry.get("score") is not None:
            out[name] = float(entry["score"])
        for key, val in entry.get("details", {}).items():
            if isinstance(val, (int, float)) and not isinstance(val, bool):
                out[f"{name}/{key}"] = float(val)
    return out


def log_wandb(payload: Mapping[str, Any], report_dir: Path, *, project: str = "disco", name: str | None = None) -> str:
    """Log scores, settings and plots of a written report to a W&B run (offline unless logged in); returns its dir."""
    import wandb

    mode = wandb_mode()
    config = {k: v for k, v in payload.items() if k not in {"metrics", "plots"}}
    config["settings"] = {m: e.get("settings", {}) for m, e in payload.get("metrics", {}).items()}
    run = wandb.init(project=project, name=name, mode=mode, job_type="eval", config=config)
    try:
        scores = flat_scores(payload)
        images = {f"plots/{p[:-4]}": wandb.Image(str(report_dir / p)) for p in payload.get("plots", [])}
        run.log({**scores, **images})
        run.summary.update(scores)
        run_dir = str(run.dir)
        for name in ("metrics.json", "metrics.md"):
            shutil.copy2(report_dir / name, Path(run_dir) / name)
    finally:
        run.finish()
        wandb.teardown()  # waits for the W&B service to flush the run's transaction log before the CLI exits
    return run_dir
