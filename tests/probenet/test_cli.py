"""``tapas dcn`` and ``tapas bench dcn`` through the real Typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tapas.cli.main import app

runner = CliRunner()


def test_tapas_dcn_digits_json(tapas_home, monkeypatch):
    from tapas.config import get_settings

    # the probe budget comes from settings; a small one keeps the test fast
    monkeypatch.setenv("TAPAS_PROBE_EPOCHS", "2")
    monkeypatch.setenv("TAPAS_PROBE_MAX_SAMPLES", "400")
    get_settings.cache_clear()
    res = runner.invoke(app, ["dcn", "digits", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["epochs"] == 2 and out["n_test"] == 400 and out["max_samples"] == 400
    assert 0.5 <= out["dcn"] <= 1.0  # digits is easy even for a 2-epoch probe
    assert out["dataset"] == "digits" and out["input_shape"] == [1, 8, 8]
    assert out["probe_version"] and out["device"] in ("cpu", "cuda")


def test_tapas_dcn_table_and_store(tapas_home, tmp_path):
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((80, 6, 6)),
             y=np.arange(80) % 2)
    args = ["dcn", str(tmp_path / "d.npz"), "--epochs", "1", "--max-samples", "100", "--store",
            "--device", "cpu"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "DCN" in res.stdout and "fingerprint" in res.stdout
    res2 = runner.invoke(app, [*args, "--json"])
    assert json.loads(res2.stdout.strip().splitlines()[-1])["cached"] is True


def test_tapas_dcn_bad_input_is_a_clean_error(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((5, 3, 3)), y=np.zeros(4))
    res = runner.invoke(app, ["dcn", str(tmp_path / "bad.npz")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "5 samples but y has 4" in res.output
    res = runner.invoke(app, ["dcn", "digits?label_noise=7"])
    assert res.exit_code == 1 and "label_noise" in res.output


@pytest.mark.slow
def test_bench_dcn_quick_json():
    res = runner.invoke(app, ["bench", "dcn", "--quick", "--json", "--speed-threads", "1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("dcn_seed_std_max", "seconds_10k_28x28", "spearman_dcn_vs_panel", "dcn_spread",
                "n_datasets"):
        assert key in out
    assert out["n_datasets"] == 3 and out["n_panel_archs"] == 5 and out["quick"] is True
    assert 0.0 <= out["dcn_spread"] <= 1.0
