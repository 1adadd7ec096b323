"""Architecture rows for the LDE: identity, family and a fast NAS-Bench-201 expansion.

An LDE architecture is one exact network (:attr:`tapas.core.arch.Architecture.id`, the
hash of its canonical JSON, input shape and class count included). Its *family*
is the same hash with the input shape and the classifier's width left out
(:attr:`tapas.core.arch.Architecture.template_id`), so one
NAS-Bench-201 cell expanded for CIFAR-10, CIFAR-100 and ImageNet16-120 gives
three networks of one family.

NAS-Bench-201 networks (about 10 kB of canonical JSON each) are stored by their
cell string and rebuilt with :func:`tapas.core.arch.from_nb201`; their canonical JSON,
id, params and FLOPs are computed here without building the full
:class:`~tapas.core.arch.Architecture` for every cell (about 3 ms each): canonical
layers are learned from a few fully built networks, FLOPs and params are additive
over the cell's six edges, and every expansion is checked against fully built
networks for sample cells before it is trusted (falling back to full builds if
the IR ever changes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from tapas.core.arch import NB201_OPS, Architecture, cell_string, from_nb201, parse_cell
from tapas.core.arch.nb201 import nb201_dict
from tapas.core.config import thread_budget

_SEP = (",", ":")

def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def family_of(canonical: dict[str, Any]) -> str:
    """Hash of the canonical layers without the input and the last layer's width: equal to
    :attr:`tapas.core.arch.Architecture.template_id`."""
    layers = list(canonical["layers"])
    layers[-1] = {k: v for k, v in layers[-1].items() if k != "out"}
    return _hash(json.dumps(layers, sort_keys=True, separators=_SEP))


@dataclass(frozen=True)
class ArchRow:
    """What the ``architectures`` table stores about one network."""

    id: str
    family: str
    canonical_json: str | None  # None for NB201 networks (rebuilt from the cell)
    params: int
    flops: int
    n_layers: int
    num_classes: int
    input_shape: tuple[int, int, int]
    nb201_cell: str | None = None


def arch_row(arch: Architecture, nb201_cell: str | None = None) -> ArchRow:
    """Row of a built architecture; ``nb201_cell`` only for default NB201 expansions."""
    return ArchRow(arch.id, arch.template_id,
                   None if nb201_cell else arch.canonical_json, arch.params, arch.flops,
                   len(arch.layers), arch.num_classes, tuple(arch.input_shape),  # type: ignore[arg-type]
                   nb201_cell)


def _uniform(op: str) -> str:
    return cell_string([op] * 6)


_SENTINEL = 987654321


def _raw_key(raw: dict[str, Any]) -> tuple:
    items = tuple(raw.items())
    if items[-1][0] == "inputs":  # how nb201_dict builds layers: fast path
        items = items[:-1]
    else:
        items = tuple(kv for kv in items if kv[0] != "inputs")
    try:
        hash(items)
    except TypeError:
        items = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in items)
    return items


class NB201Expander:
    """Fast, verified canonical rows for NAS-Bench-201 cells (default macro skeleton).

    Per cell, the body (every layer but the classifier) is the same for every
    dataset, so it is serialised once and shared by the three expansions.
    """

    def __init__(self) -> None:
        # raw layer (inputs left out) -> canonical JSON before and after the inputs list
        self._canon: dict[tuple, tuple[str, str]] = {}
        self._edge: dict[tuple[int, int], tuple[tuple[int, int], dict[str, tuple[int, int]]]] = {}
        self._ok: dict[tuple[int, int], bool] = {}

    def _learn(self, num_classes: int, size: int) -> None:
        totals = {}
        for op in NB201_OPS:
            cell = _uniform(op)
            arch = from_nb201(cell, num_classes, size)
            raw = nb201_dict(cell, num_classes, size)["layers"]
            for r, c in zip(raw, arch.to_dict()["layers"], strict=True):
                text = json.dumps({**c, "inputs": [_SENTINEL]}, sort_keys=True, separators=_SEP)
                pre, post = text.split(str(_SENTINEL))
                self._canon[_raw_key(r)] = (pre, post)
            totals[op] = (arch.params, arch.flops)
        base = totals["none"]
        edge = {}
        for op, (p, f) in totals.items():
            dp, df = p - base[0], f - base[1]
            if dp % 6 or df % 6:
                raise ValueError("params/FLOPs are not additive over edges")
            edge[op] = (dp // 6, df // 6)
        self._edge[(num_classes, size)] = (base, edge)

    def _layer(self, raw: dict[str, Any]) -> str:
        pre, post = self._canon[_raw_key(raw)]
        return pre + ",".join(map(str, raw["inputs"])) + post

    def _fast(self, cell: str, configs: list[tuple[int, int]]) -> list[ArchRow]:
        nc0, s0 = configs[0]
        raw = nb201_dict(cell, nc0, s0)["layers"]
        body = ",".join([self._layer(r) for r in raw[:-1]])
        last = raw[-1]
        pre, post = self._canon[_raw_key(last)]
        canon_last = json.loads(pre + str(_SENTINEL) + post)
        canon_last.pop("out", None)
        canon_last["inputs"] = list(last["inputs"])
        fam_last_json = json.dumps(canon_last, sort_keys=True, separators=_SEP)
        fam = _hash("[" + body + "," + fam_last_json + "]")
        ops = [op for node in parse_cell(cell) for op, _ in node]
        out = []
        for nc, s in configs:
            last_c = {**last, "out": nc}
            cj = (f'{{"input":{{"num_classes":{nc},"shape":[3,{s},{s}]}},"layers":['
                  + body + "," + self._layer(last_c) + "]}")
            (p, f), edge = self._edge[(nc, s)]
            for op in ops:
                p += edge[op][0]
                f += edge[op][1]
            out.append(ArchRow(_hash(cj), fam, None, p, f, len(raw), nc, (3, s, s), cell))
        return out

    def _ready(self, config: tuple[int, int], sample: list[str]) -> bool:
        if config not in self._ok:
            try:
                self._learn(*config)
                picks = {sample[0], sample[len(sample) // 2], sample[-1],
                         _uniform("nor_conv_3x3"), "|nor_conv_1x1~0|+|skip_connect~0|"
                         "avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|skip_connect~2|"}
                self._ok[config] = all(
                    self._fast(c, [config])[0] == arch_row(from_nb201(c, *config), c)
                    for c in picks)
            except (KeyError, ValueError):
                self._ok[config] = False
        return self._ok[config]

    def rows(self, cells: list[str], configs: list[tuple[int, int]]) -> list[list[ArchRow]]:
        """``rows[i][k]``: cell ``i`` expanded for ``configs[k]`` = (num_classes, size).

        Cells must be valid strings (check with :func:`tapas.core.arch.parse_cell`).
        """
        if not cells or not configs:
            return [[] for _ in cells]
        fast = [c for c in configs if self._ready(c, cells)]
        slow = [c for c in configs if c not in fast]
        out = []
        for cell in cells:
            got = dict(zip(fast, self._fast(cell, fast), strict=True)) if fast else {}
            for c in slow:
                got[c] = arch_row(from_nb201(cell, *c), cell)
            out.append([got[c] for c in configs])
        return out


_EXPANDER = NB201Expander()


def nb201_rows(cells: list[str], configs: list[tuple[int, int]]) -> list[list[ArchRow]]:
    """Rows for NAS-Bench-201 ``cells``, one per (num_classes, input size) in ``configs``."""
    return _EXPANDER.rows(cells, configs)


def _expand_chunk(args: tuple[list[str], list[tuple[int, int]]]) -> list[list[ArchRow]]:
    return _EXPANDER.rows(*args)


PARALLEL_MIN_CELLS = 3000


def iter_nb201_rows(cells: list[str], configs: list[tuple[int, int]], chunk: int = 1000,
                    workers: int | None = None
                    ) -> Iterator[tuple[list[str], list[list[ArchRow]]]]:
    """``(chunk of cells, their rows)`` in order.

    ``workers`` > 1 (or None: one per thread of the ``TAPAS_THREADS`` budget, up to 4,
    for large inputs) expands in
    spawned worker processes, since expansion is pure-Python CPU work. Spawning
    re-imports the caller's ``__main__``, so only entry points guarded by
    ``if __name__ == "__main__"`` (the ``tapas`` CLI) should ask for workers.
    """
    chunks = [cells[i:i + chunk] for i in range(0, len(cells), chunk)]
    if workers is None:
        workers = min(thread_budget(), 4) if len(cells) >= PARALLEL_MIN_CELLS else 1
    if workers <= 1 or len(chunks) <= 1:
        for c in chunks:
            yield c, _EXPANDER.rows(c, configs)
        return
    # spawn, not fork: the parent holds DuckDB's threads
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        yield from zip(chunks, pool.map(_expand_chunk, [(c, configs) for c in chunks]),
                       strict=True)
