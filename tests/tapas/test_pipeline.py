"""A trained predictor is reused while its DCN selection is unchanged, and it carries
what the whole LDE knows of each family (history), never an excluded dataset's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lde import ExperimentRecord, Store
from predictor import TAPRegressor
from tapas.pipeline import Pipeline
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
    import tapas.pipeline

    monkeypatch.setattr(tapas.pipeline, "MAX_TRAIN_ROWS", 10)
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
