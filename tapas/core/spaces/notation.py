"""The one reader of architecture notations, built on the space registry.

Every place that turns what a user wrote into a network (``tapas rank``/``predict``
files and arguments, the HTTP ``archs``, the client, the in-process scorer, ingest)
calls :func:`read_notation` through :func:`parse_arch`/:func:`parse_archs`, so a line
means the same network everywhere. A value is read

1. by the space it names: a ``space:`` prefix (``darts:Genotype(...)``,
   ``nb201:|nor_conv_3x3~0|+...``, ``chain:{...}``) or a JSON object's ``"space"`` key
   (``{"space": "nb101", "matrix": ...}``); ``ir:`` names the IR;
2. else by every notation in a fixed order: each registered space's ``parse`` in
   :data:`~tapas.core.spaces.SPACES` order, then the IR JSON. Exactly one must read it;
   none, or more than one, is an error naming the notations tried or matched.

A space added to the registry is read here with no edit. Pure Python: no torch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from tapas.core.arch import ArchError, Architecture
from tapas.core.arch.cache import budgeted, network_bytes, sizeof
from tapas.core.arch.ops import json_value
from tapas.core.spaces.base import SPACES, Space, space_of
from tapas.core.types import (
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    MAX_REPORTED,
    ArchListError,
    check_classes,
    check_shape,
    join_path,
)

IR = "ir"
"""The name of the IR JSON notation (``ir:`` prefix), tried after every space."""
_PREFIX = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*):(?!//)")
_READ = budgeted("notations")
"""What a value denotes (a :class:`Notation`) by its text or canonical JSON: a search loop
that re-sends the same values skips parsing, validation and, for the IR, shape inference
and encoding (the predictor caches its encoding on the Architecture instance)."""


class NotationError(ArchError):
    """A value no notation reads, or more than one does; ``tried`` names the notations."""

    def __init__(self, message: str, tried: Sequence[str]) -> None:
        super().__init__(message)
        self.tried = list(tried)


@dataclass(frozen=True)
class Notation:
    """A value read: the space's genotype (``space`` set) or an IR network (``space`` None).
    Values read are remembered and shared: copy a genotype before changing it."""

    space: Space | None
    value: Any

    @property
    def name(self) -> str:
        return self.space.name if self.space is not None else IR

    def build(self, num_classes: int, input_shape: tuple[int, int, int]) -> Architecture:
        """The network; a genotype is built for ``num_classes`` and ``input_shape``, an IR
        network keeps its own."""
        if self.space is None:
            return self.value
        try:  # the genotype was validated when read: only the input is left to check
            self.space.check(input_shape)
            return self.space._network(self.value, input_shape, num_classes)
        except ArchError:
            raise
        except ValueError as e:
            raise ArchError(str(e)) from None


def notations() -> list[str]:
    """The notations in the order an unnamed value is tried: the spaces, then the IR."""
    return [*SPACES, IR]


def _read_ir(obj: Any) -> Architecture:
    if isinstance(obj, Architecture):
        return obj
    return Architecture.from_json(obj) if isinstance(obj, str) else Architecture.from_dict(obj)


def _read_by(name: str, obj: Any, named: bool = False) -> Notation:
    """``obj`` in the notation ``name`` (a space or the IR); errors name the notation.
    A value ``named`` by a prefix may leave out its space's tag."""
    if name == IR:
        return Notation(None, _read_ir(obj))
    space = SPACES[name]
    if named and isinstance(obj, str) and obj.startswith("{"):
        with suppress(json.JSONDecodeError):  # else the space's own parse names the problem
            obj = json.loads(obj)
    if (named and isinstance(obj, dict) and "space" not in obj and hasattr(space, "tag")
            and not space.claims(obj)):
        obj = {"space": space.tag, **obj}  # named by prefix: the tag may be left out
    try:
        return Notation(space, space.parse(obj))
    except ArchError as e:
        raise ArchError(f"not a valid {name} genotype: {e.reason}", e.layer, e.field,
                        e.op) from None
    except ValueError as e:
        raise ArchError(f"not a valid {name} genotype: {e}") from None


def _claims(name: str, obj: Any) -> bool:
    """Whether ``obj`` is written in the notation ``name``, valid or not."""
    if name == IR:
        return isinstance(obj, dict) and "layers" in obj
    return SPACES[name].claims(obj)


def _short(obj: Any) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, default=str)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def read_notation(obj: Any) -> Notation:
    """What ``obj`` (text, a JSON value or an ``Architecture``) denotes, read by the
    notation it names or by the one notation that reads it (see the module's doc);
    ``ArchError`` (a :class:`NotationError` when none or several read it) says which."""
    if isinstance(obj, Architecture):
        return Notation(None, obj)
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8", errors="replace")
    try:
        text = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True,
                                                            separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return _read(obj)
    key = (text, tuple(SPACES.values()))  # a space registered since may read it too
    hit = _READ.get(key)
    if hit is None:
        hit = _read(obj)
        size = (network_bytes(len(hit.value.layers), len(text)) if hit.space is None
                else 2 * sizeof(text))
        _READ.put(key, hit, size)
    return hit


def _read(obj: Any) -> Notation:
    if isinstance(obj, str):
        m = _PREFIX.match(obj)
        if m and (m.group(1) in SPACES or m.group(1) == IR):
            return _read_by(m.group(1), obj[m.end():].strip(), named=True)
        obj = obj.strip()
        if obj.startswith("{"):
            obj = json_value(obj)
    if isinstance(obj, dict) and "space" in obj:
        try:
            space = space_of(obj)
        except ValueError as e:
            raise ArchError(str(e), field="space") from None
        return _read_by(space.name, obj)
    if not isinstance(obj, str | dict):
        raise ArchError(f"expected a notation (text or a JSON object) or an Architecture, "
                        f"got {type(obj).__name__}")
    read: list[Notation] = []
    why: dict[str, ArchError] = {}
    for name in notations():
        try:
            read.append(_read_by(name, obj))
        except ArchError as e:
            # kept without its traceback and context, whose frames lead back to this one:
            # a cycle per value read, and a large request's cyclic garbage outlives it
            # (the service freezes what a request leaves, service.body.gc_paused)
            e.__context__ = None
            why[name] = e.with_traceback(None)
    if len(read) == 1:
        return read[0]
    if read:
        names = [r.name for r in read]
        raise NotationError(f"{_short(obj)} reads as {' and as '.join(names)}; name one with a "
                            f"prefix ({names[0]}:...) or a \"space\" key", names)
    claimed = [name for name in notations() if _claims(name, obj)]
    if len(claimed) == 1:
        raise why[claimed[0]]  # written in one notation, with a mistake: say which
    raise NotationError(f"{_short(obj)} is in no known notation (tried "
                        f"{', '.join(notations())}; a 'space:' prefix names one)",
                        notations())


def parse_arch(obj: Any, num_classes: int | None = DEFAULT_NUM_CLASSES,
               input_shape: Sequence[int] | None = DEFAULT_INPUT_SHAPE) -> Architecture:
    """One architecture in any notation (:func:`read_notation`), a genotype built for
    ``num_classes`` and ``input_shape`` (None: the defaults); ``ArchError`` naming what
    is wrong."""
    c, h, w = check_shape(input_shape or DEFAULT_INPUT_SHAPE)
    k = check_classes(num_classes or DEFAULT_NUM_CLASSES)
    return read_notation(obj).build(k, (c, h, w))


def parse_archs(archs: Sequence[Any], num_classes: int = DEFAULT_NUM_CLASSES,
                input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE, *,
                prefix: str = "archs") -> list[Architecture]:
    """Each item as an ``Architecture`` (see :func:`parse_arch`).

    All invalid items are collected into one ``ArchError`` (an ``ArchListError``) whose
    message starts with the first one's path (``archs[3].layers[2].kernel: ...``) and
    whose ``errors`` lists each (up to :data:`~tapas.core.types.MAX_REPORTED`).
    """
    out: list[Architecture] = []
    errors: list[dict[str, Any]] = []
    bad = 0
    k = check_classes(num_classes)
    shape = check_shape(input_shape or DEFAULT_INPUT_SHAPE)
    for i, obj in enumerate(archs):
        try:
            out.append(read_notation(obj).build(k, shape))  # type: ignore[arg-type]
        except ArchError as e:
            bad += 1
            if len(errors) < MAX_REPORTED:
                # A string is one value: its error belongs to the item, not a sub-field.
                sub = None if isinstance(obj, str) and e.layer is None else e.path
                errors.append({"path": join_path(f"{prefix}[{i}]", sub), "message": str(e),
                               "index": i})
    if errors:
        first = errors[0]
        more = f" ({bad} invalid architectures in all)" if bad > 1 else ""
        raise ArchListError(f"{first['path']}: {first['message']}{more}", first["path"],
                            errors)
    return out


__all__ = ["IR", "Notation", "NotationError", "notations", "parse_arch", "parse_archs",
           "read_notation"]
