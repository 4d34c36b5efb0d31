"""Run several metrics on one representation, sharing the expensive parts.

Observational metrics (MIG and its variants, DCI, SAP, modularity, explicitness, probes, unsupervised scores, active
units) score a sample of codes with their factor classes. Interventional ones (FactorVAE score, Kim & Mnih 2018;
BetaVAE score, Higgins et al. 2017; the factor-activity matrix) need codes of chosen grid points, i.e. a
:data:`~metrics.types.Representer` (an encoder plus a dataset indexed by factor classes).

Given a representer, :func:`run_suite` draws ONE uniform observational sample large enough for every requested
protocol (10000 + 5000 at the defaults), encodes it once and hands it to every observational metric (each draws its
own seeded rows/split from it, as the standalone functions do); the FactorVAE score takes its global-variance sample
from the same set. Every call of the representer goes through :class:`CachingRepresenter`, which encodes each distinct
grid point once per suite run and scatters the codes back: the 2,915,000 grid points that the full suite requests at
the reference counts on dSprites (FactorVAE and BetaVAE votes, activity pairs, the observational sample) are only
719,965 distinct images, and the encoder is deterministic, so the codes are exactly those of encoding every draw
(scripts/bench_metrics.py).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from metrics import defaults
from metrics.activity import active_units, activity_matrix
from metrics.beta_vae import beta_vae_score
from metrics.consistency import consistency_matrix
from metrics.continuous import dci_regression, is_continuous, mig_regression, probes_regression
from metrics.dci import dci
from metrics.dci_es import dci_es
from metrics.factor_vae import factor_vae_score
from metrics.irs import irs
from metrics.mig import mig, mig_continuous, mig_subspace
from metrics.modularity import explicitness, modularity
from metrics.omes import omes
from metrics.probes import probes
from metrics.sampling import FactorSizes, check_factor_sizes, grid_index, sample_factors
from metrics.sap import sap
from metrics.types import MetricError, MetricResult, Representer
from metrics.udr import udr
from metrics.unsupervised import unsupervised

AVAILABLE: tuple[str, ...] = (
    "mig",
    "mig_continuous",
    "mig_subspace",
    "activity",
    "probes",
    "dci",
    "dci_es",
    "sap",
    "factor_vae",
    "beta_vae",
    "modularity",
    "explicitness",
    "unsupervised",
    "irs",
    "omes",
)
#: Metrics that need interventions (a representer and the factor sizes).
INTERVENTIONAL: frozenset[str] = frozenset({"factor_vae", "beta_vae"})
#: Metrics computed from a sample of codes and factors ("activity" adds its interventional matrix given a representer).
OBSERVATIONAL: frozenset[str] = frozenset(AVAILABLE) - INTERVENTIONAL
#: Metrics that need no ground truth: codes alone ("activity" is then the active-unit count only).
CODES_ONLY: frozenset[str] = frozenset({"unsupervised", "activity"})

_FUNCTIONS: dict[str, Callable[..., MetricResult]] = {
    "mig": mig,
    "mig_continuous": mig_continuous,
    "mig_subspace": mig_subspace,
    "probes": probes,
    "dci": dci,
    "dci_es": dci_es,
    "sap": sap,
    "modularity": modularity,
    "explicitness": explicitness,
    "unsupervised": unsupervised,
    "irs": irs,
    "omes": omes,
    "factor_vae": factor_vae_score,
    "beta_vae": beta_vae_score,
}

#: Metrics for real-valued factors (selected when the factors are continuous, :func:`metrics.continuous.is_continuous`):
#: kNN (KSG) MIG, DCI with regression trees, regression probes; and the codes-only metrics.
_CONTINUOUS_FUNCTIONS: dict[str, Callable[..., MetricResult]] = {
    "mig": mig_regression,
    "dci": dci_regression,
    "probes": probes_regression,
}
CONTINUOUS_OK: frozenset[str] = frozenset(_CONTINUOUS_FUNCTIONS) | CODES_ONLY

#: Metrics that compare several runs (models, seeds) encoded on the same inputs, without ground truth.
CROSS_RUN: dict[str, Callable[..., MetricResult]] = {"udr": udr, "consistency": consistency_matrix}

#: Protocol sample counts for the metrics whose functions default to "use every row given".
_PROTOCOL_NUM_TRAIN: dict[str, int] = {
    "mig": defaults.MIG.num_train,
    "mig_continuous": defaults.MIG.num_train,
    "mig_subspace": defaults.MIG.num_train,
    "modularity": defaults.MODULARITY.num_train,
    "unsupervised": defaults.UNSUPERVISED.num_train,
    "irs": defaults.IRS.num_train,
    "omes": defaults.OMES.num_train,
}


class CachingRepresenter:
    """Wraps a representer: encodes each distinct grid point once, however often and in however many calls it is drawn.

    Rows are keyed by their flat grid index (:func:`metrics.sampling.grid_index`); unseen points are encoded in one
    call (sorted by grid index), stored, and every request is answered by gathering. Counters: ``calls`` (calls of the
    wrapped representer), ``rows_requested`` and ``rows_encoded``.
    """

    def __init__(self, represent: Representer, factor_sizes: FactorSizes) -> None:
        self.represent = represent
        self.factor_sizes = check_factor_sizes(factor_sizes)
        self.calls = 0
        self.rows_requested = 0
        self.rows_encoded = 0
        self._keys = np.zeros(0, dtype=np.int64)
        self._codes: np.ndarray | None = None

    def __call__(self, classes: np.ndarray) -> np.ndarray:
        """Codes (N, D) of the grid points ``classes`` (N, K)."""
        classes = np.asarray(classes, dtype=np.int64)
        if classes.ndim != 2 or classes.shape[1] != self.factor_sizes.size:
            raise MetricError(f"classes must be (N, {self.factor_sizes.size}), got shape {classes.shape}")
        if np.any(classes < 0) or np.any(classes >= self.factor_sizes):
            raise MetricError(f"factor classes out of range for factor sizes {self.factor_sizes.tolist()}")
        self.rows_requested += classes.shape[0]
        keys, first, inverse = np.unique(grid_index(classes, self.factor_sizes), return_index=True, return_inverse=True)
        pos = np.searchsorted(self._keys, keys)
        known = pos < self._keys.size
        known[known] = self._keys[pos[known]] == keys[known]
        missing = np.flatnonzero(~known)
        if missing.size:
            new = np.asarray(self.represent(classes[first[missing]]))
            if new.ndim != 2 or new.shape[0] != missing.size:
                raise MetricError(
                    f"the representer returned shape {new.shape} for {missing.size} inputs; expected (N, D)"
                )
            self.calls += 1
            self.rows_encoded += missing.size
            merged_keys = np.concatenate([self._keys, keys[missing]])
            merged = new if self._codes is None else np.concatenate([self._codes, new.astype(self._codes.dtype)])
            order = np.argsort(merged_keys, kind="stable")
            self._keys, self._codes = merged_keys[order], merged[order]
            pos = np.searchsorted(self._keys, keys)
        assert self._codes is not None
        return self._codes[pos[inverse.reshape(-1)]]


def _check_names(names: Sequence[str]) -> list[str]:
    """Requested metric names, validated against :data:`AVAILABLE`, without duplicates."""
    requested = list(dict.fromkeys(names))
    unknown = [n for n in requested if n not in AVAILABLE]
    if unknown:
        raise MetricError(f"unknown metric(s) {', '.join(unknown)}; valid names: {', '.join(AVAILABLE)}")
    if not requested:
        raise MetricError(f"no metric requested; valid names: {', '.join(AVAILABLE)}")
    return requested


def _kwargs(
    name: str, fn: Callable[..., MetricResult], base: dict[str, Any], override: Mapping[str, Any]
) -> dict[str, Any]:
    """Keyword arguments of ``fn``: the suite's ``base`` ones it accepts, then the user's ``override`` (validated)."""
    params = inspect.signature(fn).parameters
    unknown = [k for k in override if k not in params]
    if unknown:
        options = [p for p, v in params.items() if v.kind == inspect.Parameter.KEYWORD_ONLY]
        raise MetricError(f"unknown option(s) {', '.join(unknown)} for metric {name}; options: {', '.join(options)}")
    out = {k: v for k, v in base.items() if k in params}
    out.update(override)
    return out


def observational_sample_size(names: Sequence[str], overrides: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    """Rows the observational protocols of ``names`` need (the size of the suite's shared sample)."""
    over = overrides or {}
    need = 2
    for name in names:
        o = over.get(name, {})
        if name in _PROTOCOL_NUM_TRAIN:
            num = o.get("num_train", _PROTOCOL_NUM_TRAIN[name])
            need = max(need, int(num) if num is not None else 0)
        elif name in ("dci", "dci_es", "sap", "explicitness"):
            train, test = {
                "dci": (defaults.DCI.num_train, defaults.DCI.num_test),
                "dci_es": (defaults.DCI_ES.num_train, defaults.DCI_ES.num_test),
                "sap": (defaults.SAP.num_train, defaults.SAP.num_test),
                "explicitness": (defaults.MODULARITY.num_train, defaults.MODULARITY.num_test),
            }[name]
            need = max(need, int(o.get("num_train", train)) + int(o.get("num_test", test)))
        elif name == "probes":
            p = defaults.PROBES
            sizes = o.get("num_train", p.num_train)
            need = max(need, max(max(sizes), int(o.get("subspace_num_train", 0))) + int(o.get("num_test", p.num_test)))
        elif name == "activity":
            need = max(need, int(o.get("num_samples", defaults.ACTIVITY.num_samples)))
        elif name == "factor_vae":
            need = max(need, int(o.get("num_variance_estimate", defaults.FACTOR_VAE.num_variance_estimate)))
    return need


def _activity(
    codes: np.ndarray | None,
    represent: Representer | None,
    factor_sizes: Sequence[int] | None,
    base: dict[str, Any],
    override: Mapping[str, Any],
) -> MetricResult:
    """Active units of the observational codes, plus the interventional activity matrix when a representer is given."""
    if codes is None:
        raise MetricError("metric activity needs codes or an encoder and a dataset")
    unit_args = {k: v for k, v in override.items() if k in inspect.signature(active_units).parameters}
    matrix_override = {k: v for k, v in override.items() if k not in unit_args}
    num = int(override.get("num_samples", defaults.ACTIVITY.num_samples))
    units = active_units(codes[:num], **unit_args)
    details: dict[str, Any] = {"active_units": units.score, **units.details}
    settings: dict[str, Any] = {**units.settings, "num_samples": min(num, codes.shape[0])}
    if represent is not None and factor_sizes is not None:
        kwargs = _kwargs("activity", activity_matrix, base, matrix_override)
        matrix = activity_matrix(represent, factor_sizes, **kwargs)
        details["intervention"] = matrix.details
        details["exclusivity"] = matrix.score
        settings["intervention"] = matrix.settings
    return MetricResult(name="activity", score=units.score, details=details, settings=settings)


def run_suite(
    names: Sequence[str],
    *,
    codes: np.ndarray | None = None,
    factors: np.ndarray | None = None,
    represent: Representer | None = None,
    factor_sizes: Sequence[int] | None = None,
    factor_names: Sequence[str] | None = None,
    subspaces: Sequence[tuple[str, int]] | None = None,
    subspace_factors: Mapping[str, str | Sequence[str]] | None = None,
    seed: int = defaults.SEED,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, MetricResult]:
    """Run the metrics ``names`` (see :data:`AVAILABLE`) and return ``{name: MetricResult}`` in the requested order.

    Give either precomputed ``codes`` (N, D) and ``factors`` (N, K) (observational metrics only), or ``represent`` and
    ``factor_sizes`` (the suite draws and encodes the observational sample itself and runs the interventional metrics).
    The metrics of :data:`CODES_ONLY` also run on codes without factors (``factors=None``: data without ground truth).
    Continuous factors (a float array with non-integer values) select the metrics for real-valued factors under the
    same names (``mig``, ``dci``, ``probes``: :mod:`metrics.continuous`); the others need classes and are refused.
    ``subspace_factors`` ties subspaces to factors whose names differ (subspace -> factor or list of factors); by
    default a subspace ties to the factor of the same name.
    ``overrides`` maps a metric name to keyword arguments of its function (e.g. ``{"dci": {"method": "reference"}}``).
    Each result's ``details["seconds"]`` holds its wall time.
    """
    requested = _check_names(names)
    over = {k: dict(v) for k, v in (overrides or {}).items()}
    stray = [k for k in over if k not in requested]
    if stray:
        raise MetricError(f"overrides given for metric(s) not requested: {', '.join(stray)}")
    report = progress or (lambda _msg: None)
    if represent is not None:
        if factor_sizes is None:
            raise MetricError("an encoder needs the dataset's factor sizes; pass factor_sizes with represent")
        sizes = check_factor_sizes(factor_sizes)
        represent = CachingRepresenter(represent, sizes)
    else:
        needs = [n for n in requested if n in INTERVENTIONAL]
        if needs:
            raise MetricError(
                f"metric {needs[0]} needs interventions (an encoder and a dataset), not precomputed codes; "
                "drop it or pass --encoder/--dataset"
            )
        if codes is None or (factors is None and any(n not in CODES_ONLY for n in requested)):
            raise MetricError("pass codes and factors (precomputed), or an encoder and a dataset")
    if "mig_subspace" in requested and not subspaces:
        raise MetricError("metric mig_subspace needs named subspaces; pass subspaces (name, width) or drop it")
    if factor_names is not None and factor_sizes is not None and len(factor_names) != len(factor_sizes):
        raise MetricError(f"got {len(factor_names)} factor names for {len(factor_sizes)} factors")

    continuous = factors is not None and is_continuous(np.asarray(factors))
    if continuous:
        wrong = [n for n in requested if n not in CONTINUOUS_OK]
        if wrong:
            raise MetricError(
                f"metric(s) {', '.join(wrong)} need factor classes, and these factors are continuous (non-integer); "
                f"use {', '.join(sorted(CONTINUOUS_OK))}"
            )
    functions = {**_FUNCTIONS, **_CONTINUOUS_FUNCTIONS} if continuous else _FUNCTIONS

    rng = np.random.default_rng(seed)
    observational = [n for n in requested if n in OBSERVATIONAL]
    shared_codes = None if codes is None else np.asarray(codes)
    shared_factors = None if factors is None else np.asarray(factors)
    if represent is not None and shared_codes is None and (observational or "factor_vae" in requested):
        n_obs = observational_sample_size(requested, over)
        report(f"encoding {n_obs} observational samples")
        shared_factors = sample_factors(represent.factor_sizes, n_obs, rng)
        shared_codes = np.asarray(represent(shared_factors))

    base: dict[str, Any] = {"seed": seed, "subspaces": subspaces, "factor_names": factor_names}
    if subspace_factors is not None:
        base["subspace_factors"] = {k: v if isinstance(v, str) else list(v) for k, v in subspace_factors.items()}
    results: dict[str, MetricResult] = {}
    for name in requested:
        report(f"{name}: running")
        start = time.perf_counter()
        o = over.get(name, {})
        if name == "activity":
            result = _activity(shared_codes, represent, factor_sizes, base, o)
        elif name in INTERVENTIONAL:
            assert represent is not None and factor_sizes is not None
            fn = _FUNCTIONS[name]
            kwargs = _kwargs(name, fn, base, o)
            if name == "factor_vae" and shared_codes is not None and codes is None and "variance_codes" not in o:
                num_var = int(kwargs.get("num_variance_estimate", defaults.FACTOR_VAE.num_variance_estimate))
                kwargs["variance_codes"] = shared_codes[:num_var]
            result = fn(represent, factor_sizes, **kwargs)
        else:
            fn = functions[name]
            protocol = {"num_train": _PROTOCOL_NUM_TRAIN[name]} if name in _PROTOCOL_NUM_TRAIN else {}
            kwargs = _kwargs(name, fn, {**base, **protocol}, o)
            labels = None if continuous and name in CODES_ONLY else shared_factors  # they read the codes alone
            try:
                result = fn(shared_codes, labels, **kwargs)
            except MetricError as err:
                message = str(err)
                raise MetricError(message if name in message else f"{name}: {message}") from err
        seconds = time.perf_counter() - start
        result.details["seconds"] = seconds
        results[name] = result
        report(f"{name}: {result.score:.4f} ({seconds:.1f} s)")
    if isinstance(represent, CachingRepresenter):
        report(
            f"encoder: {represent.rows_encoded} distinct grid points encoded for {represent.rows_requested} requested "
            f"in {represent.calls} calls"
        )
    return results


def run_cross_run(
    names: Sequence[str],
    codes: Sequence[np.ndarray],
    *,
    seed: int = defaults.SEED,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, MetricResult]:
    """Run the cross-run metrics ``names`` (of :data:`CROSS_RUN`) on the codes of several runs of the same inputs.

    ``codes``: one ``(N, D_m)`` array per run, row ``i`` of every array encoding the same input. ``overrides`` maps a
    metric name to keyword arguments of its function. Each result's ``details["seconds"]`` holds its wall time."""
    requested = list(dict.fromkeys(names))
    unknown = [n for n in requested if n not in CROSS_RUN]
    if unknown or not requested:
        raise MetricError(
            f"{', '.join(unknown) or 'no metric'}: with several runs only {', '.join(CROSS_RUN)} apply; "
            "score each run on its own for the other metrics"
        )
    if len(codes) < 2:
        raise MetricError(f"{', '.join(requested)} compare(s) runs: pass the codes of at least 2 runs")
    over = overrides or {}
    results: dict[str, MetricResult] = {}
    for name in requested:
        fn = CROSS_RUN[name]
        start = time.perf_counter()
        result = fn(list(codes), **_kwargs(name, fn, {"seed": seed}, over.get(name, {})))
        result.details["seconds"] = time.perf_counter() - start
        results[name] = result
    return results
