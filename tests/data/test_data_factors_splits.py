from __future__ import annotations

import numpy as np
import pytest
import torch

from disco.data.datasets import DSPRITES, SHAPES3D
from disco.data.splits import split_indices
from disco.errors import ConfigError


def test_official_spaces_match_the_reference() -> None:
    assert DSPRITES.sizes == (1, 3, 6, 40, 32, 32) and DSPRITES.size == 737280
    assert DSPRITES.strides == (737280, 245760, 40960, 1024, 32, 1)
    assert SHAPES3D.sizes == (10, 10, 10, 8, 4, 15) and SHAPES3D.size == 480000
    assert SHAPES3D.strides == (48000, 4800, 480, 60, 15, 1)
    np.testing.assert_allclose(DSPRITES.values[3][[0, -1]], [0.0, 2 * np.pi])
    np.testing.assert_allclose(SHAPES3D.values[3], np.linspace(0.75, 1.25, 8))
    np.testing.assert_allclose(SHAPES3D.values[0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])


@pytest.mark.parametrize("space", [DSPRITES, SHAPES3D])
def test_index_classes_round_trip_against_loop(space) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    index = rng.integers(0, space.size, 500)
    classes = np.asarray(space.index_to_classes(index))
    for i, row in zip(index, classes, strict=True):  # reference: repeated divmod, last factor fastest
        rest, expect = int(i), []
        for size in reversed(space.sizes):
            rest, c = divmod(rest, size)
            expect.append(c)
        assert row.tolist() == expect[::-1]
    np.testing.assert_array_equal(space.classes_to_index(classes), index)
    t = torch.from_numpy(index)
    assert torch.equal(space.classes_to_index(space.index_to_classes(t)), t)


def test_split_is_deterministic_disjoint_and_covering() -> None:
    a, b = split_indices(1001, seed=3), split_indices(1001, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [len(a[k]) for k in ("train", "val", "test")] == [801, 100, 100]
    allidx = torch.cat(list(a.values()))
    assert torch.equal(allidx.sort().values, torch.arange(1001))
    assert not torch.equal(split_indices(1001, seed=4)["val"], a["val"])


def test_split_rejects_bad_fractions() -> None:
    with pytest.raises(ConfigError, match="sum"):
        split_indices(10, (0.5, 0.1, 0.1))
