"""Offline jobs over a dataset: top activations, layer statistics, crops, activation maximization."""
