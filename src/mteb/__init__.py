"""MTEB for xlir models: pooled LAReQA retrieval tasks (offline) and `python -m src.mteb` (scores -> MLflow)."""
