"""The equivariance term: which factors it constrains, its value against the loss module, and its config errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from disco.data.augment import FactorAugmenter
from disco.data.supervision import resolve_supervision
from disco.errors import ConfigError
from disco.losses.equivariance import AugmentationEquivariance
from disco.models.subspaces import SubspaceSpec
from disco.train.config import EquivarianceConfig, ObjectiveConfig
from disco.train.step import StepInputs, TermContext
from disco.train.terms import build_equivariance

AUGMENT = {"factors": {"orientation": "rotation", "position": "translation", "scale": "zoom", "mirror": "hflip"}}
SPEC = SubspaceSpec.parse("orientation=2,position=2,scale=1,content=1")


def ctx(augment: dict[str, Any] | None = AUGMENT) -> TermContext:
    return TermContext(
        SPEC, ("orientation", "position", "scale", "mirror"), 100, False, supervision="augment", augment=augment
    )


def test_default_factors_are_the_tagged_continuous_ones_with_a_subspace_and_value_matches_the_module() -> None:
    term = build_equivariance(EquivarianceConfig(weight=1.0), ctx())
    loss: Any = term.loss
    assert list(loss.factor_names) == ["orientation", "position", "scale"]
    batch = FactorAugmenter(AUGMENT["factors"], seed=0).make_pairs(torch.rand(8, 1, 64, 64))
    z = torch.randn(16, 6)
    out = term(StepInputs(batch, torch.cat([batch.x_a, batch.x_b]), z, z, z, 0))
    ref = AugmentationEquivariance(
        SPEC,
        {"orientation": "rotation", "position": "translation", "scale": "zoom"},
        {"orientation": 1, "position": 2, "scale": 1},
    )(z[:8], z[8:], batch.delta or {})
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-6)
    chosen: Any = build_equivariance(EquivarianceConfig(weight=1.0, factors=["position"], scale=1.0), ctx()).loss
    assert list(chosen.factor_names) == ["position"] and chosen.scale == 1.0


def test_config_errors_and_supervision() -> None:
    with pytest.raises(ConfigError, match=r"needs augmented pairs; set data\.supervision: augment"):
        build_equivariance(EquivarianceConfig(weight=1.0), ctx(None))
    with pytest.raises(ConfigError, match=r"\['shape'\] are not tagged"):
        build_equivariance(EquivarianceConfig(weight=1.0, factors=["shape"]), ctx())
    objective = ObjectiveConfig()
    objective.contrastive.weight = 0.0
    objective.equivariance.weight = 1.0
    assert resolve_supervision("augment", objective) == "augment"
    objective.equivariance.weight = 0.0
    assert resolve_supervision("augment", objective) == "none"
