"""Recipes: one class per entry point whose methods are its steps, read top to bottom."""
