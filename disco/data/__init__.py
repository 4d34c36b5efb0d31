"""Factor spaces, dataset files (official layouts and offline replicas), device-resident batches, samplers, augmentations."""
