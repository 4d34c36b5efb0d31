"""SubspaceProjection: identity when disabled, per-subspace heads applied to the right slices otherwise."""

from __future__ import annotations

import pytest
import torch

from disco.errors import ConfigError
from disco.models.heads import SubspaceProjection
from disco.models.subspaces import SubspaceSpec


def test_disabled_projection_is_identity() -> None:
    spec = SubspaceSpec.parse("shape=3,scale=1,free=2")
    proj = SubspaceProjection(spec, out_dim=None)
    z = torch.randn(4, 6)
    assert proj(z) is z
    assert proj.out_spec == spec
    assert not proj.enabled
    assert list(proj.parameters()) == []


def test_projection_applies_each_head_to_its_own_slice() -> None:
    torch.manual_seed(0)
    spec = SubspaceSpec.parse("shape=3,scale=1,free=2")
    proj = SubspaceProjection(spec, out_dim=4, hidden=8)
    z = torch.randn(5, 6)
    out = proj(z)
    assert out.shape == (5, 12)
    assert proj.out_spec.names == spec.names
    assert [s.width for s in proj.out_spec] == [4, 4, 4]
    assert [s.factor for s in proj.out_spec] == [s.factor for s in spec]
    for i, s in enumerate(spec):
        expected = proj.heads[s.name](z[:, s.start : s.stop])
        torch.testing.assert_close(out[:, 4 * i : 4 * i + 4], expected)
    # changing one subspace's input only changes that subspace's output
    z2 = z.clone()
    z2[:, 3] += 1.0
    out2 = proj(z2)
    torch.testing.assert_close(out2[:, :4], out[:, :4])
    assert not torch.allclose(out2[:, 4:8], out[:, 4:8])
    assert set(proj.forward_dict(z)) == {"shape", "scale", "free"}


def test_projection_rejects_bad_width() -> None:
    with pytest.raises(ConfigError, match="out_dim"):
        SubspaceProjection(SubspaceSpec.parse("a=1,b=1"), out_dim=0)
