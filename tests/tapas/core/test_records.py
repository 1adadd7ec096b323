"""One record rule set: a file's row, an API body and a record built in Python are
refused for the same value with the same words, by the parser and by the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from lde import Store
from tapas.core.records import ExperimentRecord, check_record, record_from_row

CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "skip_connect~2|")


@pytest.mark.parametrize("field, value, words", [
    ("accuracy", 1.5, "accuracy 1.5 is outside [0, 1]"),
    ("accuracy", float("nan"), "accuracy must be a finite number"),
    ("curve", [0.2, 3.0], "curve[1] 3.0 is outside [0, 1]"),
    ("split", "dev", "split must be one of test, valid, train, got 'dev'"),
    ("epochs", -1, "epochs must lie in [0, "),
    ("seed", 2**63, "seed must lie in [-9223372036854775808, 9223372036854775807]"),
    ("hparams", {"lr": float("inf")}, "hparams must be JSON without NaN or infinity"),
])
def test_parser_and_store_refuse_a_value_alike(field: str, value: object, words: str,
                                               tmp_path: Path) -> None:
    row = {"arch": CELL, "dataset": "d", "accuracy": 0.5, field: value}
    with pytest.raises(ValueError) as parsed:
        record_from_row(row, "test")
    assert words in str(parsed.value)
    rec = ExperimentRecord(**{"arch": CELL, "dataset": "d", "accuracy": 0.5, field: value})
    with Store(tmp_path / "lde.duckdb") as store:
        store.upsert_dataset("d", "fp-d", 100, 10, (3, 32, 32), dcn=0.5, dcn_meta={})
        rep = store.add_experiments([rec])
    assert rep.added == 0 and words in rep.rejected[0][1]


def test_numpy_numbers_are_numbers_and_64_bit_seeds_stay_exact() -> None:
    import numpy as np

    rec = check_record(ExperimentRecord(CELL, " d ", np.float32(0.25), seed=np.int64(2**63 - 1),
                                        epochs=np.int32(12), curve=np.array([0.1, 0.25])))
    assert rec.dataset == "d" and rec.accuracy == 0.25 and rec.seed == 2**63 - 1
    assert rec.epochs == 12 and rec.curve == [pytest.approx(0.1), 0.25]
