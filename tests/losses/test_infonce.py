"""NT-Xent, the MoCo memory queue and momentum updates against loops and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from torch import nn

from disco.errors import ConfigError
from disco.losses.infonce import MemoryQueue, MomentumEncoder, NTXentLoss, momentum_update


def ntxent_loop(za, zb, tau, labels=None, keys=None):
    v = np.concatenate([np.asarray(za, np.float64), np.asarray(zb, np.float64)])
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    k = None if keys is None else np.asarray(keys, np.float64)
    k = None if k is None else k / np.linalg.norm(k, axis=1, keepdims=True)
    n = len(za)
    lab = None if labels is None else np.concatenate([labels, labels])
    out = []
    for i in range(2 * n):
        sims = [v[i] @ v[j] / tau for j in range(2 * n) if j != i]
        if k is not None:
            sims += [v[i] @ kk / tau for kk in k]
        lse = logsumexp(sims)
        pos = [j for j in range(2 * n) if j != i and (j == (i + n) % (2 * n) or (lab is not None and lab[i] == lab[j]))]
        out.append(-np.mean([v[i] @ v[p] / tau - lse for p in pos]))
    return float(np.mean(out))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_labels", [False, True])
def test_ntxent_matches_loop(dtype, with_labels):
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(6, 5, generator=g, dtype=dtype), torch.randn(6, 5, generator=g, dtype=dtype)
    labels = torch.randint(0, 3, (6,), generator=g) if with_labels else None
    out = NTXentLoss(temperature=0.5)(za, zb, labels)
    ref = ntxent_loop(za, zb, 0.5, None if labels is None else labels.numpy())
    assert out.loss.item() == pytest.approx(ref, rel=1e-5 if dtype == torch.float32 else 1e-12)


def test_ntxent_uniform_is_log_candidates_and_perfect_accuracy():
    z = torch.ones(5, 4)
    assert NTXentLoss()(z, z.clone()).loss.item() == pytest.approx(math.log(9), rel=1e-6)
    za = torch.eye(4) * 3
    out = NTXentLoss(temperature=0.1)(za, za * 2)
    assert out.diagnostics["acc"].item() == 1.0
    assert out.diagnostics["candidates"].item() == 7


@pytest.mark.parametrize("temperature", [1e-3, 10.0])
def test_ntxent_extreme_temperature_finite(temperature):
    za = (torch.randn(8, 4) * 1e4).requires_grad_(True)
    out = NTXentLoss(temperature=temperature)(za, torch.randn(8, 4) * 1e4)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(za.grad).all()


def test_ntxent_gradcheck():
    za = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    zb = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    loss_fn = NTXentLoss(temperature=0.3)
    assert torch.autograd.gradcheck(lambda a, b: loss_fn(a, b).loss, (za, zb))


def test_queue_negatives_and_enqueue():
    g = torch.Generator().manual_seed(1)
    queue = MemoryQueue(size=10, dim=4)
    loss_fn = NTXentLoss(temperature=0.2, queue=queue)
    first_a, first_b = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)
    out = loss_fn(first_a, first_b)  # empty queue: plain NT-Xent
    assert out.loss.item() == pytest.approx(ntxent_loop(first_a, first_b, 0.2), rel=1e-5)
    assert torch.equal(queue.get(), first_b)
    za, zb = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)
    out = loss_fn(za, zb)
    assert out.loss.item() == pytest.approx(ntxent_loop(za, zb, 0.2, keys=first_b), rel=1e-5)
    assert out.diagnostics["candidates"].item() == 7 + 4
    assert queue.count.item() == 8
    loss_fn.eval()
    loss_fn(za, zb)
    assert queue.count.item() == 8


def test_queue_wraps_around_and_round_trips_state():
    q = MemoryQueue(size=5, dim=1)
    q.enqueue(torch.arange(3.0)[:, None])
    assert (q.ptr.item(), q.count.item()) == (3, 3)
    assert q.get().squeeze(1).tolist() == [0, 1, 2]
    q.enqueue(torch.arange(10.0, 14.0)[:, None])  # slots 3, 4, 0, 1
    assert (q.ptr.item(), q.count.item()) == (2, 5)
    assert q.get().squeeze(1).tolist() == [12, 13, 2, 10, 11]
    q.enqueue(torch.arange(20.0, 27.0)[:, None])  # 7 > 5: keys 22..26 land in slots 4, 0, 1, 2, 3
    assert q.ptr.item() == 4
    assert q.get().squeeze(1).tolist() == [23, 24, 25, 26, 22]
    state = q.state_dict()
    assert set(state) == {"queue", "ptr", "count"}
    q2 = MemoryQueue(size=5, dim=1)
    q2.load_state_dict(state)
    assert torch.equal(q2.get(), q.get()) and q2.ptr.item() == 4
    with pytest.raises(ConfigError):
        q.enqueue(torch.zeros(2, 3))


def test_momentum_update_and_encoder():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    enc = MomentumEncoder(online, momentum=0.9)
    assert all(not p.requires_grad for p in enc.parameters())
    before = [p.clone() for p in enc.target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    online.train()
    online(torch.randn(8, 3))  # changes the running statistics
    enc.update(online)
    for t, b, o in zip(enc.target.parameters(), before, online.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * o)
    assert torch.equal(enc.target[1].running_mean, online[1].running_mean)
    out = enc(torch.randn(2, 3))
    assert not out.requires_grad
    target = nn.Linear(3, 4)
    momentum_update(online[0], target, 0.0)
    assert torch.equal(target.weight, online[0].weight)
    with pytest.raises(ConfigError):
        MomentumEncoder(online, momentum=1.5)
