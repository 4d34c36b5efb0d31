"""The LightningModule: encoder (+ decoder) and the objective assembled from configuration.

A training step encodes both views of the pair batch as ONE concatenated batch, takes the codes (reparameterised
``mean + σ·ε`` when the β-VAE branch of Higgins et al. 2017 is on, the means otherwise), evaluates the terms and steps
on their weighted sum. The encoder (and the decoder of the β-VAE term) run over that batch in micro-batches of
``model.microbatch`` images: 64 on CPU by default, where conv nets are cheaper per image in chunks, one pass on GPU. Optimisation is manual so that auxiliary networks (CLUB of Cheng et al. 2020, the TC
discriminator of Kim & Mnih 2018) get their own optimiser; only the model optimiser counts as a Lightning step.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any, cast

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from disco.data.pairs import PairBatch
from disco.data.supervision import resolve_supervision, target_supervision
from disco.data.symmetry import parse_symmetries
from disco.errors import ConfigError
from disco.models.factory import DECODERS, ENCODERS, build_decoder, build_encoder
from disco.models.microbatch import microbatched, resolve_chunk
from disco.models.subspaces import SubspaceSpec
from disco.train.config import TrainConfig, to_plain
from disco.train.guard import FiniteGuard
from disco.train.lr_schedule import learning_rate
from disco.train.objective import Objective, ObjectiveOutput, needs_decoder
from disco.train.step import CrossInputs, StepInputs, TermContext


def shape_kwargs(cls: type | None, channels: int, latent_dim: int, size: int = 64) -> dict[str, Any]:
    """The shape arguments a factory encoder/decoder class takes (``latent_dim`` and its input/output layout)."""
    params = set(inspect.signature(cls).parameters) if cls is not None else {"in_channels", "out_channels"}
    out: dict[str, Any] = {"latent_dim": latent_dim}
    candidates = {
        "in_channels": channels,
        "out_channels": channels,
        "input_dim": channels * size * size,
        "output_shape": [channels, size, size],
    }
    out.update({k: v for k, v in candidates.items() if k in params})
    return out


def private_branch(
    spec: SubspaceSpec,
    base: str,
    base_kwargs: dict[str, Any],
    channels: int,
    pool: str = "avg",
    shared_input: str = "raw",
) -> tuple[str, dict[str, Any]]:
    """Factory name and kwargs of ``base`` with a private branch for the private subspaces of ``spec``."""
    columns = [c for s in spec if s.private for c in range(s.start, s.stop)]
    if not columns:
        raise ConfigError(
            "model.private_branch needs a private subspace (a name starting with 'domain', e.g. ...,domain=2)"
        )
    kwargs = {"base": base, "base_kwargs": dict(base_kwargs), "columns": columns, "in_channels": channels, "pool": pool,
              "shared_input": shared_input}  # fmt: skip
    return "private_branch", kwargs


class DiscoModule(pl.LightningModule):
    """Trains an encoder with named subspaces; see :mod:`disco.train.objective` for the terms."""

    def __init__(
        self,
        cfg: TrainConfig,
        factor_names: tuple[str, ...],
        num_channels: int,
        dataset_size: int,
        *,
        factor_sizes: tuple[int, ...] = (),
        target: str | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.automatic_optimization = False
        self.factor_names = tuple(factor_names)
        #: what the objective really saw (``none`` for an objective that reads no pair information)
        self.supervision = resolve_supervision(cfg.data.supervision, cfg.objective)
        #: what the alignment terms saw of the target domain (None without a target)
        self.target_supervision = target_supervision(cfg.objective, cfg.data.target)
        self.spec = SubspaceSpec.parse(cfg.model.subspaces)
        self.spec.validate(self.factor_names)
        self.encoder_kwargs = shape_kwargs(ENCODERS.get(cfg.model.encoder), num_channels, self.spec.dim)
        self.encoder_kwargs.update(cfg.model.encoder_kwargs)
        self.encoder_name = cfg.model.encoder
        if cfg.model.private_branch:
            self.encoder_name, self.encoder_kwargs = private_branch(
                self.spec,
                cfg.model.encoder,
                self.encoder_kwargs,
                num_channels,
                cfg.model.private_pool,
                cfg.model.shared_input,
            )
        self.encoder = build_encoder(self.encoder_name, **self.encoder_kwargs)
        self.decoder: nn.Module | None = None
        if needs_decoder(cfg.objective) and cfg.model.decoder:
            dec_kwargs = shape_kwargs(DECODERS.get(cfg.model.decoder), num_channels, self.spec.dim)
            dec_kwargs.update(cfg.model.decoder_kwargs)
            self.decoder = build_decoder(cfg.model.decoder, **dec_kwargs)
        ctx = TermContext(
            self.spec,
            self.factor_names,
            int(dataset_size),
            self.decoder is not None,
            encoder=self.encoder,
            target=target,
            target_labelled=bool(cfg.data.target.labelled) and cfg.data.supervision == "labels",
            supervision=cfg.data.supervision,
            max_steps=int(cfg.trainer.max_steps),
            factor_sizes=tuple(factor_sizes),
            augment=dict(cfg.data.augment) if cfg.data.supervision == "augment" else None,
            symmetries=parse_symmetries(cfg.data.symmetries, self.factor_names, factor_sizes),
        )
        self.objective = Objective(cfg.objective, ctx)
        self.learning_rate(0)  # refuses a bad schedule before training starts
        alignment = self.objective.terms["alignment"] if "alignment" in self.objective.terms else None
        #: whether a term reads the target (else the cross-domain pairs of a batch are not encoded)
        self.uses_target = alignment is not None and bool(getattr(alignment, "needs", set()) - {"none"})
        self.guard = FiniteGuard(("loss", *self.objective.names), cfg.trainer.nan_check_every)
        self._noise: torch.Generator | None = None
        self._noise_state: torch.Tensor | None = None

    # ----------------------------------------------------------------------------------------------- forward pieces
    @property
    def microbatch(self) -> int | None:
        """Micro-batch size (images) of the encoder and decoder passes on this module's device, None for one pass
        (``model.microbatch``; ``auto`` resolves to 64 on CPU and to one pass elsewhere)."""
        return resolve_chunk(self.cfg.model.microbatch, self.device)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, logvar)`` of images ``x`` (B, C, 64, 64), in micro-batches of :attr:`microbatch` images."""
        mean, logvar = microbatched(self.encoder, x, self.microbatch)
        return mean, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder logits of codes ``z`` (B, D), in micro-batches of :attr:`microbatch` rows."""
        if self.decoder is None:
            raise RuntimeError("this module has no decoder (no decoding term is on or model.decoder is empty)")
        logits: torch.Tensor = microbatched(self.decoder, z, self.microbatch)
        return logits

    def _epsilon(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise for the rows of ``like`` (both views stacked), drawn for the whole DDP world from a
        generator seeded identically on every rank and sliced by rank: N ranks reproduce one process's N× batch."""
        if self._noise is None or self._noise.device != like.device:
            self._noise = torch.Generator(device=like.device)
            self._noise.manual_seed(self.cfg.seed + 7919)
            if self._noise_state is not None:
                self._noise.set_state(self._noise_state)
        world, rank = (1, 0) if self._trainer is None else (self.trainer.world_size, self.trainer.global_rank)
        b = like.shape[0] // 2
        full = torch.randn((2, world * b, like.shape[1]), generator=self._noise, device=like.device, dtype=like.dtype)
        return full[:, rank * b : (rank + 1) * b].reshape(like.shape)

    def step_inputs(self, batch: PairBatch, step: int) -> StepInputs:
        """Encode both views (and, with a target, both renders of the cross-domain pairs) as one batch (micro-batched,
        see :attr:`microbatch`) and build the objective's inputs. Cross-domain codes are the encoder means."""
        views = [batch.x_a, batch.x_b]
        if batch.cross is not None and self.uses_target:
            views += [batch.cross.x_a, batch.cross.x_b]
        n = 2 * len(batch)
        hidden = None
        if self.objective.needs_hidden:
            encode_hidden = cast(Callable[[torch.Tensor], tuple[torch.Tensor, ...]], self.encoder.encode_with_hidden)
            mean_all, logvar_all, hidden_all = microbatched(encode_hidden, torch.cat(views, dim=0), self.microbatch)
            hidden = hidden_all[:n]
        else:
            mean_all, logvar_all = self.encode(torch.cat(views, dim=0))
        x = torch.cat(views[:2], dim=0)
        mean, logvar = mean_all[:n], logvar_all[:n]
        z, sample = mean, None
        if self.objective.needs_reparameterisation:
            z = mean + torch.exp(0.5 * logvar) * self._epsilon(mean)
            if self.cfg.objective.vae.other_terms_read == "mean":
                z, sample = mean, z
        decode = self.decode if self.decoder is not None else None
        cross = None
        if batch.cross is not None and self.uses_target:
            m = len(batch.cross)
            cross = CrossInputs(batch.cross, mean_all[n : n + m], mean_all[n + m :])
        return StepInputs(batch, x, mean, logvar, z, step, decode, cross, sample, hidden)

    # ----------------------------------------------------------------------------------------------- training
    def learning_rate(self, step: int) -> float:
        """The model's rate at ``step`` under ``optim.lr_schedule`` (:mod:`disco.train.lr_schedule`)."""
        o = self.cfg.optim
        return learning_rate(step, o.lr, o.lr_schedule, int(self.cfg.trainer.max_steps), o.warmup_steps, o.min_lr_ratio)

    def training_step(self, batch: PairBatch, batch_idx: int) -> torch.Tensor:
        step = int(self.global_step)
        inputs = self.step_inputs(batch, step)
        out: ObjectiveOutput = self.objective(inputs)
        optimizers = self.optimizers()
        opts = optimizers if isinstance(optimizers, list) else [optimizers]
        main = opts[0]
        main.zero_grad()
        self.manual_backward(out.total)
        lr = self.learning_rate(step)
        for group in main.optimizer.param_groups:
            group["lr"] = lr
        if self.cfg.optim.grad_clip is not None:
            self.clip_gradients(
                main.optimizer, gradient_clip_val=self.cfg.optim.grad_clip, gradient_clip_algorithm="norm"
            )
        main.step()
        values: dict[str, Any] = out.log_values()
        values["lr"] = lr
        if len(opts) > 1:
            values["aux/loss"] = self._auxiliary_update(opts[1].optimizer, inputs.z)
        self.guard.update([out.total.detach(), *(t.loss.detach() for t in out.terms.values())], step)
        self.guard.maybe_check(step)
        bar = {"loss", *(f"{n}/weighted" for n in out.terms)}
        self.log_dict({f"train/{k}": v for k, v in values.items() if k not in bar}, on_step=True, on_epoch=False)
        self.log_dict({k: values[k] for k in sorted(bar)}, on_step=True, on_epoch=False, prog_bar=True)
        return out.total.detach()

    def _auxiliary_update(self, optimizer: torch.optim.Optimizer, z: torch.Tensor) -> torch.Tensor:
        """``optim.aux_steps`` steps of the auxiliary nets on detached codes (the raw optimiser: not a Lightning step).

        Under DDP the backward runs outside DDP's gradient hooks (``no_sync``) and the auxiliary gradients are averaged
        over ranks explicitly, so every rank keeps identical auxiliary nets."""
        loss = z.new_zeros(())
        params = self.objective.auxiliary_parameters()
        ddp = self.trainer.strategy.model if self._trainer is not None else None
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        for _ in range(self.cfg.optim.aux_steps):
            optimizer.zero_grad(set_to_none=True)
            loss = self.objective.auxiliary_loss(z.detach())
            with ddp.no_sync() if isinstance(ddp, DistributedDataParallel) else contextlib.nullcontext():
                loss.backward()
            if world > 1:
                for p in params:
                    if p.grad is not None:
                        torch.distributed.all_reduce(p.grad)
                        p.grad.div_(world)
            optimizer.step()
        return loss.detach()

    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        aux = self.objective.auxiliary_parameters()
        aux_ids = {id(p) for p in aux}
        main_params = [p for p in self.parameters() if id(p) not in aux_ids and p.requires_grad]
        main = torch.optim.Adam(main_params, lr=o.lr, betas=(o.betas[0], o.betas[1]), weight_decay=o.weight_decay)
        if not aux:
            return main
        return [main, torch.optim.Adam(aux, lr=o.aux_lr, betas=(o.aux_betas[0], o.aux_betas[1]))]

    def on_train_end(self) -> None:
        self.guard.check(int(self.global_step))

    # ----------------------------------------------------------------------------------------------- checkpoints
    def disco_metadata(self) -> dict[str, Any]:
        """The checkpoint contract's ``ckpt["disco"]`` entry (plain types only)."""
        return {
            "encoder": {"name": self.encoder_name, "kwargs": dict(self.encoder_kwargs)},
            "subspaces": self.spec.to_dict(),
            "factor_names": list(self.factor_names),
            "dataset": self.cfg.data.dataset,
            "supervision": self.supervision,
            "target_supervision": self.target_supervision,
            "config": to_plain(self.cfg),
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.guard.check(int(self.global_step))
        checkpoint["disco"] = self.disco_metadata()
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self._noise is not None:
            rng["noise"] = self._noise.get_state()
        if torch.cuda.is_available() and self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        checkpoint["disco_rng"] = rng

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = checkpoint.get("disco_rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if "noise" in rng:
            self._noise_state = rng["noise"].cpu()
            self._noise = None
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"].cpu())
