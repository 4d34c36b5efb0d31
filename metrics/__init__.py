"""Pure disentanglement metrics: arrays of codes and factors in, numbers out. Imports nothing from disco."""
