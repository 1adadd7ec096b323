"""Predictor files from elsewhere (issue 38): an id is never a path, a crafted header is
refused before it allocates what it declares, an import commits its file and registry
entry together or not at all, and an existing id needs ``--replace``.

Real parts throughout: tiny fitted models, real ``.tap`` files re-signed after editing
(the checksum is no signature: an attacker recomputes it), real DuckDB files, the Typer
CLI and a service on loopback.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from predictor import ModelFileError, TAPRegressor
from predictor.persist import MAGIC, _digest, read_header
from tapas.core.types import PredictorIdError

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(hidden_size=8, embed_size=8, epochs=2, n_members=2, device="cpu")
PID = "p_" + "a1" * 8
TRAVERSAL = "../../victim/important"
runner = CliRunner()


@pytest.fixture(scope="module")
def models(toy_data: Any) -> tuple[TAPRegressor, TAPRegressor]:
    """Two fitted models with different weights (seeds)."""
    archs, dcn, y = toy_data
    return (TAPRegressor(**SMALL, seed=0).fit(archs, dcn, y),
            TAPRegressor(**SMALL, seed=1).fit(archs, dcn, y))


def registry(pid: Any = PID, **changes: Any) -> dict[str, Any]:
    """The registry entry an exported file carries (as Pipeline.export_predictor writes)."""
    return {"id": pid, "dcn": 0.5, "tau": 0.1, "dcn_lo": 0.3, "dcn_hi": 0.7,
            "snapshot": "s0", "n_train": 96, "metrics": {}, "provenance": {"datasets": []},
            **changes}


def exported(model: TAPRegressor, path: Path, **reg: Any) -> Path:
    model.save(path, provenance={"registry": registry(**reg)})
    return path


def resign(src: Path, out: Path, edit: Callable[[dict[str, Any]], None],
           payload: bytes | None = None) -> Path:
    """``src`` with its header edited by ``edit`` and the checksum recomputed."""
    header, body = read_header(src)
    edit(header)
    body = body if payload is None else payload
    header["sha256"] = _digest(header, body)
    hb = json.dumps(header, sort_keys=True).encode()
    out.write_bytes(MAGIC + struct.pack("<Q", len(hb)) + hb + body)
    return out


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A database (created empty, so not seeded), a model dir and a victim file beside it."""
    from lde import Store

    db = tmp_path / "home" / "lde.duckdb"
    db.parent.mkdir()
    Store(db).close()
    victim = tmp_path / "victim" / "important.tap"
    victim.parent.mkdir()
    victim.write_bytes(b"precious")
    yield {"db": db, "models": tmp_path / "home" / "models", "victim": victim,
           "root": tmp_path}


def pipeline(home: dict[str, Path], **kw: Any) -> Any:
    from tapas.app.pipeline import Pipeline

    return Pipeline(home["db"], model_dir=home["models"], seed=False, **kw)


def registry_rows(home: dict[str, Path], app: Any = None) -> list[tuple]:
    """The registry as stored (through ``app``'s connection while it holds the file)."""
    import duckdb

    q = "SELECT id, artifact, dcn, metrics FROM predictors ORDER BY id"
    if app is not None:
        return [tuple(r.values()) for r in app.store.sql(q).to_pylist()]
    with duckdb.connect(str(home["db"]), read_only=True) as con:
        return con.execute(q).fetchall()


def files_in(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def outside_untouched(home: dict[str, Path]) -> None:
    """The victim holds what it held, alone in its folder; no new folder beside home."""
    assert home["victim"].read_bytes() == b"precious"
    assert files_in(home["victim"].parent) == ["important.tap"]
    assert {p.name for p in home["root"].iterdir() if p.is_dir()} == {"home", "victim"}


# ------------------------------------------------------------------ ids are names
@pytest.mark.parametrize("bad_id", [TRAVERSAL, "ABSOLUTE", "p_../x",
                                    "P_A1A1A1A1A1A1A1A1", "p_" + "a" * 15, 42, None])
def test_import_refuses_an_id_that_is_not_one(home: dict[str, Path], models: Any,
                                              bad_id: Any) -> None:
    absolute = home["root"] / "elsewhere" / "absolute"  # an absolute id, outside home
    if bad_id == "ABSOLUTE":
        bad_id = str(absolute)
    src = exported(models[0], home["root"] / "crafted.tap", pid=bad_id)
    with pipeline(home) as app, pytest.raises(ModelFileError, match="not a predictor id"):
        app.import_predictor(src)
    outside_untouched(home)
    assert files_in(home["models"]) == []  # not even a temporary copy left behind
    assert registry_rows(home) == []
    assert not absolute.with_suffix(".tap").exists() and not absolute.parent.exists()


@pytest.mark.parametrize("bad_id", [TRAVERSAL, "/etc/passwd", "..", "p_1"])
def test_delete_show_export_and_pin_refuse_a_traversal_id(home: dict[str, Path], models: Any,
                                                          bad_id: str) -> None:
    with pipeline(home) as app:
        app.import_predictor(exported(models[0], home["root"] / "ok.tap"))
        with pytest.raises(PredictorIdError, match="not a predictor id"):
            app.delete_predictor(bad_id)
        with pytest.raises(PredictorIdError):
            app.predictor(bad_id)
        with pytest.raises(PredictorIdError):
            app.export_predictor(bad_id, home["root"] / "out.tap")
        with pytest.raises(LookupError, match="not a predictor id"):
            app.predict(["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"], dcn=0.5,
                        predictor=bad_id)
        assert app.predictor(PID) is not None
    outside_untouched(home)
    assert not (home["root"] / "out.tap").exists()


def test_a_legacy_row_naming_a_file_outside_is_never_read_or_deleted(
        home: dict[str, Path], models: Any) -> None:
    """A database written by the old code may hold a traversal artifact: the row can be
    listed and deleted, but the file it names is neither loaded nor removed."""
    with pipeline(home) as app:
        app.import_predictor(exported(models[0], home["root"] / "ok.tap"))
        with app.store.transaction() as con:
            con.execute("UPDATE predictors SET artifact = ?", ["../../victim/important.tap"])
        with pytest.raises(ModelFileError, match="not a plain file name"):
            app.model_path(app.predictor(PID).artifact)
        app.unload()
        with pytest.raises(ModelFileError, match="not a plain file name"):
            app.registered(PID)
        assert app.delete_predictor(PID)
    outside_untouched(home)
    assert registry_rows(home) == []


# ------------------------------------------------------------------ existing ids
def test_an_existing_id_needs_replace(home: dict[str, Path], models: Any) -> None:
    from tapas.app.pipeline import PredictorExistsError

    first = exported(models[0], home["root"] / "first.tap")
    second = exported(models[1], home["root"] / "second.tap")
    net = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|"
           "nor_conv_3x3~1|skip_connect~2|"]
    with pipeline(home) as app:
        info = app.import_predictor(first)
        assert info.id == PID and not info.cached
        pinned = app.predict(net, dcn=0.5, predictor=PID)[0].mean
        stored = (home["models"] / f"{PID}.tap").read_bytes()
        # the same weights again: nothing changes, and the caller is told (cached)
        assert app.import_predictor(first).cached
        with pytest.raises(PredictorExistsError, match="--replace"):
            app.import_predictor(second)
        assert (home["models"] / f"{PID}.tap").read_bytes() == stored
        assert app.predict(net, dcn=0.5, predictor=PID)[0].mean == pinned
        assert files_in(home["models"]) == [f"{PID}.tap"]
        replaced = app.import_predictor(second, replace=True)
        assert replaced.id == PID and not replaced.cached
        assert app.predict(net, dcn=0.5, predictor=PID)[0].mean != pinned
    assert files_in(home["models"]) == [f"{PID}.tap"]


def test_a_failed_import_changes_nothing(home: dict[str, Path], models: Any) -> None:
    """The registry refuses the entry (its DCN outside its range): no file remains, the
    registry and the predictor it held are as before (with and without --replace); a
    read-only database fails the same way."""
    good = exported(models[0], home["root"] / "good.tap")
    bad = exported(models[1], home["root"] / "bad.tap", dcn=0.9)  # outside [0.3, 0.7]
    other = exported(models[1], home["root"] / "other.tap", pid="p_" + "b2" * 8, dcn=0.9)
    with pipeline(home) as app:
        app.import_predictor(good)
        before_rows = registry_rows(home, app)
        before_file = (home["models"] / f"{PID}.tap").read_bytes()
        from tapas.app.pipeline import LDEError

        with pytest.raises(LDEError, match="must contain its dcn"):
            app.import_predictor(bad, replace=True)
        with pytest.raises(LDEError, match="must contain its dcn"):
            app.import_predictor(other)
        assert registry_rows(home, app) == before_rows
        assert (home["models"] / f"{PID}.tap").read_bytes() == before_file
        assert files_in(home["models"]) == [f"{PID}.tap"]  # no orphan, no temporary copy
    with pipeline(home, read_only=True) as app, pytest.raises(LDEError, match="read-only"):
        app.import_predictor(exported(models[1], home["root"] / "ro.tap",
                                      pid="p_" + "c3" * 8))
    assert files_in(home["models"]) == [f"{PID}.tap"]
    assert registry_rows(home) == before_rows


# ------------------------------------------------------------------ crafted headers
def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(h: dict[str, Any]) -> None:
        d = h
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


def _first_array(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(h: dict[str, Any]) -> None:
        h["arrays"][sorted(h["arrays"])[0]][field] = value
    return edit


CRAFTED: dict[str, Callable[[dict[str, Any]], None]] = {
    "huge model (8 x 2048)": lambda h: h["params"].update(n_members=8, hidden_size=2048),
    "huge model (64 x 4096)": lambda h: h["params"].update(n_members=64, hidden_size=4096),
    "params not an object": _set(("params",), [1, 2]),
    "state not an object": _set(("state",), "x"),
    "provenance not an object": _set(("provenance",), 7),
    "arrays not an object": _set(("arrays",), "x"),
    "array meta not an object": lambda h: h["arrays"].update(
        {sorted(h["arrays"])[0]: [1]}),
    "negative shape": _first_array("shape", [-1, 4]),
    "huge shape": _first_array("shape", [10 ** 12, 10 ** 12]),
    "float shape": _first_array("shape", [2.5]),
    "string shape": _first_array("shape", ["3"]),
    "bool shape": _first_array("shape", [True]),
    "shape not a list": _first_array("shape", 3),
    "unknown dtype": _first_array("dtype", "object"),
    "dtype not a string": _first_array("dtype", ["float32"]),
    "offset outside": _first_array("offset", 10 ** 15),
    "nbytes not an int": _first_array("nbytes", "12"),
    "unknown param": lambda h: h["params"].update(evil=1),
    "param of the wrong type": lambda h: h["params"].update(hidden_size="8"),
    "param wrong type 2": lambda h: h["params"].update(coverage="high"),
    "params missing": lambda h: h["params"].clear(),
    "state missing": lambda h: h["state"].clear(),
    "state of the wrong type": lambda h: h["state"].update(dcn_range="ab", q="x"),
    "kernel of the wrong type": lambda h: h["state"].update(kernel=[1]),
    "format version a list": _set(("format_version",), [2]),
    "extra array": lambda h: h["arrays"].update(
        {"zz.extra": {"dtype": "float32", "shape": [0], "offset": 0, "nbytes": 0}}),
    "missing array": lambda h: h["arrays"].pop("x_std"),
    "registry not an object": _set(("provenance", "registry"), "x"),
    "registry dcn a string": _set(("provenance", "registry", "dcn"), "abc"),
    "registry dcn missing": lambda h: h["provenance"]["registry"].pop("dcn"),
    "registry n_train negative": _set(("provenance", "registry", "n_train"), -1),
    "registry metrics a list": _set(("provenance", "registry", "metrics"), [1]),
    "registry snapshot a number": _set(("provenance", "registry", "snapshot"), 3),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_headers_are_clean_errors_and_write_nothing(home: dict[str, Path],
                                                            models: Any, case: str) -> None:
    src = resign(exported(models[0], home["root"] / "real.tap"), home["root"] / "crafted.tap",
                 CRAFTED[case])
    with pipeline(home) as app, pytest.raises(ModelFileError) as e:
        app.import_predictor(src)
    assert "\n" not in str(e.value) and len(str(e.value)) < 600
    assert ".partial" not in str(e.value)  # names the user's file, not the private copy
    assert files_in(home["models"]) == [] and registry_rows(home) == []


def test_crafted_payloads_are_refused(home: dict[str, Path], models: Any) -> None:
    """Arrays overlapping, leaving gaps, or weights that are not finite."""
    real = exported(models[0], home["root"] / "real.tap")
    header, payload = read_header(real)
    name = "net.w_hh"
    meta = header["arrays"][name]

    def overlap(h: dict[str, Any]) -> None:  # two arrays on the same bytes
        h["arrays"]["net.w_hh"]["offset"] = h["arrays"]["net.w_e"]["offset"]

    nan = bytearray(payload)
    nan[meta["offset"]:meta["offset"] + 4] = struct.pack("<f", float("nan"))
    cases = {"overlap": (overlap, None), "gap": (lambda h: None, payload + b"\0" * 8),
             "nan weight": (lambda h: None, bytes(nan))}
    with pipeline(home) as app:
        for what, (edit, body) in cases.items():
            src = resign(real, home["root"] / f"{what}.tap", edit, body)
            with pytest.raises(ModelFileError, match="overlap|payload|finite"):
                app.import_predictor(src)
    assert files_in(home["models"]) == [] and registry_rows(home) == []


def test_a_deeply_nested_header_is_a_clean_error(tmp_path: Path) -> None:
    hb = b'{"format": "tapas-tap", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    bad = tmp_path / "deep.tap"
    bad.write_bytes(MAGIC + struct.pack("<Q", len(hb)) + hb)
    with pytest.raises(ModelFileError, match="corrupt header"):
        read_header(bad)


_RSS_PROBE = r"""
import sys
from pathlib import Path
import torch  # noqa: F401  (imported before the baseline: its own memory is not the import's)
import predictor.tap  # noqa: F401  (the estimator and scikit-learn load lazily; the same)
from tapas.app.pipeline import ModelFileError, Pipeline

def hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")

db, models, src = sys.argv[1:4]
with Pipeline(db, model_dir=models, seed=False) as app:
    app.predictors()
    before = hwm()
    try:
        app.import_predictor(src)
        outcome = "imported"
    except ModelFileError as e:
        outcome = "refused: " + str(e)
    print(hwm() - before)
    print(outcome)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_a_huge_declaration_does_not_allocate(home: dict[str, Path], models: Any) -> None:
    """Issue 38: n_members=8, hidden_size=2048 in the header of a small file peaked at
    3.1 GB during import. Now refused before any module is built: the importing
    process's peak RSS grows by far less than 100 MB."""
    src = resign(exported(models[0], home["root"] / "real.tap"), home["root"] / "huge.tap",
                 CRAFTED["huge model (8 x 2048)"])
    out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(home["db"]),
                          str(home["models"]), str(src)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    grown_kib, outcome = out.stdout.strip().splitlines()[-2:]
    assert outcome.startswith("refused:") and "hidden_size" in outcome, outcome
    assert int(grown_kib) < 100 * 1024, f"peak RSS grew by {int(grown_kib) / 1024:.0f} MB"
    assert files_in(home["models"]) == [] and registry_rows(home) == []


def test_a_real_export_still_round_trips(home: dict[str, Path], models: Any) -> None:
    """The checks refuse nothing a real export holds (trees, levels, history)."""
    from tests.predictor.conftest import chain_cnn

    nets = [chain_cnn(4, 2), chain_cnn(8, 3)]
    with pipeline(home) as app:
        app.import_predictor(exported(models[0], home["root"] / "x.tap"))
        out = app.export_predictor(PID, home["root"] / "again.tap")
        assert app.delete_predictor(PID)
        assert app.import_predictor(out).id == PID
        app.unload()
        model, _ = app.registered(PID)
    np.testing.assert_allclose(model.predict_interval(nets, 0.5).mean,
                               models[0].predict_interval(nets, 0.5).mean, atol=1e-6)


# ------------------------------------------------------------------ the CLI
@pytest.fixture()
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    from lde import Store
    from tapas.core.config import get_settings

    monkeypatch.setenv("TAPAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TAPAS_DB_PATH", raising=False)
    monkeypatch.delenv("TAPAS_MODEL_DIR", raising=False)
    get_settings.cache_clear()
    (tmp_path / "home").mkdir()
    Store(get_settings().database).close()  # created empty: not seeded
    victim = tmp_path / "victim" / "important.tap"
    victim.parent.mkdir()
    victim.write_bytes(b"precious")
    yield {"db": get_settings().database, "models": get_settings().models, "victim": victim,
           "root": tmp_path}
    get_settings.cache_clear()


def tapas(*args: str) -> Any:
    from tapas.app.cli.main import app

    return runner.invoke(app, list(args))


def clean_error(r: Any, *needles: str) -> None:
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "error:" in r.output, r.output
    for n in needles:
        assert n in r.output, r.output


def test_cli_import_replace_and_traversal(cli_home: dict[str, Path], models: Any) -> None:
    first = exported(models[0], cli_home["root"] / "first.tap")
    second = exported(models[1], cli_home["root"] / "second.tap")
    r = tapas("predictor", "import", str(first))
    assert r.exit_code == 0 and f"imported {PID}" in r.output, r.output
    r = tapas("predictor", "import", str(first))
    assert r.exit_code == 0 and "already registered" in r.output, r.output
    clean_error(tapas("predictor", "import", str(second)), "--replace")
    r = tapas("predictor", "import", str(second), "--replace")
    assert r.exit_code == 0 and f"imported {PID}" in r.output, r.output

    crafted = exported(models[0], cli_home["root"] / "crafted.tap", pid=TRAVERSAL)
    clean_error(tapas("predictor", "import", str(crafted)), "not a predictor id")
    huge = resign(first, cli_home["root"] / "huge.tap", CRAFTED["huge model (8 x 2048)"])
    clean_error(tapas("predictor", "import", str(huge)), "hidden_size")
    for case in ("arrays not an object", "negative shape", "params not an object",
                 "registry dcn a string"):
        bad = resign(first, cli_home["root"] / "bad.tap", CRAFTED[case])
        clean_error(tapas("predictor", "import", str(bad)))
    for args in (("delete", TRAVERSAL), ("show", TRAVERSAL),
                 ("export", TRAVERSAL, str(cli_home["root"] / "out.tap")),
                 ("delete", "/etc/passwd")):
        clean_error(tapas("predictor", *args), "not a predictor id")
    clean_error(tapas("predict", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--dcn",
                      "0.5", "--predictor", TRAVERSAL), "not a predictor id")
    assert cli_home["victim"].read_bytes() == b"precious"
    assert files_in(cli_home["models"]) == [f"{PID}.tap"]
    assert not (cli_home["root"] / "out.tap").exists()


# ------------------------------------------------------------------ the service
def test_http_refuses_a_traversal_id(home: dict[str, Path], models: Any) -> None:
    import httpx

    from service import create_app
    from service.server import BackgroundServer
    from tapas.core.config import Settings

    with pipeline(home) as app:
        app.import_predictor(exported(models[0], home["root"] / "ok.tap"))
    settings = Settings(home=home["db"].parent, api_token="t", device="cpu")
    cell = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    with BackgroundServer(create_app(settings, train_default=False),
                          token_set=True) as srv, httpx.Client(base_url=srv.url) as c:
        for bad in (TRAVERSAL, "/etc/passwd", "p_nope"):
            r = c.post("/v1/predict", json={"archs": [cell], "dcn": 0.5, "predictor": bad})
            assert r.status_code == 404, r.text
            err = r.json()["error"]
            assert err["code"] == "predictor_not_found" and err["path"] == "body.predictor"
            assert "not a predictor id" in err["message"]
        r = c.get("/v1/predictors/..%2F..%2Fvictim%2Fimportant")
        assert r.status_code == 404 and r.json()["error"]["code"].endswith("not_found")
        r = c.post("/v1/predict", json={"archs": [cell], "dcn": 0.5, "predictor": PID})
        assert r.status_code == 200 and r.json()["predictor"]["id"] == PID
    outside_untouched(home)


def test_cli_import_refuses_a_bad_file_before_creating_a_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: Any) -> None:
    """Issue 36: a fresh home is not seeded (the whole shipped database) just to learn
    that the file is no exported predictor."""
    from tapas.core.config import get_settings

    monkeypatch.setenv("TAPAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TAPAS_DB_PATH", raising=False)
    monkeypatch.delenv("TAPAS_MODEL_DIR", raising=False)
    get_settings.cache_clear()
    try:
        raw = tmp_path / "raw.tap"
        models[0].save(raw)  # a model file, but no registry entry
        clean_error(tapas("predictor", "import", str(raw)), "registry entry")
        assert not get_settings().database.exists()
        assert files_in(get_settings().models) == []
    finally:
        get_settings.cache_clear()
