"""Benchmarks: the load generator and the comparison against offline and naive references."""
