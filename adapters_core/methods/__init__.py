"""Adapter methods, one folder each: its config (torch-free, imported by the hub's web processes) and its
layer code (pure math, no knowledge of where it sits in a model). Import the modules themselves; this package
imports nothing so that reading a config never imports torch."""
