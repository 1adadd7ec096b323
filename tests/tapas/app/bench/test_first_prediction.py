"""``tapas bench first-prediction`` on a tiny configuration: the keys, positive phase
times that add up to the total, and the JSON through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TINY = {"predictor_params": {"hidden_size": 8, "epochs": 2, "n_members": 2},
        "min_experiments": 200, "probe": {"epochs": 1, "max_samples": 200}}


@pytest.fixture
def starter_db(tmp_path: Path) -> Path:
    """A database with the starter data only (the full default seeding takes longer)."""
    from lde import Store
    from lde.starter import seed_starter

    db = tmp_path / "lde.duckdb"
    store = Store(db)
    try:
        assert seed_starter(store) is not None
    finally:
        store.close()
    return db


@pytest.fixture
def one_thread() -> Any:
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.slow  # ~10 s on a 2-core CPU: a real probe and a real (tiny) training
def test_cli_reports_first_prediction_phases(starter_db: Path, one_thread: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import tapas.app.bench.first_prediction as fp
    from tapas.app.cli.main import app as cli

    real = fp.run_first_prediction
    seen: list[dict[str, Any]] = []

    def tiny(**kw: Any) -> dict[str, Any]:  # the CLI's call, on the small database
        calls: list[tuple[str, int, int | None]] = []
        user = kw.pop("progress")
        rep = real(**kw, database=starter_db, seed_database=False,
                   progress=lambda *a: (calls.append(a), user(*a)), **TINY)
        seen.append({"report": rep, "calls": calls})
        return rep

    monkeypatch.setattr(fp, "run_first_prediction", tiny)
    r = CliRunner().invoke(cli, ["bench", "first-prediction", "--dataset",
                                 "digits?per_class=20&pixel_noise=0.15", "--networks", "6",
                                 "--load", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out.pop("load_processes") == 1
    assert out == seen[0]["report"]
    phases = out["first_prediction_phases"]
    assert set(phases) == {"characterize", "train", "score"}
    assert all(v > 0 for v in phases.values()) and out["first_prediction_s"] > 0
    assert out["first_prediction_s"] == pytest.approx(sum(phases.values()), abs=2e-3)
    assert out["n_networks"] == 6 and out["space"] == "chain" and out["seed_s"] >= 0
    assert out["n_train"] > 0 and 0.0 <= out["in_domain_fraction"] <= 1.0
    assert 0.0 <= out["dcn"] <= 1.0
    # progress named each phase and counted the networks scored
    phases_seen = [c[0] for c in seen[0]["calls"]]
    assert {"characterize", "train", "score"} <= set(phases_seen)
    assert ("score", 6, 6) in seen[0]["calls"]


def test_rejects_no_networks() -> None:
    from tapas.app.bench.first_prediction import run_first_prediction

    with pytest.raises(ValueError, match="n_networks"):
        run_first_prediction(n_networks=0)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_busy_processes_run_beside_the_block_and_stop_after() -> None:
    """``--load N``: N CPU-bound processes while the bench runs, none left afterwards."""
    import time

    from tapas.app.bench.load import busy

    with busy(2) as procs:
        assert len(procs) == 2
        time.sleep(0.5)
        assert all(p.poll() is None for p in procs)  # still spinning
        ticks = [int(Path(f"/proc/{p.pid}/stat").read_text().split()[13]) for p in procs]
    assert all(p.poll() is not None for p in procs)
    assert sum(ticks) > 0  # they used the CPU
    with busy(0) as none:
        assert none == []
    with pytest.raises(ValueError, match=">= 0"), busy(-1):
        pass
