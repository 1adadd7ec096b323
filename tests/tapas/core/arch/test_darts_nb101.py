"""DARTS / NAS-Bench-301 and NAS-Bench-101 importers against published parameter counts,
their exporter round trip, and the places that accept an architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapas.app.cli.main import app
from tapas.core.arch import (
    DARTS_V2,
    ArchError,
    Architecture,
    expand,
    from_darts,
    from_nb101,
    parse_genotype,
)
from tapas.core.arch.darts import genotype_string
from tapas.core.arch.nb101 import vertex_channels
from tapas.core.spaces import parse_arch
from tests.tapas.core.arch.torch_checks import assert_module_matches

# The DARTS code prints DARTS_V2 with normal_concat=range(2, 6) in some versions.
DARTS_V2_RANGE = DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")

# The cell whose fixed metrics google-research/nasbench's README prints:
# 'trainable_parameters': 8555530 (CIFAR-10 network: stem 128, 3 stacks of 3 cells).
NB101_README = {
    "matrix": [[0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1],
               [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 0]],
    "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu",
            "conv1x1-bn-relu", "output"],
}


def test_darts_v2_has_the_published_size() -> None:
    """Liu et al. (ICLR 2019), Table 1: DARTS (2nd order) 3.3M params at C=36, 20 cells.
    The reference code logs ``param size = 3.349342MB`` (auxiliary head excluded), and
    its genotypes file annotates DARTS_V2 with 528M multiply-adds."""
    arch = from_darts(DARTS_V2, channels=36, layers=20, num_classes=10)
    assert arch.params == 3_349_342
    assert abs(arch.params - 3.3e6) / 3.3e6 < 0.015
    assert round(arch.flops / 1e6) == 528
    assert from_darts(DARTS_V2_RANGE) == arch


@pytest.mark.parametrize("arch", [
    from_darts(DARTS_V2, channels=8, layers=5, num_classes=10, input_shape=(3, 16, 16)),
    from_darts("Genotype(normal=[('none', 0), ('conv_7x1_1x7', 1), ('dil_conv_5x5', 0), "
               "('sep_conv_7x7', 2), ('avg_pool_3x3', 1), ('sep_conv_5x5', 3)], "
               "normal_concat=[3, 4], reduce=[('none', 0), ('skip_connect', 1), "
               "('avg_pool_3x3', 0), ('dil_conv_5x5', 1), ('conv_7x1_1x7', 0), "
               "('sep_conv_3x3', 2)], reduce_concat=[2, 4])",
               channels=6, layers=4, num_classes=5, input_shape=(1, 12, 12)),
    from_nb101(NB101_README, 10, (3, 16, 16), stem_channels=16, cells_per_stack=1),
], ids=["darts-v2-small", "darts-every-op", "nb101-small"])
def test_network_round_trip(arch: Architecture) -> None:
    out = assert_module_matches(arch)
    assert out.shape == (2, arch.num_classes)


def test_genotype_parsing() -> None:
    g = parse_genotype(DARTS_V2)
    assert g["normal"][7] == ("dil_conv_3x3", 2) and g["reduce_concat"] == [2, 3, 4, 5]
    assert parse_genotype(genotype_string(g)) == g
    as_json = json.dumps({k: [list(e) if isinstance(e, tuple) else e for e in v]
                          for k, v in g.items()})
    assert from_darts(as_json, 8, 5) == from_darts(DARTS_V2, 8, 5)


@pytest.mark.parametrize("text, match", [
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], "
     "reduce_concat=[2])", "two \\(op, input\\) edges"),
    (DARTS_V2.replace("'dil_conv_3x3'", "'conv_9x9'"), "unknown DARTS op 'conv_9x9'"),
    (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "input must be 0..4"),
    (DARTS_V2.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[2, 9]"),
     "reduce_concat"),
    (DARTS_V2.replace("normal_concat=", "__import__('os').system('x') or "), "malformed|only"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
     "reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=[2], extra=1)",
     "unknown genotype field 'extra'"),
    ("Genotype(normal=[", "malformed genotype"),
], ids=["odd-edges", "unknown-op", "bad-input", "bad-concat", "code", "extra-field",
        "syntax"])
def test_bad_genotypes_are_named(text: str, match: str) -> None:
    with pytest.raises(ArchError, match=match):
        from_darts(text, 8, 5)


def test_nb101_matches_the_published_count() -> None:
    arch = from_nb101(NB101_README)
    assert arch.params == 8_555_530
    assert arch.infos[0].out_shape == (128, 32, 32)
    assert arch.infos[-2].out_shape == (512,)


def test_nb101_channel_rule_and_pruning() -> None:
    # three vertices feed the output: 128 splits 43, 43, 42; a vertex that only feeds
    # another takes its successor's width
    m = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1],
         [0, 0, 0, 0, 0]]
    assert vertex_channels(128, 128, m) == [128, 43, 43, 42, 128]
    m2 = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert vertex_channels(64, 128, m2) == [64, 128, 128, 128]
    # vertex 2 is on no input->output path: pruned, so the cell equals the smaller one
    dangling = {"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
                "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]}
    small = {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
             "ops": ["input", "conv3x3-bn-relu", "output"]}
    assert from_nb101(dangling) == from_nb101(small)


@pytest.mark.parametrize("cell, match", [
    ({"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]}, "upper triangular"),
    ({"matrix": [[0, 0], [0, 0]], "ops": ["input", "output"]}, "cannot be reached"),
    ({"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv5x5", "output"]},
     "unknown NAS-Bench-101 op 'conv5x5'"),
    ({"matrix": [[0] + [1] * 6] + [[0] * (i + 2) + [1] * (5 - i) for i in range(5)]
      + [[0] * 7], "ops": ["input"] + ["conv1x1-bn-relu"] * 5 + ["output"]}, "at most 9"),
], ids=["lower", "unreachable", "op", "edges"])
def test_bad_nb101_cells_are_named(cell: dict, match: str) -> None:
    with pytest.raises(ArchError, match=match):
        from_nb101(cell)


def test_cell_specs_load_everywhere_an_architecture_loads() -> None:
    assert parse_arch(DARTS_V2).params == 3_349_342
    assert parse_arch(json.dumps(NB101_README)).params == 8_555_530
    small = parse_arch({"genotype": DARTS_V2, "C": 16, "layers": 8}, 100, (3, 16, 16))
    assert small.num_classes == 100 and small == from_darts(DARTS_V2, 16, 8, 100, (3, 16, 16))
    with pytest.raises(ArchError, match="'C' must be an integer"):
        parse_arch({"genotype": DARTS_V2, "C": "16"})
    with pytest.raises(ArchError, match="must be an integer"):
        expand({"genotype": DARTS_V2, "C": "16"})


runner = CliRunner()


def test_cli_arch_show_darts_genotype(tmp_path: Path) -> None:
    r = runner.invoke(app, ["arch", "show", DARTS_V2, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["params"] == 3_349_342
    r = runner.invoke(app, ["arch", "show", DARTS_V2])
    assert r.exit_code == 0 and "params 3,349,342" in " ".join(r.output.split())
    # a genotype file (as NAS-Bench-301 prints it) and a sized DARTS cell object
    (tmp_path / "g.txt").write_text(DARTS_V2_RANGE + "\n")
    r = runner.invoke(app, ["arch", "show", str(tmp_path / "g.txt"), "--json",
                            "--classes", "100", "--input-shape", "3x16x16"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["layers"][-1]["out_shape"] == [100]
    (tmp_path / "c.json").write_text(json.dumps({"genotype": DARTS_V2, "C": 16, "layers": 8}))
    r = runner.invoke(app, ["arch", "show", str(tmp_path / "c.json"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["params"] == from_darts(
        DARTS_V2, 16, 8).params
    (tmp_path / "nb101.json").write_text(json.dumps(NB101_README))
    r = runner.invoke(app, ["arch", "show", str(tmp_path / "nb101.json"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["params"] == 8_555_530
    bad = DARTS_V2.replace("'dil_conv_3x3'", "'conv_9x9'")
    r = runner.invoke(app, ["arch", "show", bad])
    assert r.exit_code != 0 and "unknown DARTS op 'conv_9x9'" in " ".join(r.output.split())
    assert "Traceback" not in r.output


def test_ingest_own_results_on_darts_and_nb101(tapas_home: Path, tmp_path: Path) -> None:
    """The README's recipe: cells as the ``arch`` of one's own records."""
    rows = [
        {"arch": DARTS_V2, "dataset": "my-cifar10", "accuracy_pct": 97.24, "num_classes": 10,
         "input_shape": [3, 32, 32]},
        {"arch": {"genotype": DARTS_V2, "C": 16, "layers": 8}, "dataset": "my-cifar10",
         "accuracy": 0.951},
        {"arch": NB101_README, "dataset": "my-cifar10", "accuracy": 0.92},
        {"arch": DARTS_V2.replace("'dil_conv_3x3'", "'conv_9x9'"), "dataset": "my-cifar10",
         "accuracy": 0.5},
    ]
    f = tmp_path / "runs.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = runner.invoke(app, ["ingest", str(f), "--dcn", "my-cifar10=0.86", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["added"] == 3 and rep["n_rejected"] == 1
    assert "conv_9x9" in json.dumps(rep["rejected"])
    from lde.store import Store
    from tapas.core.config import get_settings

    want = {from_darts(DARTS_V2).id: 3_349_342, from_nb101(NB101_README).id: 8_555_530}
    with Store(get_settings().database) as store:
        got = store.architectures(list(want))
    assert {k: a.params for k, a in got.items()} == want


def test_darts_expansion_cache_stays_within_its_byte_budget() -> None:
    """Issue 38: the DARTS expansion cache is under TAPAS_CACHE_MB (the pool every
    architecture cache shares, by estimated bytes), however many distinct genotypes a
    search expands."""
    import random

    from tapas.core.arch import darts
    from tapas.core.arch.darts import genotype_string
    from tapas.core.spaces import SPACES
    from tapas.core.types import set_cache_budget

    space = SPACES["darts"]

    budget = 4 * 2**20
    set_cache_budget(budget)  # the service calls this with TAPAS_CACHE_MB
    try:
        rng = random.Random(0)
        seen = 0
        for _ in range(120):
            g = space.sample(rng)
            text = genotype_string(darts.parse_genotype(
                {k: g[k] for k in ("normal", "normal_concat", "reduce", "reduce_concat")}))
            arch = darts.from_darts(text, channels=16, layers=8)
            assert darts.from_darts(text, channels=16, layers=8) is arch  # a hit while kept
            seen += 1
            assert darts._cache.used <= budget
        assert darts._cache.used > budget * 0.5  # it does cache, up to the budget
        assert len(darts._cache) < seen
    finally:
        set_cache_budget(512 * 2**20)
