"""``python -m benchmarks.search``: bad input is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_bench_search_refuses_bad_input_cleanly(tmp_path: Path) -> None:
    from benchmarks.search import BenchError, run_benchmark

    with pytest.raises(BenchError, match="unknown target"):
        run_benchmark(targets=["mnist"])
    with pytest.raises(BenchError, match="not found"):
        run_benchmark(data=tmp_path / "nb201.csv")
    (tmp_path / "bad.csv").write_text("arch_str,cifar10_test\n|none~0|+|none~0|none~1|+"
                                      "|none~0|none~1|none~2|,10.0\n")
    with pytest.raises(BenchError, match="missing columns"):
        run_benchmark(data=tmp_path / "bad.csv")
