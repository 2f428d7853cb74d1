"""Benchmarks: `make bench` (python -m benchmarks). Corpora are generated on the fly."""
