"""Deterministic synthetic notes and related pairs (the demo and the tests), and writing them
as Delta tables."""
