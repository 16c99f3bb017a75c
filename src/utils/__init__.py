"""Helpers shared across packages that belong to none of them (files: hashing, atomic folder publishing)."""
