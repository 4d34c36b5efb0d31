"""Encode a dataset with any encoder and hand the codes to :mod:`metrics`.

The representation scored is the encoder MEAN, as in disentanglement_lib (Locatello et al. 2019, "Challenging Common
Assumptions in the Unsupervised Learning of Disentangled Representations"): an encoder may return codes ``(B, D)`` or a
``(mean, log-variance)`` pair, of which the mean is used. Images go through the encoder in large batches under
:func:`torch.inference_mode` on the encoder's device; the interventional metrics (FactorVAE score, Kim & Mnih 2018;
BetaVAE score, Higgins et al. 2017; factor activity) reach the encoder through a :class:`Representer`, which maps factor
classes to grid rows by index arithmetic.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from disco.data.datasets import GroundTruthData
from disco.data.domains import Domain
from disco.errors import ConfigError, DataError, EncoderError
from disco.models.subspaces import SubspaceSpec
from metrics.types import MetricResult

SPLITS = ("test", "val", "train", "all")
_GRID_DESC = "encoding grid points"


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available; use --device cpu or auto")
    return device


def module_device(module: nn.Module) -> torch.device:
    """The device of the module's first parameter (or buffer); CPU for a module without tensors."""
    for param in module.parameters():
        return param.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")


def _codes_of(output: Any, batch: int) -> torch.Tensor:
    """The code tensor of one encoder output: the tensor itself or the first element (mean) of a tuple/list."""
    if isinstance(output, (tuple, list)):
        if not output:
            raise EncoderError("encoder returned an empty tuple; return codes (B, D) or (mean, logvar)")
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise EncoderError(
            f"encoder returned {type(output).__name__}; return a tensor (B, D) or a (mean, logvar) tuple of tensors"
        )
    if output.dim() != 2 or output.shape[0] != batch:
        raise EncoderError(
            f"encoder output has shape {tuple(output.shape)} for a batch of {batch} images; expected ({batch}, D)"
        )
    return output


def check_codes(codes: np.ndarray, what: str = "encoder codes", *, allow_constant: bool = False) -> None:
    """Raise :class:`EncoderError` for codes that are not (N, D), hold NaN/inf, or (unless ``allow_constant``) are
    constant over all samples."""
    if codes.ndim != 2 or codes.shape[1] < 1:
        raise EncoderError(f"{what} have shape {codes.shape}; expected (N, D) with D >= 1")
    if not np.all(np.isfinite(codes)):
        bad = int(np.sum(~np.isfinite(codes).all(axis=1)))
        raise EncoderError(f"{what} contain NaN or infinite values in {bad} of {codes.shape[0]} rows; fix the encoder")
    if not allow_constant and codes.shape[0] > 1 and np.all(np.ptp(codes, axis=0) == 0):
        raise EncoderError(f"{what} are constant over all {codes.shape[0]} samples; the encoder ignores its input")


#: Images per encoder pass when none is given. On the CPU, batches whose activations stay under glibc's 32 MiB mmap
#: threshold reuse freed heap memory; larger ones are mapped afresh and zero-filled by the kernel on every pass. For
#: conv64 at 512 images that was 146 minor page faults per image and as much system time as user time, at 2.5x less
#: throughput than at 128 (scripts/bench_encoder.py). GPUs want large batches.
DEFAULT_BATCH_SIZE: dict[str, int] = {"cpu": 128, "cuda": 512}


def default_batch_size(device: torch.device) -> int:
    """Images per encoder pass on ``device`` (see :data:`DEFAULT_BATCH_SIZE`)."""
    return DEFAULT_BATCH_SIZE.get(device.type, DEFAULT_BATCH_SIZE["cpu"])


def prepare_encoder(encoder: nn.Module, *, probe_shape: tuple[int, ...] | None = None) -> nn.Module:
    """An inference-only version of ``encoder`` on the CPU: scripted (when it is not TorchScript already), frozen
    (weights become constants) and passed through :func:`torch.jit.optimize_for_inference` (conv + ReLU fusion,
    pre-packed oneDNN weights): 10,400 vs 8,100 conv64 images/s on 2 cores (scripts/bench_encoder.py).

    A GPU module or one in training mode is returned unchanged, as is a module that cannot be scripted or optimised,
    or whose output on a ``probe_shape`` batch of random images moves by more than 1e-4 (relative) from the
    original's: the scores must not depend on this step.
    """
    if encoder.training or module_device(encoder).type != "cpu":
        return encoder
    try:
        script = encoder if isinstance(encoder, torch.jit.ScriptModule) else torch.jit.script(encoder)
        fast = torch.jit.optimize_for_inference(torch.jit.freeze(script))
        if probe_shape is not None:
            x = torch.rand(4, *probe_shape, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                want = _codes_of(encoder(x), 4)
                got = _codes_of(fast(x), 4)
            if not torch.allclose(want, got, rtol=1e-4, atol=1e-5 * float(want.abs().max()) + 1e-7):
                return encoder
    except Exception:  # an optimiser failure only costs speed
        return encoder
    return fast


def _reads_rgb(encoder: nn.Module, grey: torch.Tensor) -> bool:
    """Whether ``encoder`` runs on the RGB version of two of the ``grey`` images (a hint for a failed grey batch)."""
    try:
        encoder(grey[:2].expand(-1, 3, -1, -1).contiguous())
    except Exception:
        return False
    return True


class Representer:
    """Maps factor classes ``(N, K)`` to codes ``(N, D)`` by encoding the grid images at those points.

    This is the ``metrics.types.Representer`` callable. Classes are turned into flat grid rows with
    :meth:`FactorSpace.classes_to_index` (the dataset must enumerate its factor grid in order, ``on_grid``), the uint8
    images are gathered, moved to the encoder's device and divided by 255 there, and passed through the encoder
    ``batch_size`` images at a time under :func:`torch.inference_mode`. ``calls`` counts encoder passes and
    ``num_encoded`` images encoded.
    """

    def __init__(
        self,
        encoder: nn.Module,
        data: GroundTruthData,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        domain: Domain | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch size {batch_size} must be >= 1")
        self.encoder = encoder
        self.data = data
        self.domain = domain
        self.device = module_device(encoder)
        self.batch_size = int(batch_size) if batch_size is not None else default_batch_size(self.device)
        self.calls = 0
        self.num_encoded = 0
        self.seconds = 0.0
        self.code_dim: int | None = None
        self._bar: Any = None
        self._progress = progress

    def __call__(self, classes: np.ndarray) -> np.ndarray:
        classes = np.asarray(classes)
        if not self.data.on_grid:
            raise DataError(
                f"dataset {self.data.name!r} does not enumerate its factor grid in order, so interventional metrics "
                "cannot pick images by factor; use observational metrics or a full-grid dataset"
            )
        sizes = np.asarray(self.data.factors.sizes)
        if classes.ndim != 2 or classes.shape[1] != sizes.size:
            raise ConfigError(f"factor classes have shape {classes.shape}; expected (N, {sizes.size})")
        if np.any(classes < 0) or np.any(classes >= sizes):
            raise ConfigError(f"factor classes fall outside the grid {sizes.tolist()}")
        index = self.data.factors.classes_to_index(classes.astype(np.int64))
        return self.encode_rows(np.asarray(index), desc=_GRID_DESC)

    def encode_rows(self, rows: np.ndarray | torch.Tensor, *, desc: str = "encoding") -> np.ndarray:
        """Codes of dataset rows ``rows`` (a 1-D integer array), as float64 numpy ``(len(rows), D)``."""
        rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        images = self.data.images
        out: list[np.ndarray] = []
        bar = self._progress_bar(desc, len(rows_t))
        for start in range(0, len(rows_t), self.batch_size):
            idx = rows_t[start : start + self.batch_size]
            out.append(self.encode_images(images[idx.to(images.device)], keys=idx))
            if bar is not None:
                bar.update(len(idx))
        if desc != _GRID_DESC:
            self.close()
        if not out:
            return np.zeros((0, self.code_dim or 0), dtype=np.float64)
        codes = np.concatenate(out, axis=0)
        check_codes(codes, allow_constant=True)
        return codes

    def encode_images(self, images: torch.Tensor, keys: torch.Tensor | None = None) -> np.ndarray:
        """Codes of one batch of images: uint8 (0..255) or float in [0, 1], shape (B, C, H, W). With a ``domain``
        the images are its shifted renders, keyed by their dataset rows ``keys``."""
        start = time.perf_counter()
        with torch.inference_mode():
            x = images.to(self.device, non_blocking=True)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            if self.domain is not None:
                if keys is None:
                    raise ConfigError(
                        f"domain {self.domain.name!r} renders dataset rows; encode rows, not loose images"
                    )
                x = self.domain(x, keys.to(self.device))
            try:
                output = self.encoder(x)
            except Exception as err:  # any failure inside user code becomes one clear line
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                hint = "it must take float (B, C, 64, 64)"
                if x.shape[1] == 1 and _reads_rgb(self.encoder, x):
                    hint = "it reads RGB and these images are grey: score them under a domain, e.g. --domain plain"
                raise EncoderError(
                    f"encoder failed on a batch of shape {tuple(x.shape)} ({first[:200]}); {hint}"
                ) from err
            codes = _codes_of(output, x.shape[0])
        if self.code_dim is not None and codes.shape[1] != self.code_dim:
            raise EncoderError(
                f"encoder returned {codes.shape[1]} dims after {self.code_dim}; the code size must be fixed"
            )
        self.code_dim = int(codes.shape[1])
        out = codes.detach().to("cpu", torch.float64).numpy()
        self.calls += 1
        self.num_encoded += int(x.shape[0])
        self.seconds += time.perf_counter() - start
        return out

    def _progress_bar(self, desc: str, total: int) -> Any:
        if not self._progress:
            return None
        if self._bar is None or self._bar.desc != desc:
            self.close()
            self._bar = tqdm(
                total=None if desc == _GRID_DESC else total,
                desc=desc,
                unit="img",
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        return self._bar

    def status(self, message: str) -> None:
        """Print one status line to stderr (closing the progress bar first so the line stays readable)."""
        self.close()
        tqdm.write(f"[disco-metrics] {message}", file=sys.stderr)

    def close(self) -> None:
        """Close the progress bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def select_rows(
    n: int, split: str = "test", seed: int = 0, *, limit: int | None = None, sample_seed: int = 0
) -> np.ndarray:
    """Rows of a dataset of ``n`` images scored by observational metrics, sorted.

    ``split`` is a part of :func:`disco.data.splits.split_indices` with ``seed`` (the same held-out split training
    uses; its ``split_seed``) or ``"all"``. With ``limit`` smaller than the split, a uniform random subset of ``limit``
    rows is drawn with ``sample_seed`` (the metrics draw their own uniform samples from whatever they are given).
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "all":
        rows = np.arange(n, dtype=np.int64)
    else:
        from disco.data.splits import split_indices

        rows = np.sort(split_indices(n, seed=seed)[split].cpu().numpy().astype(np.int64))
    if limit is not None and 0 < limit < rows.size:
        rows = np.sort(np.random.default_rng(sample_seed).choice(rows, int(limit), replace=False))
    return rows


def load_codes(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read precomputed codes from a file with factors: an ``.npz`` with ``codes`` (N, D) float, ``factors`` (N, K)
    of an integer dtype and optional ``factor_names`` (K,); raises :class:`DataError`/:class:`ConfigError` with one
    line for every defect. Returns float64 codes, int64 factors and the stored names (None when absent).

    This keeps the original contract (integer factors only); :func:`disco.codes_io.load_codes_file` reads every
    supported format (``.npz``, ``.npy`` pairs, CSV/TSV) and passes float factors through."""
    from disco.codes_io import load_codes_file

    table = load_codes_file(path, require_factors=True)
    assert table.factors is not None
    stored = np.dtype(table.stored_factor_dtype or table.factors.dtype)
    if stored.kind not in "biu":
        raise DataError(
            f"'factors' in {path} must be an integer (N, K) array, got {stored} {table.factors.shape}; "
            "read float factors with disco.codes_io.load_codes_file"
        )
    return table.codes, table.factors, table.factor_names if table.names_given else None


def subspace_entries(spec: SubspaceSpec | None, code_dim: int) -> list[tuple[str, int]] | None:
    """The ``(name, width)`` list the metrics take, after checking the widths sum to the code dimension."""
    if spec is None:
        return None
    if spec.dim != code_dim:
        raise ConfigError(
            f"subspace widths sum to {spec.dim} ({spec.to_string()}) but the code has {code_dim} dimensions; fix --subspaces"
        )
    return [(s.name, s.width) for s in spec]


def score_codes(
    metric_names: Sequence[str],
    codes: np.ndarray,
    factors: np.ndarray | None,
    *,
    factor_names: Sequence[str] | None = None,
    represent: Representer | None = None,
    factor_sizes: Sequence[int] | None = None,
    subspaces: SubspaceSpec | None = None,
    subspace_factors: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, MetricResult]:
    """Run :func:`metrics.suite.run_suite` on codes (and a representer for interventional metrics); ``progress``
    receives the suite's one-line status messages. ``factors=None`` (data without ground truth) allows the metrics
    of :data:`metrics.suite.CODES_ONLY`; ``subspace_factors`` ties subspaces to differently named factors."""
    from metrics.suite import run_suite

    check_codes(codes)
    if factors is not None and codes.shape[0] != factors.shape[0]:
        raise DataError(f"{codes.shape[0]} codes but {factors.shape[0]} factor rows; they must match")
    return run_suite(
        list(metric_names),
        codes=codes,
        factors=factors,
        represent=represent,
        factor_sizes=None if factor_sizes is None else list(factor_sizes),
        factor_names=None if factor_names is None else list(factor_names),
        subspaces=subspace_entries(subspaces, codes.shape[1]),
        subspace_factors=subspace_factors,
        seed=seed,
        overrides={k: dict(v) for k, v in (overrides or {}).items()} or None,
        progress=progress,
    )


def score_rows(
    metric_names: Sequence[str],
    represent: Representer,
    rows: np.ndarray,
    codes: np.ndarray,
    *,
    subspaces: SubspaceSpec | None = None,
    subspace_factors: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    augment: Mapping[str, Any] | None = None,
    augment_pairs: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, MetricResult]:
    """Score ``codes`` of the dataset rows ``rows`` (encoded by ``represent``): the suite metrics through
    :func:`score_codes` (with the rows' factor classes when the data has them, interventions when it is on its grid),
    and ``augmentation_activity`` (:mod:`disco.evaluate_augment`) on ``augment_pairs`` view pairs per augmentation of
    the ``augment`` config."""
    from disco.evaluate_augment import AUGMENTATION_ACTIVITY, score_augmentation

    data = represent.data
    has = data.has_factors
    suite = [n for n in metric_names if n != AUGMENTATION_ACTIVITY]
    results: dict[str, MetricResult] = {}
    if suite:
        results = score_codes(
            suite,
            codes,
            data.classes[torch.as_tensor(rows)].cpu().numpy().astype(np.int64) if has else None,
            factor_names=data.factors.names if has else None,
            represent=represent if data.on_grid else None,
            factor_sizes=data.factors.sizes if has else None,
            subspaces=subspaces,
            subspace_factors=subspace_factors,
            seed=seed,
            overrides=overrides,
            progress=progress,
        )
    if AUGMENTATION_ACTIVITY in metric_names:
        results[AUGMENTATION_ACTIVITY] = score_augmentation(
            represent, data, rows, augment or {}, subspaces, num_pairs=augment_pairs, seed=seed
        )
    return results


def evaluate(
    encoder: nn.Module,
    data: GroundTruthData,
    metric_names: Sequence[str],
    *,
    split: str = "test",
    split_seed: int = 0,
    seed: int = 0,
    max_samples: int | None = None,
    batch_size: int | None = None,
    subspaces: SubspaceSpec | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
    subspace_factors: Mapping[str, Sequence[str]] | None = None,
    augment: Mapping[str, Any] | None = None,
    augment_pairs: int = 1000,
    domain: Domain | None = None,
) -> tuple[dict[str, MetricResult], dict[str, Any]]:
    """Score ``encoder`` (already on its device, in eval mode) on ``data`` with the named metrics.

    Observational metrics see the codes of rows of ``split`` (see :func:`select_rows`; ``split_seed`` must be the one
    training used): by default as many uniformly drawn rows as the requested protocols need
    (:func:`metrics.suite.observational_sample_size`), ``max_samples`` rows when given, the whole split when it is 0.
    Interventional metrics encode grid points through a :class:`Representer` over the whole grid (the dataset must
    be ``on_grid``). ``seed`` seeds the row draw and every metric. Returns the results and sample counts.

    Data without factors allows the codes-only metrics; ``augmentation_activity`` (see
    :mod:`disco.evaluate_augment`) encodes ``augment_pairs`` view pairs per augmentation of the ``augment`` config.
    ``domain`` (:mod:`disco.data.domains`) scores the dataset as rendered under that domain shift (every metric but
    ``augmentation_activity``, whose views are not dataset rows).
    """
    from metrics.suite import INTERVENTIONAL, observational_sample_size

    if domain is not None and "augmentation_activity" in metric_names:
        raise ConfigError(f"augmentation_activity cannot run under domain {domain.name!r}; drop one of them")

    needs = [n for n in metric_names if n in INTERVENTIONAL]
    if needs and not data.on_grid:
        raise DataError(
            f"dataset {data.name!r} does not hold its full factor grid in order, so {', '.join(needs)} cannot intervene "
            "on factors; drop them or use a full-grid dataset (dsprites, shapes3d or a replica)"
        )
    if max_samples is None:
        limit: int | None = observational_sample_size(list(metric_names), overrides)
    else:
        limit = max_samples if max_samples > 0 else None
    split_size = select_rows(len(data.images), split, split_seed).size
    rows = select_rows(len(data.images), split, split_seed, limit=limit, sample_seed=seed)
    represent = Representer(encoder, data, batch_size=batch_size, progress=progress, domain=domain)
    try:
        codes = represent.encode_rows(rows, desc=f"encoding {split}")
        results = score_rows(
            metric_names,
            represent,
            rows,
            codes,
            subspaces=subspaces,
            subspace_factors=subspace_factors,
            seed=seed,
            overrides=overrides,
            augment=augment,
            augment_pairs=augment_pairs,
            progress=represent.status if progress else None,
        )
    finally:
        represent.close()
    counts = {
        "split": split,
        "split_seed": split_seed,
        "split_rows": int(split_size),
        "observational_samples": int(codes.shape[0]),
        "interventional_images_encoded": int(represent.num_encoded - codes.shape[0]),  # incl. augmented views
        "encoder_passes": int(represent.calls),
        "encoder_batch_size": int(represent.batch_size),
        "encoding_seconds": round(represent.seconds, 3),
        "images_per_second": round(represent.num_encoded / max(represent.seconds, 1e-9), 1),
        "code_dim": int(codes.shape[1]),
    }
    return results, counts
