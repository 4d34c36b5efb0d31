"""The transfer scores of one encoder: the same held-out inputs encoded in a source and a target domain.

One call gives the numbers of the README's transfer table (issue 10): MIG in each domain (disentanglement_lib's
protocol, 20 bins), the domain gap of the shared and of the private subspaces (held-out accuracy of a domain classifier,
0.5 = aligned, and unbiased MMD²; :func:`metrics.transfer.domain_gap`), and probes trained on the source codes of the
shared subspaces and tested on the target's (:func:`metrics.transfer.transfer_probes`); the private subspaces hold the
domain by design, so a probe that read them would fail on the target for that reason alone. Private subspaces are
those named ``domain*`` (:attr:`disco.models.subspaces.Subspace.private`); every other subspace counts as shared.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from disco.data.datasets import GroundTruthData
from disco.data.domains import Domain
from disco.errors import ConfigError
from disco.evaluate import Representer, select_rows
from disco.models.subspaces import SubspaceSpec
from metrics.mig import mig
from metrics.transfer import domain_gap, transfer_probes


def shared_private_columns(spec: SubspaceSpec) -> tuple[list[int], list[int]]:
    """Columns of the shared subspaces and of the private ones (``domain*``), in code order."""
    shared = [c for s in spec if not s.private for c in range(s.start, s.stop)]
    private = [c for s in spec if s.private for c in range(s.start, s.stop)]
    if not shared:
        raise ConfigError(f"subspaces {spec.to_string()} have no shared subspace to transfer")
    return shared, private


def transfer_scores(
    encoder: nn.Module,
    data: GroundTruthData,
    spec: SubspaceSpec,
    source: Domain,
    target: Domain,
    *,
    num_samples: int = 10000,
    split_seed: int = 0,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """Scores of ``encoder`` (in eval mode) on ``num_samples`` held-out rows of ``data`` rendered in ``source`` and in
    ``target``: ``source_mig``, ``target_mig`` (whole code); ``transfer_probe`` (mean accuracy of probes trained on
    the source's shared subspaces, tested on the target's), ``in_domain_probe`` (the same probes on source codes) and
    ``transfer_ratio``; ``domain_acc_shared`` / ``domain_acc_private`` and
    ``mmd_shared`` / ``mmd_private`` (NaN without a private subspace). The probes and the domain classifier train on
    half of the rows and test on the other half."""
    if not data.has_factors:
        raise ConfigError(f"dataset {data.name!r} has no factor labels; transfer scores need them")
    rows = select_rows(len(data.images), "test", split_seed, limit=num_samples, sample_seed=seed)
    codes = [Representer(encoder, data, batch_size=batch_size, domain=d).encode_rows(rows) for d in (source, target)]
    factors = data.classes[rows].numpy()
    shared, private = shared_private_columns(spec)
    half = len(rows) // 2
    out = {
        "source_mig": mig(codes[0], factors, seed=seed).score,
        "target_mig": mig(codes[1], factors, seed=seed).score,
    }
    probes = transfer_probes(
        codes[0][:, shared], codes[1][:, shared], factors, seed=seed, num_train=half, num_test=len(rows) - half
    )
    out.update(
        transfer_probe=probes.score,
        in_domain_probe=float(probes.details["in_domain"]),
        transfer_ratio=probes.details["ratio"],
    )
    order = shared + private
    entries = [("shared", len(shared))] + ([("private", len(private))] if private else [])
    gap = domain_gap(
        codes[0][:, order], codes[1][:, order], subspaces=entries, seed=seed, num_train=half, num_test=len(rows) - half
    )
    acc, mmd = gap.details["classifier_accuracy"], gap.details["mmd2"]
    out.update(domain_acc_shared=float(acc["shared"]), mmd_shared=float(mmd["shared"]))
    out.update(
        domain_acc_private=float(acc.get("private", np.nan)), mmd_private=float(mmd.get("private", np.nan))
    )  # fmt: skip
    return {k: float(v) for k, v in out.items()}
