"""The training runtime: resume bookkeeping, checkpoint callbacks, DDP launch under Hydra and SLURM requeue."""
