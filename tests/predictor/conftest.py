"""Small, fast networks for predictor tests: reduced NAS-Bench-201 nets and chain CNNs."""

from __future__ import annotations

import numpy as np
import pytest

from tapas.core.arch import Architecture, all_cells, from_nb201


def chain_cnn(width: int, depth: int, num_classes: int = 10, size: int = 16) -> Architecture:
    """A plain conv-BN-ReLU chain with a pooled linear head."""
    layers: list[dict] = []
    for i in range(depth):
        layers += [{"op": "conv", "out": width * (1 + i // 2), "kernel": 3,
                    "stride": 2 if i % 2 else 1}, {"op": "bn"}, {"op": "relu"}]
    layers += [{"op": "gap"}, {"op": "linear", "out": num_classes}]
    return Architecture.from_dict({"input": {"shape": [3, size, size],
                                             "num_classes": num_classes}, "layers": layers})


def resnet_like(width: int, blocks: int) -> Architecture:
    layers: list[dict] = [{"op": "conv", "out": width, "kernel": 3}, {"op": "bn"},
                          {"op": "relu"}]
    for _ in range(blocks):
        x = len(layers) - 1
        layers += [{"op": "conv", "out": width, "kernel": 3}, {"op": "bn"}, {"op": "relu"},
                   {"op": "conv", "out": width, "kernel": 3}, {"op": "bn"}]
        layers += [{"op": "add", "inputs": [x, len(layers) - 1]}, {"op": "relu"}]
    layers += [{"op": "gap"}, {"op": "linear", "out": 10}]
    return Architecture.from_dict({"input": {"shape": [3, 16, 16], "num_classes": 10},
                                   "layers": layers})


@pytest.fixture(scope="session")
def mixed_archs() -> list[Architecture]:
    """Networks of many lengths (2 to 16 encoded steps)."""
    cells = all_cells()
    rng = np.random.default_rng(0)
    out = [from_nb201(cells[i], channels=4, cells_per_stage=1, input_size=16)
           for i in rng.choice(len(cells), 24, replace=False)]
    out += [chain_cnn(w, d) for w in (4, 8) for d in (1, 3, 5)]
    out += [resnet_like(w, b) for w in (4, 8) for b in (1, 2, 4)]
    out += [from_nb201(cells[i]) for i in (7, 3000, 15000)]
    return out


@pytest.fixture(scope="session")
def toy_data(mixed_archs: list[Architecture]) -> tuple[list[Architecture], np.ndarray, np.ndarray]:
    """A learnable toy target: accuracy grows with log-params, shifted by the DCN."""
    archs = mixed_archs * 2
    dcn = np.array([0.3] * len(mixed_archs) + [0.7] * len(mixed_archs))
    lp = np.array([np.log10(a.params + 1) for a in archs])
    y = np.clip(0.2 + 0.1 * (lp - lp.min()) + 0.3 * dcn, 0, 1)
    return archs, dcn, y
