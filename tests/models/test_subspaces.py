"""SubspaceSpec: parsing, slicing equals manual column slicing, validation errors, dict round trip."""

from __future__ import annotations

import json

import pytest
import torch

from disco.errors import ConfigError
from disco.models.subspaces import Subspace, SubspaceSpec

FACTORS = ("color", "shape", "scale", "orientation", "pos_x", "pos_y")


def test_parse_builds_contiguous_named_blocks() -> None:
    spec = SubspaceSpec.parse("shape=3, scale=1,orientation=2,free=2")
    assert spec.names == ("shape", "scale", "orientation", "free")
    assert spec.dim == 8
    assert [(s.start, s.stop) for s in spec] == [(0, 3), (3, 4), (4, 6), (6, 8)]
    assert [s.factor for s in spec] == ["shape", "scale", "orientation", None]
    assert [s.name for s in spec.tied] == ["shape", "scale", "orientation"]
    assert len(spec) == 4
    assert spec.to_string() == "shape=3,scale=1,orientation=2,free=2"


def test_split_and_slice_equal_manual_column_slicing() -> None:
    spec = SubspaceSpec.parse("shape=3,scale=1,orientation=2,free=2")
    z = torch.arange(5 * 8, dtype=torch.float32).reshape(5, 8)
    manual = {"shape": z[:, 0:3], "scale": z[:, 3:4], "orientation": z[:, 4:6], "free": z[:, 6:8]}
    parts = spec.split(z)
    assert list(parts) == list(manual)
    for name, cols in manual.items():
        torch.testing.assert_close(parts[name], cols)
        torch.testing.assert_close(spec.slice(z, name), cols)
    torch.testing.assert_close(torch.cat(list(parts.values()), dim=1), z)


def test_factor_columns_and_validate() -> None:
    spec = SubspaceSpec.parse("pos_x=1,shape=3,free=1")
    assert spec.factor_columns(FACTORS) == [4, 1]
    spec.validate(FACTORS)
    with pytest.raises(ConfigError, match="'floor_hue'") as err:
        SubspaceSpec.parse("floor_hue=1").validate(FACTORS)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("shape", "bad subspace entry"),
        ("shape=x", "bad subspace entry"),
        ("shape=-1", "bad subspace entry"),
        ("shape=0", "width 0"),
        ("", "empty"),
        ("a=1,a=2", "repeat"),
    ],
)
def test_parse_errors(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SubspaceSpec.parse(text)


def test_constructor_rejects_gaps_and_split_rejects_wrong_width() -> None:
    with pytest.raises(ConfigError, match="tile the code"):
        SubspaceSpec([Subspace("a", 1, 0), Subspace("b", 1, 2)])
    with pytest.raises(ConfigError, match="unknown subspace"):
        SubspaceSpec.parse("a=1")["b"]
    with pytest.raises(ConfigError, match="covers 2"):
        SubspaceSpec.parse("a=1,b=1").split(torch.zeros(3, 4))


def test_to_dict_round_trip_including_json() -> None:
    entries: dict[str, int | tuple[int, str | None]] = {"shape": 3, "scale": (1, "scale"), "extra": (2, None)}
    spec = SubspaceSpec.from_entries(entries)
    assert SubspaceSpec.from_entries(spec.to_dict()) == spec
    # checkpoints and configs pass the dict through JSON/YAML, which turns tuples into lists
    assert SubspaceSpec.from_entries(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec != SubspaceSpec.parse("shape=3,scale=1,extra=2")  # parse ties "extra" to a factor


def test_from_entries_rejects_non_integer_width() -> None:
    with pytest.raises(ConfigError, match="not an integer"):
        SubspaceSpec.from_entries({"a": 1.5})  # type: ignore[arg-type]
