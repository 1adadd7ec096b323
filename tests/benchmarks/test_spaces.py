"""``python -m benchmarks.spaces``: build, encoding and scoring speed per space."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_bench_spaces(shared_data: Path) -> None:
    from benchmarks.spaces import run_benchmark

    res = run_benchmark(n=4, repeats=1, data=shared_data / "nb201.csv", n_fit=40,
                        spaces=("nb201", "darts"))
    assert set(res["spaces"]) == {"nb201", "darts"}
    assert res["spaces"]["darts"]["mean_layers"] > res["spaces"]["nb201"]["mean_layers"]
    assert all(v > 0 for r in res["spaces"].values() for v in r.values())


def test_bench_spaces_refuses_bad_input(tmp_path: Path) -> None:
    from benchmarks.spaces import BenchError, run_benchmark

    with pytest.raises(BenchError, match="not found"):
        run_benchmark(n=2, data=tmp_path / "none.csv")
    with pytest.raises(BenchError, match="unknown space"):
        run_benchmark(n=2, spaces=("nasnet",))
