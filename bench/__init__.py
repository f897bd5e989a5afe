"""Benchmarks against the embedded database (`python -m bench.<name>`)."""
