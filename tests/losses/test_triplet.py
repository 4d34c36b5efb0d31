"""Triplet loss and miners against triple loops and a hand-made semi-hard case."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from disco.errors import ConfigError
from disco.losses.miners import batch_all, batch_hard, get_miner, semi_hard
from disco.losses.triplet import TripletLoss, pairwise_distance


def np_dist(x, kind):
    x = np.asarray(x, np.float64)
    if kind == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        return 1 - xn @ xn.T
    sq = ((x[:, None] - x[None]) ** 2).sum(-1)
    return sq if kind == "squared" else np.sqrt(sq)


def batch_all_loop(x, labels, margin, kind, nonzero_mean):
    d = np_dist(x, kind)
    losses = []
    for a, p, n in itertools.product(range(len(x)), repeat=3):
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]:
            losses.append(max(0.0, d[a, p] - d[a, n] + margin))
    losses = np.array(losses)
    if nonzero_mean:
        return losses[losses > 0].mean() if (losses > 0).any() else 0.0
    return losses.mean()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("distance", ["euclidean", "squared", "cosine"])
@pytest.mark.parametrize("nonzero_mean", [True, False])
def test_batch_all_matches_triple_loop(dtype, distance, nonzero_mean):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 3, generator=g, dtype=dtype)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0, 3])
    out = TripletLoss(margin=0.5, distance=distance, nonzero_mean=nonzero_mean)(x, labels)
    ref = batch_all_loop(x, labels.numpy(), 0.5, distance, nonzero_mean)
    assert out.loss.item() == pytest.approx(ref, rel=1e-5 if dtype == torch.float32 else 1e-12)
    n_triplets = sum(
        1
        for a, p, n in itertools.product(range(9), repeat=3)
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]
    )
    assert out.diagnostics["triplets"].item() == n_triplets


def test_batch_hard_matches_loop():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 1])
    d = np_dist(x, "euclidean")
    expected = []
    for a in range(10):
        pos = [p for p in range(10) if p != a and labels[p] == labels[a]]
        neg = [n for n in range(10) if labels[n] != labels[a]]
        if pos and neg:
            expected.append(max(0.0, max(d[a, pos]) - min(d[a, neg]) + 0.3))
    out = TripletLoss(margin=0.3, miner="batch_hard", nonzero_mean=False)(x, labels)
    assert out.loss.item() == pytest.approx(np.mean(expected), rel=1e-12)
    a, p, n = batch_hard(pairwise_distance(x), labels)
    assert 8 not in a.tolist()  # label 3 has no positive
    assert all(labels[i] == labels[j] and labels[i] != labels[k] for i, j, k in zip(a, p, n, strict=True))


def test_semi_hard_picks_nearest_negative_beyond_the_positive():
    # 1-d points: anchor 0 at 0, positive 1 at 1; negatives at 0.5 (hard), 1.2 and 1.6 (semi-hard), 5 (easy)
    x = torch.tensor([[0.0], [1.0], [0.5], [1.2], [1.6], [5.0]])
    labels = torch.tensor([0, 0, 1, 1, 1, 1])
    dist = pairwise_distance(x)
    a, p, n = semi_hard(dist, labels, 1.0)
    chosen = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n, strict=True)}
    assert chosen[(0, 1)] == 3  # 1.2 is the nearest negative farther than the positive (1.0), not the hard 0.5
    assert chosen[(1, 0)] == 5  # from x=1 the positive is at distance 1; 0.5, 1.2 and 1.6 are closer: 5 is next
    # anchor x=1.2 with positive x=0.5 (distance 0.7): negative x=1 is closer (0.2), x=0 is the semi-hard one (1.2)
    assert chosen[(3, 2)] == 0
    # anchor x=0.5 with positive x=1.2: both negatives (x=0, x=1) are closer than the positive, so the pair is dropped
    assert (2, 3) not in chosen
    out = TripletLoss(margin=1.0, miner="semi_hard", nonzero_mean=False)(x, labels)
    d = dist.numpy()
    ref = np.mean([max(0.0, d[i, j] - d[i, k] + 1.0) for (i, j), k in chosen.items()])
    assert out.loss.item() == pytest.approx(ref, rel=1e-6)


def test_no_triplets_gives_zero_and_finite_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    out = TripletLoss()(x, torch.tensor([0, 1, 2, 3]))
    out.loss.backward()
    assert out.loss.item() == 0.0 and out.diagnostics["triplets"].item() == 0
    assert torch.isfinite(x.grad).all()


def test_gradcheck_and_zero_distance_gradient():
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    loss_fn = TripletLoss(margin=1.0, nonzero_mean=False)
    assert torch.autograd.gradcheck(lambda v: loss_fn(v, labels).loss, (x,))
    same = torch.zeros(4, 2, requires_grad=True)
    TripletLoss()(same, torch.tensor([0, 0, 1, 1])).loss.backward()
    assert torch.isfinite(same.grad).all()


def test_custom_miner_and_bad_names():
    def first_only(dist, labels, margin):
        return torch.tensor([0]), torch.tensor([1]), torch.tensor([2])

    x = torch.tensor([[0.0], [1.0], [3.0]])
    out = TripletLoss(margin=0.5, miner=first_only)(x, torch.tensor([0, 0, 1]))
    assert out.loss.item() == pytest.approx(0.0)
    out = TripletLoss(margin=2.5, miner=first_only)(x, torch.tensor([0, 0, 1]))
    assert out.loss.item() == pytest.approx(0.5)
    assert get_miner("batch_all") is batch_all
    with pytest.raises(ConfigError):
        TripletLoss(miner="hardest")
    with pytest.raises(ConfigError):
        TripletLoss(distance="manhattan")
