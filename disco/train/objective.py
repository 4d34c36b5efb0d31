"""Assembles the training objective from configuration: a registry of terms, their weights and schedules.

Adding a term: write one builder ``(section_config, TermContext) -> nn.Module`` whose ``forward(StepInputs)`` returns a
:class:`~disco.losses.base.LossOutput`, add one line to :data:`TERMS` and one field of the same name to
:class:`~disco.train.config.ObjectiveConfig` (its section must have ``weight`` and ``schedule``). A term is built only
when its weight is non-zero. A section that is a list (``alignment``) is one term summing its entries, each with its own
weight and schedule; it is built when the list is not empty. Every term logs its weighted value, its raw magnitude and
its diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from disco.losses.base import LossOutput
from disco.train import alignment, terms
from disco.train.config import ObjectiveConfig, ScheduleConfig
from disco.train.schedules import Schedule
from disco.train.step import StepInputs, TermContext

TermBuilder = Callable[[Any, TermContext], nn.Module]

#: name -> builder; the name is also the key of the term's section in ``objective`` and its logging prefix.
TERMS: dict[str, TermBuilder] = {
    "contrastive": terms.build_contrastive,
    "localisation": terms.build_localisation,
    "invariance": terms.build_invariance,
    "equivariance": terms.build_equivariance,
    "variance": terms.build_variance,
    "independence": terms.build_independence,
    "vae": terms.build_vae,
    "weak_vae": terms.build_weak_vae,
    "supervised": terms.build_supervised,
    "auxiliary": terms.build_auxiliary,
    "alignment": alignment.build_alignment,
}

#: Terms that decode codes: the module builds its decoder when one of them is on.
DECODING_TERMS: tuple[str, ...] = ("vae", "weak_vae")


def needs_decoder(cfg: ObjectiveConfig) -> bool:
    """Whether a term of ``cfg`` that decodes codes (:data:`DECODING_TERMS`) has a non-zero weight."""
    return any(float(getattr(cfg, name).weight) != 0.0 for name in DECODING_TERMS)


@dataclass
class ObjectiveOutput:
    """The weighted sum to optimise, each term's output and the weights used at this step."""

    total: torch.Tensor
    terms: dict[str, LossOutput]
    weights: dict[str, float]

    def log_values(self) -> dict[str, torch.Tensor | float]:
        """Values to log (detached tensors on the loss's device, no host sync): ``loss``, ``<term>/weighted``,
        ``<term>/weight`` and every diagnostic of every term."""
        device = self.total.device
        out: dict[str, torch.Tensor | float] = {"loss": self.total.detach()}
        for name, term in self.terms.items():
            w = self.weights[name]
            out[f"{name}/weighted"] = term.loss.detach() * w
            out[f"{name}/weight"] = w
            for key, val in term.diagnostics.items():
                out[f"{name}/{key}"] = val.detach().float().to(device, non_blocking=True)
        return out


class Objective(nn.Module):
    """The weighted sum of the active terms: ``Σ_t weight_t · schedule_t(step) · term_t``."""

    def __init__(self, cfg: ObjectiveConfig, ctx: TermContext) -> None:
        super().__init__()
        self.terms = nn.ModuleDict()
        self.base_weights: dict[str, float] = {}
        self.schedules: dict[str, Schedule] = {}
        for name, builder in TERMS.items():
            section = getattr(cfg, name)
            if isinstance(section, list):
                if not any(float(entry.weight) != 0.0 for entry in section):
                    continue
                weight, schedule = 1.0, ScheduleConfig()
            elif float(section.weight) == 0.0:
                continue
            else:
                weight, schedule = float(section.weight), section.schedule
            self.terms[name] = builder(section, ctx)
            self.base_weights[name] = weight
            self.schedules[name] = Schedule.from_config(schedule)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.terms.keys())

    @property
    def needs_hidden(self) -> bool:
        """Whether a term reads the encoder's hidden features (:attr:`StepInputs.hidden`)."""
        return any(getattr(term, "needs_hidden", False) for term in self.terms.values())

    @property
    def needs_reparameterisation(self) -> bool:
        """Whether codes are sampled (``mean + σ·ε``) rather than the encoder means: when the VAE term is on."""
        return "vae" in self.terms

    def weight(self, name: str, step: int) -> float:
        """The weight of term ``name`` at ``step``."""
        return self.base_weights[name] * self.schedules[name](step)

    def forward(self, inputs: StepInputs) -> ObjectiveOutput:
        outputs: dict[str, LossOutput] = {}
        weights: dict[str, float] = {}
        total = inputs.z.new_zeros(())
        for name, term in self.terms.items():
            out = term(inputs)
            outputs[name] = out
            weights[name] = self.weight(name, inputs.step)
            total = total + weights[name] * out.loss
        return ObjectiveOutput(total, outputs, weights)

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters of the terms' own networks (CLUB, TC discriminator), trained by a separate optimiser."""
        params: list[nn.Parameter] = []
        for term in self.terms.values():
            fn = getattr(term, "auxiliary_parameters", None)
            params.extend(fn() if fn is not None else [])
        return params

    def auxiliary_loss(self, z: torch.Tensor) -> torch.Tensor:
        """Sum of the terms' auxiliary losses on detached codes."""
        total = z.new_zeros(())
        for term in self.terms.values():
            fn = getattr(term, "auxiliary_loss", None)
            if fn is not None:
                total = total + fn(z.detach())
        return total
