"""The resolved supervision level of a config: what its active terms really read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from disco.data.supervision import MEANING, NOTES, resolve_supervision, supervision_notes
from disco.errors import ConfigError


def _objective(
    contrastive: float = 1.0,
    localisation: float = 0.0,
    mask: bool = True,
    weak_vae: str | None = None,
    supervised: float = 0.0,
    independence: float = 0.0,
) -> SimpleNamespace:
    return SimpleNamespace(
        contrastive=SimpleNamespace(weight=contrastive, mask_same_value=mask),
        localisation=SimpleNamespace(weight=localisation),
        weak_vae=SimpleNamespace(weight=0.0 if weak_vae is None else 1.0, shared=weak_vae or "adaptive"),
        supervised=SimpleNamespace(weight=supervised),
        independence=SimpleNamespace(weight=independence, estimator="tc"),
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
        # Ada-GVAE / Ada-ML-VAE read only the pairing, the labels variant which factors are shared: never classes
        ("labels", _objective(contrastive=0.0, weak_vae="adaptive"), "pairs"),
        ("pairs", _objective(contrastive=0.0, weak_vae="adaptive"), "pairs"),
        ("labels", _objective(contrastive=0.0, weak_vae="labels"), "pairs"),
        ("pairs", _objective(contrastive=0.0, weak_vae="labels"), "pairs"),
        ("augment", _objective(contrastive=0.0, weak_vae="labels"), "augment"),
        # FactorVAE (VAE + TC discriminator over dimensions) reads no pair information
        ("labels", _objective(contrastive=0.0, independence=35.0), "none"),
        # the supervised ceiling reads the factor classes of both views
        ("labels", _objective(contrastive=0.0, supervised=1.0), "labels"),
        ("labels", _objective(supervised=1.0, mask=False), "labels"),
    ],
)
def test_resolve_supervision(level: str, objective: SimpleNamespace, expected: str) -> None:
    assert resolve_supervision(level, objective) == expected
    assert expected in MEANING


@pytest.mark.parametrize("level", ["pairs", "augment"])
def test_supervised_term_below_labels_is_a_config_error(level: str) -> None:
    with pytest.raises(ConfigError, match=r"needs data\.supervision: labels"):
        resolve_supervision(level, _objective(contrastive=0.0, supervised=1.0))


def test_notes_say_what_the_weak_vae_and_supervised_terms_read() -> None:
    assert supervision_notes(_objective()) == []
    assert supervision_notes(_objective(weak_vae="adaptive")) == [NOTES["weak_vae/adaptive"]]
    assert "only that the two images form a pair" in NOTES["weak_vae/adaptive"]
    assert supervision_notes(_objective(weak_vae="labels", supervised=1.0)) == [
        NOTES["weak_vae/labels"],
        NOTES["supervised"],
    ]


def test_alignment_terms_in_the_resolved_supervision() -> None:
    from disco.data.supervision import target_supervision

    def with_terms(*kinds: str) -> SimpleNamespace:
        objective = _objective(contrastive=0.0)
        objective.alignment = [SimpleNamespace(kind=k, weight=1.0) for k in kinds]
        return objective

    labelled, unlabelled = SimpleNamespace(enabled=True, labelled=True), SimpleNamespace(enabled=True, labelled=False)
    # factor_nce reads the cross-domain pairs and, at the labels level, the source's classes; never the target's
    assert resolve_supervision("labels", with_terms("factor_nce")) == "labels"
    assert resolve_supervision("pairs", with_terms("factor_nce")) == "pairs"
    assert target_supervision(with_terms("factor_nce"), labelled) == "cross-domain pairs"
    assert target_supervision(with_terms("center"), labelled) == "cross-domain pairs + target labels"
    assert target_supervision(with_terms("mmd"), unlabelled) == "images"
    assert resolve_supervision("labels", with_terms("mmd")) == "none"
