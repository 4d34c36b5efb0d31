"""Factor-aware augmentation: pairs with a known ``shared`` matrix for data without ground-truth factors.

Each augmentation kind is tagged with the named factor it changes, e.g. hue -> colour, rotation -> orientation,
translation -> position, zoom -> scale, brightness/contrast -> lighting, hflip -> mirror, blur -> sharpness. For every
image the augmenter decides, per augmentation, whether the two views differ in it (probability ``p_change``, or forced
by the caller). Both views get the same random base parameter; a pair that differs gets a second parameter at least
``min_delta`` of the range away (both inside the range; log-space for zoom and contrast), so ``shared[b, k]`` is
exactly "augmentation k was not applied differently". ``hflip`` is binary: an unchanged pair is flipped in both views
or in neither, a changed pair in exactly one. This is the augmentation-as-factor idea of contrastive disentanglement
(Wang et al. 2021, "Self-Supervised Learning Disentangled Group Representation as Feature"; von Kügelgen et al. 2021,
"Self-Supervised Learning with Data Augmentations Provably Isolates Content from Style"). With ``content`` set, one
extra last column of ``shared`` (always true) names what no augmentation touches: both views come from one image, so
their content is shared (von Kügelgen et al. 2021).

Order of application, per view: geometry (one ``affine_grid`` + ``grid_sample`` for rotation, translation and zoom,
then ``hflip`` mirrors the warped image by reversing the width axis), then Gaussian blur (separable depthwise
``conv2d``, reflect padding, radius ``ceil(3 σ_max)``), then colour: hue (rotation of RGB about the grey axis),
brightness (``x + b``), contrast (``(x − m)·c + m`` with ``m`` the image's mean over pixels and channels); each colour
step clamps to [0, 1]. Pure torch, everything drawn on the images' device with one generator per device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from disco.data.pairs import PairBatch
from disco.errors import ConfigError

AUGMENTATIONS = ("hue", "rotation", "translation", "zoom", "hflip", "blur", "brightness", "contrast")
DEFAULT_FACTORS: dict[str, str] = {
    "colour": "hue",
    "orientation": "rotation",
    "position": "translation",
    "scale": "zoom",
}
#: Keys :func:`augmenter_from_config` accepts.
CONFIG_KEYS = ("factors", "p_change", "min_delta", "content", "pivot")
#: Kinds whose parameter is an angle (their ``delta`` is the wrapped difference in radians).
ANGULAR = ("hue", "rotation")
PIVOTS = ("centre", "mass")
#: Kinds whose parameter is drawn log-uniformly (and whose range must be positive).
_LOG_KINDS = ("zoom", "contrast")
_SPEC_KEYS = ("kind", "range")


class FactorAugmenter:
    """Make two views of each image that differ in a random (or forced) subset of tagged augmentations.

    Args:
        factors: factor name -> augmentation kind (one of :data:`AUGMENTATIONS`), or -> ``{"kind": ..., "range":
            [lo, hi]}`` with the range in the kind's natural units: radians (hue, rotation), fraction of the image size
            (translation, per axis), zoom factor (zoom) and contrast factor (contrast), both log-uniform, additive
            offset (brightness), σ in pixels (blur); ``hflip`` takes no range. Column order of ``shared``.
        p_change: probability that a pair differs in each augmentation.
        max_rotation: default rotation range ``[-max_rotation, max_rotation]`` radians.
        max_translation: default shift range per axis ``[-max_translation, max_translation]`` of the image size.
        zoom_range: default zoom range (log-uniform).
        min_delta: smallest difference between two differing views, as a fraction of each parameter's range.
        content: name of an extra last ``shared`` column, always true (the content both views share), or None.
        pivot: the point rotation and zoom turn and scale about: ``centre`` of the image, or ``mass``, the
            intensity centroid of each source image, so that an object rotates and grows in place and only
            translation moves it (on dSprites, rotating about the image centre also moves the sprite, so a
            "rotation" pair then differs in position too, against its tags).
        seed: seed of the augmenter's random generators.

    :meth:`make_pairs` also returns each pair's parameter difference in ``PairBatch.delta`` (see
    :class:`~disco.data.pairs.PairBatch`). After :meth:`make_pairs`, ``last_params`` maps each kind to the parameters ``(view_a, view_b)`` it applied, each
    ``(B, 2)`` (x, y) for translation, else ``(B, 1)``, in the natural units above (hflip: 0. or 1.).
    """

    def __init__(
        self,
        factors: Mapping[str, str | Mapping[str, Any]] | None = None,
        *,
        p_change: float = 0.5,
        max_rotation: float = math.pi,
        max_translation: float = 0.2,
        zoom_range: tuple[float, float] = (0.8, 1.25),
        min_delta: float = 0.25,
        content: str | None = None,
        pivot: str = "centre",
        seed: int = 0,
    ) -> None:
        defaults: dict[str, tuple[float, float]] = {
            "hue": (-math.pi, math.pi),
            "rotation": (-max_rotation, max_rotation),
            "translation": (-max_translation, max_translation),
            "zoom": (zoom_range[0], zoom_range[1]),
            "hflip": (0.0, 1.0),
            "blur": (0.0, 2.0),
            "brightness": (-0.3, 0.3),
            "contrast": (0.5, 2.0),
        }
        self.factors: dict[str, str] = {}
        self.ranges: dict[str, tuple[float, float]] = {}
        for name, spec in (DEFAULT_FACTORS if factors is None else factors).items():
            kind, lo_hi = _parse_factor(name, spec)
            if kind in self.factors.values():
                raise ConfigError(f"augmentation {kind!r} is tagged with two factors; each kind may appear only once")
            self.factors[name] = kind
            self.ranges[kind] = _check_range(name, kind, defaults[kind] if lo_hi is None else lo_hi)
        if not self.factors:
            raise ConfigError("give at least one factor=augmentation pair, e.g. colour=hue")
        if not 0.0 <= p_change <= 1.0 or not 0.0 < min_delta <= 0.5:
            raise ConfigError("p_change must lie in [0, 1] and min_delta in (0, 0.5]")
        if content is not None and (not isinstance(content, str) or not content or content in self.factors):
            raise ConfigError(
                f"content {content!r} must be a non-empty name different from the factors {list(self.factors)}"
            )
        if pivot not in PIVOTS:
            raise ConfigError(f"unknown augmentation pivot {pivot!r}; choose one of {', '.join(PIVOTS)}")
        self.p_change, self.min_delta, self.content, self.seed = p_change, min_delta, content, seed
        self.pivot = pivot
        self.last_params: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._generators: dict[torch.device, torch.Generator] = {}

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Column names of ``shared``: the tagged factors, then ``content`` when set."""
        return (*self.factors, *(() if self.content is None else (self.content,)))

    def _gen(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def _params(
        self, kind: str, changed: torch.Tensor, gen: torch.Generator, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Natural-unit parameters of both views: equal where not changed, at least min_delta·range apart otherwise."""
        b, dev, dims = len(changed), changed.device, 2 if kind == "translation" else 1
        if kind == "hflip":
            base = (torch.rand(b, 1, generator=gen, device=dev, dtype=dtype) < 0.5).to(dtype)
            return base, torch.where(changed[:, None], 1.0 - base, base)
        lo, hi = self.ranges[kind]
        if kind in _LOG_KINDS:
            lo, hi = math.log(lo), math.log(hi)
        width = hi - lo
        base = lo + width * torch.rand(b, dims, generator=gen, device=dev, dtype=dtype)
        # A step in [gap, width - gap] taken modulo the range keeps both views in range and at least gap apart.
        gap = self.min_delta * width
        step = gap + (width - 2 * gap) * torch.rand(b, dims, generator=gen, device=dev, dtype=dtype)
        other = torch.where(changed[:, None], lo + torch.remainder(base - lo + step, width), base)
        return (base.exp(), other.exp()) if kind in _LOG_KINDS else (base, other)

    def make_pairs(self, x: torch.Tensor, changed: torch.Tensor | None = None) -> PairBatch:
        """Two augmented views of each image of ``x`` (float ``(B, C, H, W)`` in [0, 1]) and their ``shared`` matrix.

        ``changed``: optional bool ``(B, len(factors))`` forcing which augmentations differ in each pair (e.g. exactly
        one per pair for evaluation); when None each is drawn with probability ``p_change``.
        """
        if x.ndim != 4 or not x.is_floating_point():
            raise ConfigError(f"augmentation needs float images (B, C, H, W), got {x.dtype} {tuple(x.shape)}")
        if "hue" in self.ranges and x.shape[1] != 3:
            raise ConfigError(f"hue augmentation needs RGB images, got {x.shape[1]} channel(s); tag no factor with hue")
        if "blur" in self.ranges and min(x.shape[2:]) <= self._blur_radius:
            raise ConfigError(f"blur radius {self._blur_radius} needs images larger than that; lower the blur range")
        gen, (b, n) = self._gen(x.device), (x.shape[0], len(self.factors))
        if changed is None:
            changed = torch.rand(b, n, generator=gen, device=x.device) < self.p_change
        elif changed.shape != (b, n) or changed.dtype != torch.bool:
            raise ConfigError(f"changed must be bool ({b}, {n}), got {changed.dtype} {tuple(changed.shape)}")
        changed = changed.to(x.device)
        params = {
            kind: self._params(kind, changed[:, col], gen, x.dtype) for col, kind in enumerate(self.factors.values())
        }
        self.last_params = params
        pivot = mass_centre(x) if self.pivot == "mass" else None
        views = [self._apply(x, {k: p[i] for k, p in params.items()}, pivot) for i in (0, 1)]
        shared = ~changed
        if self.content is not None:
            shared = torch.cat([shared, torch.ones(b, 1, dtype=torch.bool, device=x.device)], 1)
        delta = {name: self._delta(kind, *params[kind]) for name, kind in self.factors.items()}
        return PairBatch(views[0], views[1], shared, self.factor_names, delta=delta)

    def _delta(self, kind: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """View b's parameter minus view a's: a wrapped angle for :data:`ANGULAR` kinds, else a fraction of the range."""
        if kind in ANGULAR:
            return torch.remainder(b - a + math.pi, 2 * math.pi) - math.pi
        lo, hi = self.ranges[kind]
        if kind in _LOG_KINDS:
            return (b.log() - a.log()) / (math.log(hi) - math.log(lo))
        return (b - a) / (hi - lo)

    @property
    def _blur_radius(self) -> int:
        return math.ceil(3 * self.ranges["blur"][1])

    def _apply(
        self, x: torch.Tensor, params: Mapping[str, torch.Tensor], pivot: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Apply natural-unit ``params`` (kind -> ``(B, dims)``) to ``x`` in the documented order; rotation and zoom
        act about ``pivot`` (``(B, 2)`` in ``affine_grid`` coordinates, default the image centre)."""
        b = x.shape[0]
        if {"rotation", "translation", "zoom"} & params.keys():
            zero = torch.zeros(b, device=x.device, dtype=x.dtype)
            angle = params["rotation"][:, 0] if "rotation" in params else zero
            shift = 2 * params["translation"] if "translation" in params else torch.stack([zero, zero], 1)
            scale = params["zoom"][:, 0] if "zoom" in params else zero + 1.0
            # Output point p samples input point c + R(-angle)(p - shift - c)/scale: the content turns by angle and
            # grows by scale about the pivot c, and moves by shift (affine_grid coordinates span 2 per image, hence
            # 2 * translation).
            cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
            inv = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # (B, 2, 2)
            c = torch.zeros_like(shift) if pivot is None else pivot.to(x.dtype)
            offset = c[:, :, None] - inv @ (shift + c)[:, :, None]
            grid = F.affine_grid(torch.cat([inv, offset], 2), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if "hflip" in params:
            x = torch.where(params["hflip"][:, :, None, None] > 0.5, x.flip(-1), x)
        if "blur" in params:
            x = gaussian_blur(x, params["blur"][:, 0], self._blur_radius)
        if "hue" in params:
            x = torch.einsum("bij,bjhw->bihw", hue_matrix(params["hue"][:, 0]), x).clamp_(0.0, 1.0)
        if "brightness" in params:
            x = (x + params["brightness"][:, :, None, None]).clamp_(0.0, 1.0)
        if "contrast" in params:
            mean = x.mean((1, 2, 3), keepdim=True)
            x = ((x - mean) * params["contrast"][:, :, None, None] + mean).clamp_(0.0, 1.0)
        return x

    def state_dict(self) -> dict[str, Any]:
        """Generator states per device; :meth:`load_state_dict` into an equally configured augmenter continues exactly."""
        return {str(dev): g.get_state() for dev, g in self._generators.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for dev, st in state.items():
            self._gen(torch.device(dev)).set_state(st.cpu())


def augmenter_from_config(cfg: Mapping[str, Any], seed: int) -> FactorAugmenter:
    """Build a :class:`FactorAugmenter` from a plain mapping with keys from :data:`CONFIG_KEYS`, e.g.
    ``{"factors": {"orientation": "rotation", "position": {"kind": "translation", "range": [-0.2, 0.2]}},
    "p_change": 0.5, "min_delta": 0.25, "content": "content"}``. Missing keys take the constructor's defaults.
    """
    unknown = sorted(str(k) for k in cfg if k not in CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"unknown augmentation key(s) {', '.join(unknown)}; valid keys: {', '.join(CONFIG_KEYS)}")
    factors = cfg.get("factors")
    if factors is not None and not isinstance(factors, Mapping):
        raise ConfigError(f"augmentation key 'factors' must map factor names to kinds, got {type(factors).__name__}")
    p_change, min_delta = _number(cfg, "p_change", 0.5), _number(cfg, "min_delta", 0.25)
    pivot = str(cfg.get("pivot", "centre"))
    return FactorAugmenter(
        factors, p_change=p_change, min_delta=min_delta, content=cfg.get("content"), pivot=pivot, seed=seed
    )


def mass_centre(x: torch.Tensor) -> torch.Tensor:
    """Intensity centroid ``(B, 2)`` (x, y) of images ``(B, C, H, W)`` in ``affine_grid`` coordinates
    (``align_corners=False``: pixel ``j`` of ``W`` sits at ``(2j + 1)/W - 1``); the image centre for a blank image."""
    w = x.sum(1)
    h_coords = (2 * torch.arange(x.shape[2], device=x.device, dtype=x.dtype) + 1) / x.shape[2] - 1
    w_coords = (2 * torch.arange(x.shape[3], device=x.device, dtype=x.dtype) + 1) / x.shape[3] - 1
    total = w.sum((1, 2))
    cx = (w.sum(1) * w_coords).sum(1) / total.clamp_min(1e-12)
    cy = (w.sum(2) * h_coords).sum(1) / total.clamp_min(1e-12)
    return torch.stack([cx, cy], 1)


def _number(cfg: Mapping[str, Any], key: str, default: float) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"augmentation key {key!r} must be a number, got {value!r}")
    return float(value)


def _parse_factor(name: object, spec: object) -> tuple[str, tuple[float, float] | None]:
    """Validate one ``factors`` entry; returns the kind and the configured range (None: the kind's default)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"factor names must be non-empty strings, got {name!r}")
    kind_spec: object = spec
    lo_hi: object = None
    if isinstance(spec, Mapping):
        bad = sorted(str(k) for k in spec if k not in _SPEC_KEYS)
        if bad:
            raise ConfigError(f"factor {name!r}: unknown key(s) {', '.join(bad)}; valid keys: {', '.join(_SPEC_KEYS)}")
        if "kind" not in spec:
            raise ConfigError(f"factor {name!r} needs key 'kind', one of {', '.join(AUGMENTATIONS)}")
        kind_spec, lo_hi = spec["kind"], spec.get("range")
    if kind_spec not in AUGMENTATIONS:
        raise ConfigError(
            f"unknown augmentation {kind_spec!r} for factor {name!r}; choose one of {', '.join(AUGMENTATIONS)}"
        )
    kind = str(kind_spec)
    if lo_hi is None:
        return kind, None
    if kind == "hflip":
        raise ConfigError(f"factor {name!r}: hflip takes no range; remove 'range'")
    if (
        not isinstance(lo_hi, (list, tuple))
        or len(lo_hi) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lo_hi)
    ):
        raise ConfigError(f"factor {name!r}: range must be two numbers [lo, hi], got {lo_hi!r}")
    return kind, (float(lo_hi[0]), float(lo_hi[1]))


def _check_range(name: str, kind: str, lo_hi: tuple[float, float]) -> tuple[float, float]:
    lo, hi = lo_hi
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"factor {name!r} ({kind}): range {list(lo_hi)} must be two increasing finite numbers")
    if (kind in _LOG_KINDS and lo <= 0) or (kind == "blur" and lo < 0):
        bound = "positive" if kind in _LOG_KINDS else "non-negative"
        raise ConfigError(f"factor {name!r} ({kind}): range {list(lo_hi)} must be {bound}")
    return lo, hi


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Blur each image of ``x`` ``(B, C, H, W)`` with its own Gaussian ``sigma`` ``(B,)`` (pixels).

    Separable: one depthwise ``conv2d`` per axis with the normalised kernel ``exp(−k²/2σ²)``, ``k`` in
    ``[−radius, radius]``, reflect padding. Images with ``σ = 0`` are returned exactly.
    """
    b, c, h, w = x.shape
    k = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    # σ = 0 gives 0/0 at k = 0; the kernel there is the unit impulse.
    g = torch.where(k == 0, 1.0, torch.exp(-(k**2) / (2 * sigma[:, None] ** 2)))
    g = (g / g.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B·C, 2r+1)
    y = F.pad(x.reshape(1, b * c, h, w), (radius,) * 4, mode="reflect")
    y = F.conv2d(y, g[:, None, None, :], groups=b * c)
    y = F.conv2d(y, g[:, None, :, None], groups=b * c).reshape(b, c, h, w)
    return torch.where((sigma == 0)[:, None, None, None], x, y)  # exact even where conv2d's algorithm is not


def hue_matrix(angle: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` rotations of RGB space by ``angle`` about the grey axis (Rodrigues' formula): a hue shift."""
    u = torch.full((3,), 1.0 / math.sqrt(3.0), device=angle.device, dtype=angle.dtype)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=angle.device, dtype=angle.dtype)
    cross = cross / math.sqrt(3.0)
    eye = torch.eye(3, device=angle.device, dtype=angle.dtype)
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return c * eye + s * cross + (1 - c) * torch.outer(u, u)
