"""Training: optimisers and schedules, `kzoo pretrain`."""
