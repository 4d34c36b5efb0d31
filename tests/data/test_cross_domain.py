"""Cross-domain pairs: both renders show the same input (same row, or the same grid point of another file), each in
its domain; unpaired targets; resume; what :func:`reveal` keeps; domains on every source through DeviceImages."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import grid_data, row_of

from disco.data.datasets import GroundTruthData
from disco.data.device_images import DeviceImages
from disco.data.domains import make_domain
from disco.data.factors import FactorSpace
from disco.data.pairs import PairBatch
from disco.data.sources import SOURCES, SourceRequest, build_source
from disco.data.sources.cross_domain import CrossDomainPairSource, match_rows
from disco.data.supervision import reveal
from disco.errors import ConfigError


def request(data: GroundTruthData, **settings: object) -> SourceRequest:
    return SourceRequest(
        data, torch.arange(0, len(data), 2), 64, seed=3, settings=settings, domain=make_domain("plain")
    )


def test_same_dataset_pairs_are_one_row_in_two_domains() -> None:
    data = grid_data()
    noisy = make_domain("noisy", seed=5)
    source = build_source("cross_domain", "pairs", request(data, target_domain=noisy))
    assert isinstance(source, CrossDomainPairSource) and source.paired and SOURCES["cross_domain"] is type(source)
    batch = source.sample()
    ids = batch.ids
    assert ids is not None and bool((ids % 2 == 0).all())  # training rows only
    assert torch.equal(row_of(batch.x_a), ids)
    raw = data.images[ids].float() / 255
    torch.testing.assert_close(batch.x_a, raw.expand(-1, 3, -1, -1))  # plain: the image made RGB
    torch.testing.assert_close(batch.x_b, noisy(raw, ids))  # the same row, rendered noisy
    assert bool(batch.shared.all()) and batch.shared.shape == (64, 5)
    assert torch.equal(batch.classes_a, data.classes[ids]) and torch.equal(batch.classes_b, data.classes[ids])


def test_another_file_is_matched_by_grid_point() -> None:
    data = grid_data()
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    other = GroundTruthData("other", data.images[perm].clone(), data.classes[perm].clone(), data.factors, False)
    other.images[:, 0, 5, 5] = 200  # a mark: view b really comes from the other file
    target_rows = torch.arange(0, len(other), 3)
    source = build_source(
        "cross_domain", "labels", request(data, target_data=other, target_indices=target_rows)
    )  # fmt: skip
    batch = source.sample()
    assert isinstance(source, CrossDomainPairSource) and source.paired
    assert torch.equal(batch.classes_a, batch.classes_b)  # the same grid point
    assert bool((batch.x_b[:, 0, 5, 5] > 0.78).all())
    assert torch.equal(row_of(batch.x_b), batch.ids)  # the other file's copy of the source row's image
    target_row = perm.argsort()[batch.ids]  # where it sits in the other file
    # only grid points whose target row is a target training row are drawn
    allowed = set(target_rows.tolist())
    assert all(int(r) in allowed for r in target_row)


def test_target_without_the_grid_is_unpaired_and_a_wrong_grid_is_refused() -> None:
    data = grid_data()
    foreign = grid_data(sizes=(2, 3, 4))
    foreign = dataclasses.replace(foreign, factors=FactorSpace(("a", "b", "c"), (2, 3, 4)))
    rows = torch.arange(len(foreign))
    source = build_source("cross_domain", "pairs", request(data, target_data=foreign, target_indices=rows))
    assert isinstance(source, CrossDomainPairSource) and not source.paired
    batch = source.sample()
    assert batch.ids is None and not bool(batch.shared.any())
    other_grid = dataclasses.replace(foreign, factors=FactorSpace(data.factors.names, (1, 3, 4, 5, 7)))
    unpaired = build_source("cross_domain", "pairs", request(data, target_data=other_grid, target_indices=rows))
    assert isinstance(unpaired, CrossDomainPairSource) and not unpaired.paired  # same names, another grid
    with pytest.raises(ConfigError, match="same factor grid"):
        match_rows(data, torch.arange(4), other_grid, rows)
    with pytest.raises(ConfigError, match=r"set data\.target\.domain"):
        build_source("cross_domain", "pairs", request(data))


def test_resume_repeats_the_draws() -> None:
    data = grid_data()
    source = build_source("cross_domain", "augment", request(data, target_domain=make_domain("color", 1)))
    source.sample()
    state = source.state_dict()
    first = source.sample()
    source.load_state_dict(state)
    again = source.sample()
    assert torch.equal(first.ids, again.ids) and torch.equal(first.x_b, again.x_b)  # type: ignore[arg-type]


def test_reveal_keeps_target_classes_only_when_labelled() -> None:
    data = grid_data()
    cross = build_source("cross_domain", "labels", request(data, target_domain=make_domain("noisy"))).sample()
    c = data.classes[:64]
    batch = PairBatch(cross.x_a, cross.x_a, cross.shared, cross.factor_names, c, c, cross=cross)
    labelled = reveal(batch, "labels", target_labelled=True)
    assert labelled.cross is not None and labelled.cross.classes_b is not None and labelled.classes_a is not None
    unlabelled = reveal(batch, "labels")
    assert unlabelled.cross is not None and unlabelled.cross.classes_b is None
    assert unlabelled.cross.classes_a is not None and unlabelled.classes_a is not None
    pairs = reveal(batch, "pairs", target_labelled=True)
    assert pairs.classes_a is None and pairs.cross is not None
    assert pairs.cross.classes_a is None and pairs.cross.classes_b is None
    assert torch.equal(pairs.cross.ids, cross.ids)  # type: ignore[arg-type]
    half = labelled.rows(2, 5)
    assert half.cross is not None and torch.equal(half.cross.ids, cross.ids[2:5])  # type: ignore[index]


def test_device_images_render_their_domain_for_every_source() -> None:
    data = grid_data()
    color = make_domain("color", seed=2)
    rows = torch.tensor([3, 50, 7])
    images = DeviceImages(data.images, domain=color)
    assert images.channels == 3 and DeviceImages(data.images).channels == 1
    torch.testing.assert_close(images.gather(rows), color(data.images[rows].float() / 255, rows))
    grid = build_source("grid", "labels", dataclasses.replace(request(data), domain=color)).sample()
    assert grid.classes_a is not None
    rows = (grid.classes_a * torch.tensor(data.factors.strides)).sum(1)  # the grid is in order: row = grid index
    torch.testing.assert_close(grid.x_a, color(data.images[rows].float() / 255, rows))
