"""JSON request bodies decoded and validated in small steps, so a large one never holds
the GIL (and with it the event loop, ``/health/live`` included) for long.

``model_validate_json`` and ``json.loads`` are each one C call: on a worker thread they
still hold the GIL for the whole body (about 1 s per 10 MB here), and no other thread,
the event loop's included, runs meanwhile. :func:`decode_json` decodes the top-level
object key by key and each item of a top-level array on its own, and
:func:`validate_stepwise` validates a model's list fields a slice of items at a time;
between two steps the interpreter hands the GIL to whoever waits for it. A step is as
long as the largest single item (one architecture, one record), not the body.

The other long pause is the garbage collector's: the millions of objects a large body
decodes into trigger full collections, each one GIL-holding pass over every object of
the process (0.9 s at 16 MB). Those objects hold no cycles and die by reference count
when the request ends, so :func:`gc_paused` turns the collector off while a request
builds them.
"""

from __future__ import annotations

import gc
import json
import threading
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)

VALIDATE_SLICE = 256
"""List items validated per step (records or architectures: well under 10 ms)."""


class BodyError(ValueError):
    """The body is not valid JSON; the message says where (line and column)."""


class ItemErrors(ValueError):
    """Items of a list field failed validation: ``errors`` are pydantic's error dicts
    (``loc``, ``msg``, ``type``), ``loc`` starting with the field and the item's index."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid items")
        self.errors = errors


_gc_lock = threading.Lock()
_gc_users = 0
_gc_was_enabled = False


LARGE_ITEMS = 256
"""Items (networks, records) from which a request pauses the collector: smaller ones
make too few objects for a collector pass to matter."""
LARGE_BODY = 2**20
"""Body bytes from which decoding pauses the collector."""


@contextmanager
def gc_paused(active: bool = True) -> Iterator[None]:
    """No automatic garbage collection while any thread is inside (nested and concurrent
    uses count; the collector's previous state comes back when the last one leaves).

    Only large requests pass ``active``: under steady load some small request is always
    in flight, and pausing for each would leave the collector off for good, so the cycles
    that do arise (an exception and its traceback) would never be freed.

    When the last one leaves after success, what it made is frozen (``gc.freeze``): the
    networks a large predict adds to the architecture caches (1,000 NAS-Bench-201 cells
    are ~700,000 objects) would otherwise be walked by every later full collection, a
    100-350 ms pause of every request each time. Frozen objects are still freed by
    reference count (evicted cache entries hold no cycles; the request's own objects go
    when it ends); after a failure nothing is frozen, so an exception's cycles are
    collected as usual."""
    if not active:
        yield
        return
    global _gc_users, _gc_was_enabled
    with _gc_lock:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1
    ok = False
    try:
        yield
        ok = True
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_was_enabled:
                if ok:
                    gc.freeze()
                gc.enable()


def freeze_long_lived() -> None:
    """Collect, then move every surviving object out of the collector's reach: called when
    what exists will live as long as the server (after startup, after the default
    predictor loads), so no later full collection walks it again."""
    gc.collect()
    gc.freeze()


_decoder = json.JSONDecoder()
"""NaN, Infinity and 1e999 decode to floats, as pydantic's JSON parser reads them: the
models refuse them field by field (``allow_inf_nan=False``), naming the path."""
_WS = " \t\n\r"


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {col}"


def _skip(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def _value(text: str, i: int) -> tuple[Any, int]:
    try:
        return _decoder.raw_decode(text, i)
    except json.JSONDecodeError as e:
        raise BodyError(f"{e.msg} at {_where(text, e.pos)}") from None
    except RecursionError:
        raise BodyError(f"the JSON nests too deeply (at or after {_where(text, i)})") from None


def _expect(text: str, i: int, char: str, what: str) -> int:
    i = _skip(text, i)
    if i >= len(text) or text[i] != char:
        raise BodyError(f"expected {what} at {_where(text, i)}")
    return i + 1


def _array(text: str, i: int) -> tuple[list[Any], int]:
    """``text[i] == '['``: the array, each item decoded by its own call."""
    out: list[Any] = []
    i = _skip(text, i + 1)
    if i < len(text) and text[i] == "]":
        return out, i + 1
    while True:
        item, i = _value(text, _skip(text, i))
        out.append(item)
        i = _skip(text, i)
        if i < len(text) and text[i] == "]":
            return out, i + 1
        i = _expect(text, i, ",", "',' or ']'")


def decode_json(body: bytes) -> Any:
    """``json.loads(body)`` in steps of one top-level value or one item of a top-level
    array (:class:`BodyError` naming line and column)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BodyError(f"the body is not UTF-8 (byte {e.start})") from None
    i = _skip(text, 0)
    if i < len(text) and text[i] == "{":
        out: dict[str, Any] = {}
        i = _skip(text, i + 1)
        if i < len(text) and text[i] == "}":
            i += 1
        else:
            while True:
                i = _skip(text, i)
                if i >= len(text) or text[i] != '"':
                    raise BodyError(f"expected a property name at {_where(text, i)}")
                key, i = _value(text, i)
                i = _skip(text, _expect(text, i, ":", "':'"))
                if i < len(text) and text[i] == "[":
                    out[key], i = _array(text, i)
                else:
                    out[key], i = _value(text, i)
                i = _skip(text, i)
                if i < len(text) and text[i] == "}":
                    i += 1
                    break
                i = _expect(text, i, ",", "',' or '}'")
        result: Any = out
    elif i < len(text) and text[i] == "[":
        result, i = _array(text, i)
    else:
        result, i = _value(text, i)
    i = _skip(text, i)
    if i != len(text):
        raise BodyError(f"extra data after the JSON value at {_where(text, i)}")
    return result


def _list_item(annotation: Any) -> Any | None:
    """``X`` of a ``list[X]`` (or ``list[X] | None``) field annotation, else None."""
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is list:
            return typing.get_args(arg)[0]
    return None


def validate_stepwise(model: type[M], data: Any) -> M:
    """``model.model_validate(data)``, with each long list field validated a slice of
    :data:`VALIDATE_SLICE` items at a time first (:class:`ItemErrors` when items fail,
    each ``loc`` holding the item's index in the whole list: ``("records", 1234,
    "seed")``); the model's own checks raise pydantic's ``ValidationError``."""
    if not isinstance(data, dict):
        return model.model_validate(data)
    data = dict(data)
    for name, info in model.model_fields.items():
        value = data.get(name)
        item = _list_item(info.annotation)
        if item is None or not isinstance(value, list) or len(value) <= VALIDATE_SLICE:
            continue
        if info.metadata and any(getattr(m, "max_length", None) is not None
                                 and len(value) > m.max_length for m in info.metadata):
            continue  # too long: the model's own check says so, without the items' work
        adapter: TypeAdapter[list[Any]] = TypeAdapter(list[item])  # type: ignore[valid-type]
        done: list[Any] = []
        errors: list[Any] = []
        for start in range(0, len(value), VALIDATE_SLICE):
            try:
                done.extend(adapter.validate_python(value[start:start + VALIDATE_SLICE]))
            except ValidationError as e:
                for err in e.errors(include_url=False, include_input=False,
                                    include_context=False):
                    loc = err.get("loc", ())
                    if loc and isinstance(loc[0], int):
                        loc = (loc[0] + start, *loc[1:])
                    errors.append({**err, "loc": (name, *loc)})
                if len(errors) >= 20:
                    break
        if errors:
            raise ItemErrors(errors[:20])
        data[name] = done
    return model.model_validate(data)
