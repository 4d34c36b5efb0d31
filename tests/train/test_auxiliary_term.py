"""The trunk-level auxiliary classifier (:mod:`disco.losses.auxiliary`): the encoders' hidden features, the loss
against a hand-written softmax cross-entropy, the module handing the hidden features to the term, and config errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch

from disco.data.pairs import PairBatch
from disco.data.supervision import resolve_supervision, supervision_notes
from disco.errors import ConfigError
from disco.losses.auxiliary import TrunkClassification
from disco.models.encoders import ConvEncoder, MLPEncoder, ResNetEncoder
from disco.models.subspaces import SubspaceSpec
from disco.train.config import ObjectiveConfig
from disco.train.objective import Objective
from disco.train.step import StepInputs, TermContext

NAMES = ("shape", "orientation")
SIZES = (3, 5)
SPEC = SubspaceSpec.parse("shape=1,orientation=2")


def _hand_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over rows of log Σ_j exp(l_j) − l_y, one row at a time."""
    total = 0.0
    for row, label in zip(logits.tolist(), y.tolist(), strict=True):
        total += math.log(sum(math.exp(v) for v in row)) - row[label]
    return torch.tensor(total / len(y))


@pytest.mark.parametrize("encoder", [ConvEncoder, ResNetEncoder])
def test_encode_with_hidden_is_the_forward_pass_split_before_the_last_layer(encoder: type[torch.nn.Module]) -> None:
    torch.manual_seed(0)
    net = encoder(in_channels=1, latent_dim=3)
    x = torch.rand(4, 1, 64, 64)
    mean, logvar, hidden = net.encode_with_hidden(x)
    ref_mean, ref_logvar = net(x)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(logvar, ref_logvar)
    assert hidden.shape == (4, net.hidden_dim)
    # the last layer applied to the hidden features by hand gives the code
    last = net.head[-1]
    torch.testing.assert_close(hidden @ last.weight.T + last.bias, torch.cat([mean, logvar], 1))
    scripted = torch.jit.script(net)
    torch.testing.assert_close(scripted(x)[0], ref_mean)


def test_trunk_classification_is_the_summed_softmax_cross_entropy_of_each_factor() -> None:
    torch.manual_seed(1)
    loss = TrunkClassification(6, NAMES, SIZES, ["orientation", "shape"])
    h = torch.randn(10, 6)
    classes = torch.stack([torch.randint(0, 3, (10,)), torch.randint(0, 5, (10,))], 1)
    out = loss(h, classes)
    orient, shape = loss.heads
    assert orient.out_features == 5 and shape.out_features == 3
    expected = _hand_cross_entropy(orient(h).detach(), classes[:, 1]) + _hand_cross_entropy(
        shape(h).detach(), classes[:, 0]
    )
    torch.testing.assert_close(out.loss.detach(), expected, atol=1e-5, rtol=1e-5)
    acc = (orient(h).argmax(1) == classes[:, 1]).float().mean()
    torch.testing.assert_close(out.diagnostics["acc/orientation"], acc)


def test_the_objective_reads_the_hidden_features_of_both_views() -> None:
    torch.manual_seed(2)
    cfg = ObjectiveConfig()
    cfg.contrastive.weight = 0.0
    cfg.auxiliary.weight = 0.5
    cfg.auxiliary.factors = ["orientation"]
    encoder = ConvEncoder(1, SPEC.dim)
    objective = Objective(cfg, TermContext(SPEC, NAMES, 100, False, encoder=encoder, factor_sizes=SIZES))
    assert objective.needs_hidden
    b = 4
    x = torch.rand(2 * b, 1, 64, 64)
    ca = torch.stack([torch.randint(0, 3, (b,)), torch.randint(0, 5, (b,))], 1)
    cb = torch.stack([torch.randint(0, 3, (b,)), torch.randint(0, 5, (b,))], 1)
    batch = PairBatch(x[:b], x[b:], torch.zeros(b, 2, dtype=torch.bool), NAMES, ca, cb)
    mean, logvar, hidden = encoder.encode_with_hidden(x)
    out = objective(StepInputs(batch, x, mean, logvar, mean, 0, hidden=hidden))
    head = objective.terms["auxiliary"].loss.heads[0]
    expected = _hand_cross_entropy(head(hidden).detach(), torch.cat([ca[:, 1], cb[:, 1]]))
    torch.testing.assert_close(out.total.detach(), 0.5 * expected, atol=1e-5, rtol=1e-5)
    out.total.backward()
    assert encoder.features[0].weight.grad is not None and encoder.features[0].weight.grad.abs().sum() > 0


def test_the_module_hands_the_encoders_hidden_features_to_the_objective() -> None:
    from disco.train.config import TrainConfig
    from disco.train.module import DiscoModule

    cfg = TrainConfig()
    cfg.model.subspaces = "shape=1,orientation=2"
    cfg.model.microbatch = 3  # micro-batched: the hidden features are concatenated like the codes
    cfg.objective.auxiliary.weight = 1.0
    cfg.objective.auxiliary.factors = ["orientation"]
    module = DiscoModule(cfg, NAMES, 1, 100, factor_sizes=SIZES)
    b = 4
    x = torch.rand(2 * b, 1, 64, 64)
    classes = torch.zeros(b, 2, dtype=torch.long)
    batch = PairBatch(x[:b], x[b:], torch.zeros(b, 2, dtype=torch.bool), NAMES, classes, classes)
    inputs = module.step_inputs(batch, 0)
    assert inputs.hidden is not None
    _, _, hidden = module.encoder.encode_with_hidden(x)
    torch.testing.assert_close(inputs.hidden, hidden)
    cfg.objective.auxiliary.weight = 0.0
    assert DiscoModule(cfg, NAMES, 1, 100, factor_sizes=SIZES).step_inputs(batch, 0).hidden is None


def test_auxiliary_resolves_to_labels_and_is_refused_below() -> None:
    cfg = ObjectiveConfig()
    cfg.contrastive.mask_same_value = False
    assert resolve_supervision("labels", cfg) == "pairs"
    cfg.auxiliary.weight = 1.0
    assert resolve_supervision("labels", cfg) == "labels"
    assert any("trunk features" in note for note in supervision_notes(cfg))
    with pytest.raises(ConfigError, match=r"^objective.auxiliary reads factor classes; it needs data.supervision"):
        resolve_supervision("pairs", cfg)


def test_auxiliary_config_errors() -> None:
    cfg = ObjectiveConfig()
    cfg.contrastive.weight = 0.0
    cfg.auxiliary.weight = 1.0
    cfg.auxiliary.factors = ["orientation"]
    conv = ConvEncoder(1, SPEC.dim)
    with pytest.raises(ConfigError, match=r"needs data\.supervision: labels"):
        Objective(cfg, TermContext(SPEC, NAMES, 100, False, encoder=conv, supervision="pairs", factor_sizes=SIZES))
    with pytest.raises(ConfigError, match=r"use model\.encoder conv64 or resnet64"):
        Objective(cfg, TermContext(SPEC, NAMES, 100, False, encoder=MLPEncoder(8, SPEC.dim), factor_sizes=SIZES))
    cfg.auxiliary.factors = ["colour"]
    with pytest.raises(ConfigError, match=r"\['colour'\] are not factors of the dataset"):
        Objective(cfg, TermContext(SPEC, NAMES, 100, False, encoder=conv, factor_sizes=SIZES))
    cfg.auxiliary.factors = []
    with pytest.raises(ConfigError, match="are not factors of the dataset"):
        Objective(cfg, TermContext(SPEC, NAMES, 100, False, encoder=conv, factor_sizes=SIZES))


def test_orientation_probe_script_learns_a_factor_and_refuses_an_unknown_one(tiny_dsprites: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "orientation_probe.py"
    bad = subprocess.run(
        [sys.executable, str(script), "--dataset", str(tiny_dsprites), "--factor", "colour"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("error: 'colour' is not a factor")
    # scale on the tiny replica: the cross-entropy falls below its chance level ln(classes) within 200 steps
    run = subprocess.run(
        [
            sys.executable,
            str(script),
            "--dataset",
            str(tiny_dsprites),
            "--factor",
            "scale",
            "--steps",
            "200",
            "--batch",
            "32",
            "--lr",
            "1e-3",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    with h5py.File(tiny_dsprites, "r") as f:
        names, sizes = json.loads(f.attrs["factor_names"]), json.loads(f.attrs["factor_sizes"])
    chance = math.log(sizes[names.index("scale")])  # 3 scales in the tiny replica
    last = run.stdout.strip().splitlines()[-1].split()
    assert last[1] == "200" and float(last[3]) < 0.8 * chance


def test_a_symmetric_factor_is_scored_on_the_set_of_classes_that_show_the_same_image() -> None:
    """Orientation with 8 classes over 0..360° inclusive (a step of 360/7°), squares repeating every quarter turn
    (7/4 steps), hearts never: the loss is minus the log of the softmax mass on the accepted set, written per row."""
    from disco.data.symmetry import parse_symmetries

    names, sizes = ("shape", "orientation"), (2, 8)
    (sym,) = parse_symmetries({"orientation": {"by": "shape", "period": [1.75, 7.0]}}, names, sizes)
    torch.manual_seed(3)
    loss = TrunkClassification(5, names, sizes, ["orientation"], [sym])
    h = torch.randn(6, 5)
    classes = torch.tensor([[0, 0], [0, 3], [1, 0], [1, 7], [0, 5], [1, 4]])
    out = loss(h, classes)
    logits = loss.heads[0](h).detach()
    total, hits = 0.0, 0
    for row, (shape, orient) in zip(logits.tolist(), classes.tolist(), strict=True):
        step, turn = 360.0 / 7, 90.0 if shape == 0 else 360.0
        accepted = []
        for c in range(8):
            d = abs(c - orient) * step % turn
            if min(d, turn - d) <= step / 2 + 1e-9:
                accepted.append(c)
        total += math.log(sum(math.exp(v) for v in row)) - math.log(sum(math.exp(row[c]) for c in accepted))
        hits += max(range(8), key=lambda c, row=row: row[c]) in accepted
    torch.testing.assert_close(out.loss.detach(), torch.tensor(total / 6), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.diagnostics["acc/orientation"], torch.tensor(hits / 6))
    # a square at class 0 accepts 0°, 103°, 154° (26° from 180°: half a step, inclusive), 206°, 257° and 360°; a
    # heart at 0 accepts 0° and 360°
    accepted = sym.equivalent_classes(torch.tensor([0, 0]), torch.tensor([0, 1]))
    assert accepted[0].nonzero().flatten().tolist() == [0, 2, 3, 4, 5, 7]
    assert accepted[1].nonzero().flatten().tolist() == [0, 7]
