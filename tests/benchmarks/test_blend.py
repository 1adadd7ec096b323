"""The trees-beside-the-LSTM bench's rank average."""

from __future__ import annotations

import math

import pytest

from benchmarks.blend import main, rank_blend_kendall


def test_rank_blend_kendall_ends_and_a_tied_middle() -> None:
    truth = [0.1, 0.2, 0.3, 0.4]
    first, second = [0.1, 0.2, 0.4, 0.3], [0.2, 0.1, 0.3, 0.4]
    got = rank_blend_kendall(truth, first, second, [0.0, 0.5, 1.0])
    assert got[1.0] == pytest.approx(4 / 6)  # TAP alone: one discordant pair of six
    assert got[0.0] == pytest.approx(4 / 6)  # the other alone: likewise
    # equal weights: ranks 1.5, 1.5, 3.5, 3.5; four concordant pairs, two tied in the
    # blend, none discordant: tau-b = 4 / sqrt(4 x 6)
    assert got[0.5] == pytest.approx(4 / math.sqrt(24))


def test_cli_needs_a_scenario_it_knows() -> None:
    with pytest.raises(SystemExit, match="SCENARIO"):
        main(["starter", "0", "B"])


def test_scenarios_are_a_c_or_n() -> None:
    from benchmarks.ablation import run_scenario

    with pytest.raises(ValueError, match="A, C or N"):
        run_scenario(None, "cifar10", "B", {})
