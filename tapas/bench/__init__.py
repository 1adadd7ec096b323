"""Benchmark logic behind `tapas bench <part>` (one module per part)."""
