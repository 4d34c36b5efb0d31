"""Pair sources behind one interface, the supervision cut, and the change-k dynamics of Locatello et al. 2020."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import grid_data

from disco.data.datasets import GroundTruthData
from disco.data.factors import FactorSpace
from disco.data.pairs import PairBatch
from disco.data.sampler import PairSampler
from disco.data.sources import SOURCES, AugmentPairSource, GridPairSource, SourceRequest, build_source
from disco.data.supervision import reveal
from disco.errors import ConfigError

AUGMENT = {"factors": {"orientation": "rotation", "scale": "zoom"}, "content": "content"}


def _request(data: GroundTruthData, **settings: object) -> SourceRequest:
    return SourceRequest(data, torch.arange(len(data)), batch_size=16, seed=3, settings=settings)


def _unlabelled(n: int = 40) -> GroundTruthData:
    images = torch.randint(0, 256, (n, 1, 64, 64), dtype=torch.uint8)
    return GroundTruthData("mine", images, torch.zeros(n, 0, dtype=torch.long), FactorSpace((), ()), False)


def test_registry_and_defaults_pick_the_level_source(grid: GroundTruthData) -> None:
    assert set(SOURCES) == {"grid", "augment", "cross_domain"}
    assert isinstance(build_source(None, "labels", _request(grid)), GridPairSource)
    assert isinstance(build_source(None, "pairs", _request(grid)), GridPairSource)
    aug = build_source(None, "augment", _request(grid, augment=AUGMENT))
    assert isinstance(aug, AugmentPairSource) and aug.factor_names == ("orientation", "scale", "content")
    with pytest.raises(ConfigError, match=r"cannot serve data\.supervision: augment"):
        build_source("grid", "augment", _request(grid))
    with pytest.raises(ConfigError, match=r"unknown data\.source 'nope'"):
        build_source("nope", "labels", _request(grid))


def test_grid_source_refuses_unlabelled_data_naming_augment() -> None:
    with pytest.raises(ConfigError, match=r"data\.supervision: augment"):
        build_source(None, "pairs", _request(_unlabelled()))
    batch = build_source(None, "augment", _request(_unlabelled(), augment=AUGMENT)).sample()
    assert batch.x_a.shape == (16, 1, 64, 64) and batch.classes_a is None and batch.shared[:, -1].all()


def test_reveal_keeps_classes_only_for_labels(grid: GroundTruthData) -> None:
    batch = build_source(None, "labels", _request(grid)).sample()
    assert batch.classes_a is not None and torch.equal(batch.shared, batch.classes_a == batch.classes_b)
    assert reveal(batch, "labels") is batch
    for level in ("pairs", "augment"):
        cut = reveal(batch, level)
        assert cut.classes_a is None and cut.classes_b is None
        assert (
            torch.equal(cut.x_a, batch.x_a)
            and torch.equal(cut.x_b, batch.x_b)
            and torch.equal(cut.shared, batch.shared)
        )
    with pytest.raises(ConfigError, match="choose one of labels, pairs, augment"):
        reveal(batch, "everything")


def _changes(data: GroundTruthData, k: int, n: int = 20000) -> np.ndarray:
    sampler = PairSampler(data, None, n, mode="change_k", seed=1, change_k=k)
    batch: PairBatch = sampler.sample()
    assert batch.classes_a is not None and batch.classes_b is not None
    assert sampler.fallbacks == 0
    return (batch.classes_a != batch.classes_b).sum(1).numpy()


@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_change_k_matches_locatello_dynamics_in_expectation(k: int) -> None:
    """Each pair changes 1 or k factors (prob. 1/2 each; k ~ U{1..V-1} when k = -1), chosen uniformly among the V
    varying ones and resampled uniformly over all values, so factor j really differs with probability 1 - 1/size_j."""
    sizes = (1, 3, 4, 5, 6)
    data = grid_data(sizes)
    varying = np.array([s for s in sizes if s > 1], dtype=np.float64)
    v = len(varying)
    per_factor = float(np.mean(1.0 - 1.0 / varying))  # E[differs | a uniformly chosen varying factor is resampled]
    ks = [k] if k > 0 else list(range(1, v))
    expected = np.mean([0.5 * 1 * per_factor + 0.5 * m * per_factor for m in ks])
    diff = _changes(data, k)
    assert diff.max() <= (max(ks) if k != 1 else 1)
    assert abs(diff.mean() - expected) < 0.03, (diff.mean(), expected)
    if k == 1:  # some resampled values equal the old one: the pair then shares every factor, and shared says so
        assert 0.1 < (diff == 0).mean() < 0.4


def test_change_k_validation(grid: GroundTruthData) -> None:
    with pytest.raises(ConfigError, match="change_k 7 must be -1"):
        PairSampler(grid, None, 4, mode="change_k", change_k=7)
    off = GroundTruthData(grid.name, grid.images[:-1], grid.classes[:-1], grid.factors, False)
    with pytest.raises(ConfigError, match="needs a dataset that holds its full factor grid"):
        PairSampler(off, None, 4, mode="change_k")


@pytest.mark.parametrize("name", ["grid", "augment"])
def test_source_state_resumes_bit_identically(grid: GroundTruthData, name: str) -> None:
    level = "augment" if name == "augment" else "pairs"
    source = build_source(name, level, _request(grid, augment=AUGMENT, pair_mode="random_subset"))
    for _ in range(3):
        source.sample()
    state = source.state_dict()
    expected = [source.sample() for _ in range(2)]
    fresh = build_source(name, level, _request(grid, augment=AUGMENT, pair_mode="random_subset"))
    fresh.load_state_dict(state)
    for want in expected:
        got = fresh.sample()
        assert torch.equal(got.x_a, want.x_a) and torch.equal(got.x_b, want.x_b)
        assert torch.equal(got.shared, want.shared)
