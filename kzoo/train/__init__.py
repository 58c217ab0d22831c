"""Training utilities the recipes (`kzoo.recipes`) share: optimisers and schedules, crash-safe backups, plots."""
