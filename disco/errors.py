"""Typed errors for mistakes a user can make.

Every error a user can cause (a missing file, a wrong checksum, a config typo, an encoder of the wrong shape) is raised
as a :class:`DiscoError` subclass whose message is one line naming the problem and the fix. The command-line entry
points catch :class:`DiscoError`, print that line to stderr and exit with code 2.
"""

from __future__ import annotations


class DiscoError(Exception):
    """Base class: a user-caused problem; ``str(err)`` is one line naming the problem and the fix."""


class DataError(DiscoError):
    """A dataset file is missing, corrupt, of the wrong layout, or fails its checksum."""


class ConfigError(DiscoError):
    """A configuration key, value, factor name or subspace specification is invalid."""


class EncoderError(DiscoError):
    """An encoder cannot be loaded or returns output of the wrong shape or with non-finite values."""
