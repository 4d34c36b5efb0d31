"""Pair sources behind one interface (:class:`PairSource`); the data module picks one from the config.

Adding a source: one :class:`PairSource` subclass, one line in :data:`SOURCES`, one test. ``data.supervision`` names
the default source of each level (:data:`DEFAULT_SOURCE`); ``data.source`` picks one explicitly.
"""

from __future__ import annotations

from disco.data.sources.augment import AugmentPairSource
from disco.data.sources.base import PairSource, SourceRequest
from disco.data.sources.cross_domain import CrossDomainPairSource
from disco.data.sources.grid import GridPairSource
from disco.errors import ConfigError

SOURCES: dict[str, type[PairSource]] = {
    "grid": GridPairSource,
    "augment": AugmentPairSource,
    "cross_domain": CrossDomainPairSource,
}

#: The source each supervision level uses unless ``data.source`` names another.
DEFAULT_SOURCE: dict[str, str] = {"labels": "grid", "pairs": "grid", "augment": "augment"}


def build_source(name: str | None, supervision: str, request: SourceRequest) -> PairSource:
    """The pair source ``name`` (default: the level's), checked to serve ``supervision``."""
    key = name or DEFAULT_SOURCE.get(supervision, "")
    if key not in SOURCES:
        raise ConfigError(f"unknown data.source {key!r}; choose one of {', '.join(SOURCES)}")
    cls = SOURCES[key]
    if supervision not in cls.levels:
        raise ConfigError(
            f"data.source {key} cannot serve data.supervision: {supervision} (it serves {', '.join(cls.levels)})"
        )
    return cls.build(request)


__all__ = [
    "DEFAULT_SOURCE",
    "SOURCES",
    "AugmentPairSource",
    "CrossDomainPairSource",
    "GridPairSource",
    "PairSource",
    "SourceRequest",
]
