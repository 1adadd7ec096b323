"""``tapas bench devices`` on the CPU (the CUDA side ran on a lent GPU: BENCHMARKS.md):
every phase timed, the DCN a probability, the report through the CLI."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow  # ~20 s on a 2-core CPU: a real probe on 10,000 images and a real training
def test_cli_times_each_phase_on_the_cpu() -> None:
    import torch
    from typer.testing import CliRunner

    from tapas.app.cli.main import app as cli
    from tapas.core.device import apply_threads

    apply_threads()  # what every command starts with (TAPAS_THREADS), so not the bench's doing
    n = torch.get_num_threads()
    r = CliRunner().invoke(cli, ["bench", "devices", "--device", "cpu", "--train-rows",
                                 "150", "--networks", "20", "--threads", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert torch.get_num_threads() == n  # the caller's thread count is left as it was
    out = json.loads(r.stdout)
    cpu = out["devices"]["cpu"]
    assert set(out["devices"]) == {"cpu"} and out["agreement"] == {"versus": "cpu"}
    assert 0.0 < cpu["dcn"] <= 1.0 and cpu["dcn_s"] > 0 and cpu["train_s"] > 0
    assert cpu["score_cold_per_s"] > 0 and cpu["score_warm_per_s"] > 0
    assert out["train_rows"] == 150 and out["networks"] == 20 and out["threads"] == 1


def test_devices_must_be_distinct() -> None:
    from tapas.app.bench.devices import run_device_comparison

    with pytest.raises(ValueError, match="distinct"):
        run_device_comparison(["cpu", "cpu"])
