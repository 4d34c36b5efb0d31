"""Subspace specification, encoders, decoders and projection heads."""
