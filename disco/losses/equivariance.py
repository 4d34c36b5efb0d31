"""Equivariance of a tagged subspace to its augmentation's parameter.

A factor-tagged augmenter (:mod:`disco.data.augment`) knows how far apart it set the two views' parameters (the
shift, the zoom, the angle). Contrastive invariance only says *whether* a subspace may change between the views; this
term says *how much*: the code difference in the subspace tied to a factor must equal a fixed multiple of the
parameter difference. For a linear parameter (translation, zoom, brightness, contrast, blur) ``z_b - z_a = s · δ`` with
``δ`` the difference as a fraction of the parameter's range, each parameter dimension on its own code unit (x shift
on the first unit, y shift on the second: the axes of the subspace are the axes of the factor). For an angle (rotation,
hue) the 2-d code turns with it: ``z_b = R(δ) z_a`` on the circle of radius ``s``. The fixed scale ``s`` makes the code
non-collapsible (a constant code cannot meet it) and gives every unit the factor's metric.

This is the homomorphism/equivariance view of disentanglement (Higgins et al. 2018, "Towards a Definition of
Disentangled Representations"; Dangovski et al. 2022, "Equivariant Contrastive Learning", predict the transformation
parameter from the views; Park et al. 2022, "Learning Symmetric Embeddings for Equivariant World Models"). Unused
parameter dimensions (a subspace wider than its parameter) are left free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.models.subspaces import SubspaceSpec

#: Augmentation kinds whose parameter is an angle (the code rotates), and those it cannot be asked of.
ANGULAR = frozenset({"rotation", "hue"})
UNSUPPORTED = frozenset({"hflip"})


def rotate(z: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate 2-d codes ``(B, 2)`` by ``angle (B,)`` radians (counter-clockwise)."""
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([c * z[:, 0] - s * z[:, 1], s * z[:, 0] + c * z[:, 1]], 1)


class AugmentationEquivariance(nn.Module):
    """Mean squared equivariance error of the subspaces tied to augmented factors.

    Args:
        spec: the subspace split of the code.
        kinds: factor name -> augmentation kind, for the factors to constrain (each must name a subspace).
        dims: factor name -> dimensions of its parameter (2 for translation, else 1).
        scale: code units per full parameter range (linear kinds) or the radius of the code circle (angles).
    """

    def __init__(
        self, spec: SubspaceSpec, kinds: Mapping[str, str], dims: Mapping[str, int], scale: float = 2.0
    ) -> None:
        super().__init__()
        if scale <= 0:
            raise ConfigError(f"equivariance scale {scale} must be > 0 (code units per parameter range)")
        if not kinds:
            raise ConfigError("the equivariance term has no factor to constrain; tag augmentations in data.augment")
        self.entries: list[tuple[str, str, slice, int]] = []
        for name, kind in kinds.items():
            if kind in UNSUPPORTED:
                raise ConfigError(f"factor {name!r} ({kind}) has no continuous parameter; leave it out of equivariance")
            if name not in spec.names:
                raise ConfigError(
                    f"equivariance factor {name!r} has no subspace; add one to model.subspaces (e.g. {name}=2)"
                )
            width = spec[name].width
            need = 2 if kind in ANGULAR else int(dims[name])
            if width < need:
                raise ConfigError(
                    f"subspace {name!r} has width {width} but its {kind} parameter needs {need}; set {name}={need}"
                )
            self.entries.append((name, kind, spec[name].slice, need))
        self.scale = float(scale)

    @property
    def factor_names(self) -> Sequence[str]:
        return [e[0] for e in self.entries]

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor, delta: Mapping[str, torch.Tensor]) -> LossOutput:
        terms, diagnostics = [], {}
        for name, kind, sl, need in self.entries:
            if name not in delta:
                raise ConfigError(
                    f"the batch has no augmentation parameter for {name!r}; train with data.supervision: augment"
                )
            a, b, d = z_a[:, sl][:, :need], z_b[:, sl][:, :need], delta[name].to(z_a.dtype)
            if kind in ANGULAR:
                radius = (a.norm(dim=1) - self.scale).pow(2) + (b.norm(dim=1) - self.scale).pow(2)
                err = (b - rotate(a, d[:, 0])).pow(2).sum(1) + radius
            else:
                err = (b - a - self.scale * d).pow(2).sum(1)
            term = err.mean()
            terms.append(term)
            diagnostics[f"raw/{name}"] = term.detach()
        loss = torch.stack(terms).mean()
        return LossOutput(loss, diagnostics)
