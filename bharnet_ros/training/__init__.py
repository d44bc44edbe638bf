"""Offline training and evaluation: dataset format, importers, synthetic data, training loop."""
