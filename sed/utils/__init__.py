"""Utilities around the model: benchmarking."""
