"""Training, evaluation and export of the BiGRU (needs the `dev` extra: torch)."""
