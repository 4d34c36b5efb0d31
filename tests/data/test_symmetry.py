"""Factor symmetries (:mod:`disco.data.symmetry`): equivalence against angles, the config's errors, and the module
handing them to its terms."""

from __future__ import annotations

import pytest
import torch

from disco.data.symmetry import parse_symmetries
from disco.errors import ConfigError

NAMES = ("color", "shape", "scale", "orientation", "pos_x", "pos_y")
SIZES = (1, 3, 6, 40, 32, 32)
DSPRITES = {"orientation": {"by": "shape", "period": [9.75, 19.5, 39.0]}}


def test_dsprites_orientation_equivalence_matches_the_angles() -> None:
    """Every pair of the 40 orientation classes (0..360° inclusive) for each shape, decided in degrees: the same image
    when the angles differ by a multiple of the shape's turn (90°, 180°, 360°) within half a grid step."""
    (sym,) = parse_symmetries(DSPRITES, NAMES, SIZES)
    step = 360.0 / 39
    for shape, turn in enumerate((90.0, 180.0, 360.0)):
        values = torch.arange(40)
        got = sym.equivalent(values, torch.full((40,), shape))
        for i in range(40):
            for j in range(40):
                d = abs(i - j) * step % turn
                assert bool(got[i, j]) == (min(d, turn - d) <= step / 2 + 1e-9), (shape, i, j)
        assert torch.equal(sym.equivalent_classes(values, torch.full((40,), shape)), got)
    # across shapes only equal classes are the same value
    mixed = sym.equivalent(torch.tensor([0, 10, 0]), torch.tensor([0, 0, 2]))
    assert mixed.tolist() == [[True, True, True], [True, True, False], [True, False, True]]
    square = sym.equivalent_classes(torch.tensor([0]), torch.tensor([0]))[0].nonzero().flatten().tolist()
    assert square == [0, 10, 19, 20, 29, 39]  # 0°, 92°, 175°, 185°, 268°, 360°


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"angle": {"by": "shape", "period": [1, 1, 1]}}, r"^data\.symmetries\.angle: 'angle' is not a factor"),
        ({"orientation": {"by": "orientation", "period": [1]}}, r"\.by: 'orientation' is not another factor"),
        ({"orientation": {"by": "shape", "period": [9.75, 19.5]}}, r"one period .* for each of the 3 classes"),
        ({"orientation": {"by": "shape", "period": [0.5, 19.5, 39]}}, r"one period \(in class steps, >= 1\)"),
        ({"orientation": {"by": "shape"}}, r"must be \{by: <factor>, period"),
    ],
)
def test_bad_symmetries_are_one_config_error(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_symmetries(raw, NAMES, SIZES)
    with pytest.raises(ConfigError, match="needs the number of classes of every factor"):
        parse_symmetries(DSPRITES, NAMES, ())


def test_the_module_hands_the_symmetries_to_the_contrastive_and_auxiliary_terms() -> None:
    from disco.train.config import TrainConfig
    from disco.train.module import DiscoModule

    cfg = TrainConfig()
    cfg.model.subspaces = "shape=1,scale=1,orientation=1,pos_x=1,pos_y=1"
    cfg.objective.auxiliary.weight = 1.0
    cfg.objective.auxiliary.factors = ["orientation", "shape"]
    cfg.data.symmetries = DSPRITES
    module = DiscoModule(cfg, NAMES, 1, 100, factor_sizes=SIZES)
    contrastive = module.objective.terms["contrastive"].loss
    assert [s.factor if s else None for s in contrastive.symmetries] == [None, None, "orientation", None, None]
    aux = module.objective.terms["auxiliary"].loss
    assert [s.factor if s else None for s in aux.symmetries] == ["orientation", None]
    cfg.data.symmetries = {"orientation": {"by": "size", "period": [1.0]}}
    with pytest.raises(ConfigError, match="'size' is not another factor"):
        DiscoModule(cfg, NAMES, 1, 100, factor_sizes=SIZES)
