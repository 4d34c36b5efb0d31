"""Named subspaces: how a code vector is split into one block per generative factor (plus free dimensions).

Per-dimension metrics such as MIG (Chen et al. 2018) score single dimensions, so scalar factors (scale, position) are
best given width 1 and a cyclic factor (orientation) width 2; see REFERENCE.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from disco.errors import ConfigError

#: Subspaces whose names start with this are private to a domain (transfer runs): excluded from every alignment term
#: but ``domain_head``, computed by the private branch with ``model.private_branch``, left out of transfer probes.
PRIVATE_PREFIX = "domain"


@dataclass(frozen=True)
class Subspace:
    """One named block of the code: ``width`` dimensions starting at ``start``, optionally tied to a dataset factor."""

    name: str
    width: int
    start: int
    factor: str | None = None

    @property
    def stop(self) -> int:
        return self.start + self.width

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def private(self) -> bool:
        """Whether this subspace is private to a domain (its name starts with :data:`PRIVATE_PREFIX`)."""
        return self.name.startswith(PRIVATE_PREFIX)


class SubspaceSpec:
    """An ordered split of a ``dim``-wide code into named subspaces.

    Each entry is ``name -> width`` or ``name -> (width, factor)``; a subspace named after a dataset factor is tied to
    it unless given ``factor=None`` explicitly via :meth:`from_entries`. Free (untied) subspaces carry no contrastive
    signal but count in the code width.
    """

    def __init__(self, subspaces: Sequence[Subspace]) -> None:
        names = [s.name for s in subspaces]
        if not subspaces:
            raise ConfigError("subspace spec is empty; give at least one name=width entry")
        if len(set(names)) != len(names):
            raise ConfigError(f"subspace names {names} repeat; give each subspace a unique name")
        start = 0
        for s in subspaces:
            if s.width < 1:
                raise ConfigError(f"subspace {s.name!r} has width {s.width}; widths must be >= 1")
            if s.start != start:
                raise ConfigError(
                    f"subspace {s.name!r} starts at {s.start}, expected {start}; subspaces must tile the code"
                )
            start = s.stop
        self.subspaces: tuple[Subspace, ...] = tuple(subspaces)
        self.dim = start

    @classmethod
    def from_entries(
        cls,
        entries: Mapping[str, int | tuple[int, str | None] | list[Any]]
        | Iterable[tuple[str, int | tuple[int, str | None] | list[Any]]],
    ) -> SubspaceSpec:
        """Build from ``{"shape": 3, "scale": 1, "free": (2, None)}``; a plain width ties the subspace to the factor of
        the same name (checked later against a dataset with :meth:`validate`). ``[width, factor]`` lists (what a
        ``to_dict()`` becomes after a JSON/YAML round trip) are accepted like tuples."""
        items = list(entries.items()) if isinstance(entries, Mapping) else list(entries)
        out, start = [], 0
        for name, val in items:
            width, factor = tuple(val) if isinstance(val, (tuple, list)) else (val, name)
            if not isinstance(width, int) or isinstance(width, bool):
                raise ConfigError(f"subspace {name!r} width {width!r} is not an integer")
            out.append(Subspace(str(name), int(width), start, factor))
            start += int(width)
        return cls(out)

    @classmethod
    def parse(cls, text: str) -> SubspaceSpec:
        """Parse ``"shape=3,scale=1,free=2"``; names ``free*`` are untied, and so are ``domain*`` (a domain's private
        subspace, which the alignment terms leave alone: :mod:`disco.train.alignment`); others tie to the same-named
        factor."""
        entries: list[tuple[str, int | tuple[int, str | None]]] = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, width = part.partition("=")
            if not sep or not width.strip().isdigit():
                raise ConfigError(f"bad subspace entry {part!r}; write name=width, e.g. shape=3,scale=1,free=2")
            w = int(width)
            untied = name.strip().startswith(("free", "domain"))
            entries.append((name.strip(), (w, None) if untied else w))
        return cls.from_entries(entries)

    def __iter__(self) -> Iterator[Subspace]:
        return iter(self.subspaces)

    def __len__(self) -> int:
        return len(self.subspaces)

    def __getitem__(self, name: str) -> Subspace:
        for s in self.subspaces:
            if s.name == name:
                return s
        raise ConfigError(f"unknown subspace {name!r}; subspaces are {', '.join(self.names)}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubspaceSpec) and self.subspaces == other.subspaces

    def __repr__(self) -> str:
        return f"SubspaceSpec({self.to_string()})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.subspaces)

    @property
    def tied(self) -> tuple[Subspace, ...]:
        """Subspaces tied to a dataset factor, in code order."""
        return tuple(s for s in self.subspaces if s.factor is not None)

    def to_string(self) -> str:
        return ",".join(f"{s.name}={s.width}" for s in self.subspaces)

    def to_dict(self) -> dict[str, tuple[int, str | None]]:
        """Plain, checkpoint-safe form; inverse of :meth:`from_entries`."""
        return {s.name: (s.width, s.factor) for s in self.subspaces}

    def slice(self, z: torch.Tensor, name: str) -> torch.Tensor:
        """The columns of code ``z`` (``(..., dim)``) that belong to subspace ``name``."""
        return z[..., self[name].slice]

    def split(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """All subspaces of ``z`` by name (views, no copies)."""
        if z.shape[-1] != self.dim:
            raise ConfigError(
                f"code has {z.shape[-1]} dimensions but the subspace spec covers {self.dim}; fix the spec or the encoder"
            )
        return {s.name: z[..., s.slice] for s in self.subspaces}

    def factor_columns(self, factor_names: Sequence[str]) -> list[int]:
        """For each tied subspace, the column of its factor in a ``(B, K)`` factor array with ``factor_names``."""
        return [self._factor_pos(s, factor_names) for s in self.tied]

    def validate(self, factor_names: Sequence[str]) -> None:
        """Raise :class:`ConfigError` if a tied subspace names a factor the dataset does not have."""
        for s in self.tied:
            self._factor_pos(s, factor_names)

    @staticmethod
    def _factor_pos(s: Subspace, factor_names: Sequence[str]) -> int:
        if s.factor is None or s.factor not in factor_names:
            raise ConfigError(
                f"subspace {s.name!r} is tied to factor {s.factor!r}, which the dataset lacks; its factors are "
                f"{', '.join(factor_names)} (name the subspace free* to leave it untied)"
            )
        return list(factor_names).index(s.factor)
