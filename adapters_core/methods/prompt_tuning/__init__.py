"""Prompt tuning (Lester et al., 2021): trained embeddings prepended to the input embeddings."""
