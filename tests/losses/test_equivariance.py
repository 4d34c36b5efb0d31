"""AugmentationEquivariance against a per-pair loop and hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch

from disco.errors import ConfigError
from disco.losses.equivariance import AugmentationEquivariance, rotate
from disco.models.subspaces import SubspaceSpec


def spec() -> SubspaceSpec:
    return SubspaceSpec.parse("orientation=2,position=2,scale=1,content=2,free=1")


def test_linear_kinds_against_a_loop() -> None:
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    delta = {"position": torch.rand(16, 2, generator=g) - 0.5, "scale": torch.rand(16, 1, generator=g) - 0.5}
    loss = AugmentationEquivariance(
        spec(), {"position": "translation", "scale": "zoom"}, {"position": 2, "scale": 1}, 3.0
    )
    out = loss(za, zb, delta)
    ref_pos = (
        sum(
            sum((float(zb[b, 2 + d] - za[b, 2 + d]) - 3.0 * float(delta["position"][b, d])) ** 2 for d in range(2))
            for b in range(16)
        )
        / 16
    )
    ref_scale = sum((float(zb[b, 4] - za[b, 4]) - 3.0 * float(delta["scale"][b, 0])) ** 2 for b in range(16)) / 16
    assert out.loss.item() == pytest.approx((ref_pos + ref_scale) / 2, rel=1e-5)
    assert out.diagnostics["raw/position"].item() == pytest.approx(ref_pos, rel=1e-5)


def test_angles_rotate_the_code_on_a_circle() -> None:
    angle = torch.tensor([0.3, -2.0, math.pi])
    za = torch.zeros(3, 8)
    za[:, :2] = 2.0 * torch.stack(
        [torch.cos(torch.tensor([1.0, 2.0, 3.0])), torch.sin(torch.tensor([1.0, 2.0, 3.0]))], 1
    )
    zb = za.clone()
    zb[:, :2] = rotate(za[:, :2], angle)
    loss = AugmentationEquivariance(spec(), {"orientation": "rotation"}, {"orientation": 1}, 2.0)
    assert loss(za, zb, {"orientation": angle[:, None]}).loss.item() == pytest.approx(0.0, abs=1e-10)
    # a code of radius 1 (not 2) turned correctly pays only the radius error: 2 views x (1 - 2)^2 per pair
    assert loss(za / 2, zb / 2, {"orientation": angle[:, None]}).loss.item() == pytest.approx(2.0, rel=1e-6)
    assert torch.allclose(
        rotate(torch.tensor([[1.0, 0.0]]), torch.tensor([math.pi / 2])), torch.tensor([[0.0, 1.0]]), atol=1e-7
    )


def test_a_constant_code_cannot_meet_it_and_gradients_flow() -> None:
    za = torch.zeros(4, 8, requires_grad=True)
    zb = torch.zeros(4, 8, requires_grad=True)
    loss = AugmentationEquivariance(spec(), {"scale": "zoom"}, {"scale": 1}, 2.0)
    out = loss(za, zb, {"scale": torch.full((4, 1), 0.5)})
    assert out.loss.item() == pytest.approx(1.0)  # (0 - 2 * 0.5)^2
    out.loss.backward()
    assert za.grad is not None and za.grad[:, 4].abs().sum() > 0 and za.grad[:, :4].abs().sum() == 0


@pytest.mark.parametrize(
    ("kinds", "dims", "message"),
    [
        ({"colour": "hue"}, {"colour": 1}, "has no subspace"),
        ({"scale": "translation"}, {"scale": 2}, "width 1 but its translation parameter needs 2"),
        ({"position": "hflip"}, {"position": 1}, "no continuous parameter"),
        ({}, {}, "no factor to constrain"),
    ],
)
def test_config_errors(kinds: dict[str, str], dims: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AugmentationEquivariance(spec(), kinds, dims)
