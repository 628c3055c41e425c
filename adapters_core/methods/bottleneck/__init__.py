"""Bottleneck adapters (sequential, parallel) and the invertible adapters of language adapters:
``layer`` and ``invertible`` hold the modules."""
