"""scikit-learn's ``GradientBoostingClassifier()`` at its defaults, re-implemented exactly and vectorised in NumPy.

This is the classifier of disentanglement_lib's DCI (Eastwood & Williams 2018; ``metrics/dci.py``): 100 stages of
depth-3 regression trees fitted to the negative gradient of the log-loss (one tree per class and stage for more than
two classes, one per stage for two), learning rate 0.1, ``min_samples_split=2``, ``min_samples_leaf=1``, no
subsampling, a class-prior initial prediction, a Newton step as leaf value, and the impurity-based (MDI) feature
importances. Following scikit-learn 1.9 (``sklearn/ensemble/_gb.py``, ``sklearn/tree/_splitter.pyx``,
``_partitioner.pyx``, ``_criterion.pyx``, ``_tree.pyx``) rule by rule:

* the codes are cast to float32 (scikit-learn's tree dtype);
* the initial raw prediction is the link of the clipped class prior: ``log(p / gmean(p))`` for more than two classes,
  ``logit(p_1)`` for two;
* each tree fits the negative gradient ``y_k - p_k`` (softmax probabilities; the binomial gradient is computed with
  scikit-learn's branch at raw -37) with the squared-error criterion: the best split of a node maximises
  ``s_L^2 / n_L + s_R^2 / n_R`` over every feature and every position between two consecutive sorted node values
  ``v < w`` with ``w > v + 1e-7`` in float32 arithmetic (``FEATURE_THRESHOLD``; closer values count as ties, a
  feature whose node values span at most that is constant); its threshold is ``v / 2 + w / 2`` in float64;
* a node is a leaf at depth 3, below 2 samples, when its impurity (the variance of the gradient) is at most float64's
  epsilon, when no feature has a valid split, or when the split's improvement is below ``-epsilon``; there is no
  other stopping rule (``min_impurity_decrease=0``);
* a leaf's value is ``mean(y - p) * (K - 1) / K / mean(p (1 - p))`` (without the ``(K - 1) / K`` for two classes;
  zero where the denominator is below 1e-150), and the raw prediction moves by 0.1 times it;
* the importance of a feature sums ``n * impurity - n_L * impurity_L - n_R * impurity_R`` over every split on it
  in every tree (impurities are node variances), normalised to sum to one (zeros if no tree ever split);
* predictions are the argmax of the raw predictions (``raw >= 0`` for two classes).

Ties (what is not reproduced). scikit-learn visits the features of a node in a random order (drawn from
``random_state``) and keeps the first strictly best split, scanning positions in order; its sums run sample by sample in
the order its sorts and partitions leave. Splits whose criteria are equal in exact arithmetic are therefore chosen by
that random order or by the last bits of its rounding. Such ties are frequent, not exotic: at the first stage every
gradient takes one of two values (``1 - p_k`` or ``-p_k``), so the criterion of a split depends on its counts only and
different partitions with the same counts tie (e.g. isolating any one sample of a class at either end of any feature),
and small nodes tie between features that cut the same samples. Here criteria within ``_TIE`` (1e-10, relative) of each
other count as tied; within a feature the first position wins (as scikit-learn's), between features a random order per
node drawn from ``random_state`` (a NumPy generator; not scikit-learn's stream). disentanglement_lib passes no random
state, so its own choices at ties are not reproducible either. A fixed feature order (the lowest index first,
``random_state=None``) is available but biased: on a code with collapsed dimensions (3D Shapes grid, 2000 training rows)
it moved DCI's completeness by 0.010 against the reference, random orders by at most 0.0012. Nodes whose gradients are
all equal are leaves here (scikit-learn's rounded variance may exceed its epsilon there, and then it splits on rounding
noise, which changes neither predictions nor importances).

Algorithm (why it is fast). Every feature is sorted once and its sorted samples are cut into runs, the histogram cells:
"hard" cuts only where two consecutive sorted values are more than ``FEATURE_THRESHOLD`` apart (so that a hard cut is a
valid split for every node), at most ``max_bins`` of them, near the quantiles; runs longer than twice ``N / max_bins``
(long chains of near-ties, e.g. a collapsed dimension whose values are 1e-9 apart) are cut further at "soft" cuts, which
keep the bounds below tight but are not splits by themselves. The trees of a stage grow level by level, all ``K`` trees
and all nodes of a level at once. Per (tree, node, feature, run) histograms of the gradient sum, the sample count and
the absolute gradient sum give the criterion at every hard cut exactly, and an upper bound of the criterion at every
position inside a run: the criterion is jointly convex in (left sum, left count), so over the box of a run's possible
partial sums and counts it peaks at a corner, and over the tighter polygon that the node's smallest and largest gradient
also allow, at a vertex. Runs whose bound reaches the best value found are scanned sample by sample (the most promising
run of each node first, which raises the bar); a run is skipped outright when every window of near-ties starting in it
covers a later run that holds samples of the node (no valid split can lie there). Histograms are built directly for the
smaller child of every split only (the larger one is the parent's minus it), the roots' with one sparse matrix product
for all trees of a stage. Nothing is approximated: on continuous targets the trees equal scikit-learn's
``DecisionTreeRegressor(max_depth=3)`` feature for feature and threshold for threshold, and whole ensembles equal
``GradientBoostingClassifier`` until the first tie (tests/metrics/test_dci.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.special
import scipy.stats

#: scikit-learn's ``FEATURE_THRESHOLD`` (a float32 constant): sorted values at most this far apart are ties.
FEATURE_THRESHOLD = np.float32(1e-7)
#: scikit-learn's tree ``EPSILON``: nodes with at most this impurity are leaves.
_EPSILON = float(np.finfo(np.float64).eps)
#: Depth of the trees (``max_depth=3``).
_DEPTH = 3
#: Criteria that agree to this relative tolerance count as tied (they differ by rounding only).
_TIE = 1e-10
#: Target number of (tree x node x feature x run) cells per block of trees processed together.
_BLOCK_CELLS = 1 << 20


@dataclass(frozen=True)
class _Sorted:
    """The float32 codes, each feature's sort order, and its runs of sorted samples (the histogram cells).

    Runs are cut where two consecutive sorted values are more than FEATURE_THRESHOLD apart ("hard" cuts: valid split
    positions for every node), at most ``max_bins`` of them near the quantiles; runs longer than twice ``N /
    max_bins`` (long chains of near-ties) are cut further at "soft" cuts, which only keep the bounds tight.
    """

    x32: np.ndarray  # (N, F)
    order: np.ndarray  # (F, N) sample indices sorted by each feature
    values: np.ndarray  # (F, N) float32 sorted values
    gap_after: np.ndarray  # (F, N) bool: the next sorted value exceeds this one by more than FEATURE_THRESHOLD
    start: np.ndarray  # (F, B + 1) first sorted position of each run (empty runs at the end start at N)
    #: (F, B) bool: the run ends at a soft cut, inside a long chain of near-ties: not a valid split for every node
    #: (only where the node skips enough samples), so it is searched like a position inside the run.
    soft_end: np.ndarray
    key: np.ndarray  # (N, F) int64 histogram cell f * B + run of each sample
    counts: np.ndarray  # (F, B) float64 samples per run
    #: (depth, F, B) bool: no split inside the run for any node of that depth. At the root (every sample), where no
    #: two consecutive values inside it are more than FEATURE_THRESHOLD apart; deeper, where it spans at most that.
    atomic: np.ndarray
    #: (F, B) int64: the last run that every window of near-ties starting in the run covers entirely (the run itself
    #: if none): a split inside the run needs a node without samples up to there.
    covered: np.ndarray
    chains: bool  # whether any run covers a later one (else ``covered`` is the identity)
    matrix: scipy.sparse.csr_array  # (F * B, N) run membership: the root histograms of all trees in one product


def _gap(values: np.ndarray) -> np.ndarray:
    """Whether each sorted value exceeds the previous one by more than FEATURE_THRESHOLD (float32, as sklearn)."""
    with np.errstate(over="ignore"):
        return np.asarray(values[1:] > values[:-1] + FEATURE_THRESHOLD)


def _sort_codes(x32: np.ndarray, max_bins: int) -> _Sorted:
    n, num_features = x32.shape
    order = np.argsort(x32, axis=0, kind="stable").T.copy()
    values = np.take_along_axis(x32, order.T, axis=0).T.copy()
    width = -(-n // max_bins)
    cuts_per_feature = []
    soft_per_feature = []
    gaps = []
    for f in range(num_features):
        candidates = np.flatnonzero(_gap(values[f])) + 1  # positions starting a new chain of ties
        gaps.append(candidates)
        if candidates.size >= max_bins:
            targets = (np.arange(1, max_bins, dtype=np.int64) * n) // max_bins
            picked = np.searchsorted(candidates, targets, side="left")
            candidates = np.unique(candidates[picked[picked < candidates.size]])
        # Runs longer than twice the width (long chains of near-ties) are cut further, at soft cuts.
        bounds = np.concatenate([[0], candidates, [n]])
        extra = [np.arange(lo + width, hi - width // 2, width) for lo, hi in itertools.pairwise(bounds.tolist())]
        soft = np.concatenate(extra) if extra else np.zeros(0, dtype=np.int64)
        cuts = np.concatenate([candidates, soft])
        is_soft = np.concatenate([np.zeros(candidates.size, dtype=bool), np.ones(soft.size, dtype=bool)])
        rank = np.argsort(cuts, kind="stable")
        cuts_per_feature.append(cuts[rank])
        soft_per_feature.append(is_soft[rank])
    num_runs = max(c.size for c in cuts_per_feature) + 1
    start = np.full((num_features, num_runs + 1), n, dtype=np.int64)
    soft_end = np.zeros((num_features, num_runs), dtype=bool)
    key = np.empty((n, num_features), dtype=np.int64)
    root_gaps = np.zeros((num_features, num_runs), dtype=np.int64)
    for f, cuts in enumerate(cuts_per_feature):
        start[f, 0] = 0
        start[f, 1 : cuts.size + 1] = cuts
        soft_end[f, : cuts.size] = soft_per_feature[f]
        run_of_position = np.repeat(np.arange(cuts.size + 1), np.diff(np.concatenate([[0], cuts, [n]])))
        key[order[f], f] = f * num_runs + run_of_position
        # Valid gaps inside a run or at its soft end (a cut at a gap position p belongs to the run before it).
        hard = cuts[~soft_per_feature[f]]
        inside = gaps[f][~np.isin(gaps[f], hard)]
        owner = run_of_position[inside] - np.isin(inside, cuts)
        root_gaps[f] = np.bincount(owner, minlength=num_runs)
    counts = np.diff(start, axis=1)
    first = np.minimum(start[:, :-1], n - 1)
    last = np.maximum(start[:, 1:] - 1, 0)
    lo = np.take_along_axis(values, first, axis=1)
    hi = np.take_along_axis(values, last, axis=1)
    # Deeper than the root, a node's next sample after a soft cut may lie far beyond it: only an empty run is atomic.
    with np.errstate(over="ignore"):
        narrow = np.where(soft_end, counts < 1, ~(hi > lo + FEATURE_THRESHOLD) | (counts < 2))
    atomic = np.stack([narrow | (root_gaps == 0)] + [narrow] * (_DEPTH - 1))
    covered = np.tile(np.arange(num_runs), (num_features, 1))
    for f, cuts in enumerate(cuts_per_feature):
        with np.errstate(over="ignore"):
            reach = np.searchsorted(values[f], values[f] + FEATURE_THRESHOLD, side="right")  # first value beyond
        shortest = np.minimum.reduceat(reach, start[f, : cuts.size + 1])
        ends = start[f, 1 : cuts.size + 2]
        covered[f, : cuts.size + 1] = np.maximum(
            np.searchsorted(ends, shortest, side="right") - 1, covered[f, : cuts.size + 1]
        )
    rows = key.T.ravel()
    cols = np.tile(np.arange(n, dtype=np.int64), num_features)
    matrix = scipy.sparse.csr_array(
        (np.ones(rows.size), (rows, cols)), shape=(num_features * num_runs, n), dtype=np.float64
    )
    gap_after = np.zeros((num_features, n), dtype=bool)
    for f in range(num_features):
        gap_after[f, gaps[f] - 1] = True
    return _Sorted(
        x32,
        order,
        values,
        gap_after,
        start,
        soft_end,
        key,
        counts.astype(np.float64),
        atomic,
        covered,
        bool(np.any(covered != np.arange(num_runs))),
        matrix,
    )


def _members(
    codes: _Sorted, node: np.ndarray, t: np.ndarray, m: np.ndarray, f: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of node ``m`` of tree ``t`` inside run ``b`` of feature ``f``, for arrays of such requests.

    Returns (request index, sample index, float32 value) in the run's sorted order, grouped by request.
    """
    n = codes.order.shape[1]
    starts = codes.start[f, b]
    lengths = codes.start[f, b + 1] - starts
    request = np.repeat(np.arange(t.size), lengths)
    shift = starts + f * n - (np.cumsum(lengths) - lengths)  # flat sorted position = index + shift[request]
    flat = np.arange(request.size) + shift[request]
    sample = codes.order.ravel()[flat]
    keep = node.ravel()[t[request] * n + sample] == m[request]
    return request[keep], sample[keep], codes.values.ravel()[flat[keep]]


def _gain(s_left: np.ndarray, n_left: np.ndarray, s_total: np.ndarray, n_total: np.ndarray | float) -> np.ndarray:
    """``(n s_L - n_L s)^2 / (n_L n_R)``: ``n`` times scikit-learn's squared-error ``proxy_impurity_improvement``
    (``s_L^2 / n_L + s_R^2 / n_R``) minus the node constant ``s^2``, the same ranking without its cancellation."""
    u = n_total * s_left - n_left * s_total
    return u * u / (n_left * (n_total - n_left))


def _pack(total: float) -> float:
    """Scale of the absolute gradients packed below the sample counts, for sums of ``|g|`` up to ``total``."""
    return float(2.0 ** -(int(np.ceil(np.log2(total + 1.0))) + 2))


@dataclass
class _Level:
    """Per (tree, node) state of one level of the trees in a block."""

    hist_g: np.ndarray  # (T, M, F, B) gradient sums
    hist_c: np.ndarray  # (T, M, F, B) sample counts
    hist_a: np.ndarray  # (T, M, F, B) absolute gradient sums
    s: np.ndarray  # (T, M) gradient sum
    sq: np.ndarray  # (T, M) squared gradient sum
    n: np.ndarray  # (T, M) samples
    impurity: np.ndarray  # (T, M)
    g_min: np.ndarray  # (T, M) smallest gradient (inf for an empty node)
    g_max: np.ndarray  # (T, M) largest gradient (-inf for an empty node)
    open: np.ndarray  # (T, M) bool: may still be split (not a leaf already)
    pack: float  # scale of the absolute gradients packed below the counts (see _child_histograms)


def _best_splits(
    codes: _Sorted, depth: int, level: _Level, node: np.ndarray, grad: np.ndarray, priority: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The best split of every (tree, node): feature, largest left value, smallest right value, whether it exists.

    Within a feature the first position among (near-)equal best criteria wins, as in scikit-learn; between features
    whose best criteria agree to ``_TIE`` (relative) the highest ``priority`` (T, M, F) wins.
    """
    num_trees, num_nodes, num_features, _ = level.hist_g.shape
    # A node whose gradients are all equal has zero impurity (scikit-learn's rounded one may exceed EPSILON, and
    # then it splits on rounding noise: splits that change neither predictions nor importances).
    splittable = (level.open & (level.n >= 2) & (level.impurity > _EPSILON) & (level.g_max > level.g_min))[
        :, :, None, None
    ]
    hg, hc = level.hist_g, level.hist_c
    cs = np.cumsum(hg, axis=-1)
    cn = np.cumsum(hc, axis=-1)
    s_tot = level.s[:, :, None, None]
    n_tot = level.n[:, :, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        boundary = _gain(cs, cn, s_tot, n_tot)
    boundary[~((cn >= 1) & (cn <= n_tot - 1) & splittable & ~codes.soft_end)] = -np.inf
    # Per feature: the best boundary (the first among near-equals) and its left count.
    feat_gain = boundary.max(axis=-1)
    feat_run = np.argmax(boundary >= _bar(feat_gain)[..., None], axis=-1)
    feat_left = np.take_along_axis(cn, feat_run[..., None], axis=-1)[..., 0]
    best = feat_gain.max(axis=-1)

    # Upper bound of the criterion inside every run with room for a split: the maximum of the (jointly convex)
    # criterion over the box [s0 + negative part, s0 + positive part] x [c0 + 1, c0 + count - 1], at its corners,
    # where |n s - m S| is largest at |n mid - m S| + n half. The slack covers the rounding of the packed absolute
    # sums (see _child_histograms), generously.
    # After a soft cut, the position after the run's last sample counts as inside the run.
    soft = codes.soft_end.astype(np.float64)
    n_half = n_tot * (0.5 * level.hist_a + (hc * (hc + 1.0) * (2.0**-45 / level.pack) + 1e-12))
    n_mid = n_tot * (cs - 0.5 * hg)
    m_lo = cn - hc + 1.0
    m_hi = np.minimum(cn - 1.0 + soft, n_tot - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.abs(n_mid - m_lo * s_tot) + n_half
        bound = u * u / (m_lo * (n_tot - m_lo))
        u = np.abs(n_mid - m_hi * s_tot) + n_half
        np.maximum(bound, u * u / (m_hi * (n_tot - m_hi)), out=bound)
    # A split inside a run needs the node to have no samples in the runs that its window of near-ties covers.
    lonely: np.ndarray | bool = True
    if codes.chains:
        lonely = np.take_along_axis(cn, np.broadcast_to(codes.covered, cn.shape), axis=-1) == cn
    t_i, m_i, f_i, b_i = np.nonzero(
        (bound >= _bar(best)[:, :, None, None]) & (m_hi >= m_lo) & ~codes.atomic[depth] & splittable & lonely
    )

    if t_i.size:
        # A tighter bound for the runs left. After j of the run's c samples, the partial sum p of their gradients
        # satisfies j a <= p <= j b and G - (c - j) b <= p <= G - (c - j) a (a, b: the node's smallest and largest
        # gradient; G: the run's sum) and P0 <= p <= P1 (its negative and positive parts): a convex polygon in
        # (j, p), over whose vertices the (jointly convex) criterion takes its maximum.
        cell = (t_i, m_i, f_i, b_i)
        half_a = 0.5 * level.hist_a[cell] + (hc[cell] * (hc[cell] + 1.0) * (2.0**-45 / level.pack) + 1e-12)
        tight = _polygon_bound(
            s0=cs[cell] - hg[cell],
            c0=cn[cell] - hc[cell],
            run_sum=hg[cell],
            half_abs=half_a,
            g_lo=level.g_min[t_i, m_i] - 1e-12,
            g_hi=level.g_max[t_i, m_i] + 1e-12,
            count=hc[cell],
            last=m_hi[cell] - (cn[cell] - hc[cell]),
            s_total=level.s[t_i, m_i],
            n_total=level.n[t_i, m_i],
        )
        tight += 1e-12 * np.abs(tight)
        keep = tight >= _bar(best)[t_i, m_i]
        t_i, m_i, f_i, b_i, tight = t_i[keep], m_i[keep], f_i[keep], b_i[keep], tight[keep]

    # Candidates per (tree, node, feature): the best boundary, then the scanned runs' best positions.
    cand_key = [np.arange(num_trees * num_nodes * num_features)]
    cand_gain = [feat_gain.ravel()]
    cand_left = [feat_left.ravel()]
    cand_lo = [np.full(feat_gain.size, np.nan, dtype=np.float32)]
    cand_hi = [np.full(feat_gain.size, np.nan, dtype=np.float32)]
    if t_i.size:
        # Scan each node's most promising run first (it often holds the best split and raises the bar), then every
        # other run still above the bar.
        tm = t_i * num_nodes + m_i
        heads = np.flatnonzero(np.concatenate([[True], tm[1:] != tm[:-1]]))
        top_bound = np.maximum.reduceat(tight, heads)
        reached = np.flatnonzero(tight == np.repeat(top_bound, np.diff(np.append(heads, tm.size))))
        first = reached[np.searchsorted(reached, heads)]
        rest = np.ones(tm.size, dtype=bool)
        rest[first] = False
        for pick in (first, None):
            if pick is None:
                pick = np.flatnonzero(rest & (tight >= _bar(best)[t_i, m_i]))
            cells = (t_i[pick], m_i[pick], f_i[pick], b_i[pick])
            if depth == 0:
                gain, left, lo, hi = _scan_root(codes, level, grad, cells, cs, cn)
            else:
                after = _next_values(codes, node, cn, level.n, cells)
                gain, left, lo, hi = _scan(codes, level, node, grad, cells, cs, cn, after)
            cand_key.append((cells[0] * num_nodes + cells[1]) * num_features + cells[2])
            cand_gain.append(gain)
            cand_left.append(left)
            cand_lo.append(lo)
            cand_hi.append(hi)
            np.maximum.at(best, (cells[0], cells[1]), gain)
    key = np.concatenate(cand_key)
    gain = np.concatenate(cand_gain)
    left = np.concatenate(cand_left)
    # Per feature: the first position (smallest left count) among the near-best candidates.
    top = np.full(feat_gain.size, -np.inf)
    np.maximum.at(top, key, gain)
    near = np.flatnonzero((gain >= _bar(top)[key]) & (gain > -np.inf))
    order = near[np.lexsort((left[near], key[near]))]
    head = np.ones(order.size, dtype=bool)
    head[1:] = key[order[1:]] != key[order[:-1]]
    chosen = np.zeros(feat_gain.size, dtype=np.int64)
    chosen[key[order[head]]] = order[head]
    # Per node: the feature of highest priority among the near-best ones.
    top = top.reshape(num_trees, num_nodes, num_features)
    best = top.max(axis=-1)
    eligible = (top >= _bar(best)[..., None]) & (top > -np.inf)
    feature = np.argmax(np.where(eligible, priority, -np.inf), axis=-1)
    has_split = eligible.any(axis=-1)
    winner = chosen.reshape(top.shape)[np.arange(num_trees)[:, None], np.arange(num_nodes)[None, :], feature]
    lo_all = np.concatenate(cand_lo)
    hi_all = np.concatenate(cand_hi)
    left_value = np.where(has_split, lo_all[winner], np.inf).astype(np.float32)
    right_value = np.where(has_split, hi_all[winner], np.inf).astype(np.float32)

    # Boundary winners: the largest node value at or before the cut and the smallest after it.
    t_b, m_b = np.nonzero(has_split & (winner < feat_gain.size))
    if t_b.size:
        f_b = feature[t_b, m_b]
        cum = cn[t_b, m_b, f_b]  # (R, B)
        at = cum[np.arange(t_b.size), feat_run[t_b, m_b, f_b]]
        run_lo = np.argmax(cum >= at[:, None], axis=1)  # last run at or before the cut with node samples
        run_hi = np.argmax(cum > at[:, None], axis=1)  # first run after the cut with node samples
        req_t = np.concatenate([t_b, t_b])
        req_m = np.concatenate([m_b, m_b])
        req_f = np.concatenate([f_b, f_b])
        request, _, value = _members(codes, node, req_t, req_m, req_f, np.concatenate([run_lo, run_hi]))
        last = np.ones(request.size, dtype=bool)
        last[:-1] = request[1:] != request[:-1]
        first_member = np.ones(request.size, dtype=bool)
        first_member[1:] = request[1:] != request[:-1]
        left_value[t_b, m_b] = value[last][: t_b.size]
        right_value[t_b, m_b] = value[first_member][t_b.size :]
    feature[~has_split] = 0
    return feature, left_value, right_value, np.asarray(has_split)


def _polygon_bound(
    s0: np.ndarray,
    c0: np.ndarray,
    run_sum: np.ndarray,
    half_abs: np.ndarray,
    g_lo: np.ndarray,
    g_hi: np.ndarray,
    count: np.ndarray,
    last: np.ndarray,
    s_total: np.ndarray,
    n_total: np.ndarray,
) -> np.ndarray:
    """Maximum of the criterion over the polygon of (left count j in [1, last], partial sum p) that a run allows.

    The upper side of the polygon is min(j b, G - (c - j) a, P1), the lower side max(j a, G - (c - j) b, P0); its
    vertices lie at j = 1, j = last and where two of the lines cross. Every candidate point is evaluated on both
    sides (a superset of the vertices: all points lie in the polygon's closure when it is not empty).
    """
    upper_lines = ((g_hi, 0.0 * g_hi), (g_lo, run_sum - count * g_lo))  # p = slope * j + offset
    p1 = 0.5 * run_sum + half_abs
    p0 = 0.5 * run_sum - half_abs
    lower_lines = ((g_lo, 0.0 * g_lo), (g_hi, run_sum - count * g_hi))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        points = [
            np.ones_like(last),
            last,
            (run_sum - count * g_lo) / (g_hi - g_lo),  # j b = G - (c - j) a
            (count * g_hi - run_sum) / (g_hi - g_lo),  # j a = G - (c - j) b
            p1 / g_hi,
            (p1 - run_sum) / g_lo + count,
            p0 / g_lo,
            (p0 - run_sum) / g_hi + count,
        ]
        out = np.full(s0.shape, -np.inf)
        for j in points:
            j = np.clip(np.nan_to_num(j, nan=1.0), 1.0, last)
            up = np.minimum(np.minimum(upper_lines[0][0] * j, upper_lines[1][0] * j + upper_lines[1][1]), p1)
            down = np.maximum(np.maximum(lower_lines[0][0] * j, lower_lines[1][0] * j + lower_lines[1][1]), p0)
            np.maximum(out, _gain(s0 + up, c0 + j, s_total, n_total), out=out)
            np.maximum(out, _gain(s0 + down, c0 + j, s_total, n_total), out=out)
    return out


def _bar(best: np.ndarray) -> np.ndarray:
    """Criteria within ``_TIE`` (relative) of ``best`` count as ties (a hair of rounding noise)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(best), best - _TIE * np.abs(best), best)


def _next_values(
    codes: _Sorted,
    node: np.ndarray,
    cn: np.ndarray,
    n_node: np.ndarray,
    cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """For cells that end at a soft cut: the node's first value after the run (inf where none or a hard cut)."""
    t_i, m_i, f_i, b_i = cells
    after = np.full(t_i.size, np.inf, dtype=np.float32)
    below = cn[t_i, m_i, f_i, b_i]
    ask = np.flatnonzero(codes.soft_end[f_i, b_i] & (below < n_node[t_i, m_i]))
    if ask.size:
        cum = cn[t_i[ask], m_i[ask], f_i[ask]]  # (R, B)
        nxt = np.argmax(cum > below[ask, None], axis=1)  # the next run holding node samples
        request, _, value = _members(codes, node, t_i[ask], m_i[ask], f_i[ask], nxt)
        first = np.ones(request.size, dtype=bool)
        first[1:] = request[1:] != request[:-1]
        after[ask[request[first]]] = value[first]
    return after


def _no_splits(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell scan results before any position is scanned: criterion -inf, count 0, values +inf."""
    inf32 = np.full(size, np.inf, dtype=np.float32)
    return np.full(size, -np.inf), np.zeros(size), inf32, inf32.copy()


def _scan(
    codes: _Sorted,
    level: _Level,
    node: np.ndarray,
    grad: np.ndarray,
    cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    cs: np.ndarray,
    cn: np.ndarray,
    after: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The best split position inside each given (tree, node, feature, run) cell (``after``: see _next_values).

    Returns per cell the criterion (-inf without a valid position), the left count, the largest left value and the
    smallest right value. The runs are laid out as rows of a padded array (runs of similar lengths together), the
    samples of other nodes masked out; each row's left sums run from zero in sorted order.
    """
    t_i, m_i, f_i, b_i = cells
    row_best, row_count, row_left, row_right = _no_splits(t_i.size)
    if t_i.size == 0:
        return row_best, row_count, row_left, row_right
    num_nodes = level.n.shape[1]
    starts = codes.start[f_i, b_i]
    lengths = codes.start[f_i, b_i + 1] - starts
    s0 = cs[t_i, m_i, f_i, b_i] - level.hist_g[t_i, m_i, f_i, b_i]  # sums before the run
    c0 = cn[t_i, m_i, f_i, b_i] - level.hist_c[t_i, m_i, f_i, b_i]
    # Rows grouped by the power of two above their length, so that padding at most doubles the work.
    width_class = np.ceil(np.log2(np.maximum(lengths, 2))).astype(np.int64)
    n = codes.order.shape[1]
    for w in np.unique(width_class).tolist():
        rows = np.flatnonzero(width_class == w)
        width = int(lengths[rows].max())
        offset = np.arange(width)
        inside = offset < lengths[rows, None]
        flat = np.minimum(starts[rows, None] + offset, n - 1) + (f_i[rows] * n)[:, None]
        sample = codes.order.ravel()[flat]
        value = codes.values.ravel()[flat]
        at = (t_i[rows] * n)[:, None] + sample
        member = inside & (node.ravel()[at] == m_i[rows, None])
        partial = np.cumsum(np.where(member, grad.ravel()[at], 0.0), axis=1)
        count = c0[rows, None] + np.cumsum(member, axis=1)
        # The next member's value: the minimum member value to the right (values ascend along a row).
        following = np.full(member.shape, np.inf, dtype=np.float32)
        following[:, :-1] = np.minimum.accumulate(np.where(member, value, np.inf)[:, :0:-1], axis=1)[:, ::-1]
        np.minimum(following, after[rows, None], out=following)
        with np.errstate(over="ignore", invalid="ignore"):
            valid = member & (following < np.inf) & (following > value + FEATURE_THRESHOLD)
        tm = t_i[rows] * num_nodes + m_i[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            crit = _gain(s0[rows, None] + partial, count, level.s.ravel()[tm][:, None], level.n.ravel()[tm][:, None])
        crit[~valid] = -np.inf
        top = crit.max(axis=1)
        arg = np.argmax(crit >= _bar(top)[:, None], axis=1)  # the first position among near-equals
        pick = np.arange(rows.size)
        row_best[rows] = crit[pick, arg]
        row_count[rows] = count[pick, arg]
        row_left[rows] = value[pick, arg]
        row_right[rows] = following[pick, arg]
    return row_best, row_count, row_left, row_right


def _scan_root(
    codes: _Sorted,
    level: _Level,
    grad: np.ndarray,
    cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    cs: np.ndarray,
    cn: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_scan` for the roots, whose members are all samples: the valid positions are the global gaps."""
    t_i, _, f_i, b_i = cells
    row_best, row_count, row_left, row_right = _no_splits(t_i.size)
    if t_i.size == 0:
        return row_best, row_count, row_left, row_right
    n = codes.order.shape[1]
    starts = codes.start[f_i, b_i]
    lengths = codes.start[f_i, b_i + 1] - starts
    s0 = cs[t_i, 0, f_i, b_i] - level.hist_g[t_i, 0, f_i, b_i]
    # After a hard cut, the run's last position is the boundary, evaluated already.
    last = lengths - 1 + codes.soft_end[f_i, b_i]
    width_class = np.ceil(np.log2(np.maximum(lengths, 2))).astype(np.int64)
    for w in np.unique(width_class).tolist():
        rows = np.flatnonzero(width_class == w)
        width = int(lengths[rows].max())
        offset = np.arange(width)
        flat = np.minimum(starts[rows, None] + offset, n - 1) + (f_i[rows] * n)[:, None]
        valid = (offset < last[rows, None]) & codes.gap_after.ravel()[flat]
        # Positions past a run's end add garbage to the sums after every position that counts.
        partial = np.cumsum(grad.ravel()[codes.order.ravel()[flat] + (t_i[rows] * n)[:, None]], axis=1)
        count = (starts[rows, None] + 1.0) + offset
        with np.errstate(divide="ignore", invalid="ignore"):
            crit = _gain(s0[rows, None] + partial, count, level.s[t_i[rows], 0][:, None], float(n))
        crit[~valid] = -np.inf
        top = crit.max(axis=1)
        arg = np.argmax(crit >= _bar(top)[:, None], axis=1)  # the first position among near-equals
        pick = np.arange(rows.size)
        row_best[rows] = crit[pick, arg]
        row_count[rows] = count[pick, arg]
        position = flat[pick, arg]
        row_left[rows] = codes.values.ravel()[position]
        row_right[rows] = codes.values.ravel()[np.minimum(position + 1, codes.values.size - 1)]
    return row_best, row_count, row_left, row_right


def _node_stats(grad: np.ndarray, node: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient sum, squared sum and count of every (tree, node)."""
    num_trees = grad.shape[0]
    key = (node + (np.arange(num_trees) * num_nodes)[:, None]).ravel()
    size = num_trees * num_nodes
    s = np.bincount(key, weights=grad.ravel(), minlength=size).reshape(num_trees, num_nodes)
    sq = np.bincount(key, weights=(grad * grad).ravel(), minlength=size).reshape(num_trees, num_nodes)
    n = np.bincount(key, minlength=size).astype(np.float64).reshape(num_trees, num_nodes)
    return s, sq, n


def _node_range(grad: np.ndarray, node: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest gradient of every (tree, node)."""
    num_trees = grad.shape[0]
    key = (node + (np.arange(num_trees) * num_nodes)[:, None]).ravel()
    low = np.full(num_trees * num_nodes, np.inf)
    high = np.full(num_trees * num_nodes, -np.inf)
    np.minimum.at(low, key, grad.ravel())
    np.maximum.at(high, key, grad.ravel())
    return low.reshape(num_trees, num_nodes), high.reshape(num_trees, num_nodes)


def _impurity(s: np.ndarray, sq: np.ndarray, n: np.ndarray) -> np.ndarray:
    """scikit-learn's squared-error node impurity ``sq / n - (s / n)^2`` (0 for empty nodes)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = sq / n - (s / n) ** 2
    return np.where(n > 0, out, 0.0)


def _child_histograms(
    codes: _Sorted, parent: _Level, grad: np.ndarray, node: np.ndarray, n_child: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms of the children: the smaller child of each node directly, the larger one by subtraction."""
    num_trees, num_nodes, num_features, num_runs = parent.hist_g.shape
    n = node.shape[1]
    pair = n_child.reshape(num_trees, num_nodes, 2)
    small_side = pair[..., 1] < pair[..., 0]  # False: the left child is the smaller one
    small_child = 2 * np.arange(num_nodes)[None, :] + small_side
    is_small = np.zeros((num_trees, 2 * num_nodes), dtype=bool)
    np.put_along_axis(is_small, small_child, True, axis=1)
    t_s, i_s = np.divmod(np.flatnonzero(is_small.ravel()[node + (np.arange(num_trees) * 2 * num_nodes)[:, None]]), n)
    cells = num_features * num_runs
    size = num_trees * num_nodes * cells
    key = (((t_s * num_nodes + node[t_s, i_s] // 2) * cells)[:, None] + codes.key[i_s]).ravel()
    g = grad[t_s, i_s]
    shape = (num_trees * num_nodes, num_features, num_runs)
    small_g = np.bincount(key, weights=np.repeat(g, num_features), minlength=size).reshape(shape)
    # One pass for the count and the absolute sum: weights 1 + |g| * pack keep sum(|g|) * pack below 1/4.
    pack = parent.pack
    packed = np.bincount(key, weights=np.repeat(1.0 + np.abs(g) * pack, num_features), minlength=size).reshape(shape)
    small_c = np.rint(packed)
    small_a = (packed - small_c) / pack
    t_idx, m_idx = np.indices((num_trees, num_nodes)).reshape(2, -1)
    small_slot = 2 * m_idx + small_side.ravel()
    large_slot = 2 * m_idx + 1 - small_side.ravel()
    out = []
    for small, whole in ((small_g, parent.hist_g), (small_c, parent.hist_c), (small_a, parent.hist_a)):
        children = np.empty((num_trees, 2 * num_nodes, num_features, num_runs))
        children[t_idx, small_slot] = small
        children[t_idx, large_slot] = whole.reshape(shape) - small
        out.append(children)
    hist_g, hist_c, hist_a = out
    return hist_g, hist_c, np.maximum(hist_a, 0.0)


def _grow(
    codes: _Sorted, grad: np.ndarray, rng: np.random.Generator | None = None, bound: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grow one depth-3 squared-error regression tree per row of ``grad`` (T, N), level by level, all at once.

    ``rng`` orders the features at ties (None: the lowest index first); ``bound`` is at least every ``|grad|``.
    Returns the split features and float64 thresholds of the internal nodes in heap order (T, 7; a node that is a
    leaf sends everything left: threshold inf), every sample's leaf (T, N; 0..7 in heap order of the last level) and
    the trees' unnormalised impurity importances (T, F; scikit-learn's ``compute_feature_importances(False)`` times
    the number of samples), and the gradient sum and sample count of every leaf (T, 8).
    """
    num_trees, n = grad.shape
    num_features, num_runs = codes.counts.shape
    importance = np.zeros((num_trees, num_features))
    features = np.zeros((num_trees, 2**_DEPTH - 1), dtype=np.int64)
    thresholds = np.full((num_trees, 2**_DEPTH - 1), np.inf)
    if bound is None:  # the largest |gradient| (1 for the log-loss's y - p)
        bound = max(1.0, float(np.abs(grad).max(initial=0.0)))
    pack = _pack(n * bound)
    root = codes.matrix @ np.concatenate([grad.T, np.abs(grad).T], axis=1)  # (F * B, 2T)
    hist_g = root[:, :num_trees].T.reshape(num_trees, 1, num_features, num_runs)
    hist_a = root[:, num_trees:].T.reshape(num_trees, 1, num_features, num_runs)
    hist_c = np.broadcast_to(codes.counts, hist_g.shape)
    node = np.zeros((num_trees, n), dtype=np.int64)
    s = grad.sum(axis=1, keepdims=True)
    sq = np.einsum("ij,ij->i", grad, grad)[:, None]
    cnt = np.full((num_trees, 1), float(n))
    g_min = grad.min(axis=1, keepdims=True)
    g_max = grad.max(axis=1, keepdims=True)
    is_open = np.ones((num_trees, 1), dtype=bool)
    level = _Level(hist_g, hist_c, hist_a, s, sq, cnt, _impurity(s, sq, cnt), g_min, g_max, is_open, pack)
    flat_x = codes.x32.ravel()
    rows = np.arange(n) * num_features
    for depth in range(_DEPTH):
        num_nodes = 2**depth
        if rng is None:  # the lowest feature index wins ties between features
            priority = np.broadcast_to(-np.arange(num_features, dtype=np.float64), (num_trees, num_nodes, num_features))
        else:  # a random order of the features per node, as scikit-learn's
            priority = rng.random((num_trees, num_nodes, num_features))
        feature, left_value, right_value, has_split = _best_splits(codes, depth, level, node, grad, priority)
        go_right = flat_x[rows[None, :] + np.take_along_axis(feature, node, axis=1)] > np.take_along_axis(
            left_value, node, axis=1
        )
        child = 2 * node + go_right
        s_c, sq_c, n_c = _node_stats(grad, child, 2 * num_nodes)
        imp_c = _impurity(s_c, sq_c, n_c)
        pair_n = n_c.reshape(num_trees, num_nodes, 2)
        pair_imp = imp_c.reshape(num_trees, num_nodes, 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            improvement = (level.n / n) * (
                level.impurity
                - pair_n[..., 1] / level.n * pair_imp[..., 1]
                - pair_n[..., 0] / level.n * pair_imp[..., 0]
            )
        rejected = has_split & (improvement + _EPSILON < 0.0)
        if rejected.any():  # scikit-learn keeps such a node as a leaf
            has_split &= ~rejected
            left_value[rejected] = np.inf
            feature[rejected] = 0
            go_right &= ~np.take_along_axis(rejected, node, axis=1)
            child = 2 * node + go_right
            s_c, sq_c, n_c = _node_stats(grad, child, 2 * num_nodes)
            imp_c = _impurity(s_c, sq_c, n_c)
            pair_n = n_c.reshape(num_trees, num_nodes, 2)
            pair_imp = imp_c.reshape(num_trees, num_nodes, 2)
        gain = level.n * level.impurity - pair_n[..., 0] * pair_imp[..., 0] - pair_n[..., 1] * pair_imp[..., 1]
        t_s, m_s = np.nonzero(has_split)
        np.add.at(importance, (t_s, feature[t_s, m_s]), gain[t_s, m_s])
        threshold = left_value.astype(np.float64) / 2.0 + right_value.astype(np.float64) / 2.0
        threshold[~has_split] = np.inf
        features[:, num_nodes - 1 : 2 * num_nodes - 1] = feature
        thresholds[:, num_nodes - 1 : 2 * num_nodes - 1] = threshold
        if depth + 1 < _DEPTH:
            hist_g, hist_c, hist_a = _child_histograms(codes, level, grad, child, n_c)
            g_min, g_max = _node_range(grad, child, 2 * num_nodes)
            is_open = np.repeat(has_split, 2, axis=1)
            level = _Level(hist_g, hist_c, hist_a, s_c, sq_c, n_c, imp_c, g_min, g_max, is_open, pack)
        node = child
    return features, thresholds, node, importance, s_c, n_c


def grow_regression_trees(
    x: np.ndarray, targets: np.ndarray, max_bins: int = 128
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One ``DecisionTreeRegressor(max_depth=3)`` per row of ``targets`` (T, N) on the codes ``x`` (N, F): the tree
    growing of :class:`GradientBoostingExact`, exposed for tests (see :func:`_grow` for the outputs)."""
    codes = _sort_codes(np.ascontiguousarray(np.asarray(x, dtype=np.float32)), max_bins)
    return _grow(codes, np.ascontiguousarray(np.asarray(targets, dtype=np.float64)))[:4]


@dataclass
class GradientBoostingExact:
    """``sklearn.ensemble.GradientBoostingClassifier()`` at its defaults (see the module docstring).

    ``max_bins`` only trades the work of the histograms against the work of the exact scans; the fitted model does
    not depend on it.
    """

    n_estimators: int = 100
    learning_rate: float = 0.1
    max_bins: int = 128
    #: Seed of the random feature order that breaks ties between features (None: the lowest index wins).
    random_state: int | None = 0

    def fit(self, x: np.ndarray, y: np.ndarray) -> GradientBoostingExact:
        classes, encoded = np.unique(np.asarray(y), return_inverse=True)
        if classes.size < 2:
            raise ValueError("the gradient-boosted trees need at least two classes")
        x32 = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        if not np.all(np.isfinite(x32)):
            raise ValueError("the codes must be finite in float32 (scikit-learn's tree dtype)")
        n, num_features = x32.shape
        num_classes = classes.size
        num_trees = 1 if num_classes == 2 else num_classes
        codes = _sort_codes(x32, self.max_bins)
        prior = np.bincount(encoded, minlength=num_classes) / n
        eps = np.finfo(np.float64).eps
        prior = np.clip(prior, eps, 1 - eps)
        if num_trees == 1:
            init = np.array([scipy.special.logit(prior[1])])
            target = (encoded == 1).astype(np.float64)[None, :]
        else:
            init = np.log(prior / scipy.stats.gmean(prior))
            target = (encoded[None, :] == np.arange(num_classes)[:, None]).astype(np.float64)
        raw = np.tile(init[:, None], (1, n))  # (T, N)
        num_internal = 2**_DEPTH - 1
        self.features_ = np.zeros((self.n_estimators, num_trees, num_internal), dtype=np.int64)
        self.thresholds_ = np.full((self.n_estimators, num_trees, num_internal), np.inf)
        self.values_ = np.zeros((self.n_estimators, num_trees, 2**_DEPTH))
        importance = np.zeros(num_features)
        rng = None if self.random_state is None else np.random.default_rng(self.random_state)
        block = max(1, _BLOCK_CELLS // codes.counts.size)
        for stage in range(self.n_estimators):
            grad = self._negative_gradient(raw, target)
            for lo in range(0, num_trees, block):
                trees = np.arange(lo, min(num_trees, lo + block))
                importance += self._fit_trees(codes, stage, trees, grad[trees], target[trees], raw, num_classes, rng)
        self.classes_ = classes
        self.init_ = init
        self.n_features_in_ = num_features
        total = importance.sum()
        self.feature_importances_ = importance / total if total > 0 else importance
        self.train_raw_ = raw.T.copy()
        return self

    @staticmethod
    def _negative_gradient(raw: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``y - p`` per tree (rows) and sample, as scikit-learn's losses compute ``-gradient``."""
        if raw.shape[0] == 1:
            r = raw[0]
            y = target[0]
            with np.errstate(over="ignore", invalid="ignore"):
                e = np.exp(-r)
                grad = np.where(r > -37, ((1 - y) - y * e) / (1 + e), np.exp(np.minimum(r, 0.0)) - y)
            return -grad[None, :]
        p = np.exp(raw - raw.max(axis=0, keepdims=True))
        p /= p.sum(axis=0, keepdims=True)
        return target - p

    def _fit_trees(
        self,
        codes: _Sorted,
        stage: int,
        trees: np.ndarray,
        grad: np.ndarray,
        target: np.ndarray,
        raw: np.ndarray,
        num_classes: int,
        rng: np.random.Generator | None,
    ) -> np.ndarray:
        """Grow the trees ``trees`` of one stage; set their leaf values; update ``raw``; return their importances."""
        feature, threshold, leaf, importance, g_sum, count = _grow(codes, grad, rng, bound=1.0)
        self.features_[stage, trees] = feature
        self.thresholds_[stage, trees] = threshold
        # Leaf values: one Newton step (scikit-learn's _update_terminal_regions), then the raw predictions.
        num_trees = grad.shape[0]
        num_leaves = 2**_DEPTH
        key = (leaf + (np.arange(num_trees) * num_leaves)[:, None]).ravel()
        prob = target - grad
        h_sum = np.bincount(key, weights=(prob * (1 - prob)).ravel(), minlength=num_trees * num_leaves)
        g_sum = g_sum.ravel()
        count = count.ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            numerator = g_sum / count
            if num_classes > 2:
                numerator *= (num_classes - 1) / num_classes
            denominator = h_sum / count
            value = np.where((count > 0) & (np.abs(denominator) >= 1e-150), numerator / denominator, 0.0)
        value = value.reshape(num_trees, num_leaves)
        self.values_[stage, trees] = value
        raw[trees] += self.learning_rate * np.take_along_axis(value, leaf, axis=1)
        return np.asarray(importance.sum(axis=0))

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Raw predictions (N, T) of new rows, accumulated stage by stage as scikit-learn's ``predict_stages``."""
        x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
        n = x64.shape[0]
        num_trees = self.values_.shape[1]
        raw = np.tile(self.init_[:, None], (1, n))
        flat = x64.ravel()
        rows = np.arange(n) * x64.shape[1]
        tree_index = np.arange(num_trees)[:, None]
        for stage in range(self.values_.shape[0]):
            node = np.zeros((num_trees, n), dtype=np.int64)
            for depth in range(_DEPTH):
                heap = node + (2**depth - 1)
                feature = self.features_[stage][tree_index, heap]
                threshold = self.thresholds_[stage][tree_index, heap]
                node = 2 * node + (flat[rows[None, :] + feature] > threshold)
            raw += self.learning_rate * self.values_[stage][tree_index, node]
        return raw.T

    def predict_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Classes of raw predictions (N, T): argmax, or ``raw >= 0`` for two classes (scikit-learn's ``predict``)."""
        if raw.shape[1] == 1:
            return np.asarray(self.classes_[(raw[:, 0] >= 0).astype(int)])
        return np.asarray(self.classes_[np.argmax(raw, axis=1)])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_from_raw(self.decision_function(x))
