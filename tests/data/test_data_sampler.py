"""Pair sampler: shared semantics of every mode, uniformity (chi-square), split membership, off-grid data, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import grid_data, row_of
from scipy.stats import chisquare

from disco.data.datasets import GroundTruthData
from disco.data.device_images import DeviceImages
from disco.data.pairs import PairBatch
from disco.data.sampler import MODES, PairBatchStream, PairSampler
from disco.errors import ConfigError


def _check_batch(batch: PairBatch, data: GroundTruthData) -> tuple[torch.Tensor, torch.Tensor]:
    """Images must be the rows whose classes the batch reports; returns the two row indices."""
    assert batch.classes_a is not None and batch.classes_b is not None
    ra, rb = row_of(batch.x_a), row_of(batch.x_b)
    assert torch.equal(data.classes[ra], batch.classes_a) and torch.equal(data.classes[rb], batch.classes_b)
    assert torch.equal(batch.shared, batch.classes_a == batch.classes_b)
    assert batch.x_a.dtype == torch.float32 and batch.x_a.shape == (len(batch), *data.images.shape[1:])
    return ra, rb


@pytest.mark.parametrize("mode", MODES)
def test_shared_is_true_exactly_where_classes_agree(grid: GroundTruthData, mode: str) -> None:
    sampler = PairSampler(grid, batch_size=512, mode=mode, seed=1)
    _check_batch(sampler.sample(), grid)


def test_share_only_k(grid: GroundTruthData) -> None:
    batch = PairSampler(grid, batch_size=2000, mode="share_one", seed=2).sample()
    shared = batch.shared[:, 1:]  # factor 0 has one value: always shared
    assert batch.shared[:, 0].all()
    assert torch.equal(shared.sum(1), torch.ones(len(batch), dtype=torch.long))  # exactly one varying factor shared
    counts = torch.bincount(shared.float().argmax(1), minlength=4)
    assert counts.min() > 400  # the shared factor is drawn among all varying factors


def test_groups_share_one_anchor_and_factor(grid: GroundTruthData) -> None:
    sampler = PairSampler(grid, batch_size=30, mode="share_one", seed=4, group_size=4)
    batch = sampler.sample()
    ra, _ = _check_batch(batch, grid)
    assert batch.ids is not None and torch.equal(batch.ids, ra)
    assert batch.classes_a is not None and batch.classes_b is not None
    for start in range(0, 30, 4):
        rows = slice(start, min(start + 4, 30))
        assert len(set(ra[rows].tolist())) == 1  # one anchor image per group
        shared = batch.shared[rows, 1:]
        assert (shared == shared[0]).all() and shared[0].sum() == 1  # the same factor for the whole group
        k = 1 + int(shared[0].float().argmax())
        assert (batch.classes_b[rows, k] == batch.classes_a[rows, k]).all()  # so every partner shows its value
    plain = PairSampler(grid, batch_size=30, mode="share_one", seed=4).sample()
    one = PairSampler(grid, batch_size=30, mode="share_one", seed=4, group_size=1).sample()
    assert plain.ids is None and one.ids is None and torch.equal(plain.x_b, one.x_b)
    with pytest.raises(ConfigError, match="pair_group 31 must lie between 1 and the batch size 30"):
        PairSampler(grid, batch_size=30, group_size=31)


def test_change_only_k_with_fixed_factor(grid: GroundTruthData) -> None:
    batch = PairSampler(grid, batch_size=1000, mode="change_one", seed=3).sample()
    assert torch.equal((~batch.shared).sum(1), torch.ones(len(batch), dtype=torch.long))
    assert batch.shared[:, 0].all()
    fixed = PairSampler(grid, batch_size=300, mode="change_one", seed=3, factor="f3").sample()
    expect = torch.ones(5, dtype=torch.bool)
    expect[3] = False
    assert (fixed.shared == expect).all()
    with pytest.raises(ConfigError, match="single value"):
        PairSampler(grid, mode="change_one", factor="f0")
    with pytest.raises(ConfigError, match="unknown factor"):
        PairSampler(grid, factor="colour")


def test_random_subset_changes_between_one_and_all_but_one(grid: GroundTruthData) -> None:
    batch = PairSampler(grid, batch_size=4000, mode="random_subset", seed=4).sample()
    changed = (~batch.shared).sum(1)
    assert changed.min() == 1 and changed.max() == 3  # 4 varying factors: m in {1, 2, 3}
    counts = torch.bincount(changed, minlength=4)[1:].float()
    assert (counts / counts.sum() - 1 / 3).abs().max() < 0.05


@pytest.mark.parametrize("mode", MODES)
def test_anchors_and_partners_are_uniform_over_the_grid(mode: str) -> None:
    grid = grid_data(side=2)
    sampler = PairSampler(grid, batch_size=4096, mode=mode, seed=5)
    ra, rb = [], []
    for _ in range(12):
        a, b = _check_batch(sampler.sample(), grid)
        ra.append(a)
        rb.append(b)
    for rows in (torch.cat(ra), torch.cat(rb)):
        counts = torch.bincount(rows, minlength=len(grid)).numpy()
        assert chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("mode", MODES)
def test_pairs_stay_inside_the_split(grid: GroundTruthData, mode: str) -> None:
    gen = torch.Generator().manual_seed(0)
    train = torch.randperm(len(grid), generator=gen)[: len(grid) // 2]
    sampler = PairSampler(grid, train, batch_size=3000, mode=mode, seed=6)
    batch = sampler.sample()
    ra, rb = _check_batch(batch, grid)
    allowed = torch.zeros(len(grid), dtype=torch.bool)
    allowed[train] = True
    assert allowed[ra].all() and allowed[rb].all()
    if mode in ("share_one", "change_one"):  # redraws keep the mode's promise for (almost) every row
        target = 1 if mode == "share_one" else 3
        col = batch.shared[:, 1:].sum(1)
        assert (col == target).float().mean() >= 1 - sampler.fallbacks / len(batch)


def test_fallback_when_no_partner_is_allowed(grid: GroundTruthData) -> None:
    # Only two rows allowed, differing in two factors: no "change one" partner exists inside the split.
    rows = torch.tensor([0, int(grid.factors.classes_to_index(np.array([0, 1, 1, 0, 0])))])
    sampler = PairSampler(grid, rows, batch_size=50, mode="change_one", seed=7, max_rounds=3)
    batch = sampler.sample()
    ra, rb = _check_batch(batch, grid)
    assert set(ra.tolist()) | set(rb.tolist()) <= set(rows.tolist())
    assert sampler.fallbacks == 50


def _off_grid(seed: int = 0) -> GroundTruthData:
    base = grid_data((2, 3, 4))
    perm = torch.randperm(len(base), generator=torch.Generator().manual_seed(seed))
    keep = perm[: len(base) - 5]  # shuffled and incomplete: not a grid in order
    return GroundTruthData("mine", base.images[keep], base.classes[keep], base.factors, False)


@pytest.mark.parametrize("mode", [m for m in MODES if m != "change_k"])  # change_k needs a full grid
def test_off_grid_pairs_by_grouping(mode: str) -> None:
    data = _off_grid()
    train = torch.arange(0, len(data), 2)
    sampler = PairSampler(data, train, batch_size=2000, mode=mode, seed=8)
    batch = sampler.sample()
    assert batch.classes_a is not None and batch.classes_b is not None
    assert torch.equal(batch.shared, batch.classes_a == batch.classes_b)
    if mode == "share_one":
        assert batch.shared.any(1).all()
    if mode == "change_one":  # partners agree on all factors but (at most) one
        assert ((~batch.shared).sum(1) <= 1).all() and (~batch.shared).any(1).float().mean() > 0.5


def test_state_dict_resumes_exactly(grid: GroundTruthData) -> None:
    sampler = PairSampler(grid, batch_size=32, mode="random_subset", seed=9)
    sampler.sample()
    state = sampler.state_dict()
    first = [sampler.sample() for _ in range(3)]
    other = PairSampler(grid, batch_size=32, mode="random_subset", seed=123)
    other.load_state_dict(state)
    for a in first:
        b = other.sample()
        assert torch.equal(a.x_a, b.x_a) and torch.equal(a.x_b, b.x_b) and torch.equal(a.shared, b.shared)


def test_triplets(grid: GroundTruthData) -> None:
    t = PairSampler(grid, batch_size=500, seed=10).sample_triplets()
    rows = torch.arange(500)
    same_pos = t.classes_anchor == t.classes_pos
    same_neg = t.classes_anchor == t.classes_neg
    assert same_pos[rows, t.factor].all() and (same_pos[:, 1:].sum(1) == 1).all()
    assert (~same_neg[rows, t.factor]).all() and (same_neg[:, 1:].sum(1) == 3).all()
    assert torch.equal(grid.classes[row_of(t.x_neg)], t.classes_neg)


def test_sample_images_and_stream(grid: GroundTruthData) -> None:
    sampler = PairSampler(grid, batch_size=16, seed=11)
    x, c = sampler.sample_images(40)
    assert x.shape == (40, 1, 64, 64) and torch.equal(grid.classes[row_of(x)], c)
    stream = PairBatchStream(sampler, steps_per_epoch=5)
    batches = list(stream)
    assert len(stream) == 5 and len(batches) == 5 and all(len(b) == 16 for b in batches)
    loader = torch.utils.data.DataLoader(stream, batch_size=None)
    assert sum(1 for _ in loader) == 5


def test_bad_sampler_arguments(grid: GroundTruthData) -> None:
    with pytest.raises(ConfigError, match="unknown pair mode"):
        PairSampler(grid, mode="share_two")
    with pytest.raises(ConfigError, match="empty"):
        PairSampler(grid, torch.tensor([], dtype=torch.long))
    with pytest.raises(ConfigError, match="does not belong"):
        PairSampler(grid, torch.tensor([len(grid)]))


def test_channels_last_images_gather_like_plain_indexing() -> None:
    nhwc = torch.randint(0, 256, (30, 64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    view = nhwc.permute(0, 3, 1, 2)  # how the 3D Shapes loader hands images over (no copy)
    images = DeviceImages(view)
    assert images.channels_last and images.storage.data_ptr() == nhwc.data_ptr()
    index = torch.tensor([3, 0, 29, 3])
    out = images.gather(index)
    assert out.is_contiguous() and torch.equal(out, view[index].float() / 255)
