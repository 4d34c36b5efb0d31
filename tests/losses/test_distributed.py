"""Two CPU processes (gloo): gathered contrastive losses equal the single-process loss on the concatenated batch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from disco.losses.contrastive import SubspaceContrastive
from disco.losses.distributed import gather_no_grad, gather_with_grad, is_distributed
from disco.losses.infonce import NTXentLoss
from disco.models.subspaces import SubspaceSpec

FACTORS = ["shape", "scale", "orient"]
SPEC = SubspaceSpec.parse("shape=3,scale=1,orient=2,free=2")
WORLD = 2
SIZES = (4, 6)  # unequal rank batches: the global normalisation keeps the mean of rank losses exact


def full_batch() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(11)
    n = sum(SIZES)
    za = torch.randn(n, SPEC.dim, generator=g, dtype=torch.float64)
    zb = torch.randn(n, SPEC.dim, generator=g, dtype=torch.float64)
    ca = torch.randint(0, 3, (n, 3), generator=g)
    shared = torch.rand(n, 3, generator=g) < 0.5
    cb = torch.where(shared, ca, torch.randint(0, 3, (n, 3), generator=g))
    return za, zb, shared, ca, cb


def losses() -> dict[str, torch.nn.Module]:
    return {
        "subspace": SubspaceContrastive(SPEC, FACTORS, temperature=0.2),
        "ntxent": NTXentLoss(temperature=0.2),
    }


def compute(name: str, module: torch.nn.Module, za, zb, shared, ca, cb) -> torch.Tensor:
    if name == "subspace":
        return module(za, zb, shared, ca, cb).loss
    return module(za, zb).loss


def worker(rank: int, init_file: str, out_dir: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        assert is_distributed()
        start = sum(SIZES[:rank])
        sl = slice(start, start + SIZES[rank])
        za, zb, shared, ca, cb = (t[sl] for t in full_batch())
        result: dict[str, torch.Tensor] = {}
        gathered = gather_no_grad(ca)
        result["gathered_classes"] = gathered
        probe = za.clone().requires_grad_(True)
        (gather_with_grad(probe) * torch.arange(sum(SIZES), dtype=za.dtype)[:, None]).sum().backward()
        result["probe_grad"] = probe.grad
        for name, module in losses().items():
            a, b = za.clone().requires_grad_(True), zb.clone().requires_grad_(True)
            loss = compute(name, module, a, b, shared, ca, cb)
            loss.backward()
            result[f"{name}/loss"] = loss.detach()
            result[f"{name}/grad_a"] = a.grad
            result[f"{name}/grad_b"] = b.grad
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gathered_losses_equal_single_process(tmp_path: Path) -> None:
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    za, zb, shared, ca, cb = full_batch()
    bounds = [0, SIZES[0], sum(SIZES)]
    for r in range(WORLD):
        assert torch.equal(ranks[r]["gathered_classes"], ca)
        # d/dx_r of sum_r' sum(gather(x) * row_index): each rank contributes its row indices
        expected = WORLD * torch.arange(bounds[r], bounds[r + 1], dtype=za.dtype)[:, None].expand(-1, SPEC.dim)
        assert torch.allclose(ranks[r]["probe_grad"], expected)
    for name, module in losses().items():
        a, b = za.clone().requires_grad_(True), zb.clone().requires_grad_(True)
        single = compute(name, module, a, b, shared, ca, cb)
        single.backward()
        mean_rank_loss = sum(rk[f"{name}/loss"] for rk in ranks) / WORLD
        assert mean_rank_loss.item() == pytest.approx(single.item(), rel=1e-12), name
        for r in range(WORLD):
            sl = slice(bounds[r], bounds[r + 1])
            # DDP averages gradients over ranks; the all-gather backward already summed them over ranks
            assert torch.allclose(ranks[r][f"{name}/grad_a"] / WORLD, a.grad[sl], atol=1e-12), name
            assert torch.allclose(ranks[r][f"{name}/grad_b"] / WORLD, b.grad[sl], atol=1e-12), name
