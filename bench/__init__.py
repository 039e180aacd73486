"""Benchmarks: performance targets live here, never in timed tests."""
