"""Micro benchmarks: what one activation call costs in time, memory and accuracy."""
