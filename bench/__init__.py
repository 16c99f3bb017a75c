"""Side-by-side benchmarks of the pipeline against reference implementations (`python -m bench`)."""
