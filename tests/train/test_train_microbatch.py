"""model.microbatch: the trainer's micro-batched encoder/decoder passes give the one-pass loss and gradients, are
actually taken, and ``auto`` means 64 images on CPU and one pass on accelerators."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tiny_config
from torch import nn

from disco.data.datasets import load_dataset
from disco.data.pairs import PairBatch
from disco.data.sampler import PairSampler
from disco.errors import ConfigError
from disco.models.microbatch import AUTO_CPU_CHUNK, resolve_chunk
from disco.train.cli import parse_config
from disco.train.config import TrainConfig
from disco.train.module import DiscoModule

CONV = ("--model.encoder=conv64", "--model.encoder_kwargs={}", "--model.decoder=conv64", "--model.decoder_kwargs={}")


def _conv_config(data: Path, run_dir: Path, microbatch: str) -> TrainConfig:
    return tiny_config(data, run_dir, *CONV, f"--model.microbatch={microbatch}")


def _module(cfg: TrainConfig, data: Path) -> DiscoModule:
    dataset = load_dataset(str(data))
    return DiscoModule(cfg, tuple(dataset.factors.names), dataset.num_channels, len(dataset))


def _batch(data: Path, pairs: int, dtype: torch.dtype = torch.float32) -> PairBatch:
    batch = PairSampler(load_dataset(str(data)), batch_size=pairs, seed=3).sample()
    return dataclasses.replace(batch, x_a=batch.x_a.to(dtype), x_b=batch.x_b.to(dtype))


def _loss_and_grads(module: DiscoModule, batch: PairBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The objective of one training step at step 10 and the gradient of every model parameter."""
    module.zero_grad(set_to_none=True)
    out = module.objective(module.step_inputs(batch, step=10))
    out.total.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return out.total.detach(), grads


def test_chunked_step_equals_one_pass(tiny_dsprites: Path, tmp_path: Path) -> None:
    one_pass = _module(_conv_config(tiny_dsprites, tmp_path, "null"), tiny_dsprites).double()
    chunked = _module(_conv_config(tiny_dsprites, tmp_path, "4"), tiny_dsprites).double()
    chunked.load_state_dict(one_pass.state_dict())
    assert one_pass.microbatch is None and chunked.microbatch == 4
    assert one_pass.decoder is not None and set(one_pass.objective.names) >= {"contrastive", "vae"}
    batch = _batch(tiny_dsprites, pairs=7, dtype=torch.float64)  # 14 images: chunks of 4, 4, 4, 2

    loss_ref, grads_ref = _loss_and_grads(one_pass, batch)
    loss, grads = _loss_and_grads(chunked, batch)

    torch.testing.assert_close(loss, loss_ref, rtol=1e-10, atol=0.0)
    expected = {n for n, p in one_pass.named_parameters() if p.requires_grad}
    assert set(grads_ref) == set(grads) == expected  # encoder and decoder parameters all received gradients
    for name, g_ref in grads_ref.items():
        assert g_ref.abs().max() > 0, name
        torch.testing.assert_close(grads[name], g_ref, rtol=1e-7, atol=1e-12, msg=lambda m, n=name: f"{n}: {m}")


def _count_calls(module: nn.Module) -> list[int]:
    """Record the batch size of every forward call of ``module``."""
    sizes: list[int] = []

    def hook(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        sizes.append(int(args[0].shape[0]))

    module.register_forward_hook(hook)
    return sizes


@pytest.mark.parametrize(("setting", "pairs", "chunk"), [("4", 7, 4), ("auto", 40, AUTO_CPU_CHUNK), ("0", 7, None)])
def test_training_step_runs_encoder_and_decoder_in_chunks(
    tiny_dsprites: Path, tmp_path: Path, setting: str, pairs: int, chunk: int | None
) -> None:
    module = _module(_conv_config(tiny_dsprites, tmp_path, setting), tiny_dsprites)
    assert module.decoder is not None
    enc_calls, dec_calls = _count_calls(module.encoder), _count_calls(module.decoder)
    with torch.no_grad():
        module.objective(module.step_inputs(_batch(tiny_dsprites, pairs), step=0))
    n = 2 * pairs
    expected = [n] if chunk is None else [min(chunk, n - i) for i in range(0, n, chunk)]
    assert len(expected) == (1 if chunk is None else math.ceil(n / chunk))
    assert enc_calls == expected
    assert dec_calls == expected


def test_auto_resolves_to_64_on_cpu_and_one_pass_on_accelerators(tiny_dsprites: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dsprites, tmp_path)
    assert cfg.model.microbatch == "auto"  # the default
    assert _module(cfg, tiny_dsprites).microbatch == 64
    assert resolve_chunk("auto", torch.device("cpu")) == 64
    assert resolve_chunk("auto", torch.device("cuda", 0)) is None
    assert resolve_chunk("auto", torch.device("mps")) is None
    assert resolve_chunk(16, torch.device("cuda")) == 16
    assert resolve_chunk(0, torch.device("cpu")) is None
    assert resolve_chunk(None, torch.device("cpu")) is None
    with pytest.raises(ValueError, match="microbatch"):
        resolve_chunk(-1, torch.device("cpu"))


def test_microbatch_key_parses_and_rejects_bad_values() -> None:
    assert parse_config([]).model.microbatch == "auto"
    assert parse_config(["--model.microbatch=32"]).model.microbatch == 32
    assert parse_config(["--model.microbatch=null"]).model.microbatch is None
    with pytest.raises(ConfigError, match=r"model\.microbatch must be auto, null or an int >= 0"):
        parse_config(["--model.microbatch=-4"])
    with pytest.raises(
        ConfigError, match=r"model\.microbatch has the wrong type.*int or Literal\['auto'\] or NoneType"
    ):
        parse_config(["--model.microbatch=big"])
