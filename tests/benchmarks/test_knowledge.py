"""``python -m benchmarks.knowledge``: what a fresh install knows about each space.

The bench's figures are targets the product does not meet yet (issue 34), so these tests
check that it runs and that its keys stay stable, not that the orderings hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import benchmarks.knowledge as bk
from tests.benchmarks.conftest import bench

KEYS = {"in_domain_share", "seen", "unseen_families", "unseen_families_note", "orderings",
        "out_of_domain_reasons", "settings", "wall_s"}


def _check_orderings(o: dict) -> None:
    assert o["total"] == len(bk.PAIRS) >= 30 and 0 <= o["held"] <= o["total"]
    assert o["held"] == sum(p["held"] for p in o["pairs"])
    for p in o["pairs"]:
        assert p["held"] == (p["a_mean"] > p["b_mean"])
        assert {"a", "b", "a_in_domain", "b_in_domain"} <= set(p)


def test_bench_knowledge_without_published_tables() -> None:
    """The fresh-install parts run from the command line with no shared data."""
    r = bench(bk, "--n", "2", "--space", "nb201", "--space", "resnet-style", "--no-seen",
              "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == KEYS and out["seen"] is None and out["unseen_families"] is None
    assert set(out["in_domain_share"]) == {"nb201", "resnet-style"}
    assert all(0.0 <= v <= 1.0 for v in out["in_domain_share"].values())
    assert out["in_domain_share"]["nb201"] == 1.0  # the cells the default data holds
    _check_orderings(out["orderings"])


def test_bench_knowledge_refuses_bad_input(tmp_path: Path) -> None:
    r = bench(bk, "--n", "2", "--space", "nasnet", "--no-seen")
    assert r.exit_code == 1 and "unknown space" in r.output
    with pytest.raises(bk.BenchError, match="not found"):
        bk.seen(tmp_path)


def test_bench_knowledge_seen_tables(shared_data: Path) -> None:
    out = bk.seen(shared_data, n_train=30, limit=60, tap_kwargs={"epochs": 1, "n_members": 2})
    assert set(out) == {"nb101", "macro"}
    for r in out.values():
        assert {"tap", "gbr", "params"} <= set(r) and (r["n_train"], r["n_test"]) == (30, 30)
        assert all(-1.0 <= r[m] <= 1.0 for m in ("tap", "gbr", "params"))


def test_ordering_networks_are_the_named_ones() -> None:
    """The pairs compare the networks their names say: a CIFAR ResNet-18 has 11,173,962
    parameters, and the max-pool-only NB101 cell differs from the README's only in its ops."""
    nets = bk.ordering_networks()
    assert {n for pair in bk.PAIRS for n in pair} <= set(nets)
    assert nets["torch:resnet18"].params == 11_173_962
    assert nets["torch:resnet10-w16"].params < nets["torch:resnet18"].params / 20
    pool, readme = nets["nb101:README-wiring-all-maxpool"], nets["nb101:README"]
    assert pool.params < readme.params and len(pool) <= len(readme)
    assert nets["darts:DARTS_V2"].template_id != nets["darts:DARTS_V1"].template_id
