"""Predictors shipped with tapas (``python -m tapas.app.release``, :mod:`lde.shipped_predictors`):
a new database registers exactly those it would train itself, a first ``train`` for a DCN
of the release grid is a lookup (nothing trained, no new registry row), and a change of
version or data registers none (they are never used wrongly)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

TINY = {"hidden_size": 8, "epochs": 2, "n_members": 2}
TINY_MIN = 200
TINY_DCN = 0.5  # selects 2 starter datasets (about 2,300 experiments) with TINY_MIN


def _files(d: Path) -> list[str]:
    return sorted(f.name for f in d.iterdir()) if d.is_dir() else []


# ---------------------------------------------------------------- a small pack, built here
@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A pack of one small predictor, built by the release code on a fresh database."""
    from tapas.app.release import build

    out = tmp_path_factory.mktemp("pack")
    m = build([TINY_DCN, TINY_DCN + 0.001], out, log=lambda s: None, predictor_params=TINY,
              min_experiments=TINY_MIN)
    return out, m


@pytest.fixture
def use_pack(tiny_pack: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Any:
    import lde.shipped_predictors as sp

    monkeypatch.setattr(sp, "SHIPPED_DIR", tiny_pack[0])
    return tiny_pack[1]


def _pipeline(home: Path, **kw: Any) -> Any:
    from tapas.app.pipeline import Pipeline

    return Pipeline(home / "lde.duckdb", model_dir=home / "models",
                    **{"predictor_params": TINY, "min_experiments": TINY_MIN, **kw})


@pytest.mark.real_seeding  # what a new database registers is the test
@pytest.mark.slow  # seeds two databases and trains a tiny predictor (~20 s on 2 cores)
def test_release_pack_registers_and_answers_without_training(use_pack: dict[str, Any],
                                                             tmp_path: Path) -> None:
    [e] = use_pack["predictors"]  # two grid DCNs, one selection: one predictor
    assert use_pack["grid"] == [TINY_DCN, TINY_DCN + 0.001]
    assert e["dcn_lo"] <= e["provenance"]["selection_dcn"][0] <= TINY_DCN
    with _pipeline(tmp_path / "home") as app:
        [reg] = app.predictors()
        assert reg.id == e["id"] and reg.provenance["origin"] == "shipped"
        assert _files(app.model_dir) == []  # unpacked when first used, not at seeding
        _, info = app.train(TINY_DCN + 0.0005)  # another DCN of the same selection
        assert info.id == e["id"] and info.cached and info.provenance["origin"] == "shipped"
        assert [p.id for p in app.predictors()] == [e["id"]]  # nothing new registered
        assert _files(app.model_dir) == [e["file"]]
        data = (app.model_dir / e["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"]
        app.unload()
        _, sel = app.select(e["dcn_hi"])  # the predict path: covering, from the registry
        assert sel.id == e["id"]


@pytest.mark.real_seeding  # what a new database registers is the test
@pytest.mark.slow
def test_a_changed_version_or_selection_registers_none(use_pack: dict[str, Any],
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import tapas.app.pipeline as tp

    with _pipeline(tmp_path / "other-data", min_experiments=TINY_MIN + 1000) as app:
        assert app.predictors() == []  # another selection: another predictor id
    with _pipeline(tmp_path / "off", shipped=False) as app:
        assert app.predictors() == []
    monkeypatch.setattr(tp, "__version__", "0.0.0-other")
    with _pipeline(tmp_path / "other-version") as app:
        assert app.predictors() == []
        _, info = app.train(TINY_DCN)  # trained afresh under the new version's key
        assert info.id != use_pack["predictors"][0]["id"] and not info.cached


@pytest.mark.real_seeding  # what a new database registers is the test
@pytest.mark.slow
def test_a_corrupt_pack_is_never_loaded(use_pack: dict[str, Any], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import lde.shipped_predictors as sp

    bad = tmp_path / "bad"
    shutil.copytree(sp.SHIPPED_DIR, bad)
    raw = bytearray((bad / sp.PACK).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (bad / sp.PACK).write_bytes(bytes(raw))
    monkeypatch.setattr(sp, "SHIPPED_DIR", bad)
    with _pipeline(tmp_path / "home") as app:
        e = use_pack["predictors"][0]
        assert [p.id for p in app.predictors()] == [e["id"]]
        _, info = app.train(TINY_DCN)  # the file cannot be unpacked: trained here instead
        assert info.id == e["id"] and not info.cached


def test_manifest_refuses_paths_and_bad_ids(tmp_path: Path) -> None:
    import json

    import lde.shipped_predictors as sp

    (tmp_path / sp.PACK).write_bytes(b"")
    good = {"id": "p_0123456789abcdef", "file": "p_0123456789abcdef.tap", "dcn": 0.5,
            "tau": 0.05, "dcn_lo": 0.4, "dcn_hi": 0.6, "bytes": 1, "n_train": 1,
            "sha256": "0" * 64, "metrics": {}, "provenance": {}, "snapshot": "s"}
    for bad in ({"id": "../../etc/passwd"}, {"file": "../p_0123456789abcdef.tap"},
                {"dcn": 0.9}, {"bytes": -1}):
        (tmp_path / sp.MANIFEST).write_text(json.dumps(
            {"format": sp.FORMAT, "format_version": sp.FORMAT_VERSION,
             "predictors": [{**good, **bad}]}))
        with pytest.warns(RuntimeWarning, match="shipped predictors not used"):
            assert sp.entries(tmp_path) == []
    (tmp_path / sp.MANIFEST).write_text(json.dumps(
        {"format": sp.FORMAT, "format_version": sp.FORMAT_VERSION, "predictors": [good]}))
    assert [e["id"] for e in sp.entries(tmp_path)] == [good["id"]]
    assert sp.entries(tmp_path / "absent") == []


# ---------------------------------------------------------------- the pack tapas ships
@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A fresh default database, as a first start creates it."""
    from tapas.app.pipeline import Pipeline

    home = tmp_path_factory.mktemp("fresh")
    with Pipeline(home / "lde.duckdb", model_dir=home / "models") as app:
        yield app


@pytest.mark.slow  # seeds the default database (~8 s)
def test_shipped_predictors_are_current(fresh: Any) -> None:
    from lde.shipped_predictors import SHIPPED_DIR, entries, manifest

    m = manifest()
    assert m is not None, f"no shipped predictors in {SHIPPED_DIR}"
    ids = sorted(e["id"] for e in entries())
    got = sorted(p.id for p in fresh.predictors() if p.provenance.get("origin") == "shipped")
    assert got == ids, ("the shipped predictors no longer match this version, data or "
                        "hyper-parameters; rebuild them: python -m tapas.app.release")
    assert m["uncovered"] == []  # select finds a covering one for every DCN
    size = sum((SHIPPED_DIR / f).stat().st_size for f in ("manifest.json", "predictors.tap.xz"))
    assert size < 8 * 2**20  # the package's size budget for them


@pytest.mark.slow  # trains the cheapest shipped selection again (~30-90 s on 2 cores)
def test_a_shipped_predictor_is_the_model_a_training_here_gives(tmp_path: Path) -> None:
    """Ids see the data, the selection, the hyper-parameters and the version, not the code:
    a change to how a model is fitted or calibrated (e.g. the interval rule) leaves every
    shipped model stale under its old id. So one is trained again and compared (bit for
    bit on the machine that built them; the tolerances absorb another CPU's rounding, not
    a changed rule, which moves widths by tenths)."""
    import numpy as np

    from tapas.app.pipeline import Pipeline
    from tapas.core.spaces import build, sample_unique

    archs = [build(g, (1, 8, 8), 10) for g in sample_unique("chain", 60, 7)]
    with Pipeline(tmp_path / "lde.duckdb", model_dir=tmp_path / "models") as app:
        shipped, info = app.train(0.634)
        assert info.provenance["origin"] == "shipped"
        retrained, again = app.train(0.634, force=True)
    assert again.id == info.id and not again.cached
    a, b = shipped.predict_interval(archs, 0.634), retrained.predict_interval(archs, 0.634)
    stale = "rebuild the shipped predictors: python -m tapas.app.release"
    np.testing.assert_allclose(b.mean, a.mean, atol=0.01, err_msg=stale)
    np.testing.assert_allclose(b.upper - b.lower, a.upper - a.lower, atol=0.02, err_msg=stale)

@pytest.mark.slow
def test_first_train_for_a_grid_dcn_is_a_lookup(fresh: Any) -> None:
    """The README's main job (digits, DCN 0.990) and the first-prediction bench's dataset
    (DCN 0.952): a fresh database answers with the shipped predictor, trains nothing."""
    before = [p.id for p in fresh.predictors()]
    for dcn in (0.952, 0.990, 0.634):
        _, info = fresh.train(dcn)
        assert info.cached and info.provenance["origin"] == "shipped", dcn
    assert [p.id for p in fresh.predictors()] == before
    _, info = fresh.select(0.2)  # off the grid: a covering shipped predictor answers
    assert info.provenance["origin"] == "shipped"


@pytest.mark.slow
def test_search_on_a_fresh_home_says_the_shipped_predictor_answered(tapas_home: Path) -> None:
    from typer.testing import CliRunner

    from tapas.app.cli.main import app as cli

    r = CliRunner().invoke(cli, ["search", "--dcn", "0.95", "--space", "chain",
                                 "--budget", "20", "--population", "10"])
    assert r.exit_code == 0, r.output
    assert "shipped with tapas" in r.output and "nothing trained" in r.output
    models = tapas_home / "models"
    assert len(_files(models)) == 1 and _files(models)[0].endswith(".tap")
