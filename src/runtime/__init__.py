"""The process runtime: hardware detection, resolved precision and threads, applied once at start-up."""

from src.runtime.setup import Runtime, apply_threads, resolve_runtime, setup_runtime

__all__ = ["Runtime", "apply_threads", "resolve_runtime", "setup_runtime"]
