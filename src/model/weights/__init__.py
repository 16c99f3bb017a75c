"""Builders that create model weights offline: the bundled multilingual-e5-small, the tiny test BERT."""
