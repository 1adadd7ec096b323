"""The top floor: the application and its faces.

The one application layer (``pipeline``) and the experiment runner (``experiments``)
stand on ``lde``, ``predictor`` and ``probenet``; the CLI (``cli``), the in-process
scorer (``scorer``), the user benches (``bench``), release packing (``release``) and the
adapters stand on the pipeline. The HTTP client (``client``) and the search algorithms
(``search``) need only the ground floor (``tapas.core``), so a search loop on another
machine installs neither torch nor duckdb.
"""
