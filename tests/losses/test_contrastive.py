"""SubspaceContrastive against a per-anchor Python loop, closed forms, masks and numerical edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from disco.errors import ConfigError
from disco.losses.contrastive import (
    SubspaceContrastive,
    kernel_weights,
    multi_positive_nce,
    resolve_similarity,
    view_masks,
)
from disco.models.subspaces import SubspaceSpec

FACTORS = ["shape", "scale", "orient", "pos"]
SPEC = SubspaceSpec.parse("shape=3,scale=1,orient=2,free=2")


def loop_reference(za, zb, shared, ca, cb, tau, symmetric=True, same_value="positive", weights=None, ids=None, **kern):
    """Loss written anchor by anchor, candidate by candidate, in float64 NumPy; ``kernels`` (subspace -> width) make
    every candidate a positive of weight ``max(hard, exp(-d^2 / 2 w^2))`` (y-aware InfoNCE), with ``sizes`` (classes per
    factor) and ``cyclic`` (subspaces whose distance wraps); ``same(col, i, j)`` decides which views show the same
    value (default: equal classes)."""
    kernels, sizes, cyclic = kern.get("kernels"), kern.get("sizes"), kern.get("cyclic", ())
    same_fn = kern.get("same")
    za, zb = np.asarray(za, np.float64), np.asarray(zb, np.float64)
    n = za.shape[0]
    terms, ws = [], []
    for sub, col in zip(SPEC.tied, SPEC.factor_columns(FACTORS), strict=True):
        views = np.concatenate([za[:, sub.slice], zb[:, sub.slice]])
        cls = None if ca is None else np.concatenate([ca[:, col], cb[:, col]])

        def sim(i, j, views=views, width=sub.width):
            u, v = views[i], views[j]
            if width >= 3:
                return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))) / tau
            return -float(((u - v) ** 2).sum()) / tau

        kern = (kernels or {}).get(sub.name)

        def soft(i, j, cls=cls, col=col, kern=kern, cyc=sub.name in cyclic):
            if kern is None:
                return 0.0
            size, diff = sizes[col], abs(int(cls[i]) - int(cls[j]))
            d = min(diff, size - diff) / size if cyc else diff / (size - 1)
            return math.exp(-(d**2) / (2 * kern**2))

        losses = []
        for i in range(2 * n) if symmetric else range(n):
            cands, pos = [], []
            for j in range(2 * n):
                if j == i:
                    continue
                grouped = ids is not None and ids[i % n] == ids[j % n]
                if grouped and i < n and j < n:
                    continue  # another copy of the same anchor image
                partner = j == (i + n) % (2 * n) and bool(shared[i % n, col])
                if grouped and (i < n or shared[i % n, col]) and (j < n or shared[j % n, col]):
                    partner = True  # both show the group anchor's value
                same = cls is not None and same_value is not None
                same = same and (bool(same_fn(col, i, j)) if same_fn is not None else cls[i] == cls[j])
                if same and same_value == "exclude" and not partner:
                    continue
                cands.append(j)
                hard = 1.0 if partner or (same and same_value == "positive") else 0.0
                w = max(hard, soft(i, j))
                if w > 0:
                    pos.append((j, w))
            if not pos:
                continue
            lse = logsumexp([sim(i, j) for j in cands])
            losses.append(-sum(w * (sim(i, p) - lse) for p, w in pos) / sum(w for _, w in pos))
        if losses:
            terms.append(np.mean(losses))
            ws.append((weights or {}).get(sub.name, 1.0))
    if not terms:
        return 0.0
    return float(np.dot(terms, ws) / len(terms))


def make_batch(b, dtype, seed=0, scale=1.0, classes=True):
    g = torch.Generator().manual_seed(seed)
    za = torch.randn(b, SPEC.dim, generator=g, dtype=dtype) * scale
    zb = torch.randn(b, SPEC.dim, generator=g, dtype=dtype) * scale
    ca = torch.randint(0, 3, (b, 4), generator=g)
    cb = torch.randint(0, 3, (b, 4), generator=g)
    shared = torch.rand(b, 4, generator=g) < 0.5
    cb = torch.where(shared, ca, cb)
    return za, zb, shared, (ca if classes else None), (cb if classes else None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("classes", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("same_value", ["positive", "exclude"])
def test_matches_loop_reference(dtype, classes, symmetric, same_value):
    za, zb, shared, ca, cb = make_batch(6, dtype, seed=3, classes=classes)
    loss_fn = SubspaceContrastive(SPEC, FACTORS, temperature=0.3, symmetric=symmetric, same_value=same_value)
    out = loss_fn(za, zb, shared, ca, cb)
    ref = loop_reference(za, zb, shared, ca, cb, 0.3, symmetric, same_value if classes else None)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert out.loss.dtype == dtype
    assert out.loss.item() == pytest.approx(ref, rel=tol, abs=tol)
    assert out.diagnostics["raw"].item() == pytest.approx(ref, rel=tol, abs=tol)


@pytest.mark.parametrize("symmetric", [False, True])
def test_grouped_pairs_match_loop_reference(symmetric):
    za, zb, shared, _, _ = make_batch(12, torch.float64, seed=5, classes=False)
    ids = torch.tensor([3, 3, 3, 3, 8, 8, 8, 8, 1, 2, 2, 5])
    loss = SubspaceContrastive(SPEC, FACTORS, temperature=0.3, symmetric=symmetric)
    got = loss(za, zb, shared, ids=ids).loss.item()
    want = loop_reference(za.numpy(), zb.numpy(), shared.numpy(), None, None, 0.3, symmetric, ids=ids.numpy())
    assert got == pytest.approx(want, rel=1e-10)
    plain = loss(za, zb, shared).loss.item()
    assert got != pytest.approx(plain, rel=1e-3)  # the groups change which views are positives
    distinct = loss(za, zb, shared, ids=torch.arange(12)).loss.item()
    assert distinct == pytest.approx(plain, rel=1e-12)  # one pair per id is the plain loss


@pytest.mark.parametrize("same_value", ["positive", "exclude"])
@pytest.mark.parametrize("cyclic", [(), ("orient",)])
def test_kernel_matches_loop_reference(same_value, cyclic):
    za, zb, shared, ca, cb = make_batch(6, torch.float64, seed=4)
    kernels = {"orient": 0.3, "scale": 0.6}
    loss = SubspaceContrastive(
        SPEC, FACTORS, temperature=0.3, same_value=same_value, kernels=kernels, cyclic=cyclic, factor_sizes=[3, 3, 3, 3]
    )
    got = loss(za, zb, shared, ca, cb).loss.item()
    arrays = (t.numpy() for t in (za, zb, shared, ca, cb))
    want = loop_reference(*arrays, 0.3, same_value=same_value, kernels=kernels, sizes=[3, 3, 3, 3], cyclic=cyclic)
    assert got == pytest.approx(want, rel=1e-10)
    hard = SubspaceContrastive(SPEC, FACTORS, temperature=0.3, same_value=same_value)(za, zb, shared, ca, cb)
    assert got != pytest.approx(hard.loss.item(), rel=1e-3)  # the kernel changes the loss
    narrow = SubspaceContrastive(
        SPEC, FACTORS, temperature=0.3, same_value=same_value, kernels={"orient": 1e-3}, factor_sizes=[3, 3, 3, 3]
    )
    # a kernel narrower than one class step weighs other values ~0: the hard SupCon loss again
    assert narrow(za, zb, shared, ca, cb).loss.item() == pytest.approx(hard.loss.item(), rel=1e-9)


def test_kernel_weights_by_hand():
    v = torch.tensor([0, 1, 20, 39])
    w = kernel_weights(v, 40, 0.05, cyclic=True)
    step = math.exp(-((1 / 40) ** 2) / (2 * 0.05**2))  # one class apart, either way round the circle
    assert w[0, 1].item() == pytest.approx(step) and w[0, 3].item() == pytest.approx(step)
    assert w[0, 2].item() == pytest.approx(math.exp(-(0.5**2) / (2 * 0.05**2)))  # half the circle
    line = kernel_weights(v, 40, 0.5)
    assert line[0, 3].item() == pytest.approx(math.exp(-1 / (2 * 0.25)))  # the two ends of a line are 1 apart
    assert torch.equal(w, w.T) and torch.all(w.diagonal() == 1)


def test_kernel_bad_inputs_name_the_problem():
    with pytest.raises(ConfigError, match="not tied subspaces"):
        SubspaceContrastive(SPEC, FACTORS, kernels={"free": 0.1}, factor_sizes=[3, 3, 3, 3])
    with pytest.raises(ConfigError, match="not tied subspaces"):
        SubspaceContrastive(SPEC, FACTORS, cyclic=["angle"])
    with pytest.raises(ConfigError, match="> 0"):
        SubspaceContrastive(SPEC, FACTORS, kernels={"orient": 0.0}, factor_sizes=[3, 3, 3, 3])
    with pytest.raises(ConfigError, match="factor_sizes"):
        SubspaceContrastive(SPEC, FACTORS, kernels={"orient": 0.1})
    za, zb, shared, _, _ = make_batch(4, torch.float64, classes=False)
    loss = SubspaceContrastive(SPEC, FACTORS, kernels={"orient": 0.1}, factor_sizes=[3, 3, 3, 3])
    with pytest.raises(ConfigError, match="supervision: labels"):
        loss(za, zb, shared)


def test_group_masks_by_hand():
    shared = torch.tensor([True, False, True, True])
    pos, cand = view_masks(shared, ids=torch.tensor([7, 7, 7, 9]))
    # views a0 a1 a2 a3 b0 b1 b2 b3; a0..a2 are one image; b0, b2 show its value, b1 does not; pair 3 alone
    assert pos[0].tolist() == [False, False, False, False, True, False, True, False]
    assert pos[4].tolist() == [True, True, True, False, False, False, True, False]
    assert not pos[5].any() and pos[3].tolist() == [False] * 7 + [True]
    assert cand[0].tolist() == [False, False, False, True, True, True, True, True]
    assert cand[4].sum() == 7


def test_mask_same_value_off_ignores_classes():
    za, zb, shared, ca, cb = make_batch(5, torch.float64, seed=1)
    off = SubspaceContrastive(SPEC, FACTORS, mask_same_value=False)(za, zb, shared, ca, cb)
    none = SubspaceContrastive(SPEC, FACTORS)(za, zb, shared)
    assert off.loss.item() == pytest.approx(none.loss.item(), rel=1e-12)
    assert off.loss.item() == pytest.approx(loop_reference(za, zb, shared, None, None, 0.1), rel=1e-10)


def test_weights_scale_subspace_terms():
    za, zb, shared, ca, cb = make_batch(6, torch.float64, seed=2)
    shared[0] = True
    plain = SubspaceContrastive(SPEC, FACTORS)(za, zb, shared, ca, cb)
    weighted = SubspaceContrastive(SPEC, FACTORS, weights={"shape": 2.0})(za, zb, shared, ca, cb)
    ref = loop_reference(za, zb, shared, ca, cb, 0.1, weights={"shape": 2.0})
    assert weighted.loss.item() == pytest.approx(ref, rel=1e-10)
    d = plain.diagnostics
    assert weighted.loss.item() == pytest.approx((2 * d["raw/shape"] + d["raw/scale"] + d["raw/orient"]).item() / 3)
    assert weighted.diagnostics["raw"].item() == pytest.approx(plain.loss.item())


@pytest.mark.parametrize("similarity", ["cosine", "neg_sq_dist"])
def test_uniform_similarities_give_log_candidate_count(similarity):
    b = 7
    z = torch.ones(b, SPEC.dim)
    shared = torch.ones(b, 4, dtype=torch.bool)
    out = SubspaceContrastive(SPEC, FACTORS, similarity=similarity)(z, z.clone(), shared)
    assert out.loss.item() == pytest.approx(math.log(2 * b - 1), rel=1e-6)
    classes = torch.randint(0, 2, (b, 4))
    out = SubspaceContrastive(SPEC, FACTORS, similarity=similarity)(z, z.clone(), shared, classes, classes)
    assert out.loss.item() == pytest.approx(math.log(2 * b - 1), rel=1e-6)


def test_excluded_same_value_candidate_does_not_change_loss():
    spec = SubspaceSpec.parse("shape=3")
    shared = torch.tensor([[True], [False]])
    ca, cb = torch.tensor([[0], [0]]), torch.tensor([[0], [1]])
    loss_fn = SubspaceContrastive(spec, ["shape"], symmetric=False, same_value="exclude")
    za = torch.randn(2, 3, dtype=torch.float64)
    zb = torch.randn(2, 3, dtype=torch.float64)
    base = loss_fn(za, zb, shared, ca, cb)
    za2 = za.clone()
    za2[1] = torch.tensor([5.0, -3.0, 1.0])
    moved = loss_fn(za2, zb, shared, ca, cb)
    assert moved.loss.item() == pytest.approx(base.loss.item(), rel=1e-14)
    assert base.diagnostics["valid/shape"].item() == 1
    unmasked = SubspaceContrastive(spec, ["shape"], symmetric=False, mask_same_value=False)
    assert unmasked(za2, zb, shared, ca, cb).loss.item() != pytest.approx(unmasked(za, zb, shared, ca, cb).loss.item())


def test_same_value_candidates_are_positives_not_negatives():
    positive, candidate = view_masks(
        torch.tensor([True, False, False]), torch.tensor([0, 0, 1]), torch.tensor([0, 2, 1]), "positive"
    )
    # views: a0 a1 a2 b0 b1 b2 with classes 0 0 1 0 2 1
    assert positive[0].tolist() == [False, True, False, True, False, False]
    assert positive[1].tolist() == [True, False, False, True, False, False]
    assert positive[2].tolist() == [False, False, False, False, False, True]
    assert positive[4].tolist() == [False] * 6
    assert not candidate.diagonal().any() and candidate.sum() == 30


def test_no_positive_gives_zero_not_nan():
    za, zb, _, _, _ = make_batch(4, torch.float32)
    za.requires_grad_(True)
    shared = torch.zeros(4, 4, dtype=torch.bool)
    out = SubspaceContrastive(SPEC, FACTORS)(za, zb, shared)
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert all(out.diagnostics[f"valid/{s}"].item() == 0 for s in ("shape", "scale", "orient"))
    assert torch.isfinite(za.grad).all() and (za.grad == 0).all()
    shared[:, 1] = True  # only "scale" has positives: the average runs over that subspace alone
    out = SubspaceContrastive(SPEC, FACTORS)(za, zb, shared)
    assert out.loss.item() == pytest.approx(out.diagnostics["raw/scale"].item())


@pytest.mark.parametrize("temperature", [1e-3, 10.0])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_extreme_temperatures_and_large_logits_stay_finite(temperature, scale):
    za, zb, shared, ca, cb = make_batch(6, torch.float64, seed=5, scale=scale)
    za.requires_grad_(True)
    out = SubspaceContrastive(SPEC, FACTORS, temperature=temperature)(za, zb, shared, ca, cb)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(za.grad).all()
    ref = loop_reference(za.detach(), zb, shared, ca, cb, temperature)
    assert out.loss.item() == pytest.approx(ref, rel=1e-9)
    za32, zb32 = za.detach().float().requires_grad_(True), zb.float()
    out32 = SubspaceContrastive(SPEC, FACTORS, temperature=temperature)(za32, zb32, shared, ca, cb)
    out32.loss.backward()
    assert torch.isfinite(out32.loss) and torch.isfinite(za32.grad).all()


def test_pure_nce_masked_entries_have_no_effect_and_no_nan():
    logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    positive = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    candidate = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    loss, valid, correct = multi_positive_nce(logits, positive, candidate)
    bumped = logits.detach().clone()
    bumped[~candidate] = 1e6
    loss2, _, _ = multi_positive_nce(bumped, positive, candidate)
    assert torch.allclose(loss, loss2)
    assert valid.tolist() == [True, False, True]
    expected0 = -(logits[0, 0] - torch.logsumexp(logits[0, [0, 1, 3]], 0))
    assert loss[0].item() == pytest.approx(expected0.item(), rel=1e-12)
    loss.sum().backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[1] == 0).all() and (logits.grad[~candidate] == 0).all()
    assert correct[0].item() == (logits[0, [0, 1, 3]].argmax().item() == 0)


def test_gradcheck():
    za, zb, shared, ca, cb = make_batch(3, torch.float64, seed=7)
    shared[:, :3] = True
    loss_fn = SubspaceContrastive(SPEC, FACTORS, temperature=0.5)
    za.requires_grad_(True)
    zb.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: loss_fn(a, b, shared, ca, cb).loss, (za, zb))


def test_accuracy_of_a_perfect_code():
    b = 6
    za = torch.randn(b, SPEC.dim) * 5
    out = SubspaceContrastive(SPEC, FACTORS)(za, za + 1e-3, torch.ones(b, 4, dtype=torch.bool))
    assert out.diagnostics["acc"].item() == pytest.approx(1.0)
    assert out.diagnostics["valid/shape"].item() == 2 * b


def test_bad_inputs_raise_config_errors():
    with pytest.raises(ConfigError):
        SubspaceContrastive(SPEC, FACTORS, temperature=0.0)
    with pytest.raises(ConfigError):
        SubspaceContrastive(SPEC, ["shape", "scale"])
    with pytest.raises(ConfigError):
        SubspaceContrastive(SPEC, FACTORS, similarity="dot")  # type: ignore[arg-type]
    loss_fn = SubspaceContrastive(SPEC, FACTORS)
    with pytest.raises(ConfigError):
        loss_fn(torch.randn(4, 5), torch.randn(4, 5), torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ConfigError):
        loss_fn(torch.randn(4, 8), torch.randn(4, 8), torch.ones(4, 3, dtype=torch.bool))
    shared = torch.ones(4, 4, dtype=torch.bool)
    with pytest.raises(ConfigError):
        loss_fn(torch.randn(4, 8), torch.randn(4, 8), shared, torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ConfigError):
        loss_fn(torch.randn(4, 8), torch.randn(4, 8), shared, torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ConfigError):
        SubspaceContrastive(SPEC, FACTORS, weights={"colour": 2.0})
    with pytest.raises(ConfigError):
        SubspaceContrastive(SubspaceSpec.parse("free=3"), FACTORS)


def test_auto_similarity_is_cosine_from_width_three():
    assert [resolve_similarity("auto", w) for w in (1, 2, 3, 8)] == ["neg_sq_dist", "neg_sq_dist", "cosine", "cosine"]
    assert resolve_similarity("cosine", 1) == "cosine"
    za, zb, shared, _, _ = make_batch(6, torch.float64, seed=4)
    shared[:] = True
    base = SubspaceContrastive(SPEC, FACTORS)(za, zb, shared).diagnostics
    scaled = SubspaceContrastive(SPEC, FACTORS)(za * 3, zb * 3, shared).diagnostics
    assert scaled["raw/shape"].item() == pytest.approx(base["raw/shape"].item(), rel=1e-12)  # cosine: scale-free
    assert scaled["raw/scale"].item() != pytest.approx(base["raw/scale"].item())  # squared distance is not


@pytest.mark.parametrize("same_value", ["positive", "exclude"])
def test_a_factor_symmetry_makes_identical_images_same_value_views(same_value):
    """dSprites-like orientation (40 classes over 0..360° inclusive): squares repeat every 90°, ellipses every 180°.
    The reference decides in degrees which views show the same image."""
    from disco.data.symmetry import parse_symmetries

    sizes = (3, 3, 40, 3)
    (sym,) = parse_symmetries({"orient": {"by": "shape", "period": [9.75, 19.5, 39.0]}}, FACTORS, sizes)
    g = torch.Generator().manual_seed(11)
    b = 10
    za, zb = (
        torch.randn(b, SPEC.dim, generator=g, dtype=torch.float64),
        torch.randn(b, SPEC.dim, generator=g, dtype=torch.float64),
    )
    ca = torch.randint(0, 3, (b, 4), generator=g)
    cb = torch.randint(0, 3, (b, 4), generator=g)
    ca[:, 0] = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])
    cb[:, 0] = torch.tensor([0, 0, 1, 0, 2, 0, 0, 1, 2, 2])
    ca[:, 2] = torch.tensor([0, 10, 0, 20, 0, 29, 5, 19, 39, 30])
    cb[:, 2] = torch.tensor([29, 0, 39, 10, 20, 19, 12, 38, 1, 9])
    shared = torch.zeros(b, 4, dtype=torch.bool)
    shared[:3, 1] = True
    cb[:3, 1] = ca[:3, 1]
    shared[7:, 2] = True  # in "exclude" mode only shared pairs are positives
    cb[7:, 2], cb[7:, 0] = ca[7:, 2], ca[7:, 0]
    shape = torch.cat([ca[:, 0], cb[:, 0]]).numpy()
    orient = torch.cat([ca[:, 2], cb[:, 2]]).numpy()
    cls = {c: torch.cat([ca[:, c], cb[:, c]]).numpy() for c in range(4)}

    def same(col, i, j):
        if col != 2:
            return cls[col][i] == cls[col][j]
        if orient[i] == orient[j]:
            return True
        if shape[i] != shape[j]:
            return False
        turn = 360.0 / {0: 4, 1: 2, 2: 1}[int(shape[i])]
        d = abs(orient[i] - orient[j]) * 360.0 / 39 % turn
        return min(d, turn - d) <= 360.0 / 39 / 2 + 1e-9

    assert same(2, 0, b) and same(2, 1, 1 + b) and not same(2, 6, 6 + b)  # 0 ~ 29 (square), 10 ~ 0; 5 !~ 12
    loss = SubspaceContrastive(SPEC, FACTORS, temperature=0.3, same_value=same_value, symmetries=[sym])
    got = loss(za, zb, shared, ca, cb).loss.item()
    want = loop_reference(
        za.numpy(), zb.numpy(), shared.numpy(), ca.numpy(), cb.numpy(), 0.3, True, same_value, same=same
    )
    assert got == pytest.approx(want, rel=1e-10)
    plain = SubspaceContrastive(SPEC, FACTORS, temperature=0.3, same_value=same_value)(
        za, zb, shared, ca, cb
    ).loss.item()
    assert abs(got - plain) > 1e-3  # the symmetry changed which views are positives (or candidates)


@pytest.mark.parametrize("same_value", ["positive", "exclude"])
def test_grouped_pairs_with_classes_match_loop_reference(same_value):
    """Groups (ids) and same-value classes together: both decide positives, neither hides the other."""
    za, zb, shared, ca, cb = make_batch(12, torch.float64, seed=7)
    ids = torch.tensor([3, 3, 3, 3, 8, 8, 8, 8, 1, 2, 2, 5])
    loss = SubspaceContrastive(SPEC, FACTORS, temperature=0.3, same_value=same_value)
    got = loss(za, zb, shared, ca, cb, ids=ids).loss.item()
    want = loop_reference(
        za.numpy(), zb.numpy(), shared.numpy(), ca.numpy(), cb.numpy(), 0.3, True, same_value, ids=ids.numpy()
    )
    assert got == pytest.approx(want, rel=1e-10)
