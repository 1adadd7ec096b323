"""The space protocol, the base classes the built-in spaces share, and the registry.

A space is one object that owns everything about its networks: the notation of a
genotype (:meth:`Space.parse` / :meth:`Space.format`), the key that tells networks
apart, seeded sampling and mutation, which inputs it fits, how a genotype becomes an
:class:`~tapas.core.arch.Architecture`, and what a scorer is asked. The CLI, the search
strategies, the experiment planner and the benches all take spaces from
:data:`SPACES`, so a name means one thing everywhere. Pure Python: no torch.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol

from tapas.core.arch import Architecture, expand
from tapas.core.arch.cache import budgeted, sizeof

if TYPE_CHECKING:
    from tapas.core.types import Target

REFERENCE_SHAPE = (3, 32, 32)
"""A shape every built-in space fits; template ids do not depend on it."""


class SearchSpace(Protocol):
    """What a search strategy needs from a space (genotypes are JSON-able values).

    A custom space is any object with these six methods and a ``name``; the search
    checks them up front (:func:`tapas.app.search.check_space` names what is missing)::

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


class Space(SearchSpace, ABC):
    """A built-in space: :class:`SearchSpace` plus its notation, metadata and builder.

    Subclasses set ``name``, ``description`` (one line), ``inputs`` (which inputs it
    fits, in words) and ``size`` (``None`` when too large to count), and implement the
    search methods, :meth:`parse`/:meth:`format`, :meth:`validate`, :meth:`fits` and
    :meth:`_network`.
    """

    name: str
    description: str
    inputs: str
    size: int | None = None

    @abstractmethod
    def parse(self, obj: Any) -> Any:
        """A genotype from its notation (text or a JSON value); ``ValueError`` naming
        what puts it outside the space."""

    @abstractmethod
    def format(self, genotype: Any) -> str:
        """The genotype's text; :meth:`parse` reads it back to an equal genotype."""

    def claims(self, obj: Any) -> bool:
        """Whether ``obj`` is written in this space's notation, valid or not: when no
        notation reads a value, the one that claims it explains why."""
        return False

    @abstractmethod
    def validate(self, genotype: Any) -> None:
        """Raise ``ValueError`` naming what puts ``genotype`` outside the space."""

    def query(self, genotype: Any, target: Target) -> Any:
        """What the scorer is asked for ``target``: the built network, unless the space
        sends a compact cell spec that the scorer expands."""
        return self.build(genotype, tuple(target.input_shape), target.num_classes)

    # ----------------------------------------------------------- inputs and networks
    @abstractmethod
    def fits(self, input_shape: tuple[int, ...]) -> bool:
        """Whether every genotype builds for inputs of ``input_shape`` (C, H, W)."""

    def check(self, target: Target | tuple[int, ...]) -> None:
        """Raise ``ValueError`` when the space cannot build networks for ``target`` (a
        target or an input shape)."""
        shape = tuple(getattr(target, "input_shape", target))
        if len(shape) != 3 or not self.fits(shape):
            raise ValueError(f"the {self.name} space needs {self.inputs}, got input "
                             f"{list(shape)}")

    def build(self, genotype: Any, input_shape: tuple[int, ...],
              num_classes: int) -> Architecture:
        """The network of ``genotype`` for ``input_shape`` and ``num_classes``; its
        layer list, hence its ``template_id``, does not depend on the input."""
        self.validate(genotype)
        shape = tuple(input_shape)
        self.check(shape)
        return self._network(genotype, shape, num_classes)  # type: ignore[arg-type]

    @abstractmethod
    def _network(self, genotype: Any, input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        """The network of a validated genotype for a shape the space fits."""

    def __repr__(self) -> str:
        return f"<space {self.name}: {self.description}>"


_KEYS = budgeted("genotype-keys")
"""Each :class:`DictSpace`'s genotype keys by genotype text."""


class DictSpace(Space):
    """A space whose genotypes are JSON objects tagged ``{"space": tag, ...}``.

    ``tag`` is the name unless stored genotypes carry an older one (``tags`` lists every
    tag :meth:`parse` accepts; genotypes are written with ``tag``). The key is the built
    network's ``template_id``, so genotypes that differ only in choices leaving no trace
    in the network (e.g. the down-sampling kind of a one-stage chain) share a key.
    """

    def __init__(self) -> None:
        # keys by genotype text (building a network for its key costs milliseconds)
        self._keys = _KEYS.scoped(self)

    @property
    def tag(self) -> str:
        return self.name

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.tag,)

    def parse(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, str) and obj.lstrip().startswith("{"):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as e:
                raise ValueError(f"a {self.name} genotype must be a JSON object: {e}") from None
        obj = self.untagged(obj)
        if isinstance(obj, dict) and obj.get("space") in self.tags:
            obj = {**obj, "space": self.tag}
        self.validate(obj)
        return obj

    def untagged(self, obj: Any) -> Any:
        """The tagged genotype of a value written in one of the space's own untagged
        notations (a benchmark's format, read by :meth:`parse`); other values as they are."""
        return obj

    def claims(self, obj: Any) -> bool:
        """A JSON object with one of the space's tags, or one its :meth:`untagged` reads
        (or rejects)."""
        if isinstance(obj, str) and obj.lstrip().startswith("{"):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError:
                return False
        try:
            obj = self.untagged(obj)
        except ValueError:
            return True
        return isinstance(obj, dict) and obj.get("space") in self.tags

    def format(self, genotype: dict[str, Any]) -> str:
        return canonical_json(genotype)

    def _check_tag(self, genotype: Any) -> None:
        if not isinstance(genotype, dict) or genotype.get("space") not in self.tags:
            raise ValueError(f"not a genotype of the {self.name} space: {genotype!r}")

    def key(self, genotype: dict[str, Any]) -> str:
        text = canonical_json(genotype)
        key = self._keys.get(text)
        if key is None:
            key = self.build(genotype, REFERENCE_SHAPE, 10).template_id
            self._keys.put(text, key, sizeof(text) + sizeof(key))
        return key


class CellSpecSpace(DictSpace):
    """A benchmark cell space whose queries are compact cell specs (a DARTS genotype
    string, a NAS-Bench-101 matrix and op list) that the scorer, in process or behind
    HTTP, expands for the target: a search loop sends a few hundred bytes per
    candidate instead of a network of hundreds of layers. The space builds its networks
    by the same expansion, so the scorer and the space never disagree."""

    @abstractmethod
    def spec(self, genotype: dict[str, Any]) -> dict[str, Any]:
        """The cell spec of a valid genotype (see :func:`tapas.core.arch.expand`)."""

    def query(self, genotype: dict[str, Any], target: Target) -> dict[str, Any]:
        self.validate(genotype)
        return self.spec(genotype)

    def _network(self, genotype: dict[str, Any], input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        return expand(self.spec(genotype), num_classes, input_shape)


def canonical_json(value: Any) -> str:
    """Canonical JSON of a genotype (stable across runs; usable as a dict key)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


SPACES: dict[str, Space] = {}
"""Every built-in space by name, in the order the CLI lists them."""
_BY_TAG: dict[str, Space] = {}


def register(space: Space) -> Space:
    """Add ``space`` to :data:`SPACES` (and its genotype tags to the dispatch table)."""
    if space.name in SPACES:
        raise ValueError(f"a space called {space.name!r} is already registered")
    SPACES[space.name] = space
    for tag in getattr(space, "tags", ()):
        _BY_TAG.setdefault(tag, space)
    return space


def get_space(name: str) -> Space:
    """The space called ``name``; a clear error for unknown names."""
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; expected one of "
                         f"{', '.join(SPACES)}") from None


def space_of(genotype: Any) -> Space:
    """The space a genotype belongs to: a tagged dict by its ``"space"`` tag, a string by
    the first space whose notation reads it (a NAS-Bench-201 cell string)."""
    if isinstance(genotype, dict):
        if "space" not in genotype:
            raise ValueError(f"a genotype must be a dict with a 'space' key, got {genotype!r}")
        space = _BY_TAG.get(genotype["space"])
        if space is None:
            raise ValueError(f"unknown search space {genotype['space']!r}; expected one of "
                             f"{', '.join(_BY_TAG)}")
        return space
    if isinstance(genotype, str):
        for space in SPACES.values():
            if not isinstance(space, DictSpace):
                try:
                    space.parse(genotype)
                except ValueError:
                    continue
                return space
    raise ValueError(f"not a genotype of any search space: {str(genotype)[:80]!r}")
