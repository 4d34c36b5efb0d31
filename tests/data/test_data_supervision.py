"""The resolved supervision level of a config: what its active terms really read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from disco.data.supervision import MEANING, resolve_supervision


def _objective(contrastive: float = 1.0, localisation: float = 0.0, mask: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        contrastive=SimpleNamespace(weight=contrastive, mask_same_value=mask),
        localisation=SimpleNamespace(weight=localisation),
    )


@pytest.mark.parametrize(
    ("level", "objective", "expected"),
    [
        ("labels", _objective(), "labels"),
        ("labels", _objective(mask=False), "pairs"),  # classes reach no term: the run used pairs only
        ("labels", _objective(contrastive=0.0, localisation=1.0), "pairs"),
        ("labels", _objective(contrastive=0.0), "none"),  # a VAE baseline: images only
        ("pairs", _objective(), "pairs"),
        ("pairs", _objective(contrastive=0.0), "none"),
        ("augment", _objective(), "augment"),
    ],
)
def test_resolve_supervision(level: str, objective: SimpleNamespace, expected: str) -> None:
    assert resolve_supervision(level, objective) == expected
    assert expected in MEANING
