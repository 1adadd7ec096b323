"""One int64 seed range everywhere (issue 38): the record parser, the HTTP schema and the
store accept exactly [-2**63, 2**63 - 1] (the column's BIGINT), with one clear message
beyond it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lde import ExperimentRecord, Store
from service.schemas import ExperimentIn
from tapas.core.config import SEED_RANGE
from tapas.core.records import record_from_row

CELL = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
EDGES = [SEED_RANGE[0], SEED_RANGE[1], str(SEED_RANGE[1]), str(SEED_RANGE[0])]
BEYOND = [SEED_RANGE[0] - 1, SEED_RANGE[1] + 1, str(SEED_RANGE[1] + 1)]


def test_the_range_is_int64() -> None:
    assert SEED_RANGE == (-(2**63), 2**63 - 1)


@pytest.mark.parametrize("seed", EDGES)
def test_edges_pass_everywhere(seed: int | str, tmp_path: Path) -> None:
    rec = record_from_row({"arch": CELL, "dataset": "d", "accuracy": 0.5, "seed": seed}, "t")
    assert rec.seed == int(seed)
    assert ExperimentIn(arch=CELL, dataset="d", accuracy=0.5, seed=seed).seed == int(seed)
    with Store(tmp_path / "lde.duckdb") as store:
        store.upsert_dataset("d", "fp-d", 100, 10, (3, 8, 8), dcn=0.5, dcn_meta={})
        rep = store.add_experiments([ExperimentRecord(CELL, "d", 0.5, seed=int(seed))])
        assert rep.added == 1 and rep.rejected == []
        stored = store.sql("SELECT seed FROM experiments").column(0).to_pylist()
        assert stored == [int(seed)]


@pytest.mark.parametrize("seed", BEYOND)
def test_beyond_is_refused_everywhere_with_the_range(seed: int | str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"seed must lie in \[-9223372036854775808, "
                                         r"9223372036854775807\] \(a signed 64-bit integer\)"):
        record_from_row({"arch": CELL, "dataset": "d", "accuracy": 0.5, "seed": seed}, "t")
    with pytest.raises(ValidationError):
        ExperimentIn(arch=CELL, dataset="d", accuracy=0.5, seed=seed)
    with Store(tmp_path / "lde.duckdb") as store:
        store.upsert_dataset("d", "fp-d", 100, 10, (3, 8, 8), dcn=0.5, dcn_meta={})
        rep = store.add_experiments([ExperimentRecord(CELL, "d", 0.5, seed=int(seed))])
        assert rep.added == 0 and "seed must lie in [" in rep.rejected[0][1]  # one rule, one text
