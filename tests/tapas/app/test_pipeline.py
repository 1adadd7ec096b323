"""Tests of :mod:`tapas.app.pipeline`.

Reuse: a trained predictor is reused while its DCN selection is unchanged, and it carries
what the whole LDE knows of each family (history), never an excluded dataset's.

Recharacterization: replacing a stored dataset's DCN with the probe's
(:meth:`~tapas.app.pipeline.Pipeline.recharacterize`, and ``tapas dcn IMAGES --as NAME`` over
it), on a real database seeded with the shipped NAS-Bench-201 results (whose DCNs follow
the reference-cell convention) and a real, one-epoch probe on 200 CIFAR-shaped images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lde import ExperimentRecord, Store
from predictor import TAPRegressor
from tapas.app.cli.main import app as cli_app
from tapas.app.pipeline import Pipeline, selection_key
from tapas.core.types import PredictorInfo
from tests.lde.conftest import small_arch

SMALL = {"hidden_size": 8, "embed_size": 8, "epochs": 2, "n_members": 2, "device": "cpu"}
ARCHS = [small_arch(w, kernel=k) for w in (4, 8, 12, 16) for k in (1, 3, 5)]


def _dataset(store: Store, name: str, dcn: float, shift: float, archs=ARCHS) -> None:  # noqa: ANN001
    store.upsert_dataset(name, f"fp-{name}", 100, 10, (3, 8, 8), dcn=dcn,
                         dcn_meta={"method": "test"})
    rng = np.random.default_rng(len(name))
    store.add_experiments([ExperimentRecord(a, name, float(np.clip(0.3 + shift + 0.02 * i
                                                                   + rng.normal(0, 0.01),
                                                                   0, 1)))
                           for i, a in enumerate(archs)])


def test_reuse_is_keyed_on_the_selection(tmp_path: Path) -> None:
    with Store(tmp_path / "lde.duckdb") as store:
        _dataset(store, "a", 0.50, 0.1)
        _dataset(store, "b", 0.55, 0.2)
        pipe = Pipeline(store=store, model_dir=tmp_path / "models", predictor_params=SMALL,
                        min_experiments=10)
        m1, p1 = pipe.train(0.52)
        # an unrelated dataset, far in DCN: the snapshot changes, the selection does not
        snap = store.snapshot_id()
        _dataset(store, "far", 0.95, 0.5)
        assert store.snapshot_id() != snap
        m2, p2 = pipe.train(0.52)
        assert p2.id == p1.id and m2 is m1
        # new experiments on a selected dataset change the selection: a new predictor
        store.add_experiments([ExperimentRecord(small_arch(20), "a", 0.61)])
        _, p3 = pipe.train(0.52)
        assert p3.id != p1.id


def test_history_spans_the_lde_but_never_an_excluded_dataset(tmp_path: Path) -> None:
    with Store(tmp_path / "lde.duckdb") as store:
        _dataset(store, "a", 0.50, 0.15)  # other accuracies than the test above: another
        _dataset(store, "b", 0.55, 0.25)  # selection, so no predictor of it is reused
        _dataset(store, "far", 0.95, 0.5)
        pipe = Pipeline(store=store, model_dir=tmp_path / "models", predictor_params=SMALL,
                        min_experiments=10)
        model, info = pipe.train(0.52)
        assert sorted(info.datasets) == ["a", "b"]  # the selection stays near the DCN...
        assert sorted(model.history_.groups) == ["a", "b", "far"]  # ...the history does not
        # each dataset's geometry (3x8x8, 10 classes) reaches the consensus weights
        np.testing.assert_allclose(model.history_.group_geom, [[6.0, 3.0, np.log2(10)]] * 3)
        model, info = pipe.train(0.52, exclude_datasets=["far"])
        assert "far" not in model.history_.groups


def test_identity_covers_every_hyper_parameter_defaults_included(tmp_path: Path) -> None:
    """Spelling out a default names the same predictor; changing one names another;
    the device names none."""
    with Store(tmp_path / "lde.duckdb") as store:
        _dataset(store, "a", 0.50, 0.1)
        _dataset(store, "b", 0.55, 0.2)
        kw = {"store": store, "model_dir": tmp_path / "models", "min_experiments": 10}
        _, p1 = Pipeline(predictor_params=SMALL, **kw).train(0.52)
        default = TAPRegressor().history_weight
        _, p2 = Pipeline(predictor_params={**SMALL, "history_weight": default}, **kw).train(0.52)
        _, p3 = Pipeline(predictor_params={**SMALL, "history_weight": default / 2}, **kw
                         ).train(0.52)
        assert p2.id == p1.id and p2.cached
        assert p3.id != p1.id
        # where a predictor runs is not what it is: another device reuses it
        _, p4 = Pipeline(predictor_params={**SMALL, "device": None}, **kw).train(0.52)
        assert p4.id == p1.id and p4.cached


def test_an_unreadable_registered_model_is_trained_again(tmp_path: Path) -> None:
    """A model file from an older format (or damaged) is replaced, not a dead end."""
    with Store(tmp_path / "lde.duckdb") as store:
        _dataset(store, "a", 0.45, 0.1)
        _dataset(store, "b", 0.60, 0.2)
        kw = {"store": store, "model_dir": tmp_path / "models", "min_experiments": 10,
              "predictor_params": SMALL}
        _, p1 = Pipeline(**kw).train(0.52)
        path = tmp_path / "models" / p1.artifact
        path.write_bytes(b"not a tapas model")
        model, p2 = Pipeline(**kw).train(0.52)  # a fresh process: nothing in memory
        assert p2.id == p1.id and not p2.cached
        assert model.predict(ARCHS[:3], 0.52).shape == (3,)
        assert Pipeline(**kw).train(0.52)[1].cached  # the new file is good


def test_the_predictor_trains_on_a_dataset_balanced_sample(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    import tapas.app.pipeline

    monkeypatch.setattr(tapas.app.pipeline, "MAX_TRAIN_ROWS", 10)
    with Store(tmp_path / "lde.duckdb") as store:
        _dataset(store, "a", 0.50, 0.12)          # 12 networks
        _dataset(store, "b", 0.55, 0.22, ARCHS[:3])  # 3 networks
        pipe = Pipeline(store=store, model_dir=tmp_path / "models", predictor_params=SMALL,
                        min_experiments=10)
        model, info = pipe.train(0.52)
    assert sorted(info.datasets) == ["a", "b"] and info.n_train == 15  # what was selected
    assert model.n_train_ + model.n_calibration_ == 5 + 3  # a share of 10 // 2 each, at most


def test_training_stops_at_a_checkpoint_during_selection(tmp_path: Path) -> None:
    """Issue 38: a cancellation (the checkpoint raising) takes effect before the epochs,
    from the selection phase on, and nothing is registered; every phase before the
    first epoch is a checkpoint."""

    class Stop(Exception):
        pass

    with Store(tmp_path / "lde.duckdb") as store:
        _dataset(store, "a", 0.50, 0.12)
        _dataset(store, "b", 0.55, 0.22)
        pipe = Pipeline(store=store, model_dir=tmp_path / "models", predictor_params=SMALL,
                        min_experiments=10)
        phases: list[str] = []
        epochs: list[int] = []

        def stop_in_selection(phase: str) -> None:
            phases.append(phase)
            raise Stop

        with pytest.raises(Stop):
            pipe.train(0.52, progress=lambda e, n: epochs.append(e),
                       checkpoint=stop_in_selection)
        assert phases == ["selecting experiments"] and epochs == []
        assert pipe.predictors() == []

        phases.clear()
        pipe.train(0.52, progress=lambda e, n: epochs.append(e), checkpoint=phases.append)
        assert phases[0] == "selecting experiments" and phases[-1] == "training"
        assert {"building the history", "encoding the networks"} <= set(phases)
        assert any(p.startswith("loading networks") for p in phases)
        assert epochs[0] == 0  # the epochs come after every checkpoint


def test_memory_and_registry_pick_the_same_covering_predictor(tmp_path: Path) -> None:
    """Two predictors trained for the same DCN: the registry answered with the newest
    registration, memory with the last one loaded (a pinned request for the older one
    then made it answer every unpinned request); now both follow one rule."""
    import shutil
    import time

    with Store(tmp_path / "lde.duckdb") as store:
        _dataset(store, "a", 0.50, 0.12)
        _dataset(store, "b", 0.55, 0.22)
        models = tmp_path / "models"
        old = Pipeline(store=store, model_dir=models, predictor_params=SMALL,
                       min_experiments=10).train(0.52)[1]
        time.sleep(0.01)  # a later registration
        new_id = "p_" + "e" * 16
        shutil.copy(models / old.artifact, models / f"{new_id}.tap")
        store.register_predictor(new_id, old.dcn, old.tau, old.dcn_lo, old.dcn_hi,
                                 old.snapshot, old.n_train, {}, f"{new_id}.tap",
                                 {"datasets": list(old.datasets)})
        assert [i.id for i in store.covering_predictors(0.52)] == [new_id, old.id]
        pipe = Pipeline(store=store, model_dir=models, predictor_params=SMALL,
                        min_experiments=10)
        assert pipe.select(0.52)[1].id == new_id  # from the registry
        pipe.registered(old.id)  # a pinned request loads the older one last
        assert [i.id for i in pipe.loaded()] == [new_id, old.id]
        assert pipe.select(0.52)[1].id == new_id  # memory: the same rule


# ---------------------------------------------------------------------- recharacterize
PROBE = {"epochs": 1, "max_samples": 200, "device": "cpu"}
CLI_PROBE = ["--epochs", "1", "--max-samples", "200", "--device", "cpu"]
runner = CliRunner()


@pytest.fixture(scope="module")
def nb201_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding the shipped NAS-Bench-201 export (seeded once, ~3 s)."""
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
    from tapas.core.config import get_settings

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
