"""Replacing a stored dataset's DCN with the probe's: ``tapas dcn IMAGES --as NAME`` and
:meth:`tapas.pipeline.Pipeline.recharacterize`, on a real database seeded with the
shipped NAS-Bench-201 results (whose DCNs follow the reference-cell convention) and a
real, one-epoch probe on 200 CIFAR-shaped images."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tapas.cli.main import app as cli_app

PROBE = {"epochs": 1, "max_samples": 200, "device": "cpu"}
CLI_PROBE = ["--epochs", "1", "--max-samples", "200", "--device", "cpu"]
runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def nb201_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding the shipped NAS-Bench-201 export (seeded once, ~3 s)."""
    from lde import Store
    from lde.nb201 import available, seed_nb201

    if not available():
        pytest.skip("the NAS-Bench-201 export is not shipped in this checkout")
    db = tmp_path_factory.mktemp("nb201") / "seeded.duckdb"
    with Store(db) as store:
        seed_nb201(store)
    return db


@pytest.fixture()
def db(nb201_db: Path, tmp_path: Path, tapas_home: Path,
       monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the seeded database, the one the CLI opens (TAPAS_DB_PATH)."""
    from tapas.config import get_settings

    path = tmp_path / "lde.duckdb"
    shutil.copy(nb201_db, path)
    monkeypatch.setenv("TAPAS_DB_PATH", str(path))
    get_settings.cache_clear()
    return path


def images(path: Path, shape: tuple[int, int, int] = (32, 32, 3), k: int = 10,
           per_class: int = 20) -> Path:
    """CIFAR-like images (``per_class`` per class, channels last): class c lights a band."""
    rng = np.random.default_rng(0)
    y = np.arange(k * per_class) % k
    x = rng.integers(0, 200, (len(y), *shape)).astype(np.uint8)
    for c in range(k):
        x[y == c, :, (c * 3) % shape[1]:(c * 3) % shape[1] + 3] = 255
    np.savez(path, x=x, y=y)
    return path


def n_experiments(store, dataset_id: str) -> int:
    return store.sql("SELECT count(*) FROM experiments WHERE dataset_id = ?",
                     [dataset_id]).column(0).to_pylist()[0]


def test_pipeline_replaces_the_reference_cell_dcn(db: Path, tmp_path: Path) -> None:
    from tapas.pipeline import Pipeline, selection_key
    from tapas.types import PredictorInfo

    npz = images(tmp_path / "cifar10.npz")
    with Pipeline(db, seed=False) as app:
        store = app.store
        before = store.dataset("cifar10")
        assert before.dcn_meta["method"] == "reference-cell"
        n_before, n_datasets = n_experiments(store, "cifar10"), len(store.datasets())
        assert n_before == 15_625
        key_before = selection_key(store.filter_by_dcn(0.5, tau=1.0))
        snap_before = store.snapshot_id()
        # a predictor in memory trained on cifar10's old DCN, and one on other data
        stale = PredictorInfo("p_stale", 0.86, 0.05, 0.8, 0.9, snap_before, 10, ("cifar10",))
        other = PredictorInfo("p_other", 0.3, 0.05, 0.2, 0.4, snap_before, 10, ("x",))
        app._remember(object(), stale)
        app._remember(object(), other)

        info, res = app.recharacterize("cifar10", npz, **PROBE)

        assert not res.cached and 0.0 <= res.dcn <= 1.0
        row = store.dataset("cifar10")
        assert row.id == before.id and row.name == "cifar10" and info.dcn == row.dcn == res.dcn
        assert row.input_shape == (3, 32, 32) and row.n_classes == 10
        assert row.source == before.source and row.fingerprint == before.fingerprint
        meta = row.dcn_meta
        assert meta["method"] == "probe" and meta["epochs"] == 1 and meta["max_samples"] == 200
        assert meta["fingerprint"] == res.fingerprint and meta["probe_version"]
        assert meta["replaced"]["dcn"] == pytest.approx(before.dcn)
        assert meta["replaced"]["method"] == "reference-cell"
        assert meta["replaced"]["meta"] == before.dcn_meta
        # the experiments stay attached; no second dataset
        assert n_experiments(store, "cifar10") == n_before
        assert len(store.datasets()) == n_datasets
        # everything keyed on the old DCN changes: the selection, the snapshot, memory
        assert selection_key(store.filter_by_dcn(0.5, tau=1.0)) != key_before
        assert store.snapshot_id() != snap_before
        assert [i.id for i in app.loaded()] == ["p_other"]
        # the same images and settings again: nothing to do, nothing nested
        info2, res2 = app.recharacterize("cifar10", npz, **PROBE)
        assert res2.cached and res2.dcn == res.dcn
        assert store.dataset("cifar10").dcn_meta == meta
    with Pipeline(db, seed=False) as app:  # committed
        assert app.dataset("cifar10").dcn_meta["method"] == "probe"


def test_pipeline_refuses_unknown_names_and_mismatched_images(db: Path, tmp_path: Path) -> None:
    from tapas.pipeline import Pipeline

    with Pipeline(db, seed=False) as app:
        with pytest.raises(LookupError, match=r"did you mean cifar10"):
            app.recharacterize("cifar1O", images(tmp_path / "a.npz"), **PROBE)
        small = images(tmp_path / "small.npz", shape=(16, 16, 3))
        with pytest.raises(ValueError, match=r"3x16x16, 10 classes.*3x32x32, 10 classes"):
            app.recharacterize("cifar10", small, **PROBE)
        five = images(tmp_path / "five.npz", k=5, per_class=40)
        with pytest.raises(ValueError, match="5 classes"):
            app.recharacterize("cifar10", five, **PROBE)
        assert app.dataset("cifar10").dcn_meta["method"] == "reference-cell"  # untouched


def tapas(*args: str):
    return runner.invoke(cli_app, list(args))


def test_cli_dcn_as(db: Path, tmp_path: Path) -> None:
    from lde import Store

    npz = str(images(tmp_path / "c100.npz", k=100, per_class=2))
    with Store(db, read_only=True) as store:
        old = store.dataset("cifar100")
    r = tapas("dcn", npz, "--as", "cifar100", *CLI_PROBE, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["stored_as"] == "cifar100" and out["cached"] is False
    assert out["replaced"]["method"] == "reference-cell"
    assert out["replaced"]["dcn"] == pytest.approx(old.dcn)
    with Store(db, read_only=True) as store:
        row = store.dataset("cifar100")
        assert row.dcn == pytest.approx(out["dcn"]) and row.dcn_meta["method"] == "probe"
        assert n_experiments(store, "cifar100") == 15_625
        assert len(store.datasets()) == 3

    # errors: one line, exit 1, nothing written
    r = tapas("dcn", npz, "--as", "cifar-100", *CLI_PROBE)
    assert r.exit_code == 1 and "did you mean cifar100" in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    wrong = str(images(tmp_path / "wrong.npz", shape=(16, 16, 3)))
    r = tapas("dcn", wrong, "--as", "cifar10", *CLI_PROBE)
    assert r.exit_code == 1 and "do not match dataset 'cifar10'" in r.output
    # one error line, last (a plain progress line may precede it when stderr is no terminal)
    lines = r.output.strip().splitlines()
    assert "--force" in lines[-1] and lines[-1].startswith("error:"), r.output
    assert sum(ln.startswith("error:") for ln in lines) == 1, r.output
    r = tapas("dcn", npz, "--as", "cifar10", "--no-store", *CLI_PROBE)
    assert r.exit_code == 1 and "--no-store" in r.output
    with Store(db, read_only=True) as store:
        assert store.dataset("cifar10").dcn_meta["method"] == "reference-cell"

    # --force: the user says these are cifar10's images after all
    r = tapas("dcn", wrong, "--as", "cifar10", "--force", *CLI_PROBE)
    assert r.exit_code == 0, r.output
    assert "stored as" in r.stdout and "reference-cell" in r.stdout
    with Store(db, read_only=True) as store:
        row = store.dataset("cifar10")
        assert row.dcn_meta["method"] == "probe" and row.input_shape == (3, 32, 32)
