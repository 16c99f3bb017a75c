"""Sweep comparison: statistics (pure), tables and plots used by `python -m src.report`."""
