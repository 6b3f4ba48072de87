"""Sweeps: named presets, search spaces, and the one place that builds the Ray Tuner."""
