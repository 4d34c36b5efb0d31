"""disco: disentangled representation learning with named subspaces and factor-aware pairs."""

__version__ = "0.1.0"
