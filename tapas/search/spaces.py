"""Search spaces as the search strategies see them: sample, mutate, key, and the query
that a scorer (HTTP client or in-process) turns into a prediction.

* ``nb201``: the NAS-Bench-201 cell space (15,625 cells; a genotype is the cell
  string; mutation changes one of the six edge ops). Queries are cell strings, which
  the scorer expands into the full benchmark network for the target's classes and
  input size.
* ``chain``: the chain-CNN space of the starter data (:mod:`tapas.spaces.chain`).
* ``nb201-small``: NAS-Bench-201 cells in the reduced macro skeleton of the starter
  data (:mod:`tapas.spaces.nb201`: 8/12 channels, 1-2 cells per stage).
* ``darts``: the DARTS / NAS-Bench-301 cell space (:mod:`tapas.spaces.darts`; C=16,
  8 cells); ``nb101``: the NAS-Bench-101 cell space (:mod:`tapas.spaces.nb101`).
  Their queries are cell specs the scorer expands for the target.

Chain and reduced-cell genotypes are built into IR networks for the target's input
shape and classes, so they only need ``tapas.arch`` (pure Python).
"""

from __future__ import annotations

import json
import random
from typing import Any, Protocol

from tapas.arch import NB201_OPS, all_cells, cell_ops, cell_string
from tapas.types import Target


class SearchSpace(Protocol):
    """What a search strategy needs from a space (genotypes are JSON-able values).

    A custom space is any object with these six methods and a ``name``; the search
    checks them up front (:func:`tapas.search.check_space` names what is missing)::

        class Widths:
            name = "widths"
            def check(self, target): pass                      # or raise ValueError
            def sample(self, rng): return rng.choice([8, 16, 32])
            def mutate(self, g, rng): return rng.choice([w for w in (8, 16, 32) if w != g])
            def key(self, g): return str(g)                    # one key per network
            def query(self, g, target): return my_ir_dict(g, target)  # cell or IR
            def describe(self, g): return f"width {g}"         # the label in tables
    """

    name: str

    def check(self, target: Target) -> None:
        """Raise ``ValueError`` when the space cannot build networks for ``target``."""

    def sample(self, rng: random.Random) -> Any:
        """A random genotype, drawn with ``rng`` only (searches are seeded)."""

    def mutate(self, genotype: Any, rng: random.Random) -> Any:
        """A genotype one small change away from ``genotype``."""

    def key(self, genotype: Any) -> str:
        """A stable string identifying the genotype (the evaluation cache's key)."""

    def query(self, genotype: Any, target: Target) -> Any:
        """What the scorer is asked: a cell string, or an ``Architecture``."""

    def describe(self, genotype: Any) -> str:
        """A label telling this network apart from every other (shown as plain text)."""


# ---------------------------------------------------------------------- NAS-Bench-201
class NB201CellSpace:
    """The NAS-Bench-201 cell space: five ops on each of six edges, 15,625 cells."""

    name = "nb201"
    size = len(NB201_OPS) ** 6

    def check(self, target: Target) -> None:
        _, h, w = target.input_shape
        if h != w:
            raise ValueError(f"NAS-Bench-201 networks need square inputs, the target has "
                             f"{list(target.input_shape)}")

    def sample(self, rng: random.Random) -> str:
        return cell_string([rng.choice(NB201_OPS) for _ in range(6)])

    def mutate(self, genotype: str, rng: random.Random) -> str:
        """Change the op of one uniformly chosen edge to a different op."""
        ops = cell_ops(genotype)
        e = rng.randrange(6)
        ops[e] = rng.choice([op for op in NB201_OPS if op != ops[e]])
        return cell_string(ops)

    def key(self, genotype: str) -> str:
        return genotype

    def query(self, genotype: str, target: Target) -> str:
        return genotype

    def describe(self, genotype: str) -> str:
        return genotype

    def enumerate(self) -> list[str]:
        """Every cell (the space is small enough to list)."""
        return all_cells()


class _GenotypeSpace:
    """A :mod:`tapas.spaces` module (dict genotypes) as a search space."""

    #: Input used only to build a genotype for its key; every genotype of these spaces
    #: builds for it, and the key (``template_id``) does not depend on the input.
    KEY_INPUT = (1, 32, 32)

    def __init__(self, name: str, module: Any) -> None:
        self.name = name
        self._mod = module
        self._keys: dict[str, str] = {}

    def check(self, target: Target) -> None:
        if not self._mod.compatible(tuple(target.input_shape)):
            raise ValueError(f"the {self.name} space cannot build networks for input "
                             f"{list(target.input_shape)}")

    def sample(self, rng: random.Random) -> dict[str, Any]:
        return self._mod.sample(rng)

    def mutate(self, genotype: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        return self._mod.mutate(genotype, rng)

    def key(self, genotype: dict[str, Any]) -> str:
        """The built network's ``template_id``: genotypes that differ only in choices
        leaving no trace in the network (e.g. the down-sampling kind of a one-stage
        chain) share a key, so a search never spends two queries on one network."""
        text = json.dumps(genotype, sort_keys=True, separators=(",", ":"))
        key = self._keys.get(text)
        if key is None:
            key = self._mod.build(genotype, self.KEY_INPUT, 10).template_id
            self._keys[text] = key
        return key

    def query(self, genotype: dict[str, Any], target: Target) -> Any:
        return self._mod.build(genotype, tuple(target.input_shape), target.num_classes)

    def describe(self, genotype: dict[str, Any]) -> str:
        return self._mod.describe(genotype)


class _CellSpecSpace(_GenotypeSpace):
    """A benchmark cell space whose queries are compact cell specs (a DARTS genotype
    string, a NAS-Bench-101 matrix and op list) that the scorer, in process or behind
    HTTP, expands for the target: a search loop sends a few hundred bytes per
    candidate instead of a network of hundreds of layers."""

    def query(self, genotype: dict[str, Any], target: Target) -> Any:
        self._mod.validate(genotype)
        return self._mod.spec(genotype)


def darts_space() -> _GenotypeSpace:
    from tapas.spaces import darts

    return _CellSpecSpace("darts", darts)


def nb101_space() -> _GenotypeSpace:
    from tapas.spaces import nb101

    return _CellSpecSpace("nb101", nb101)


def chain_space() -> _GenotypeSpace:
    from tapas.spaces import chain

    return _GenotypeSpace("chain", chain)


def small_nb201_space() -> _GenotypeSpace:
    from tapas.spaces import nb201

    return _GenotypeSpace("nb201-small", nb201)


SPACE_NAMES = ("nb201", "chain", "nb201-small", "darts", "nb101")


def get_search_space(name: str) -> SearchSpace:
    """The search space called ``name`` (one of :data:`SPACE_NAMES`)."""
    if name == "nb201":
        return NB201CellSpace()
    if name == "chain":
        return chain_space()
    if name == "nb201-small":
        return small_nb201_space()
    if name == "darts":
        return darts_space()
    if name == "nb101":
        return nb101_space()
    raise ValueError(f"unknown search space {name!r}; expected one of {', '.join(SPACE_NAMES)}")
