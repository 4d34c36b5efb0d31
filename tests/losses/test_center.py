"""Center loss against a loop; centers are learnable parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disco.errors import ConfigError
from disco.losses.center import CenterLoss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_loop_and_centers_learn(dtype):
    torch.manual_seed(0)
    loss_fn = CenterLoss(num_classes=3, dim=4)
    x = torch.randn(7, 4, dtype=dtype)
    y = torch.tensor([0, 2, 2, 1, 0, 0, 2])
    out = loss_fn(x, y)
    c = loss_fn.centers.detach().double().numpy()
    ref = np.mean([0.5 * ((xi - c[yi]) ** 2).sum() for xi, yi in zip(x.double().numpy(), y.tolist(), strict=True)])
    assert out.loss.item() == pytest.approx(ref, rel=1e-5 if dtype == torch.float32 else 1e-6)
    out.loss.backward()
    assert loss_fn.centers.grad is not None and loss_fn.centers.grad[1].abs().sum() > 0
    # gradient on a class center is minus the sum of its residuals over the batch, divided by the batch size
    expected = -(x[y == 0].double() - loss_fn.centers[0].detach().double()).sum(0) / 7
    assert torch.allclose(loss_fn.centers.grad[0].double(), expected, atol=1e-5)
    assert "centers" in loss_fn.state_dict()


def test_zero_at_the_centers_and_errors():
    loss_fn = CenterLoss(num_classes=2, dim=3)
    y = torch.tensor([1, 0, 1])
    assert loss_fn(loss_fn.centers.detach()[y], y).loss.item() == 0.0
    with pytest.raises(ConfigError):
        loss_fn(torch.randn(2, 3), torch.tensor([0, 2]))
    with pytest.raises(ConfigError):
        loss_fn(torch.randn(2, 4), torch.tensor([0, 1]))


def test_online_update_matches_wen_rule_loop() -> None:
    torch.manual_seed(0)
    loss_fn = CenterLoss(num_classes=4, dim=3, alpha=0.5)
    x = torch.randn(9, 3)
    y = torch.tensor([0, 0, 1, 2, 2, 2, 0, 1, 2])  # class 3 absent: its center must not move
    before = loss_fn.centers.clone()
    out = loss_fn(x, y)
    expected_loss = sum(0.5 * float((x[i] - before[y[i]]).pow(2).sum()) for i in range(9)) / 9
    assert float(out.loss) == pytest.approx(expected_loss, rel=1e-6)  # the loss uses the centers before the update
    for j in range(4):
        members = [i for i in range(9) if int(y[i]) == j]
        delta = sum((before[j] - x[i] for i in members), torch.zeros(3)) / (1 + len(members))
        torch.testing.assert_close(loss_fn.centers[j], before[j] - 0.5 * delta)
    assert "centers" in loss_fn.state_dict() and not any(p is loss_fn.centers for p in loss_fn.parameters())
    loss_fn.eval()
    frozen = loss_fn.centers.clone()
    loss_fn(x, y)
    assert torch.equal(loss_fn.centers, frozen)  # evaluation does not move the centers
