"""Each alignment term equals the loss module it wraps on the same codes, with its subspace selection, and the list
sums the terms with their weights and schedules (disco.train.alignment)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from disco.data.pairs import PairBatch
from disco.errors import ConfigError
from disco.losses.adversarial import DomainAdversarialLoss
from disco.losses.coral import CORALLoss
from disco.losses.infonce import MemoryQueue, NTXentLoss
from disco.losses.margin import MarginContrastiveLoss
from disco.losses.mmd import MMDLoss
from disco.losses.triplet import TripletLoss
from disco.models.subspaces import SubspaceSpec
from disco.train.alignment import AlignmentTerms, dann_lambda
from disco.train.config import AlignmentTermConfig, ScheduleConfig
from disco.train.step import CrossInputs, StepInputs, TermContext

NAMES = ("shape", "scale", "pos")
SIZES = (3, 4, 5)
SPEC = SubspaceSpec.parse("shape=2,scale=1,pos=1,domain=2,free=1")
SHARED = [0, 1, 2, 3, 6]  # every column but the private domain subspace's 4 and 5
B = 10


class Encoder(torch.nn.Module):
    """A tiny encoder of (B, 1, 2, 2) images to (mean, logvar) of SPEC.dim."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, SPEC.dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.net(x.flatten(1))
        return mean, torch.zeros_like(mean)


def make_inputs(step: int = 0, seed: int = 0, ids: torch.Tensor | None = None) -> StepInputs:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2 * B, 1, 2, 2, generator=g)
    classes = torch.stack([torch.randint(0, n, (B,), generator=g) for n in SIZES], dim=1)
    shared = torch.ones(B, 3, dtype=torch.bool)
    batch = PairBatch(x[:B], x[B:], shared, NAMES, classes, classes)
    mean = torch.randn(2 * B, SPEC.dim, generator=g, requires_grad=True)
    cx = torch.rand(2 * B, 1, 2, 2, generator=g)
    ids = torch.arange(100, 100 + B) if ids is None else ids
    cross_batch = PairBatch(cx[:B], cx[B:], shared, NAMES, classes, None, ids)
    cz = torch.randn(2 * B, SPEC.dim, generator=g, requires_grad=True)
    cross = CrossInputs(cross_batch, cz[:B], cz[B:])
    return StepInputs(batch, torch.cat([batch.x_a, batch.x_b]), mean, torch.zeros_like(mean), mean, step, None, cross)


def context(target: str | None = "paired", supervision: str = "labels", encoder: torch.nn.Module | None = None) -> (
    TermContext
):  # fmt: skip
    return TermContext(
        SPEC, NAMES, 1000, False, encoder=encoder, target=target, supervision=supervision, max_steps=100,
        factor_sizes=SIZES,
    )  # fmt: skip


def term(kind: str, seed: int = 0, ctx: TermContext | None = None, **fields: object) -> AlignmentTerms:
    torch.manual_seed(seed)
    return AlignmentTerms([AlignmentTermConfig(kind=kind, **fields)], ctx or context())  # type: ignore[arg-type]


def test_default_subspaces_leave_the_private_one_out() -> None:
    terms = term("mmd")
    assert terms.losses[0].columns.tolist() == SHARED
    assert term("domain_head").losses[0].columns.tolist() == [4, 5]
    assert term("mmd", subspaces=["scale", "pos"]).losses[0].columns.tolist() == [2, 3]


def _standardised(src: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pooled = torch.cat([src, tgt])
    mean, std = pooled.mean(0), pooled.std(0)
    return (src - mean) / std, (tgt - mean) / std


def test_batch_level_terms_equal_their_modules() -> None:
    inputs = make_inputs()
    src, tgt = inputs.mean[:B][:, SHARED], inputs.cross.z_b[:, SHARED]  # type: ignore[union-attr]
    torch.testing.assert_close(term("mmd")(inputs).loss, MMDLoss()(*_standardised(src, tgt)).loss)
    raw = term("mmd", kwargs={"standardise": False, "bandwidths": [0.5, 2.0]})(inputs).loss
    torch.testing.assert_close(raw, MMDLoss(bandwidths=[0.5, 2.0])(src, tgt).loss)
    torch.testing.assert_close(term("coral")(inputs).loss, CORALLoss()(*_standardised(src, tgt)).loss)
    torch.testing.assert_close(term("coral", kwargs={"standardise": False})(inputs).loss, CORALLoss()(src, tgt).loss)
    cols = [2, 3]
    sub = term("coral", subspaces=["scale", "pos"])(inputs).loss
    expected = CORALLoss()(*_standardised(inputs.mean[:B][:, cols], inputs.cross.z_b[:, cols])).loss  # type: ignore[union-attr]
    torch.testing.assert_close(sub, expected)


def test_standardised_terms_cannot_be_lowered_by_shrinking_the_codes() -> None:
    inputs = make_inputs()
    cross = inputs.cross
    assert cross is not None
    codes = (inputs.mean, cross.z_b)  # source and target codes (cross.z_b is a view of its own leaf)
    leaves = (inputs.mean, cross.z_b)

    def scale_derivative(loss: torch.Tensor) -> float:
        """d/dc loss(c·z) at c = 1 for every code of both domains: sum of <grad, z>."""
        grads = torch.autograd.grad(loss, leaves)
        return float(sum((g * z).sum() for g, z in zip(grads, codes, strict=True)).detach())

    for kind in ("mmd", "coral"):
        assert abs(scale_derivative(term(kind)(inputs).loss)) < 1e-5, kind
        assert abs(scale_derivative(term(kind, kwargs={"standardise": False})(inputs).loss)) > 1e-3, kind


def test_dann_ramp_and_gradient_reversal() -> None:
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert dann_lambda(3.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)  # p is clipped to 1
    step = 30  # of max_steps 100
    inputs = make_inputs(step)
    dann = term("dann", seed=4)
    out = dann(inputs)
    lam = dann_lambda(0.3)
    assert float(out.diagnostics["dann/lambda"]) == pytest.approx(lam)
    torch.manual_seed(4)
    reference = DomainAdversarialLoss(len(SHARED))
    src, tgt = inputs.mean[:B][:, SHARED], inputs.cross.z_b[:, SHARED]  # type: ignore[union-attr]
    plain = F.binary_cross_entropy_with_logits(
        reference.discriminator(torch.cat([src, tgt])).squeeze(1), torch.cat([torch.ones(B), torch.zeros(B)])
    )
    torch.testing.assert_close(out.loss, plain)
    (g_term,) = torch.autograd.grad(out.loss, inputs.mean)
    (g_plain,) = torch.autograd.grad(plain, inputs.mean)
    torch.testing.assert_close(g_term, -lam * g_plain)  # the encoder is pushed to confuse the discriminator


def test_moco_equals_ntxent_with_momentum_keys_and_queues() -> None:
    encoder = Encoder()
    moco = term("moco", ctx=context(encoder=encoder), kwargs={"queue": 16, "momentum": 0.9, "temperature": 0.2})
    shadow = copy.deepcopy(encoder)
    fwd, back = NTXentLoss(0.2, False, MemoryQueue(16, len(SHARED))), NTXentLoss(0.2, False, MemoryQueue(16, 5))
    for step in range(3):
        inputs = make_inputs(step, seed=step)
        cross = inputs.cross
        assert cross is not None
        got = moco(inputs).loss
        with torch.no_grad():  # the momentum rule, by hand: shadow <- 0.9 shadow + 0.1 online
            for p_s, p_o in zip(shadow.parameters(), encoder.parameters(), strict=True):
                p_s.mul_(0.9).add_(0.1 * p_o)
            k_a = shadow(cross.batch.x_a)[0][:, SHARED]
            k_b = shadow(cross.batch.x_b)[0][:, SHARED]
        q_a, q_b = cross.z_a[:, SHARED], cross.z_b[:, SHARED]
        expected = 0.5 * (fwd(q_a, k_b).loss + back(q_b, k_a).loss)
        torch.testing.assert_close(got, expected)
        with torch.no_grad():  # the online encoder trains between steps
            encoder.net.weight.add_(0.3)
    assert int(moco.losses[0].to_target.queue.count) == 16  # type: ignore[union-attr]


def test_margin_and_triplet_equal_their_modules() -> None:
    ids = torch.tensor([7, 7, 1, 2, 3, 4, 5, 6, 8, 9])  # rows 0 and 1 show the same input
    inputs = make_inputs(ids=ids)
    cross = inputs.cross
    assert cross is not None
    q, k = cross.z_a[:, SHARED], cross.z_b[:, SHARED]
    same = torch.cat([torch.ones(B, dtype=torch.bool), ids == ids.roll(1)])
    assert bool(same[B + 1]) and int(same[B:].sum()) == 1
    expected = MarginContrastiveLoss(2.0)(torch.cat([q, q]), torch.cat([k, k.roll(1, dims=0)]), same).loss
    torch.testing.assert_close(term("margin", kwargs={"margin": 2.0})(inputs).loss, expected)
    for miner in ("batch_hard", "semi_hard"):
        got = term("triplet", kwargs={"miner": miner, "margin": 0.5})(inputs).loss
        expected = TripletLoss(0.5, miner)(torch.cat([q, k]), torch.cat([ids, ids])).loss
        torch.testing.assert_close(got, expected)


def test_center_is_cross_entropy_plus_center_loss_per_factor() -> None:
    inputs = make_inputs()
    cross = inputs.cross
    assert cross is not None
    center = term("center", seed=2, kwargs={"center_weight": 0.3, "alpha": 0.5})
    loss_mod = center.losses[0]
    heads = copy.deepcopy(loss_mod.heads)  # type: ignore[union-attr]
    centres = [c.centers.clone() for c in loss_mod.centers]  # type: ignore[union-attr]
    got = center(inputs)
    labels = cross.batch.classes_a
    assert labels is not None
    total = torch.zeros(())
    for j, (sub, k) in enumerate([(slice(0, 2), 0), (slice(2, 3), 1), (slice(3, 4), 2)]):
        feats = torch.cat([cross.z_a[:, sub], cross.z_b[:, sub]])
        y = torch.cat([labels[:, k], labels[:, k]])
        ce = F.cross_entropy(heads[j](feats), y)
        centre_term = sum(0.5 * (feats[i] - centres[j][y[i]]).pow(2).sum() for i in range(2 * B)) / (2 * B)
        total = total + ce + 0.3 * centre_term
    torch.testing.assert_close(got.loss, total / 3)
    # the centres moved by Wen et al.'s rule during the call
    assert not torch.equal(loss_mod.centers[0].centers, centres[0])  # type: ignore[union-attr]


def test_domain_head_and_prior() -> None:
    inputs = make_inputs()
    head = term("domain_head", seed=1)
    out = head(inputs)
    torch.manual_seed(1)
    linear = torch.nn.Linear(2, 1)
    feats = torch.cat([inputs.mean[:B][:, 4:6], inputs.cross.z_b[:, 4:6]])  # type: ignore[union-attr]
    expected = F.binary_cross_entropy_with_logits(linear(feats).squeeze(1), torch.cat([torch.ones(B), torch.zeros(B)]))
    torch.testing.assert_close(out.loss, expected)
    prior = term("prior", ctx=context(target=None))
    torch.manual_seed(9)
    got = prior(inputs).loss
    torch.manual_seed(9)
    z = inputs.z[:, SHARED]
    torch.testing.assert_close(got, MMDLoss()(z, torch.randn(z.shape)).loss)


def test_list_sums_weights_and_schedules() -> None:
    cfgs = [
        AlignmentTermConfig(kind="mmd", weight=2.0),
        AlignmentTermConfig(kind="mmd", weight=0.5, subspaces=["pos"], kwargs={"bandwidths": [1.0]}),
        AlignmentTermConfig(kind="coral", weight=3.0, schedule=ScheduleConfig(kind="linear", warmup_steps=40)),
        AlignmentTermConfig(kind="triplet", weight=0.0),  # off: not built
    ]
    terms = AlignmentTerms(cfgs, context())
    assert terms.labels == ["mmd", "mmd_2", "coral"]
    inputs = make_inputs(step=10)
    src, tgt = inputs.mean[:B], inputs.cross.z_b  # type: ignore[union-attr]
    expected = (
        2.0 * MMDLoss()(*_standardised(src[:, SHARED], tgt[:, SHARED])).loss
        + 0.5 * MMDLoss(bandwidths=[1.0])(*_standardised(src[:, [3]], tgt[:, [3]])).loss
        + 3.0 * 0.25 * CORALLoss()(*_standardised(src[:, SHARED], tgt[:, SHARED])).loss
    )
    out = terms(inputs)
    torch.testing.assert_close(out.loss, expected)
    assert {"mmd/raw", "mmd_2/raw", "coral/raw", "coral/weighted"} <= set(out.diagnostics)


@pytest.mark.parametrize(
    ("kind", "ctx", "fields", "message"),
    [
        ("mmd", context(target=None), {}, "set data.target.domain"),
        ("triplet", context(target="unpaired"), {}, "needs cross-domain pairs"),
        ("center", context(supervision="pairs"), {}, "needs data.supervision: labels"),
        ("mmd", context(), {"subspaces": ["shape", "domain"]}, "remove domain"),
        ("domain_head", context(), {"subspaces": ["shape"]}, "remove shape"),
        ("mmd", context(), {"kwargs": {"width": 3}}, "check its kwargs"),
        ("mmd", context(), {"subspaces": ["colour"]}, "unknown subspace 'colour'"),
        ("moco", context(), {}, "needs the model's encoder"),
    ],
)
def test_config_errors_are_one_line(kind: str, ctx: TermContext, fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        term(kind, ctx=ctx, **fields)
    assert "\n" not in str(err.value)


def test_domain_head_needs_a_private_subspace() -> None:
    ctx = context()
    ctx.spec = SubspaceSpec.parse("shape=2,scale=1,pos=1")
    with pytest.raises(ConfigError, match="domain=2"):
        term("domain_head", ctx=ctx)


def _factor_nce_by_loop(za: torch.Tensor, zb: torch.Tensor, classes: torch.Tensor | None, tau: float) -> torch.Tensor:
    """The factor_nce value by loops: per tied subspace (shape cols 0-1 / factor 0, scale col 2 / 1, pos col 3 / 2),
    every render is an anchor; its positives are the other render of its input and, with classes, every render of
    the same class; the candidates are all renders but itself; similarity -||a - c||^2 / tau (widths 1 and 2)."""
    per_subspace = []
    for cols, k in (([0, 1], 0), ([2], 1), ([3], 2)):
        views = torch.cat([za[:, cols], zb[:, cols]])
        n = len(views)
        total = torch.zeros(())
        for i in range(n):
            logits = torch.stack([-(views[i] - views[j]).pow(2).sum() / tau for j in range(n) if j != i])
            others = [j for j in range(n) if j != i]
            log_p = logits - torch.logsumexp(logits, 0)
            pos = []
            for slot, j in enumerate(others):
                same_input = j == (i + B) % n
                same_class = classes is not None and classes[i % B, k] == classes[j % B, k]
                if same_input or same_class:
                    pos.append(log_p[slot])
            total = total - torch.stack(pos).mean()
        per_subspace.append(total / n)
    return torch.stack(per_subspace).mean()


def test_factor_nce_is_the_subspace_contrastive_loss_on_cross_domain_pairs() -> None:
    inputs = make_inputs()
    cross = inputs.cross
    assert cross is not None
    nce = term("factor_nce", kwargs={"temperature": 0.5})
    assert nce.losses[0].columns.tolist() == [0, 1, 2, 3]  # tied shared subspaces: not free, not the private domain
    got = nce(inputs).loss
    torch.testing.assert_close(got, _factor_nce_by_loop(cross.z_a, cross.z_b, cross.batch.classes_a, 0.5))
    # without factor classes (supervision pairs) only the other render of the same input is a positive
    unlabelled = PairBatch(cross.batch.x_a, cross.batch.x_b, cross.batch.shared, NAMES, None, None, cross.batch.ids)
    inputs.cross = CrossInputs(unlabelled, cross.z_a, cross.z_b)
    got = term("factor_nce", kwargs={"temperature": 0.5})(inputs).loss
    torch.testing.assert_close(got, _factor_nce_by_loop(cross.z_a, cross.z_b, None, 0.5))
    # shrinking the codes of a matching code towards one point raises the loss to chance, log(2B - 1); a raw pull
    # (margin, triplet) is lowest there instead
    za = 3.0 * torch.randn(B, SPEC.dim)
    for scale, below_chance in ((1.0, True), (1e-4, False)):
        inputs.cross = CrossInputs(unlabelled, scale * za, scale * (za + 0.1 * torch.randn(B, SPEC.dim)))
        loss = float(term("factor_nce")(inputs).loss)
        assert (loss < math.log(2 * B - 1) - 1.0) == below_chance, (scale, loss)
    assert loss == pytest.approx(math.log(2 * B - 1), abs=1e-3)
    only = term("factor_nce", subspaces=["scale", "pos", "free"])
    assert only.losses[0].columns.tolist() == [2, 3]  # the untied free subspace is left out


def _dcor_by_formula(x: torch.Tensor, y: torch.Tensor) -> float:
    """Székely's sample distance correlation from double-centred distance matrices, in float64."""

    def centred(v: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(v.double(), v.double())
        return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()

    a, b = centred(x), centred(y)
    v_xy, v_xx, v_yy = (a * b).mean(), (a * a).mean(), (b * b).mean()
    return float((v_xy / (v_xx * v_yy).sqrt()).sqrt())


def test_domain_head_purity_is_the_distance_correlation_of_private_and_shared_codes() -> None:
    inputs = make_inputs()
    cross = inputs.cross
    assert cross is not None
    plain = term("domain_head", seed=1)(inputs).loss
    got = term("domain_head", seed=1, kwargs={"purity": 0.7})(inputs)
    shared = [0, 1, 2, 3, 6]
    expected = 0.5 * sum(
        _dcor_by_formula(codes[:, 4:6], codes[:, shared]) for codes in (inputs.mean[:B].detach(), cross.z_b.detach())
    )
    assert float(got.diagnostics["domain_head/dcor_shared"]) == pytest.approx(expected, rel=1e-4)
    torch.testing.assert_close(got.loss, plain + 0.7 * torch.tensor(expected), rtol=1e-4, atol=1e-5)
    # only the private code is moved: no gradient reaches the shared columns through the purity term
    (grad,) = torch.autograd.grad(got.loss - plain, inputs.mean)
    assert not grad[:, shared].any() and grad[:B, 4:6].abs().sum() > 0
    # a private code that copies a shared unit depends on the shared code; a pure domain indicator does not
    g = torch.Generator().manual_seed(3)
    codes = torch.randn(2 * B, SPEC.dim, generator=g)
    codes[:, 4] = codes[:, 2]
    codes[:, 5] = codes[:, 2] ** 2
    inputs.mean = codes
    inputs.cross = CrossInputs(cross.batch, cross.z_a, codes[B:])
    high = float(term("domain_head", kwargs={"purity": 1.0})(inputs).diagnostics["domain_head/dcor_shared"])
    codes[:B, 4:6], codes[B:, 4:6] = 1.0, -1.0
    inputs.mean = codes
    inputs.cross = CrossInputs(cross.batch, cross.z_a, codes[B:])
    low = float(term("domain_head", kwargs={"purity": 1.0})(inputs).diagnostics["domain_head/dcor_shared"])
    assert high > 0.5 and low < 1e-3
    with pytest.raises(ConfigError, match=r"purity -1\.0 must be >= 0"):
        term("domain_head", kwargs={"purity": -1.0})
