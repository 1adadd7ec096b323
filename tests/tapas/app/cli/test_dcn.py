"""``tapas dcn`` and ``tapas bench dcn`` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tapas.app.cli.main import app

runner = CliRunner()


def test_tapas_dcn_digits_json(tapas_home, monkeypatch):
    from tapas.core.config import get_settings

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


def test_tapas_dcn_max_steps_option_and_setting(tapas_home, monkeypatch):
    from tapas.core.config import get_settings

    # 200 images: 4 repeats x 2 probes of 100 images, 5 one-step epochs each, capped at 3
    args = ["dcn", "digits", "--epochs", "1", "--max-samples", "200", "--no-store", "--json"]
    res = runner.invoke(app, [*args, "--max-steps", "3"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert (out["max_steps"], out["steps"], out["capped"]) == (3, 4 * 2 * 3, True)
    monkeypatch.setenv("TAPAS_PROBE_MAX_STEPS", "0")  # the setting: no cap
    get_settings.cache_clear()
    out = json.loads(runner.invoke(app, args).stdout.strip().splitlines()[-1])
    assert (out["max_steps"], out["steps"], out["capped"]) == (0, 4 * 2 * 5, False)
    res = runner.invoke(app, [*args, "--max-steps", "-1"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    table = runner.invoke(app, [*args[:-1], "--max-steps", "3"])
    assert table.exit_code == 0 and "capped at 3 per probe" in table.stdout


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
                "n_datasets", "seconds_10k_3x32x32", "steps_10k_3x32x32", "max_steps"):
        assert key in out
    assert out["n_datasets"] == 3 and out["n_panel_archs"] == 5 and out["quick"] is True
    assert 0.0 <= out["dcn_spread"] <= 1.0


def _row(name: str) -> dict:
    from lde import Store
    from tapas.core.config import get_settings

    with Store(get_settings().database, read_only=True) as s:
        row = s.dataset(name)
    assert row is not None, name
    return row.__dict__


def test_tapas_dcn_on_a_changed_file_is_an_error_and_changes_nothing(tapas_home, tmp_path):
    """Issue 38 #6: the stored dataset is named by the file's path; other data at that path
    are a clean error naming it and what differs, never a silent overwrite."""
    from tests.probenet.conftest import blobs

    p = tmp_path / "d.npz"
    x, y = blobs(80, 2)
    np.savez(p, x=x, y=y)
    args = ["dcn", str(p), "--epochs", "1", "--max-samples", "100", "--device", "cpu",
            "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    before = _row(str(p))
    x, y = blobs(90, 3, seed=1)
    np.savez(p, x=x, y=y)
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and "error:" in res.output
    assert str(p) in res.output and "fingerprint" in res.output and "--as" in res.output
    assert _row(str(p)) == before


def _dcn_peak_kib(path: Path, home: Path) -> tuple[int, str]:
    """``tapas dcn PATH`` in a child process: (its peak RSS in KiB, its output)."""
    import os
    import subprocess
    import sys

    wrap = ("import resource, runpy, sys\nsys.argv = ['tapas', *sys.argv[1:]]\ntry:\n"
            "    runpy.run_module('tapas.app.cli.main', run_name='__main__')\nfinally:\n"
            "    print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            "file=sys.stderr)\n")
    env = {**os.environ, "TAPAS_HOME": str(home), "COLUMNS": "250"}
    r = subprocess.run([sys.executable, "-c", wrap, "dcn", str(path), "--no-store"], env=env,
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    return int(out.rsplit("MAXRSS", 1)[1].split()[0]), out


def test_tapas_dcn_refuses_bombs_under_any_member_name_with_little_memory(tmp_path):
    """Issue 38 #2 through the CLI: the same loader as uploads, so a member named 'x' (or
    both 'x' and 'x.npy') is checked before anything is decompressed."""
    from benchmarks.soak import npy_zip

    big = ((65_536, 64, 64), "|u1", 65_536 * 64 * 64)
    small, labels = ((10, 8, 8), "|u1", 640), ((10,), "<i8", 80)
    base = tmp_path / "base.npz"
    np.savez(base, x=np.zeros((5, 3, 3)), y=np.zeros(4))
    base_kib, out = _dcn_peak_kib(base, tmp_path / "home")
    assert "5 samples but y has 4" in out
    for members, why in (({"x": big, "y": labels}, "TAPAS_MAX_DATASET_MB"),
                         ({"x.npy": small, "x": big, "y.npy": labels}, "ambiguous")):
        p = tmp_path / "bomb.npz"
        p.write_bytes(npy_zip(members, suffix=""))
        kib, out = _dcn_peak_kib(p, tmp_path / "home")
        assert "Traceback" not in out and "error:" in out and why in out, out
        assert kib - base_kib < 100 * 2**10, f"peak RSS {kib - base_kib} KiB above baseline"
