"""Objective terms: contrastive, alignment, independence (MI penalties) and VAE; pure functions plus thin modules."""
