"""The DARTS / NAS-Bench-301 and NAS-Bench-101 search spaces: sampling, mutation and
validity, and real searches over them from the CLI, the HTTP client, the in-process
scorer and the NASLib adapter."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tapas.app.client import Client
from tapas.app.search import regularized_evolution
from tapas.core import spaces
from tapas.core.arch import DARTS_V2, ArchError, from_darts, from_nb101, parse_genotype
from tapas.core.spaces import SPACES
from tapas.core.spaces.darts import OPS as DARTS_OPS
from tests.tapas.live_server import TOKEN, live_server, service_env  # noqa: F401

darts, nb101 = SPACES["darts"], SPACES["nb101"]


def test_darts_samples_are_nas_bench_301_cells() -> None:
    rng = random.Random(0)
    for _ in range(50):
        g = darts.sample(rng)
        for kind in ("normal", "reduce"):
            edges = g[kind]
            assert len(edges) == 8 and g[f"{kind}_concat"] == [2, 3, 4, 5]
            for j in range(4):
                (o1, a), (o2, b) = edges[2 * j], edges[2 * j + 1]
                assert a < b < j + 2 and {o1, o2} <= set(DARTS_OPS)


def test_darts_mutation_changes_one_edge() -> None:
    g = darts.sample(random.Random(2))
    for s in range(30):
        m = darts.mutate(g, random.Random(s))
        diff = sum(len({tuple(e) for e in g[kind][2 * j: 2 * j + 2]}
                       - {tuple(e) for e in m[kind][2 * j: 2 * j + 2]})
                   for kind in ("normal", "reduce") for j in range(4))
        assert diff == 1  # one edge of one node (its pair may be reordered)


def test_bad_genotypes_and_shapes_are_named() -> None:
    g = darts.sample(random.Random(0))
    bad = json.loads(json.dumps(g))
    bad["normal"][1][1] = bad["normal"][0][1]
    with pytest.raises(ValueError, match="twice"):
        darts.validate(bad)
    with pytest.raises(ValueError, match="'C' must be"):
        darts.validate({**g, "C": 15})
    with pytest.raises(ArchError, match="unknown DARTS op"):
        darts.validate({**g, "reduce": [["conv_9x9", 0]] + g["reduce"][1:]})
    with pytest.raises(ValueError, match="multiples of 4"):
        darts.build(g, (1, 7, 7), 10)
    n = nb101.sample(random.Random(0))
    with pytest.raises(ArchError, match="upper triangular"):
        nb101.validate({**n, "matrix": [[1] * 7] * 7})
    with pytest.raises(ValueError, match="multiples of 4"):
        nb101.build(n, (1, 5, 8), 10)


def test_space_spec_expands_to_the_built_network() -> None:
    from tapas.core.arch import expand

    for sp in (darts, nb101):
        g = sp.sample(random.Random(7))
        assert expand(sp.spec(g), 10, (3, 16, 16)) == sp.build(g, (3, 16, 16), 10)
        assert expand(g, 10, (3, 16, 16)) == sp.build(g, (3, 16, 16), 10)  # genotype itself
    s = darts.spec(darts.sample(random.Random(1)))
    assert parse_genotype(s["genotype"]) and len(json.dumps(s)) < 1000


# ------------------------------------------------------------------ real search loops
@pytest.fixture(scope="module")
def api(live_server: Any) -> Iterator[Client]:  # noqa: F811
    with Client(live_server.url, token=TOKEN, timeout=120, retries=2, backoff=0.1) as c:
        yield c


@pytest.mark.parametrize("space", ["darts", "nb101"])
def test_cli_search_cell_spaces(api: Client, tmp_path: Path, space: str) -> None:
    from typer.testing import CliRunner

    from tapas.app.cli.main import app

    out = tmp_path / "res.json"
    r = CliRunner().invoke(app, ["search", "--dcn", "0.6", "--space", space, "--budget", "16",
                                 "--population", "6", "--sample-size", "3", "--url", api.url,
                                 "--token", TOKEN, "--out", str(out), "--json", "--top", "3"])
    assert r.exit_code == 0, r.output
    obj = json.loads(out.read_text())
    assert obj["space"] == space and obj["queries"] == 16 and len(obj["best"]) == 3
    best = obj["best"][0]
    assert best["genotype"]["space"] == space
    # the reported arch id is the network the genotype builds for the target
    built = spaces.build(best["genotype"], tuple(obj["target"]["input_shape"]),
                         obj["target"]["num_classes"])
    assert best["arch_id"] == built.id
    r = CliRunner().invoke(app, ["search", "--dcn", "0.6", "--space", space, "--budget", "8",
                                 "--strategy", "random", "--url", api.url])
    assert r.exit_code == 0, r.output
    assert f"random on {space}: best of 8 predictor queries" in r.output


def test_client_search_and_scoring_of_cell_specs(api: Client) -> None:
    res = regularized_evolution(api, "darts", dcn=0.6, budget=12, seed=0, population=6,
                                sample_size=3, batch_size=4)
    assert res.queries == 12 and 0.0 <= res.chosen.mean <= 1.0
    res2 = regularized_evolution(api, "darts", dcn=0.6, budget=12, seed=0, population=6,
                                 sample_size=3, batch_size=4)
    assert [c.arch_id for c in res2.best] == [c.arch_id for c in res.best]
    # the service takes genotype text, sized DARTS cells and NAS-Bench-101 cells directly
    nb = {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
          "ops": ["input", "conv3x3-bn-relu", "output"]}
    preds = api.predict([DARTS_V2, {"genotype": DARTS_V2, "C": 16, "layers": 8}, nb], dcn=0.6)
    assert [p.arch_id for p in preds] == [from_darts(DARTS_V2).id,
                                          from_darts(DARTS_V2, 16, 8).id, from_nb101(nb).id]
    from tapas.app.client import TapasError

    with pytest.raises(TapasError, match=r"archs\[0\].*unknown DARTS op"):
        api.predict([DARTS_V2.replace("'dil_conv_3x3'", "'conv_9x9'")], dcn=0.6)


def test_naslib_adapter_on_darts_and_nb101(api: Client) -> None:
    from tapas.app.adapters.naslib import TapasNASLibPredictor, compact_to_genotype

    compact = (((0, 3), (1, 3), (0, 3), (1, 3), (1, 3), (0, 2), (0, 2), (2, 5)),
               ((0, 0), (1, 0), (2, 2), (1, 0), (0, 0), (2, 2), (2, 2), (1, 0)))
    assert parse_genotype(compact_to_genotype(compact)) == parse_genotype(DARTS_V2)

    class NB301Graph:  # what NASLib's NasBench301SearchSpace offers
        def get_compact(self) -> Any:
            return compact

    pred = TapasNASLibPredictor(dcn=0.6, scorer=api, ss_type="nasbench301")
    a = pred.query([NB301Graph(), DARTS_V2])
    assert a.shape == (2,) and a[0] == pytest.approx(a[1]) and 0 <= a[0] <= 100
    pred = TapasNASLibPredictor(dcn=0.6, scorer=api, ss_type="nasbench101")
    cells = [nb101.spec(g) for g in spaces.sample_unique("nb101", 3, 0)]
    assert pred.query(cells).shape == (3,)
    with pytest.raises(ValueError, match="ss_type"):
        TapasNASLibPredictor(ss_type="transbench")

