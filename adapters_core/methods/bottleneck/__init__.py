"""Bottleneck adapters (sequential, parallel) and the invertible adapters of language adapters:
``config`` holds the configs and built-in names (torch-free), ``layer`` and ``invertible`` the modules."""
