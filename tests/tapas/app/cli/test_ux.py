"""The researcher's workflow, driven as a user drives it: the ``tapas`` CLI (Typer's
runner, and the installed script where the install itself is the point) against a real
service on loopback and real files. One test per friction of issue 16."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tapas.app.cli.common import WIDE_INTERVAL, note_wide_intervals
from tapas.app.cli.main import app
from tapas.app.client import Client
from tapas.core.errors import PredictorNotFound
from tests.tapas.live_server import TOKEN, live_server, service_env  # noqa: F401

ROOT = Path(__file__).resolve().parents[4]
CELLS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
         "skip_connect~2|",
         "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
         "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|"
         "nor_conv_3x3~2|"]
runner = CliRunner()


@pytest.fixture(scope="module")
def api(live_server: Any) -> Iterator[Client]:  # noqa: F811
    with Client(live_server.url, token=TOKEN, timeout=120, retries=2, backoff=0.1) as c:
        yield c


@pytest.fixture()
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal, so a table row holds a whole label on one line."""
    from tapas.app.cli import common

    monkeypatch.setattr(common.console, "width", 300)


def tapas(*args: str) -> Any:
    r = runner.invoke(app, list(args))
    return r


def search(api: Client, *args: str) -> Any:
    return tapas("search", "--dcn", "0.6", "--url", api.url, "--token", TOKEN, *args)


# ------------------------------------------------------------ pinned, portable predictors
def test_predict_pins_a_predictor_over_http_and_in_search(api: Client, tmp_path: Path) -> None:
    from tapas.app.client import TapasError

    p1 = api.train_predictor(dcn=0.6)["id"]
    first = api.predict(CELLS, dcn=0.6, predictor=p1)
    assert {p.predictor for p in first} == {p1}
    p2 = api.train_predictor(dcn=0.3)["id"]
    assert p2 != p1
    # pinned: p2 answers even for a DCN it was not trained for; p1 answers as before
    assert {p.predictor for p in api.predict(CELLS, dcn=0.6, predictor=p2)} == {p2}
    again = api.predict(CELLS, dcn=0.6, predictor=p1)
    assert [p.mean for p in again] == [p.mean for p in first]
    with pytest.raises(TapasError) as e:
        api.predict(CELLS, dcn=0.6, predictor="p_nope")
    assert e.value.status == 404 and e.value.code == "predictor_not_found"
    assert e.value.path == "body.predictor"
    assert isinstance(e.value, PredictorNotFound)  # the class the in-process scorer raises
    r = search(api, "--space", "nb201", "--budget", "20", "--predictor", p2, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["predictors"] == [p2]


def test_predictor_registry_commands_and_portable_files(tmp_path: Path, tapas_home: Path,
                                                        small_trainings: None,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    from tapas.app.pipeline import Pipeline, load_predictor
    from tapas.app.scorer import LocalScorer
    from tapas.core.config import get_settings
    from tests.tapas.nb201_lde import TINY

    with LocalScorer(predictor_params=TINY, min_experiments=100) as sc:
        pid = sc.train_predictor(dcn=0.6, force=True).id  # on the starter data
        before = sc.predict(CELLS, dcn=0.6, predictor=pid)
        assert {p.predictor for p in before} == {pid}
        with pytest.raises(PredictorNotFound, match="p_nope"):
            sc.predict(CELLS, dcn=0.6, predictor="p_nope")
    with Pipeline() as app:  # the registry names the file relative to the model dir
        assert app.store.predictor(pid).artifact == f"{pid}.tap"
    r = tapas("predictor", "list", "--json")
    assert r.exit_code == 0, r.output
    items = {x["id"]: x for x in json.loads(r.stdout)["items"]}
    assert items[pid]["file_exists"] and items[pid]["n_train"] > 0
    r = tapas("predictor", "show", pid, "--json")
    assert json.loads(r.stdout)["file"] == str(get_settings().models / f"{pid}.tap")
    exported = tmp_path / "shared.tap"
    assert tapas("predictor", "export", pid, str(exported)).exit_code == 0
    r = tapas("lde", "export", str(tmp_path / "lde-export"))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "lde-export" / "models" / f"{pid}.tap").is_file()
    r = tapas("predictor", "delete", pid)
    assert r.exit_code == 0 and f"deleted {pid}" in r.output
    assert not (get_settings().models / f"{pid}.tap").exists()
    r = tapas("predictor", "show", pid)
    assert r.exit_code == 1 and "no predictor" in r.output
    r = tapas("predictor", "import", str(exported))
    assert r.exit_code == 0 and f"imported {pid}" in r.output, r.output
    with Pipeline() as app:
        model, info = app.registered(pid)
    assert info.id == pid
    # another machine: a new home, the database export (models travel with it)
    monkeypatch.setenv("TAPAS_HOME", str(tmp_path / "elsewhere"))
    get_settings.cache_clear()
    r = tapas("lde", "import", str(tmp_path / "lde-export"))
    assert r.exit_code == 0, r.output
    with Pipeline() as app:
        row = app.predictor(pid)
        path = app.model_path(row.artifact)  # resolves in the new home's model directory
    assert path == tmp_path / "elsewhere" / "models" / f"{pid}.tap"
    from tapas.core.arch import from_nb201

    nets = [from_nb201(c, 10, 32) for c in CELLS]
    moved = load_predictor(path).predict_interval(nets, 0.6).mean
    assert list(moved) == pytest.approx([p.mean for p in before])
    r = tapas("predictor", "import", str(tmp_path / "lde-export" / "manifest.json"))
    assert r.exit_code == 1 and "Traceback" not in r.output


# ------------------------------------------------------------ readable, distinct results
def test_chain_labels_are_literal_text_and_tell_networks_apart(api: Client, tmp_path: Path,
                                                               wide: None) -> None:
    out = tmp_path / "chain.json"
    r = search(api, "--space", "chain", "--budget", "40", "--top", "10", "--out", str(out))
    assert r.exit_code == 0, r.output
    best = json.loads(out.read_text())["best"]
    labels = [c["label"] for c in best]
    # rich used to read "[r5,r5,r5]" as markup and drop it: every label is shown whole
    for label in labels:
        assert "[" in label and label in r.stdout, (label, r.stdout)
    # distinct networks get distinct labels (dropout and head included)
    assert len(set(labels)) == len({c["arch_id"] for c in best}) == len(best)
    assert all("head=" in label for label in labels)


def test_nb201_cells_are_shown_whole(api: Client, wide: None) -> None:
    args = ("--space", "nb201", "--budget", "20", "--top", "5", "--strategy", "random")
    r = search(api, *args)
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout and "..." not in r.stdout
    best = json.loads(search(api, *args, "--json").stdout)["best"]
    for c in best:
        assert c["label"] in r.stdout and c["label"].count("~") == 6


# ------------------------------------------------------------ results that save and load
def test_search_saves_json_csv_parquet_and_loads_back(api: Client, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from tapas.app.search import SearchResult

    args = ("--space", "chain", "--budget", "30", "--top", "5", "--seed", "3")
    saved = {}
    for ext in ("json", "parquet", "csv"):
        saved[ext] = tmp_path / f"res.{ext}"
        r = search(api, *args, "--out", str(saved[ext]))
        assert r.exit_code == 0, r.output
        assert f"saved {ext} to" in r.output
    a, b = SearchResult.load(saved["json"]), SearchResult.load(saved["parquet"])
    assert a.to_dict() | {"seconds": 0} == b.to_dict() | {"seconds": 0}
    assert [c.arch_id for c in a.best] == [c.arch_id for c in b.best] and len(a.best) == 5
    assert len(a.means) == a.queries == 30 and a.history[-1] == max(a.means)
    width = statistics.median(c.upper - c.lower for c in a.best)
    assert ("intervals are wide" in r.stderr) == (width > WIDE_INTERVAL), r.stderr
    assert a.best[0].genotype["space"] == "chain"  # genotypes come back as objects
    table = pq.read_table(saved["parquet"])
    assert table.column_names[:2] == ["rank", "genotype"]
    header = saved["csv"].read_text().splitlines()[0].split(",")
    assert {"mean", "lower", "upper", "spread", "label", "arch_id"} <= set(header)
    with pytest.raises(ValueError, match="CSV holds only the table"):
        SearchResult.load(saved["csv"])
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a saved search result"):
        SearchResult.load(bad)
    # --format csv without --out: the table of best architectures on stdout, nothing else
    r = search(api, *args, "--format", "csv")
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("rank,genotype,label")
    assert len(r.stdout.splitlines()) == 6
    r = search(api, *args, "--format", "parquet")
    assert r.exit_code == 1 and "--out FILE.parquet" in r.output


def test_predict_speaks_mean_lower_upper_spread_and_saves(tmp_path: Path,
                                                          tapas_home: Path) -> None:
    from tests.tapas.app.cli.test_predictor import _table

    cells = _table(tmp_path / "t.csv")
    model = tmp_path / "m.tap"
    r = tapas("train", str(tmp_path / "t.csv"), "--out", str(model), "--epochs", "2",
              "--members", "2", "--device", "cpu")
    assert r.exit_code == 0, r.output
    r = tapas("predict", str(model), cells[0], cells[1], "--dcn", "0.5", "--json")
    assert r.exit_code == 0, r.output
    preds = json.loads(r.stdout)["predictions"]
    p = preds[0]
    assert {"mean", "lower", "upper", "spread", "arch_id"} <= set(p) and "accuracy" not in p
    # the note on wide intervals appears exactly when the median width is over the bar
    width = statistics.median(x["upper"] - x["lower"] for x in preds)
    assert ("intervals are wide" in r.stderr) == (width > WIDE_INTERVAL), r.stderr
    out = tmp_path / "p.parquet"
    r = tapas("predict", str(model), cells[0], cells[1], "--dcn", "0.5", "--out", str(out))
    assert r.exit_code == 0, r.output
    import pyarrow.parquet as pq

    rows = pq.read_table(out).to_pylist()
    assert [x["arch"] for x in rows] == cells[:2] and rows[0]["mean"] == pytest.approx(
        p["mean"])
    # cell strings are printed whole (no "..." at 60 characters)
    r = tapas("predict", str(model), cells[0], "--dcn", "0.5")
    assert "..." not in r.stdout


def test_wide_intervals_get_one_note(capsys: pytest.CaptureFixture[str]) -> None:
    def rows(*widths: float) -> list[dict[str, float]]:
        return [{"lower": 0.5 - w / 2, "upper": 0.5 + w / 2} for w in widths]

    note_wide_intervals(rows(0.9, 0.2, 0.6))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "intervals are wide (median width 0.60)" in err
    for quiet in (rows(0.9, 0.2, 0.5), rows()):
        note_wide_intervals(quiet)
        assert capsys.readouterr().err == ""


def test_rank_reads_cells_jsonl_and_ir_folders(api: Client, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from tapas.core.arch import from_nb201

    text = tmp_path / "cells.txt"
    text.write_text("# three cells\n" + "\n".join(CELLS) + "\n\n")
    out = tmp_path / "ranks.parquet"
    r = tapas("rank", "--dcn", "0.6", "--archs", str(text), "--out", str(out),
              "--url", api.url)
    assert r.exit_code == 0, r.output
    rows = pq.read_table(out).to_pylist()
    assert sorted(x["arch"] for x in rows) == sorted(CELLS)
    assert [x["rank"] for x in rows] == [1, 2, 3]
    assert [x["mean"] for x in rows] == sorted((x["mean"] for x in rows), reverse=True)
    # the same networks as IR, one JSON object a line, and as a folder of IR files
    irs = [from_nb201(c, 10, 32).to_dict() for c in CELLS]
    jsonl = tmp_path / "nets.jsonl"
    jsonl.write_text("\n".join(json.dumps(d) for d in irs) + "\n")
    folder = tmp_path / "nets"
    folder.mkdir()
    for i, d in enumerate(irs):
        (folder / f"net{i}.json").write_text(json.dumps(d))
    by_id = {x["arch_id"]: x["mean"] for x in rows}
    for src in (jsonl, folder):
        r = tapas("rank", "--dcn", "0.6", "--archs", str(src), "--url", api.url, "--json")
        assert r.exit_code == 0, r.output
        got = json.loads(r.stdout)["results"]
        assert {x["arch_id"]: x["mean"] for x in got} == pytest.approx(by_id)
    # a bad line is named by file and line
    bad = tmp_path / "bad.txt"
    bad.write_text(CELLS[0] + "\nnot a cell\n")
    r = tapas("rank", "--dcn", "0.6", "--archs", str(bad), "--url", api.url)
    assert r.exit_code == 1 and "bad.txt:2" in r.output and "Traceback" not in r.output


# ------------------------------------------------------------ uncertainty a search can use
def test_members_over_http_client_and_naslib(api: Client) -> None:
    import numpy as np

    from tapas.app.adapters.naslib import TapasNASLibEnsemble, TapasNASLibPredictor

    preds = api.predict(CELLS, dcn=0.6, members=True)
    for p in preds:
        assert p.members is not None and len(p.members) >= 2
        assert np.mean(p.members) == pytest.approx(p.mean, abs=1e-6)
        assert np.std(p.members) == pytest.approx(p.spread, abs=1e-6)
    assert api.predict(CELLS[:1], dcn=0.6)[0].members is None  # only when asked
    nas = TapasNASLibPredictor(dcn=0.6, scorer=api)
    m = nas.query_members(CELLS)
    assert m.shape == (len(preds[0].members), 3)
    assert nas.query(CELLS) == pytest.approx(100 * np.array([p.mean for p in preds]))
    assert TapasNASLibEnsemble(dcn=0.6, scorer=api).query(CELLS) == pytest.approx(m)


def test_members_in_process(tapas_home: Path, small_trainings: None) -> None:
    import numpy as np

    from tapas.app.scorer import LocalScorer
    from tests.tapas.nb201_lde import TINY

    with LocalScorer(predictor_params=TINY, min_experiments=100) as sc:
        preds = sc.predict(CELLS, dcn=0.6, members=True, train=True)
    # a default database answers DCN 0.6 with a shipped predictor (4 members), not TINY's
    assert len({len(p.members) for p in preds}) == 1 and len(preds[0].members) >= 2
    for p in preds:
        assert np.mean(p.members) == pytest.approx(p.mean, abs=1e-6)


def test_ucb_objective_and_thompson_search(api: Client, tmp_path: Path) -> None:
    out = tmp_path / "ucb.json"
    r = search(api, "--space", "nb201", "--budget", "40", "--objective", "ucb",
               "--strategy", "thompson", "--population", "10", "--parents", "4",
               "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["strategy"] == "thompson" and res["queries"] == 40
    ucb = [c["mean"] + c["spread"] for c in res["best"]]
    assert ucb == sorted(ucb, reverse=True)
    # mean + members' spread, never clipped: it ranks the candidates instead of tying them
    assert len(set(round(u, 9) for u in ucb)) > len(ucb) // 2 and ucb[0] < 1.0
    assert res["history"][-1] == pytest.approx(ucb[0])


# ------------------------------------------------------------ plots
def test_search_plot_writes_a_png(api: Client, tmp_path: Path) -> None:
    png = tmp_path / "search.png"
    r = search(api, "--space", "nb201", "--budget", "30", "--plot", str(png))
    assert r.exit_code == 0, r.output
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    r = search(api, "--budget", "10", "--plot", str(tmp_path / "x.txt"))
    assert r.exit_code == 1 and ".png" in r.output


# ------------------------------------------------------------ progress
def test_training_reports_epochs_in_process(tapas_home: Path, small_trainings: None) -> None:
    from tapas.app.scorer import LocalScorer
    from tests.tapas.nb201_lde import TINY

    seen: list[tuple[int, int]] = []
    with LocalScorer(predictor_params=TINY, min_experiments=100) as sc:
        sc.train_predictor(dcn=0.6, force=True, progress=lambda e, n: seen.append((e, n)))
    n = TINY["epochs"]
    assert seen == [(e, n) for e in range(n + 1)]


def test_http_training_job_progress_moves(tapas_home: Path, small_trainings: None) -> None:
    """A predictor trained through the service reports its epochs: the job's progress
    climbs past the 0.05 it used to sit at for the whole training. Every progress report
    the job records is observed in process (HTTP polls may miss a short training's epochs
    on a loaded machine); what the client polls must only ever climb."""
    from lde.starter import available
    from service import create_app
    from service.server import BackgroundServer
    from tapas.core.config import get_settings

    assert available(), "the starter data ships with the repository (lde/starter)"
    params = {"hidden_size": 8, "epochs": 40, "n_members": 2, "device": "cpu"}
    app_ = create_app(get_settings(), train_default=False, predictor_params=params,
                      min_experiments=100)
    recorded: list[tuple[float, str]] = []
    seen: list[tuple[float, str]] = []
    with BackgroundServer(app_, token_set=True) as srv, Client(srv.url, token=TOKEN) as c:
        c.wait_ready(timeout=300)
        runner = app_.state.tapas.jobs
        journal = runner._progress_writer

        def observing_writer():  # type: ignore[no-untyped-def]
            write = journal()

            def observe(job):  # type: ignore[no-untyped-def]
                recorded.append((job.progress, job.message or ""))
                if write is not None:
                    write(job)
            return observe

        runner._progress_writer = observing_writer
        r = c.request("POST", "/v1/predictors", ok=(202,),
                      json={"dcn": 0.6, "force": True, "wait_s": 0})
        job = c.wait_job(r.json()["job"]["id"], poll=0.05,
                         progress=lambda j: seen.append((j.progress, j.message)))
    assert job.state == "succeeded", job
    during = [p for p, m in recorded if "epoch" in m and 0.05 < p < 1.0]
    assert len(set(during)) >= 2, recorded
    assert [p for p, _ in recorded] == sorted(p for p, _ in recorded)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)

def test_dcn_stores_by_default(tmp_path: Path, tapas_home: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((80, 6, 6)),
             y=np.arange(80) % 2)
    args = ["dcn", str(tmp_path / "d.npz"), "--epochs", "1", "--max-samples", "100",
            "--device", "cpu", "--json"]
    r = tapas(*args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["cached"] is False
    r = tapas(*args)  # the next run (or search) on the same data reuses the stored DCN
    assert json.loads(r.stdout)["cached"] is True
    r = tapas(*args, "--no-store", "--force")
    assert r.exit_code == 0 and json.loads(r.stdout)["cached"] is False


def test_dcn_progress_has_a_total_from_the_start() -> None:
    from probenet import characterize, load_dataset

    seen: list[tuple[int, int]] = []
    characterize(load_dataset("digits?per_class=20"), epochs=1, max_samples=200,
                 device="cpu", progress=lambda d, t: seen.append((d, t)))
    assert seen[0][0] == 0 and seen[0][1] > 0  # never "0/None"
    assert seen[-1][0] == seen[-1][1] and len({t for _, t in seen}) == 1


# ------------------------------------------------------------ sharp edges
def test_version_and_bad_settings_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from tapas import __version__
    from tapas.core.config import get_settings

    r = tapas("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"tapas {__version__}"
    monkeypatch.setenv("TAPAS_DEVICE", "gpu")
    get_settings.cache_clear()
    try:
        r = tapas("arch", "show", CELLS[0])
    finally:
        monkeypatch.delenv("TAPAS_DEVICE")
        get_settings.cache_clear()
    assert r.exit_code == 1
    assert "TAPAS_DEVICE='gpu'" in r.output and "'auto', 'cpu' or 'cuda'" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_train_nb201_takes_a_data_dir(tmp_path: Path, tapas_home: Path) -> None:
    r = tapas("train", "--nb201", "--data-dir", str(tmp_path), "--out",
              str(tmp_path / "m.tap"))
    assert r.exit_code == 1 and f"no nb201.csv in {tmp_path}" in r.output
    assert "--data-dir" in r.output
    r = tapas("train", str(tmp_path / "t.csv"), "--data-dir", str(tmp_path))
    assert r.exit_code == 1 and "--data-dir goes with --nb201" in r.output


def test_custom_search_space_missing_methods_is_named() -> None:
    from tapas.app.search import random_search
    from tests.tapas.app.search.test_search import FunctionScorer

    class Half:
        name = "half"

        def sample(self, rng: Any) -> str:
            return CELLS[0]

        def mutate(self, g: str, rng: Any) -> str:
            return g

    with pytest.raises(TypeError, match="lacks check, key, query, describe"):
        random_search(FunctionScorer(), Half(), dcn=0.5, budget=5)


# ------------------------------------------------------------ packaging
def test_metadata_splits_client_from_server_and_pins_torch_in_constraints() -> None:
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {re.split(r"[<>=!~ \[]", d)[0] for d in meta["dependencies"]}
    assert base == {"httpx", "numpy"}
    server = meta["optional-dependencies"]["server"]
    torch = [d for d in server if d.startswith("torch")]
    assert torch and ">=" in torch[0] and "==" not in torch[0]
    assert "tapas-nas[server]" in meta["optional-dependencies"]["dev"]
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "pip install -c constraints.txt -e '.[dev]'" in readme
    assert "-c constraints.txt" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_client_only_install_scores_through_a_running_service(api: Client,
                                                              tmp_path: Path) -> None:
    """``pip install .`` without extras, in a clean venv: the client imports, scores over
    HTTP, and neither torch nor duckdb nor fastapi is installed."""
    import shutil

    wheels, src = tmp_path / "wheels", tmp_path / "src"
    # a copy of the checkout, so the build leaves nothing behind in the repository
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "notebooks", "tests"))
    # without PYTHONPATH: a checkout on it (a worktree's tests) would be what gets imported
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(src)], check=True, env=env,
                   timeout=300)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    wheel = next(wheels.glob("tapas_nas-*.whl"))
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, env=env,
                   timeout=300)
    script = (
        "import importlib.util, sys\n"
        "from tapas.app.client import Client\n"
        "import tapas; assert '/site-packages/' in tapas.__file__, tapas.__file__\n"
        f"c = Client({api.url!r})\n"
        f"p = c.predict([{CELLS[0]!r}], dcn=0.6, members=True)[0]\n"
        "print(p.predictor, p.mean, len(p.members))\n"
        "print([m for m in ('torch', 'duckdb', 'fastapi', 'typer')"
        " if importlib.util.find_spec(m)])\n")
    api.train_predictor(dcn=0.6)
    # run from tmp_path: the repository's own tapas/ must not be what gets imported
    r = subprocess.run([str(py), "-c", script], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.strip().splitlines()
    pid, mean, k = first.split()
    assert pid.startswith("p_") and 0.0 <= float(mean) <= 1.0 and int(k) >= 2
    assert second == "[]"
    # the CLI without the server extra: one line saying what to install
    r = subprocess.run([str(venv / "bin" / "tapas"), "--version"], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path, env=env)
    assert r.returncode == 1 and "pip install 'tapas-nas[server]'" in r.stderr
    assert "Traceback" not in r.stderr
