"""Fixtures for LDE tests: small real architectures and a store in an isolated TAPAS_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def small_arch(width: int = 8, num_classes: int = 10, shape: tuple[int, int, int] = (3, 8, 8),
               kernel: int = 3) -> Any:
    from tapas.core.arch import Architecture

    return Architecture.from_dict({
        "input": {"shape": list(shape), "num_classes": num_classes},
        "layers": [{"op": "conv", "out": width, "kernel": kernel}, {"op": "bn"}, {"op": "relu"},
                   {"op": "gap"}, {"op": "linear", "out": num_classes}]})


@pytest.fixture()
def store(tapas_home: Path) -> Iterator[Any]:
    from lde import Store

    with Store() as s:
        yield s


CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]
