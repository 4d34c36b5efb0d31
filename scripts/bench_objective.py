"""Benchmark the cost of disco's objective terms and of one full training step against a plain β-VAE step (CPU).

For each batch size it reports the median (after warm-up) of forward+backward of every objective term, then one full
disco step — pair batch from :class:`disco.data.sampler.PairSampler` → conv64 encoder on both views (one concatenated
pass of 2B images) → decoder + VAE loss on both views → subspace contrastive + independence penalty → backward → Adam
step — against one β-VAE step (same encoder/decoder, B images). Full and baseline steps are timed interleaved so that
load on a shared machine affects both alike. Goal: full / β-VAE ≤ 2.3.

``--chunks`` sets the micro-batch size of the conv passes of BOTH steps, as the trainer's ``model.microbatch`` does
(:func:`disco.models.microbatch.microbatched`, resolved with :func:`~disco.models.microbatch.resolve_chunk` for the
CPU): ``auto`` is the trainer's default (64 images on CPU, where convs are cheaper per image in chunks), ``0`` one pass.
The default ``auto 0`` times the step as the trainer runs it, then one pass for comparison. ``--max-samples`` caps the
rows the O(B²) independence penalty scores in the full step.

    python scripts/bench_objective.py --batch-sizes 64 256 --repeats 9 --threads 2
    python scripts/bench_objective.py --no-terms --chunks auto --estimators dcor --repeats 5   # trainer default only
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from disco.data.datasets import GroundTruthData
from disco.data.factors import FactorSpace
from disco.data.sampler import PairSampler
from disco.losses.contrastive import SubspaceContrastive
from disco.losses.independence import ESTIMATORS, SubspaceIndependence
from disco.losses.vae import VAELoss, reparameterize
from disco.models.factory import build_decoder, build_encoder
from disco.models.microbatch import microbatched, resolve_chunk
from disco.models.subspaces import SubspaceSpec

SPEC = "shape=3,scale=1,orientation=2,pos_x=1,pos_y=1,free=2"
FACTORS = FactorSpace(("shape", "scale", "orientation", "pos_x", "pos_y"), (3, 4, 8, 8, 8))


def synthetic_data(seed: int = 0) -> GroundTruthData:
    """Random uint8 images on a full factor grid (timings do not depend on the pixels)."""
    g = torch.Generator().manual_seed(seed)
    n = FACTORS.size
    images = torch.randint(0, 256, (n, 1, 64, 64), dtype=torch.uint8, generator=g)
    classes = torch.as_tensor(FACTORS.index_to_classes(torch.arange(n))).long()
    return GroundTruthData("bench", images, classes, FACTORS, on_grid=True)


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def penalty(ind: SubspaceIndependence, z: torch.Tensor) -> Callable[[], torch.Tensor]:
    return lambda: ind(z).loss


def aux_step(ind: SubspaceIndependence, z: torch.Tensor, opt: torch.optim.Optimizer) -> Callable[[], torch.Tensor]:
    return lambda: ind.update_auxiliary(z, opt)


def term_costs(b: int, spec: SubspaceSpec, repeats: int) -> dict[str, float]:
    """Forward+backward seconds of each objective term on codes of a batch of B pairs."""
    g = torch.Generator().manual_seed(0)
    names = list(FACTORS.names)
    z_a = torch.randn(b, spec.dim, generator=g, requires_grad=True)
    z_b = torch.randn(b, spec.dim, generator=g, requires_grad=True)
    classes_a = torch.stack([torch.randint(0, s, (b,), generator=g) for s in FACTORS.sizes], 1)
    classes_b = classes_a.clone()
    classes_b[:, 1:] = torch.stack([torch.randint(0, s, (b,), generator=g) for s in FACTORS.sizes[1:]], 1)
    shared = classes_a == classes_b
    z2 = torch.randn(2 * b, spec.dim, generator=g, requires_grad=True)
    out: dict[str, float] = {}

    def run(loss_fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            loss_fn().backward()

        return step

    contrastive = SubspaceContrastive(spec, names)
    out["contrastive"] = median_time(run(lambda: contrastive(z_a, z_b, shared, classes_a, classes_b).loss), repeats)
    try:
        from disco.losses.localisation import ChangeLocalisation

        loc = ChangeLocalisation(spec, names)
        out["localisation"] = median_time(run(lambda: loc(z_a, z_b, shared).loss), repeats)
    except ImportError:
        pass
    for est in ESTIMATORS:
        ind = SubspaceIndependence(spec, est)
        out[f"independence/{est} (2B codes)"] = median_time(run(penalty(ind, z2)), repeats)
        if ind.has_auxiliary:
            opt = torch.optim.Adam(ind.auxiliary_parameters(), lr=1e-4)
            out[f"independence/{est} aux step"] = median_time(aux_step(ind, z2, opt), repeats)
    x = torch.rand(2 * b, 1, 64, 64, generator=g)
    logits = torch.randn(2 * b, 1, 64, 64, generator=g, requires_grad=True)
    mean = torch.randn(2 * b, spec.dim, generator=g, requires_grad=True)
    logvar = torch.randn(2 * b, spec.dim, generator=g, requires_grad=True)
    vae, tcvae = VAELoss(beta=4.0), VAELoss(tc_beta=6.0, dataset_size=FACTORS.size)
    out["vae loss (2B images)"] = median_time(run(lambda: vae(x, logits, mean, logvar, mean).loss), repeats)
    out["beta-tcvae loss (2B images)"] = median_time(run(lambda: tcvae(x, logits, mean, logvar, mean).loss), repeats)
    try:
        from disco.losses.coral import CORALLoss
        from disco.losses.mmd import MMDLoss

        mmd, coral = MMDLoss(), CORALLoss()
        out["mmd"] = median_time(run(lambda: mmd(z_a, z_b).loss), repeats)
        out["coral"] = median_time(run(lambda: coral(z_a, z_b).loss), repeats)
    except ImportError:
        pass
    return out


class Steps:
    """One full disco step and one β-VAE step sharing the data sampler and architecture (separate weights)."""

    def __init__(self, b: int, spec: SubspaceSpec, estimator: str, chunk: int | None, max_samples: int | None) -> None:
        torch.manual_seed(0)
        self.spec = spec
        self.chunk = chunk
        self.sampler = PairSampler(synthetic_data(), None, b, "share_one", seed=0)
        self.names = list(FACTORS.names)
        self.enc, self.dec = self._nets()
        self.base_enc, self.base_dec = self._nets()
        self.vae = VAELoss(beta=4.0)
        self.contrastive = SubspaceContrastive(spec, self.names)
        self.independence = SubspaceIndependence(spec, estimator, max_samples=max_samples)
        params = [*self.enc.parameters(), *self.dec.parameters()]
        self.opt = torch.optim.Adam(params, lr=1e-4)
        self.aux_opt = (
            torch.optim.Adam(self.independence.auxiliary_parameters(), lr=1e-4)
            if self.independence.has_auxiliary
            else None
        )
        self.base_opt = torch.optim.Adam([*self.base_enc.parameters(), *self.base_dec.parameters()], lr=1e-4)

    def _nets(self) -> tuple[nn.Module, nn.Module]:
        return (
            build_encoder("conv64", in_channels=1, latent_dim=self.spec.dim),
            build_decoder("conv64", latent_dim=self.spec.dim, out_channels=1),
        )

    def full(self) -> None:
        batch = self.sampler.sample()
        b = len(batch)
        x = torch.cat([batch.x_a, batch.x_b])
        mean, logvar = microbatched(self.enc, x, self.chunk)
        z = reparameterize(mean, logvar)
        vae = self.vae(x, microbatched(self.dec, z, self.chunk), mean, logvar, z)
        con = self.contrastive(mean[:b], mean[b:], batch.shared, batch.classes_a, batch.classes_b)
        ind = self.independence(mean)
        loss = vae.loss + con.loss + ind.loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.aux_opt is not None:
            self.independence.update_auxiliary(mean, self.aux_opt)

    def beta_vae(self) -> None:
        x, _ = self.sampler.sample_images(self.sampler.batch_size)
        mean, logvar = microbatched(self.base_enc, x, self.chunk)
        z = reparameterize(mean, logvar)
        loss = self.vae(x, microbatched(self.base_dec, z, self.chunk), mean, logvar, z).loss
        self.base_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.base_opt.step()


def step_ratio(
    b: int, spec: SubspaceSpec, estimator: str, repeats: int, chunk: int | None, max_samples: int | None
) -> dict[str, float]:
    """Median full-step and β-VAE-step seconds and the median of the per-iteration ratios, by wall clock and by process
    CPU time. The two steps alternate, so each ratio compares steps taken under the same machine load; the CPU-time
    ratio is the steadier one on a busy shared machine."""
    steps = Steps(b, spec, estimator, chunk, max_samples)
    for _ in range(2):
        steps.full()
        steps.beta_vae()
    wall: dict[str, list[float]] = {"full": [], "base": []}
    cpu: dict[str, list[float]] = {"full": [], "base": []}
    for i in range(repeats):
        order = [("full", steps.full), ("base", steps.beta_vae)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    out = {}
    for clock, d in (("wall", wall), ("cpu", cpu)):
        out[f"{clock}_full"] = statistics.median(d["full"])
        out[f"{clock}_base"] = statistics.median(d["base"])
        out[f"{clock}_ratio"] = statistics.median(f / g for f, g in zip(d["full"], d["base"], strict=True))
    return out


def chunk_setting(text: str) -> int | Literal["auto"]:
    """A ``--chunks`` value: ``auto`` or an int >= 0 (as ``model.microbatch``)."""
    if text == "auto":
        return "auto"
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"chunk sizes are auto or >= 0, got {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--chunks",
        type=chunk_setting,
        nargs="+",
        default=["auto", 0],
        help="micro-batch sizes of the conv passes, applied to BOTH steps, like model.microbatch "
        "(auto: the trainer's default, 64 on CPU; 0: one pass)",
    )
    parser.add_argument("--max-samples", type=int, default=256, help="rows the independence penalty scores (0: all)")
    parser.add_argument("--no-terms", action="store_true", help="skip the per-term costs, time only the steps")
    parser.add_argument("--estimators", nargs="+", default=["dcor", "hsic", "tc"], choices=ESTIMATORS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = SubspaceSpec.parse(SPEC)
    print(f"torch {torch.__version__}, {args.threads} threads, spec {SPEC}, median of {args.repeats} runs")
    for b in args.batch_sizes:
        print(f"\n== batch {b} pairs ==")
        for name, sec in ({} if args.no_terms else term_costs(b, spec, args.repeats)).items():
            print(f"  {name:<36s} {1000 * sec:9.2f} ms  (forward+backward)")
        for setting in args.chunks:
            chunk = resolve_chunk(setting, torch.device("cpu"))
            label = f"{setting} ({chunk or 'none'})" if setting == "auto" else str(chunk or "none")
            for est in args.estimators:
                r = step_ratio(b, spec, est, args.repeats, chunk, args.max_samples or None)
                for clock in ("wall", "cpu"):
                    print(
                        f"  chunk {label:>9}  full step [{est:>5s}] {1000 * r[clock + '_full']:8.1f} ms   "
                        f"beta-VAE step {1000 * r[clock + '_base']:8.1f} ms   ratio {r[clock + '_ratio']:5.2f}  "
                        f"({clock} clock; goal <= 2.3)"
                    )


if __name__ == "__main__":
    main()
