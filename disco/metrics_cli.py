"""``disco-metrics``: score any encoder (or precomputed codes) with the field's disentanglement metrics.

Examples::

    disco-metrics --dataset data/dsprites_small.h5 --encoder encoder.pt --metrics mig,dci,activity --out reports/run1
    disco-metrics --dataset dsprites --encoder runs/x/last.ckpt --metrics mig --set mig.num_train=2000 --out reports/x
    disco-metrics --dataset shapes3d --encoder mypkg.models:build_encoder --metrics probes --out reports/probes
    disco-metrics --codes codes.npz --metrics mig,sap --out reports/codes
    disco-metrics --codes codes.npy --factors factors.npy --metrics mig --out reports/npy
    disco-metrics --codes codes.csv --factor-columns shape,scale --metrics mig,sap --out reports/csv
    disco-metrics --codes codes.npy --metrics all --out reports/unlabelled
    disco-metrics --dataset dsprites --encoder seed0.pt --encoder seed1.pt --encoder seed2.pt --metrics all --out r/udr
    disco-metrics --codes seed0.npy --codes seed1.npy --metrics consistency --out reports/consistency

An encoder is a TorchScript file (``torch.jit.load``: no Python is unpickled or imported), a disco checkpoint
(``torch.load(weights_only=True)``, rebuilt from its stored architecture), or ``package.module:callable`` (the only way
user code is imported). Metric scores follow disentanglement_lib (Locatello et al. 2019) unless overridden.

Observational metrics score rows of the held-out test split (the split training uses; ``--split all`` on small
replicas whose test split is smaller than a protocol's 10,000 samples, or lower ``--num-train``); interventional ones
(FactorVAE, BetaVAE, OMES, the activity matrix) encode grid points of the whole dataset.

Several runs (``--encoder`` or ``--codes`` given more than once) are compared with the cross-run metrics
(:data:`metrics.suite.CROSS_RUN`: UDR, cross-seed consistency), which need no ground truth: every encoder encodes the
same rows of the split, every codes file must hold the same inputs in the same order.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from disco.errors import ConfigError, DataError
from disco.evaluate import SPLITS, prepare_encoder, resolve_device, score_codes
from disco.evaluate_augment import subspace_factor_map
from disco.models.subspaces import SubspaceSpec
from disco.train.config import default_augment
from metrics.types import MetricError, MetricResult

DEFAULT_METRICS = "mig,dci,sap,activity"


class _Parser(argparse.ArgumentParser):
    """Argument parser whose usage errors become one :class:`ConfigError` line (exit 2 via ``run_guarded``)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see disco-metrics --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``disco-metrics``."""
    p = _Parser(
        prog="disco-metrics",
        description="Score an encoder (TorchScript file, disco checkpoint, or package.module:callable) or precomputed "
        "codes with disentanglement metrics; writes metrics.json, metrics.md and plots to --out.",
        epilog="Security: checkpoints load with torch.load(weights_only=True); TorchScript files load with "
        "torch.jit.load, which imports no Python; only an explicit package.module:callable runs user code.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--dataset", help="dataset name (dsprites, shapes3d; under $DISCO_DATA_DIR) or path to a dataset file"
    )
    src.add_argument(
        "--codes",
        action="append",
        help="repeat it to compare runs (udr, consistency). "
        + "score precomputed codes: .npz with codes (N, D) [, factors (N, K), factor_names]; .npy codes (with "
        "--factors); or .csv/.tsv/.txt with a header row (with --factor-columns). Without factors only the "
        "codes-only metrics (unsupervised, activity) apply",
    )
    p.add_argument(
        "--encoder",
        action="append",
        help="TorchScript file, disco .ckpt checkpoint, or package.module:callable (with --dataset); repeat it to "
        "compare runs (udr, consistency)",
    )
    p.add_argument("--factors", help="with .npy --codes: .npy of factors (N, K) or (N,), one row per code row")
    p.add_argument(
        "--factor-columns",
        metavar="A,B,...",
        help="with CSV/TSV --codes: the factor columns (integer values: classes; non-integer: continuous); every "
        "other column is a code column unless --code-columns picks them",
    )
    p.add_argument(
        "--code-columns",
        metavar="X,Y,...",
        help="with CSV/TSV --codes: the code columns (default: all but the factors)",
    )
    p.add_argument(
        "--metrics", default=DEFAULT_METRICS, help=f"comma-separated metric names or 'all' (default {DEFAULT_METRICS})"
    )
    p.add_argument("--out", required=True, help="report folder (refused when not empty unless --force)")
    p.add_argument(
        "--split", choices=SPLITS, default="test", help="rows scored by observational metrics (default test)"
    )
    p.add_argument(
        "--split-seed",
        type=int,
        help="seed of the train/val/test split (default: the checkpoint's, else 0 as in training)",
    )
    p.add_argument(
        "--max-samples",
        type=int,
        help="rows of the split to encode for observational metrics (default: what the protocols need; 0: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the metrics and of the row draw (default 0)")
    p.add_argument(
        "--batch-size", type=int, help="images per encoder pass (default 128 on the CPU, 512 on a GPU; see --help)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    p.add_argument(
        "--no-optimize",
        action="store_true",
        help="encode with the module as loaded (default: on the CPU it is scripted, frozen and optimised for "
        "inference when its outputs stay within 1e-4)",
    )
    p.add_argument(
        "--num-train", type=int, help="training samples of every selected metric that has a num_train setting"
    )
    p.add_argument("--num-test", type=int, help="test samples of every selected metric that has a num_test setting")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="METRIC.KEY=VALUE",
        help="override one metric setting, e.g. mig.num_bins=30 or probes.num_train=[10,100] (repeatable; JSON values)",
    )
    p.add_argument("--subspaces", help="named subspaces name=width,... (default: from a disco checkpoint)")
    p.add_argument(
        "--factor-map",
        help="YAML mapping tying subspaces to differently named factors, e.g. '{position: [pos_x, pos_y]}' "
        "(default: the checkpoint's eval.factor_map)",
    )
    p.add_argument(
        "--augment",
        help="YAML augmenter config for augmentation_activity, e.g. '{factors: {orientation: rotation}}' "
        "(default: the checkpoint's data.augment, else rotation/translation/zoom)",
    )
    p.add_argument(
        "--domain",
        help="score the dataset rendered under a domain shift: plain (RGB as is), color, noisy, texture (dSprites "
        "variants) or shift (blur, colour cast, noise); images become RGB",
    )
    p.add_argument("--domain-seed", type=int, default=0, help="seed of the domain's per-image draws (default 0)")
    p.add_argument(
        "--source-domain",
        help="with --domain: also report the transfer from this source (plain or a domain name): domain gap per "
        "subspace (MMD, domain classifier) and probes trained on source codes, tested on target codes",
    )
    p.add_argument("--wandb", action="store_true", help="also log to W&B (offline unless you are logged in)")
    p.add_argument("--wandb-project", default="disco", help="W&B project (default disco)")
    p.add_argument("--wandb-name", help="W&B run name")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def parse_metrics(text: str) -> list[str]:
    """Metric names from ``"mig,dci"`` or ``"all"`` (every known name; what applies is decided once the data is
    known, :func:`disco.evaluate_augment.plan_metrics`), checked against the known names."""
    from disco.evaluate_augment import AUGMENTATION_ACTIVITY
    from metrics.suite import AVAILABLE, CROSS_RUN

    known = (*AVAILABLE, AUGMENTATION_ACTIVITY, *CROSS_RUN)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(known)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


def _yaml_mapping(text: str | None, flag: str) -> dict[str, Any] | None:
    """A YAML/JSON mapping given on the command line, or None; anything else is one ConfigError line."""
    if text is None:
        return None
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"{flag} is not valid YAML/JSON ({str(err).splitlines()[0]}); e.g. {flag} '{{a: b}}'"
        ) from err
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a mapping, e.g. {flag} '{{position: [pos_x, pos_y]}}'")
    return value


def _plan(
    args: argparse.Namespace,
    names: list[str],
    *,
    has_factors: bool,
    on_grid: bool,
    info: dict[str, Any],
    spec: Any,
    continuous: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """What runs on these inputs (``--metrics all``: every metric that applies; an explicit one that cannot run is
    refused here, before any image is encoded)."""
    from disco.evaluate_augment import plan_metrics

    return plan_metrics(
        [] if args.metrics.strip() == "all" else names,
        has_factors=has_factors,
        on_grid=on_grid,
        with_augmentation=info.get("supervision") == "augment",
        has_subspaces=spec is not None,
        continuous=continuous,
        what="--metrics",
    )


def _value(text: str) -> Any:
    try:
        val = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(val) if isinstance(val, list) else val


#: Public function(s) behind each suite metric; their keyword-only parameters are the metric's settings.
_METRIC_FUNCTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "mig": (("metrics.mig", "mig"),),
    "mig_continuous": (("metrics.mig", "mig_continuous"),),
    "mig_subspace": (("metrics.mig", "mig_subspace"),),
    "activity": (("metrics.activity", "active_units"), ("metrics.activity", "activity_matrix")),
    "probes": (("metrics.probes", "probes"),),
    "dci": (("metrics.dci", "dci"),),
    "sap": (("metrics.sap", "sap"),),
    "factor_vae": (("metrics.factor_vae", "factor_vae_score"),),
    "beta_vae": (("metrics.beta_vae", "beta_vae_score"),),
    "modularity": (("metrics.modularity", "modularity"),),
    "explicitness": (("metrics.modularity", "explicitness"),),
    "unsupervised": (("metrics.unsupervised", "unsupervised"),),
    "dci_es": (("metrics.dci_es", "dci_es"),),
    "irs": (("metrics.irs", "irs"),),
    "omes": (("metrics.omes", "omes"),),
    "udr": (("metrics.udr", "udr"),),
    "consistency": (("metrics.consistency", "consistency_matrix"),),
    "domain_gap": (("metrics.transfer", "domain_gap"),),
    "transfer_probes": (("metrics.transfer", "transfer_probes"),),
}
_NOT_SETTINGS = {"seed", "subspaces", "factor_names", "pairs", "variance_codes"}


def metric_settings(name: str) -> dict[str, Any] | None:
    """Settings a metric accepts (keyword-only parameters of its function) with their defaults; None if unknown."""
    import importlib
    import inspect

    if name not in _METRIC_FUNCTIONS:
        return None
    out: dict[str, Any] = {}
    for module, attr in _METRIC_FUNCTIONS[name]:
        params = inspect.signature(getattr(importlib.import_module(module), attr)).parameters
        out.update(
            {
                k: p.default
                for k, p in params.items()
                if p.kind == inspect.Parameter.KEYWORD_ONLY and k not in _NOT_SETTINGS
            }
        )
    return out


def parse_overrides(
    sets: Sequence[str], metric_names: Sequence[str], num_train: int | None = None, num_test: int | None = None
) -> dict[str, dict[str, Any]]:
    """``--set metric.key=value`` entries plus ``--num-train/--num-test`` as ``{metric: {key: value}}``.

    ``--num-train``/``--num-test`` go to every selected metric with an integer ``num_train``/``num_test`` setting
    (the probes' ``num_train`` is a list of sizes: set it with ``--set probes.num_train=[10,100]``). Keys are checked
    against each metric's function signature before anything is encoded."""
    out: dict[str, dict[str, Any]] = {}
    for flag, key in ((num_train, "num_train"), (num_test, "num_test")):
        if flag is None:
            continue
        if flag < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {flag}")
        takers = []
        for m in metric_names:
            known = metric_settings(m)
            if known is not None and key in known and not isinstance(known[key], (tuple, list)):
                takers.append(m)
        if not takers:
            raise ConfigError(f"none of the selected metrics ({', '.join(metric_names)}) has a {key} setting")
        for m in takers:
            out.setdefault(m, {})[key] = flag
    for entry in sets:
        lhs, sep, rhs = entry.partition("=")
        metric, dot, key = lhs.strip().partition(".")
        if not sep or not dot or not key:
            raise ConfigError(f"bad --set {entry!r}; write metric.key=value, e.g. mig.num_train=2000")
        if metric not in metric_names:
            raise ConfigError(f"--set {entry!r} names metric {metric!r}, which is not selected in --metrics")
        known = metric_settings(metric)
        if known is not None and key not in known:
            raise ConfigError(
                f"metric {metric!r} has no setting {key!r}; its settings are {', '.join(known) or '(none)'}"
            )
        out.setdefault(metric, {})[key.strip()] = _value(rhs.strip())
    return out


def _score_codes_file(
    args: argparse.Namespace, names: list[str], overrides: dict[str, dict[str, Any]]
) -> tuple[dict[str, MetricResult], dict[str, Any], list[str]]:
    """Score codes read from a file (:mod:`disco.codes_io`). The flags, the file's format and whether it has factors
    are checked first, then what runs is planned (a metric that cannot run is refused before the data is read), then
    the file is read and validated in full, all before any metric runs or anything is written."""
    from disco.codes_io import code_source, read_codes
    from disco.evaluate_augment import AUGMENTATION_ACTIVITY
    from metrics.suite import CODES_ONLY, INTERVENTIONAL

    every = args.metrics.strip() == "all"
    needs = [] if every else [n for n in names if n in INTERVENTIONAL]
    if needs:
        raise ConfigError(
            f"metric(s) {', '.join(needs)} intervene on factors and need an encoder and a full-grid dataset; "
            "drop them or use --dataset with --encoder"
        )
    if not every and AUGMENTATION_ACTIVITY in names:
        raise ConfigError("augmentation_activity augments images; use --dataset with --encoder, not --codes")
    if args.encoder:
        raise ConfigError("--encoder has no effect with --codes; pass --dataset to encode images")
    source = code_source(
        args.codes, factors=args.factors, factor_columns=args.factor_columns, code_columns=args.code_columns
    )
    if not every and not source.has_factors:
        labelled = [n for n in names if n not in CODES_ONLY]
        if labelled:
            raise ConfigError(
                f"metric(s) {', '.join(labelled)} need factor labels, which {source.path} does not provide; "
                f"{source.factors_hint()}, or ask for {', '.join(sorted(CODES_ONLY))} or all"
            )
    spec = SubspaceSpec.parse(args.subspaces) if args.subspaces else None
    asked = names
    names, skipped = _plan(args, asked, has_factors=source.has_factors, on_grid=False, info={}, spec=spec)
    table = read_codes(source)
    if table.continuous:  # known once the values are read: the metrics for real-valued factors only
        names, skipped = _plan(args, asked, has_factors=True, on_grid=False, info={}, spec=spec, continuous=True)
    skipped = {k: why.replace("this dataset", source.path.name) for k, why in skipped.items()}
    if AUGMENTATION_ACTIVITY in names or AUGMENTATION_ACTIVITY in skipped:  # --metrics all
        names = [n for n in names if n != AUGMENTATION_ACTIVITY]
        skipped[AUGMENTATION_ACTIVITY] = "augments images, so it needs --dataset with --encoder, not --codes"
    results = score_codes(
        names,
        table.codes,
        table.factors,
        factor_names=table.factor_names or None,
        subspaces=spec,
        seed=args.seed,
        overrides=_only(overrides, names),
    )
    meta = {
        **table.meta(),
        "samples": {"observational_samples": int(table.codes.shape[0])},
        "skipped": skipped,
    }
    return results, meta, table.factor_names


def _score_encoder(
    args: argparse.Namespace, names: list[str], overrides: dict[str, dict[str, Any]]
) -> tuple[dict[str, MetricResult], dict[str, Any], list[str]]:
    from disco.data.datasets import load_dataset
    from disco.evaluate import evaluate
    from disco.models.checkpoint import load_any_encoder

    given = [flag for flag in ("factors", "factor_columns", "code_columns") if getattr(args, flag) is not None]
    if given:
        raise ConfigError(f"--{given[0].replace('_', '-')} goes with --codes, not --dataset; drop it")
    if not args.encoder:
        raise ConfigError("--dataset needs --encoder (TorchScript file, disco checkpoint or package.module:callable)")
    domain = _domain(args)
    source = _source_domain(args)
    device = resolve_device(args.device)
    loaded = load_any_encoder(args.encoder, map_location=device)
    spec = SubspaceSpec.parse(args.subspaces) if args.subspaces else loaded.subspaces
    data = load_dataset(args.dataset)
    names, skipped = _plan(args, names, has_factors=data.has_factors, on_grid=data.on_grid, info=loaded.info, spec=spec)
    if domain is not None and "augmentation_activity" in names:
        if args.metrics.strip() != "all":
            raise ConfigError(f"augmentation_activity cannot run under --domain {domain.name}; drop one of them")
        names = [n for n in names if n != "augmentation_activity"]
        skipped["augmentation_activity"] = (
            f"its augmented views are not dataset rows, so --domain {domain.name} cannot render them"
        )
    augment = _yaml_mapping(args.augment, "--augment") or loaded.info.get("augment") or default_augment()
    factor_map = _yaml_mapping(args.factor_map, "--factor-map") or loaded.info.get("factor_map") or {}
    ties = subspace_factor_map(spec, tuple(data.factors.names), factor_map)
    if "augmentation_activity" in names:
        from disco.data.augment import augmenter_from_config

        augmenter_from_config(augment, seed=0)  # a bad --augment fails before encoding
    encoder = loaded.module.to(device).eval()
    if not args.no_optimize:
        encoder = prepare_encoder(encoder, probe_shape=_input_shape(data, domain))
    split_seed = args.split_seed if args.split_seed is not None else int(loaded.info.get("split_seed", 0))
    results, counts = evaluate(
        encoder,
        data,
        names,
        split=args.split,
        split_seed=split_seed,
        max_samples=args.max_samples,
        seed=args.seed,
        batch_size=args.batch_size,
        subspaces=spec,
        overrides=_only(overrides, names),
        progress=not args.no_progress,
        subspace_factors=ties,
        augment=augment,
        domain=domain,
    )
    if source is not None:
        results.update(_transfer(args, encoder, data, source, domain, spec, split_seed, overrides))
    meta = {
        "dataset": str(args.dataset),
        "dataset_name": data.name,
        "on_grid": bool(data.on_grid),
        "num_images": len(data.images),
        "factor_names": list(data.factors.names),
        "factor_sizes": list(data.factors.sizes),
        "encoder": loaded.description,
        "encoder_kind": loaded.kind,
        "encoder_info": loaded.info,
        "device": str(device),
        "split": args.split,
        "samples": counts,
        "subspaces": spec.to_string() if spec is not None else None,
        "supervision": loaded.info.get("supervision", "unknown (not a disco checkpoint)"),
        "factor_map": ties,
        "skipped": skipped,
        "domain": None if domain is None else {"name": domain.name, "seed": domain.seed},
        "source_domain": args.source_domain,
    }
    if "augmentation_activity" in names:
        meta["augment"] = augment
    return results, meta, list(data.factors.names)


def _single_run(args: argparse.Namespace, names: list[str]) -> None:
    """One run: unwrap the repeatable --codes/--encoder; a cross-run metric asked for by name is refused."""
    from metrics.suite import CROSS_RUN

    args.codes = args.codes[0] if args.codes else None
    args.encoder = args.encoder[0] if args.encoder else None
    if args.metrics.strip() != "all":
        cross = [n for n in names if n in CROSS_RUN]
        if cross:
            raise ConfigError(
                f"{', '.join(cross)} compare(s) several runs; pass --encoder (or --codes) two or more times"
            )


def _cross_run_names(args: argparse.Namespace, names: list[str]) -> list[str]:
    """The cross-run metrics to run on several runs (``all``: every one); any other metric is refused."""
    from metrics.suite import CROSS_RUN

    if args.metrics.strip() == "all":
        return list(CROSS_RUN)
    single = [n for n in names if n not in CROSS_RUN]
    if single:
        raise ConfigError(
            f"with several runs only {', '.join(CROSS_RUN)} apply, not {', '.join(single)}; "
            "score each run with its own disco-metrics call"
        )
    return names


def _score_runs(
    args: argparse.Namespace, names: list[str], overrides: dict[str, dict[str, Any]]
) -> tuple[dict[str, MetricResult], dict[str, Any], list[str]]:
    """Compare several runs: codes files holding the same inputs, or encoders encoding the same rows of the split.
    Everything is checked (flags, files, encoders) before anything is encoded."""
    from metrics.suite import run_cross_run

    names = _cross_run_names(args, names)
    if args.factors is not None:
        raise ConfigError("--factors has no effect when comparing runs (udr, consistency need no ground truth)")
    if args.codes:
        if args.encoder:
            raise ConfigError("--encoder has no effect with --codes; pass --dataset to encode images")
        from disco.codes_io import code_source, read_codes

        sources = [
            code_source(path, factors=None, factor_columns=args.factor_columns, code_columns=args.code_columns)
            for path in args.codes
        ]
        tables = [read_codes(source) for source in sources]
        codes = [table.codes for table in tables]
        for path, arr in zip(args.codes[1:], codes[1:], strict=True):
            if arr.shape[0] != codes[0].shape[0]:
                raise DataError(
                    f"{path} has {arr.shape[0]} rows but {args.codes[0]} has {codes[0].shape[0]}; "
                    "every run must encode the same inputs in the same order"
                )
        meta: dict[str, Any] = {"codes": list(args.codes), "runs": len(codes)}
        counts: dict[str, Any] = {"observational_samples": int(codes[0].shape[0])}
    else:
        codes, meta, counts = _encode_runs(args)
    results = run_cross_run(names, codes, seed=args.seed, overrides=_only(overrides, names))
    meta["samples"] = counts
    meta["code_dims"] = [int(c.shape[1]) for c in codes]
    return results, meta, []


def _encode_runs(args: argparse.Namespace) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Codes of the same rows of ``--split`` under every ``--encoder`` (``--max-samples`` rows, default 10000)."""
    from disco.data.datasets import load_dataset
    from disco.evaluate import Representer, select_rows
    from disco.models.checkpoint import load_any_encoder

    domain = _domain(args)
    device = resolve_device(args.device)
    loaded = [load_any_encoder(path, map_location=device) for path in args.encoder]
    data = load_dataset(args.dataset)
    limit = 10000 if args.max_samples is None else (args.max_samples or None)
    seeds = sorted({int(enc.info.get("split_seed", 0)) for enc in loaded})
    if args.split_seed is None and len(seeds) > 1:
        raise ConfigError(f"the encoders were trained with different split seeds {seeds}; pass --split-seed")
    split_seed = args.split_seed if args.split_seed is not None else seeds[0]
    rows = select_rows(len(data.images), args.split, split_seed, limit=limit, sample_seed=args.seed)
    codes, seconds = [], 0.0
    for path, enc in zip(args.encoder, loaded, strict=True):
        module = enc.module.to(device).eval()
        if not args.no_optimize:
            module = prepare_encoder(module, probe_shape=_input_shape(data, domain))
        represent = Representer(module, data, batch_size=args.batch_size, progress=not args.no_progress, domain=domain)
        try:
            codes.append(represent.encode_rows(rows, desc=f"encoding {path}"))
            seconds += represent.seconds
        finally:
            represent.close()
    meta = {
        "dataset": str(args.dataset),
        "dataset_name": data.name,
        "encoders": [enc.description for enc in loaded],
        "supervision": [enc.info.get("supervision", "unknown (not a disco checkpoint)") for enc in loaded],
        "runs": len(loaded),
        "domain": None if domain is None else {"name": domain.name, "seed": domain.seed},
        "device": str(device),
        "split": args.split,
    }
    counts = {
        "split": args.split,
        "split_seed": split_seed,
        "observational_samples": int(rows.size),
        "encoding_seconds": round(seconds, 3),
    }
    return codes, meta, counts


def _domain(args: argparse.Namespace) -> Any:
    """The ``--domain`` shift (checked before anything is loaded), or None."""
    if args.domain is None:
        return None
    from disco.data.domains import make_domain

    try:
        return make_domain(args.domain, seed=args.domain_seed)
    except ValueError as err:
        raise ConfigError(f"--domain: {err}") from err


def _source_domain(args: argparse.Namespace) -> Any:
    """``--source-domain`` (``plain`` or a domain; needs ``--domain``), or None when not asked for."""
    if args.source_domain is None:
        return None
    if args.domain is None:
        raise ConfigError("--source-domain needs --domain (the target); e.g. --source-domain plain --domain noisy")
    from disco.data.domains import make_domain

    try:
        return make_domain(args.source_domain, seed=args.domain_seed)
    except ValueError as err:
        raise ConfigError(f"--source-domain: {err}") from err


def _transfer(
    args: argparse.Namespace,
    encoder: Any,
    data: Any,
    source: Any,
    target: Any,
    spec: Any,
    split_seed: int,
    overrides: dict[str, dict[str, Any]],
) -> dict[str, MetricResult]:
    """Domain gap and transfer probes: the same rows of ``--split`` encoded in the source and the target domain."""
    from disco.evaluate import Representer, select_rows, subspace_entries
    from disco.evaluate_transfer import shared_private_columns
    from metrics import defaults
    from metrics.transfer import transfer_report

    over = {k: v for k, v in overrides.items() if k in ("domain_gap", "transfer_probes")}
    need = max(
        int(o.get("num_train", defaults.TRANSFER.num_train)) + int(o.get("num_test", defaults.TRANSFER.num_test))
        for o in (over.get("domain_gap", {}), over.get("transfer_probes", {}))
    )
    rows = select_rows(len(data.images), args.split, split_seed, limit=need, sample_seed=args.seed)
    codes = []
    for dom in (source, target):
        represent = Representer(encoder, data, batch_size=args.batch_size, domain=dom)
        codes.append(represent.encode_rows(rows, desc="encoding for transfer"))
    factors = data.classes[rows].numpy() if data.has_factors else None
    entries = subspace_entries(spec, codes[0].shape[1])
    shared = shared_private_columns(spec)[0] if spec is not None else None  # probes skip the private subspaces
    return transfer_report(
        codes[0], codes[1], factors, subspaces=entries, seed=args.seed, overrides=over, probe_columns=shared
    )


def _input_shape(data: Any, domain: Any) -> tuple[int, ...]:
    """The shape of one image the encoder sees: RGB under a domain shift."""
    shape = tuple(int(n) for n in data.images.shape[1:])
    return shape if domain is None else (3, *shape[1:])


def _only(overrides: dict[str, dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """The overrides of the metrics that run (``--metrics all`` may skip some)."""
    return {k: v for k, v in overrides.items() if k in names}


def run(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, score, write the report; raises :class:`DiscoError` for user mistakes."""
    args = build_parser().parse_args(argv)
    from disco.report import check_out_dir, log_wandb, markdown_table, write_report

    start = time.perf_counter()
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    out = check_out_dir(args.out, args.force)
    names = parse_metrics(args.metrics)
    transfer = ["domain_gap", "transfer_probes"] if args.source_domain else []  # settable with --set, --num-*
    overrides = parse_overrides(args.set, [*names, *transfer], args.num_train, args.num_test)
    if args.codes and args.domain:
        raise ConfigError("--domain renders dataset images; it has no effect with --codes (use --dataset)")
    try:
        if len(args.codes or args.encoder or []) > 1:
            results, meta, factor_names = _score_runs(args, names, overrides)
        else:
            _single_run(args, names)
            if args.codes:
                results, meta, factor_names = _score_codes_file(args, names, overrides)
            else:
                results, meta, factor_names = _score_encoder(args, names, overrides)
    except MetricError as err:
        raise ConfigError(str(err).strip().splitlines()[0]) from err
    if args.metrics.strip() == "all" and "runs" not in meta:
        from metrics.suite import CROSS_RUN

        why = "compares several runs; pass --encoder (or --codes) two or more times"
        meta.setdefault("skipped", {}).update({name: why for name in CROSS_RUN})
    for name, why in meta.get("skipped", {}).items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    meta.update(
        {
            "metric_names": list(results),
            "overrides": overrides,
            "seed": args.seed,
            "command": ["disco-metrics", *(sys.argv[1:] if argv is None else argv)],
            "elapsed_seconds": round(time.perf_counter() - start, 3),
        }
    )
    payload = write_report(out, results, meta, factor_names=factor_names, force=args.force)
    print(markdown_table(results), end="")
    if args.wandb:
        try:
            run_dir = log_wandb(payload, out, project=args.wandb_project, name=args.wandb_name)
        except Exception as err:  # W&B raises many types (network, auth, settings); the report itself is complete
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"W&B logging failed ({first[:160]}); the report in {out} is complete") from err
        print(f"W&B run files: {run_dir}", file=sys.stderr)
    print(f"report written to {out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``disco-metrics`` console script: exit 0 on success, 2 with one ``error:`` line otherwise."""
    from disco.cli import run_guarded

    def entry() -> int:
        try:
            return run(argv)
        except MetricError as err:
            raise ConfigError(str(err).strip().splitlines()[0]) from err
        except FileNotFoundError as err:
            raise DataError(f"file not found: {err.filename}; check the path") from err

    try:
        return run_guarded(entry)
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2


if __name__ == "__main__":
    sys.exit(main())
