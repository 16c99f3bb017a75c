"""A run's lifecycle: plan it (fresh / resume / skip / re-run, which folder), record it, track its status."""
