"""Factor-aware pair sampling by index arithmetic on the factor grid, vectorised and on the training device.

Modes (``shared[b, k]`` is always recomputed honestly as ``classes_a == classes_b``):

* ``"share_one"``: the pair shares one factor ``k`` (drawn among factors with more than one value); every other factor
  is resampled to a DIFFERENT value (a factor of size 1 is necessarily shared).
* ``"change_one"``: the pair differs in exactly one factor ``k`` (drawn among factors with more than one value).
* ``"random_subset"``: the pair differs in a random number ``m ~ U{1..V-1}`` of the ``V`` non-constant factors (each
  resampled to a different value) and shares the rest — the weak supervision of Ada-GVAE (Locatello et al. 2020,
  "Weakly-Supervised Disentanglement Without Compromises").
* ``"change_k"``: the dynamics of Locatello et al. 2020 (Sec. 5): each pair changes either 1 or ``k`` of the ``V``
  non-constant factors (each with probability 1/2; ``k`` drawn uniformly from ``1..V-1`` per pair when ``change_k`` is
  -1), and each changed factor is resampled UNIFORMLY over all its values (so it may keep its value; ``shared`` says
  so). Needs a full grid.
* ``"single"``: ``x_b`` is an independent random image.

Anchors are uniform over ``indices`` (the training split); on a full grid every mode's partners are uniform too. Pairs
never leave ``indices``: a partner outside it is redrawn (only those rows, vectorised) for up to ``max_rounds`` rounds;
rows still outside after that take a uniformly random allowed partner, their ``shared`` row recomputed from the
classes (counted in :attr:`PairSampler.fallbacks`). Data that is not a full grid in order (a user's own set) is paired
by grouping rows on class values (sorting + random offsets inside a group): share_one/random_subset draw a partner
with the same value of ``k``, change_one a partner with the same values of all other factors.

The datasets: dSprites (Matthey et al. 2017) and 3D Shapes (Burgess & Kim 2018).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from disco.data.datasets import GroundTruthData
from disco.data.device_images import DeviceImages
from disco.data.domains import Domain
from disco.data.pairs import PairBatch
from disco.errors import ConfigError

MODES = ("share_one", "change_one", "random_subset", "change_k", "single")


@dataclass
class TripletBatch:
    """Anchor, positive (shares only factor ``factor[b]`` with the anchor) and negative (differs only in it)."""

    x_anchor: torch.Tensor
    x_pos: torch.Tensor
    x_neg: torch.Tensor
    factor: torch.Tensor
    classes_anchor: torch.Tensor
    classes_pos: torch.Tensor
    classes_neg: torch.Tensor
    factor_names: tuple[str, ...]


class _Groups:
    """Rows of the allowed set grouped by an integer key; draws another member of a row's group."""

    def __init__(self, key: torch.Tensor) -> None:
        order = torch.argsort(key, stable=True)
        sorted_key = key[order]
        m = len(key)
        new = torch.ones(m, dtype=torch.bool, device=key.device)
        new[1:] = sorted_key[1:] != sorted_key[:-1]
        group = torch.cumsum(new.long(), 0) - 1
        starts = torch.nonzero(new).reshape(-1)
        counts = torch.diff(torch.cat([starts, torch.tensor([m], device=key.device)]))
        self.order = order
        position = torch.empty_like(order)
        position[order] = torch.arange(m, device=key.device)
        self.start = starts[group][position]  # per allowed row: start of its group in sorted order
        self.count = counts[group][position]
        self.offset = position - self.start

    def partner(self, rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Allowed-row position of another member of each row's group (the row itself in a group of one)."""
        count = self.count[rows]
        step = 1 + (torch.rand(len(rows), generator=gen, device=rows.device) * (count - 1)).long()
        return self.order[self.start[rows] + (self.offset[rows] + step) % count]


class PairSampler:
    """Draws :class:`PairBatch` es (and triplets) from ground-truth data on ``device``.

    Args:
        data: the dataset; its uint8 images are moved to ``device`` once.
        indices: rows pairs may use (e.g. the training split); ``None`` for all.
        batch_size: pairs per batch.
        mode: one of :data:`MODES`.
        device: where images, indices and the random generator live.
        seed: seed of the sampler's ``torch.Generator`` (save/restore it with :meth:`state_dict`).
        factor: share/change always this factor instead of a random one.
        max_rounds: redraw rounds for partners outside ``indices`` before the fallback described in the module doc.
        change_k: ``k`` of mode ``change_k`` (1 .. number of varying factors, or -1 for a random ``k`` per pair).
        domain: render the images in this domain shift (:mod:`disco.data.domains`); ``None`` for the stored images.
        group_size: pairs per anchor: the batch is drawn as groups of ``group_size`` pairs that share one anchor image
            and one chosen factor (every partner of a share-one group shows the anchor's value of that factor, so all
            of the group's images share it); ``ids`` then holds each pair's anchor row. 1: independent pairs.
    """

    def __init__(
        self,
        data: GroundTruthData,
        indices: torch.Tensor | None = None,
        batch_size: int = 64,
        mode: str = "share_one",
        device: torch.device | str = "cpu",
        seed: int = 0,
        *,
        factor: str | None = None,
        max_rounds: int = 16,
        change_k: int = 1,
        domain: Domain | None = None,
        group_size: int = 1,
    ) -> None:
        if group_size < 1 or group_size > batch_size:
            raise ConfigError(f"pair_group {group_size} must lie between 1 and the batch size {batch_size}")
        self.group_size = int(group_size)
        if mode not in MODES:
            raise ConfigError(f"unknown pair mode {mode!r}; choose one of {', '.join(MODES)}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.mode, self.batch_size, self.max_rounds = mode, batch_size, max_rounds
        self.factor_names = data.factors.names
        self.on_grid = data.on_grid
        self.images = DeviceImages(data.images, self.device, domain)
        self.classes = data.classes.to(self.device)
        n = len(data)
        self.indices = (
            torch.arange(n, device=self.device) if indices is None else torch.as_tensor(indices).long().to(self.device)
        )
        if len(self.indices) == 0:
            raise ConfigError("the index set to sample pairs from is empty; give a non-empty training split")
        if int(self.indices.min()) < 0 or int(self.indices.max()) >= n:
            raise ConfigError(f"sampler indices must lie in [0, {n}); the split does not belong to this dataset")
        self.allowed = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.allowed[self.indices] = True
        self.sizes = torch.tensor(data.factors.sizes, dtype=torch.long, device=self.device)
        self.strides = torch.tensor(data.factors.strides, dtype=torch.long, device=self.device)
        self.varying = torch.nonzero(self.sizes > 1).reshape(-1)
        if len(self.varying) == 0:
            raise ConfigError("every factor of this dataset has a single value; there is nothing to pair on")
        self.fixed_factor: int | None = None
        if factor is not None:
            self.fixed_factor = data.factors.index(factor)
            if data.factors.sizes[self.fixed_factor] < 2:
                raise ConfigError(f"factor {factor!r} has a single value; choose a factor that varies")
        if mode == "change_k" and not (change_k == -1 or 1 <= change_k <= len(self.varying)):
            raise ConfigError(
                f"change_k {change_k} must be -1 (random per pair) or between 1 and {len(self.varying)}, the number of "
                "factors that vary"
            )
        self.change_k = int(change_k)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.fallbacks = 0
        if not self.on_grid and mode == "change_k":
            raise ConfigError(
                "pair_mode change_k needs a dataset that holds its full factor grid in order; "
                "use share_one, change_one or random_subset for this dataset"
            )
        if not self.on_grid:
            self._build_groups()

    # ---- random helpers -------------------------------------------------------------------------------------------
    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator, device=self.device)

    def _randint(self, high: int, n: int) -> torch.Tensor:
        return torch.randint(0, high, (n,), generator=self.generator, device=self.device)

    def _anchor_rows(self, n: int) -> torch.Tensor:
        """Positions in ``self.indices`` of ``n`` uniform anchors."""
        return self._randint(len(self.indices), n)

    def _pick_factor(self, n: int) -> torch.Tensor:
        if self.fixed_factor is not None:
            return torch.full((n,), self.fixed_factor, dtype=torch.long, device=self.device)
        return self.varying[self._randint(len(self.varying), n)]

    def _other_value(self, c: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        """A uniformly drawn value different from ``c`` (``c`` itself when the factor has one value)."""
        step = 1 + (self._rand(*c.shape) * (size - 1)).long()
        return (c + step) % size

    # ---- grid partners --------------------------------------------------------------------------------------------
    def _grid_partner(self, ca: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
        b = len(ca)
        if mode == "share_one":
            cb = self._other_value(ca, self.sizes.expand(b, -1))
            return cb.scatter(1, k[:, None], ca.gather(1, k[:, None]))
        if mode == "change_one":
            size_k = self.sizes[k]
            new = self._other_value(ca.gather(1, k[:, None]).reshape(-1), size_k)
            return ca.scatter(1, k[:, None], new[:, None])
        v = len(self.varying)
        if mode == "change_k":  # Locatello et al. 2020: 1 or k factors, resampled uniformly over all their values
            k_obs = self.change_k if self.change_k > 0 else 1 + (self._rand(b) * max(v - 1, 1)).long()
            m = torch.where(self._rand(b) < 0.5, 1, k_obs)
        else:  # random_subset: change m ~ U{1..V-1} of the V varying factors (m = 1 when V = 1), to other values
            m = 1 + (self._rand(b) * max(v - 1, 1)).long()
        rank = torch.argsort(torch.argsort(self._rand(b, v), dim=1), dim=1)
        change = torch.zeros_like(ca, dtype=torch.bool)
        change[:, self.varying] = rank < torch.as_tensor(m, device=self.device).reshape(-1, 1)
        if mode == "change_k":
            new = (self._rand(*ca.shape) * self.sizes).long()
        else:
            new = self._other_value(ca, self.sizes.expand(b, -1))
        return torch.where(change, new, ca)

    def _partners(self, anchor: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
        """Flat partner index of each anchor row (inside ``indices``)."""
        if mode == "single":
            return self.indices[self._anchor_rows(len(anchor))]
        if not self.on_grid:
            return self._group_partners(anchor, k, mode)
        ca = self.classes[anchor]
        partner = torch.empty_like(anchor)
        todo = torch.arange(len(anchor), device=self.device)
        for _ in range(self.max_rounds):
            cb = self._grid_partner(ca[todo], k[todo], mode)
            cand = (cb * self.strides).sum(1)
            ok = self.allowed[cand]
            partner[todo[ok]] = cand[ok]
            todo = todo[~ok]
            if len(todo) == 0:
                return partner
        self.fallbacks += len(todo)
        partner[todo] = self.indices[self._anchor_rows(len(todo))]
        return partner

    # ---- off-grid partners ----------------------------------------------------------------------------------------
    def _build_groups(self) -> None:
        allowed_classes = self.classes[self.indices]
        row_of = torch.full((len(self.allowed),), -1, dtype=torch.long, device=self.device)
        row_of[self.indices] = torch.arange(len(self.indices), device=self.device)
        self.row_of = row_of
        self.same: dict[int, _Groups] = {}
        self.others: dict[int, _Groups] = {}
        flat = (allowed_classes * self.strides).sum(1)
        for k in self.varying.tolist():
            self.same[k] = _Groups(allowed_classes[:, k])
            self.others[k] = _Groups(flat - allowed_classes[:, k] * self.strides[k])

    def _group_partners(self, anchor: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
        rows = self.row_of[anchor]
        partner_rows = torch.empty_like(rows)
        groups = self.others if mode == "change_one" else self.same
        for factor in torch.unique(k).tolist():
            sel = torch.nonzero(k == factor).reshape(-1)
            partner_rows[sel] = groups[factor].partner(rows[sel], self.generator)
        return self.indices[partner_rows]

    # ---- public API -----------------------------------------------------------------------------------------------
    def sample(self) -> PairBatch:
        """One batch of ``batch_size`` pairs in this sampler's mode, all tensors on ``device``."""
        b, g = self.batch_size, self.group_size
        groups = -(-b // g)
        anchor = self.indices[self._anchor_rows(groups)].repeat_interleave(g)[:b]
        factor = self._pick_factor(groups).repeat_interleave(g)[:b]
        partner = self._partners(anchor, factor, self.mode)
        both = torch.cat([anchor, partner])
        x, c = self.images.gather(both), self.classes[both]  # one gather for both views
        ids = anchor if g > 1 else None
        return PairBatch(x[:b], x[b:], c[:b] == c[b:], self.factor_names, c[:b], c[b:], ids)

    def sample_triplets(self, batch_size: int | None = None) -> TripletBatch:
        """Anchors, positives sharing only factor ``k`` with them ("share_one") and negatives differing only in ``k``."""
        b = batch_size or self.batch_size
        anchor = self.indices[self._anchor_rows(b)]
        k = self._pick_factor(b)
        pos = self._partners(anchor, k, "share_one")
        neg = self._partners(anchor, k, "change_one")
        c = self.classes
        return TripletBatch(
            self.images.gather(anchor),
            self.images.gather(pos),
            self.images.gather(neg),
            k,
            c[anchor],
            c[pos],
            c[neg],
            self.factor_names,
        )

    def sample_images(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` uniform images from ``indices``: float ``(n, C, H, W)`` in [0, 1] and long classes ``(n, K)``."""
        rows = self.indices[self._anchor_rows(n)]
        return self.images.gather(rows), self.classes[rows]

    def state_dict(self) -> dict[str, Any]:
        """The random state (for exact resume) and the fallback counter."""
        return {"generator": self.generator.get_state(), "fallbacks": self.fallbacks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.fallbacks = int(state.get("fallbacks", 0))


class PairBatchStream(torch.utils.data.IterableDataset):
    """``steps_per_epoch`` pair batches from ``sampler`` per pass; give it to a ``DataLoader(batch_size=None)``."""

    def __init__(self, sampler: PairSampler, steps_per_epoch: int) -> None:
        super().__init__()
        if steps_per_epoch < 1:
            raise ConfigError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.sampler, self.steps_per_epoch = sampler, steps_per_epoch

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[PairBatch]:
        for _ in range(self.steps_per_epoch):
            yield self.sampler.sample()
