"""The speed and health checks a user runs on an install, behind ``tapas bench <part>``
(one module per part); the research benches live in the checkout's ``benchmarks/``."""
