"""Two CPU processes (gloo): the batch-statistic terms of the objective see the GLOBAL batch under DDP.

Reference: one process holding the concatenated batch of both ranks. For every term the mean of the two rank losses must
equal the single-process loss, and each rank's input gradient divided by the world size (DDP averages parameter
gradients over ranks) must equal the single-process gradient of its rows, to float64 precision. The ranks hold batches
of different sizes (4 and 6 pairs), so a per-rank mean is not the global mean either. As a negative control, the same
terms with ``gather_distributed=False`` (the per-rank behaviour of the code before the gather) must miss the reference.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from disco.data.pairs import PairBatch
from disco.losses.distributed import gather_views, is_distributed
from disco.losses.independence import SubspaceIndependence
from disco.losses.invariance import SubspaceInvariance
from disco.losses.localisation import ChangeLocalisation
from disco.losses.vae import VAELoss
from disco.models.subspaces import SubspaceSpec
from disco.train.alignment import AlignmentTerms
from disco.train.config import AlignmentTermConfig
from disco.train.step import StepInputs, TermContext

FACTORS = ("shape", "scale", "orient")
SPEC = SubspaceSpec.parse("shape=3,scale=1,orient=2,free=2")
WORLD = 2
SIZES = (4, 6)
Case = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def full_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    n = sum(SIZES)
    za = torch.randn(n, SPEC.dim, generator=g, dtype=torch.float64)
    zb = za + 0.5 * torch.randn(n, SPEC.dim, generator=g, dtype=torch.float64)
    za[:, 3] = za[:, 0] ** 2 + 0.1 * za[:, 3]  # dependent subspaces: the penalties are far from 0
    # pairs that change exactly one tied factor (valid for localisation): 1 of rank 0's 4, 3 of rank 1's 6
    rank0 = [[0, 1, 1], [0, 0, 1], [0, 0, 0], [1, 0, 0]]
    rank1 = [[1, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 1]]
    return za, zb, torch.tensor([*rank0, *rank1]).bool()


def seeded(seed: int, make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    torch.manual_seed(seed)  # same initial weights in every process
    return make().double()


def independence(estimator: str, gather: bool, aux: bool = False, **kwargs: int) -> Case:
    def run(za: torch.Tensor, zb: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        m = seeded(1, lambda: SubspaceIndependence(SPEC, estimator, gather_distributed=gather, **kwargs))
        assert isinstance(m, SubspaceIndependence)
        z = torch.cat([za, zb])
        torch.manual_seed(2)  # CLUB's and the TC discriminator's permutations
        return m.auxiliary_loss(z, views=2) if aux else m(z, views=2).loss

    return run


def localisation(gather: bool) -> Case:
    def run(za: torch.Tensor, zb: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        return ChangeLocalisation(SPEC, FACTORS, temperature=0.5, gather_distributed=gather)(za, zb, shared).loss

    return run


def invariance(gather: bool) -> Case:
    def run(za: torch.Tensor, zb: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        return SubspaceInvariance(SPEC, FACTORS, gather_distributed=gather)(za, zb, shared).loss

    return run


def tcvae(gather: bool) -> Case:
    def run(za: torch.Tensor, zb: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        z = torch.cat([za, zb])
        mean, logvar = 0.8 * z + 0.1, 0.5 * torch.tanh(z)  # candidates' parameters carry gradient too
        x = torch.zeros(z.shape[0], 1, 2, 2, dtype=z.dtype)
        loss = VAELoss(tc_beta=6.0, dataset_size=50, gather_distributed=gather)
        out = loss(x, torch.zeros_like(x), mean, logvar, z, views=2)
        # the reconstruction is a per-image mean of each rank (exact for the equal rank batches of the data module)
        return out.loss - out.diagnostics["recon"]

    return run


def alignment(za: torch.Tensor, zb: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    x = torch.zeros(za.shape[0], 1, 2, 2, dtype=za.dtype)
    z = torch.cat([za, zb])
    inputs = StepInputs(PairBatch(x, x, shared, FACTORS), torch.cat([x, x]), z, z, z, 0)
    torch.manual_seed(3)  # prior samples
    prior = AlignmentTerms([AlignmentTermConfig(kind="prior")], TermContext(SPEC, FACTORS, 50, False))
    return prior(inputs).loss


def cases(gather: bool) -> dict[str, Case]:
    out: dict[str, Case] = {
        "dcor": independence("dcor", gather),
        "hsic_max_samples": independence("hsic", gather, max_samples=12),
        "crosscov": independence("crosscov", gather),
        "club": independence("club", gather),
        "tc": independence("tc", gather),
        "tc_auxiliary": independence("tc", gather, aux=True),
        "club_auxiliary": independence("club", gather, aux=True),
        "localisation": localisation(gather),
        "invariance": invariance(gather),
        "tcvae": tcvae(gather),
    }
    if gather:
        out["alignment_mmd"] = alignment
    return out


def evaluate(case: Case, za: torch.Tensor, zb: torch.Tensor, shared: torch.Tensor) -> dict[str, torch.Tensor]:
    a, b = za.clone().requires_grad_(True), zb.clone().requires_grad_(True)
    loss = case(a, b, shared)
    if loss.requires_grad:
        loss.backward()
    zeros = torch.zeros_like(za)
    return {
        "loss": loss.detach(),
        "grad_a": zeros if a.grad is None else a.grad,
        "grad_b": zeros if b.grad is None else b.grad,
    }


def worker(rank: int, init_file: str, out_dir: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        assert is_distributed()
        start = sum(SIZES[:rank])
        za, zb, shared = (t[start : start + SIZES[rank]] for t in full_batch())
        result: dict[str, torch.Tensor] = {}
        world = gather_views(torch.cat([za, zb]), views=2)
        result["views/rows"], result["views/local"] = world.rows, world.local
        for gather in (True, False):
            for name, case in cases(gather).items():
                for key, value in evaluate(case, za, zb, shared).items():
                    result[f"{gather}/{name}/{key}"] = value
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def max_error(ranks: list[dict[str, torch.Tensor]], prefix: str, single: dict[str, torch.Tensor]) -> float:
    """Largest deviation of the rank results from one process: the loss (mean over ranks) and the input gradients."""
    errors = [float((sum(rk[f"{prefix}/loss"] for rk in ranks) / WORLD - single["loss"]).abs())]
    start = 0
    for rk, n in zip(ranks, SIZES, strict=True):
        for view in ("a", "b"):
            # DDP averages gradients over ranks; the all-gather backward already summed them over ranks
            errors.append(
                float((rk[f"{prefix}/grad_{view}"] / WORLD - single[f"grad_{view}"][start : start + n]).abs().max())
            )
        start += n
    return max(errors)


def test_batch_statistics_see_the_global_batch(tmp_path: Path) -> None:
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    za, zb, shared = full_batch()
    valid = (~shared).sum(1) == 1
    assert [int(valid[:4].sum()), int(valid[4:].sum())] == [1, 3]  # the ranks' localisation means differ in size
    n = sum(SIZES)
    for rk in ranks:
        # one process's row order: [a_0 .. a_9; b_0 .. b_9], and this rank's rows found through `local`
        assert torch.equal(rk["views/rows"], torch.cat([za, zb]))
    assert torch.equal(
        ranks[1]["views/local"], torch.tensor([4, 5, 6, 7, 8, 9, n + 4, n + 5, n + 6, n + 7, n + 8, n + 9])
    )
    for name, case in cases(True).items():
        single = evaluate(case, za, zb, shared)
        assert single["loss"].abs() > 1e-3, name  # a non-trivial value
        error = max_error(ranks, f"True/{name}", single)
        assert error < 1e-12, (name, error)
        if f"False/{name}/loss" in ranks[0]:
            # per-rank statistics (no gather) are a different objective: the comparison can fail
            assert max_error(ranks, f"False/{name}", single) > 1e-4, name
