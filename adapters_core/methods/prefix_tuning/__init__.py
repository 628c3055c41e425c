"""Prefix tuning (Li & Liang, 2021): trained key and value prefixes in every attention layer."""
