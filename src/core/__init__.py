"""The ground floor: the vocabulary every layer shares (metric keys, the config schema and its spec types)."""
