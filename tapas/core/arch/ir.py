"""The architecture IR: one JSON description for scoring, training and storage.

An :class:`Architecture` is immutable and validated on construction: every layer
has a known op, its fields are defaulted and type-checked, inputs point
backwards, and shape inference succeeds. Its ``id`` is the SHA-256 of the
canonical JSON (sorted keys, defaults filled in, inputs explicit), so two
descriptions of the same network share an identity.

Input references: ``inputs`` lists earlier layer indices; ``-1`` is the network
input. A layer without ``inputs`` takes the previous layer (the network input
for layer 0). The last layer is the output and must be a ``(num_classes,)``
vector.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from tapas.core.arch.ops import (
    MAX_CHANNELS,
    MAX_FEATURES,
    MAX_KERNEL,
    MAX_SPATIAL,
    OPS,
    REQUIRED,
    WEIGHTED_OPS,
    ArchError,
    Shape,
    _Fail,
    json_value,
)

MAX_LAYERS = 2_000
MAX_CLASSES = 100_000
MAX_PARAMS = 10**10
INPUT = -1


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """What shape inference learned about one layer."""

    index: int
    op: str
    fields: dict[str, Any]
    inputs: tuple[int, ...]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    params: int
    flops: int
    cum_params: int
    """Parameters of this layer and every layer it depends on (its ancestors)."""
    cum_flops: int
    depth: int
    """Weighted layers (conv/linear) on the longest path from the input, this one included."""


def _check_int(v: Any, i: int, op: str, name: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or (
        isinstance(v, float) and (not math.isfinite(v) or not v.is_integer())
    ):
        raise ArchError(f"must be an integer, got {v!r}", i, name, op)
    v = int(v)
    if not lo <= v <= hi:
        raise ArchError(f"must be between {lo} and {hi}, got {v}", i, name, op)
    return v


def _normalize_layer(raw: Any, i: int) -> tuple[str, dict[str, Any], tuple[int, ...]]:
    if not isinstance(raw, dict):
        raise ArchError(f"a layer must be an object, got {type(raw).__name__}", i)
    op = raw.get("op")
    if op not in OPS:
        raise ArchError(f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}", i, "op")
    spec = OPS[op]
    unknown = set(raw) - set(spec.fields) - {"op", "inputs"}
    if unknown:
        raise ArchError(f"unknown field(s) {sorted(unknown)} for op '{op}'; "
                        f"allowed: {sorted(spec.fields)}", i, sorted(unknown)[0], op)
    fields: dict[str, Any] = {}
    for name, default in spec.fields.items():
        v = raw.get(name, default)
        if v is REQUIRED:
            raise ArchError("is required", i, name, op)
        if v is not None and name in spec.pair_fields:
            lo = 0 if name == "padding" else 1
            if isinstance(v, list | tuple):
                if len(v) != 2:
                    raise ArchError(f"must be an integer or a pair, got {v!r}", i, name, op)
                a, b = (_check_int(x, i, op, name, lo, MAX_KERNEL * 4) for x in v)
                v = a if a == b else [a, b]
            else:
                v = _check_int(v, i, op, name, lo, MAX_KERNEL * 4)
            if name == "kernel" and max(v if isinstance(v, list) else [v]) > MAX_KERNEL:
                raise ArchError(f"kernel larger than {MAX_KERNEL} is not supported", i, name, op)
        elif name in spec.int_fields:
            v = _check_int(v, i, op, name, 1, MAX_CHANNELS)
        elif isinstance(default, bool):
            if not isinstance(v, bool):
                raise ArchError(f"must be true or false, got {v!r}", i, name, op)
        elif name == "p" or name in spec.float_fields:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ArchError(f"must be a number, got {v!r}", i, name, op)
            v = float(v)
        elif name == "shape":
            if not isinstance(v, list | tuple) or not 1 <= len(v) <= 3:
                raise ArchError(f"must be a list of 1 to 3 sizes (batch excluded), got {v!r}",
                                i, name, op)
            v = [_check_int(x, i, op, name, 1, MAX_FEATURES) for x in v]
        elif op == "crop" and v is not None:
            v = _check_int(v, i, op, name, 1 if name == "channels" else 0,
                           MAX_CHANNELS if name == "channels" else MAX_SPATIAL)
        fields[name] = v
    # Fill derived defaults so equal networks have equal canonical JSON (and ids).
    if op == "conv" and fields["padding"] is None:
        k, d = fields["kernel"], fields["dilation"]
        k2 = k if isinstance(k, list) else [k, k]
        d2 = d if isinstance(d, list) else [d, d]
        pad = [d2[0] * (k2[0] // 2), d2[1] * (k2[1] // 2)]
        fields["padding"] = pad[0] if pad[0] == pad[1] else pad
    if op in ("maxpool", "avgpool") and fields["stride"] is None:
        fields["stride"] = fields["kernel"]
    if "inputs" in raw and raw["inputs"] is not None:
        ins = raw["inputs"]
        if isinstance(ins, int) and not isinstance(ins, bool):
            ins = [ins]
        if not isinstance(ins, list | tuple) or not ins:
            raise ArchError(f"must be a non-empty list of layer indices, got {ins!r}",
                            i, "inputs", op)
        inputs = tuple(_check_int(x, i, op, "inputs", INPUT, MAX_LAYERS) for x in ins)
        for x in inputs:
            if x >= i:
                raise ArchError(f"refers to layer {x}, which is not before layer {i} "
                                "(forward or self reference)", i, "inputs", op)
    else:
        inputs = (i - 1,)
    if not spec.min_inputs <= len(inputs) <= spec.max_inputs:
        want = (f"exactly {spec.min_inputs}" if spec.min_inputs == spec.max_inputs
                else f"{spec.min_inputs} to {spec.max_inputs}")
        raise ArchError(f"'{op}' takes {want} inputs, got {len(inputs)}", i, "inputs", op)
    return op, fields, inputs


def _canonical_fields(op: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without optional fields at their default (see :mod:`tapas.core.arch.ops`)."""
    spec = OPS[op]
    if not spec.optional:
        return fields
    return {k: v for k, v in fields.items()
            if k not in spec.optional or v != spec.fields[k]}


class Architecture:
    """A validated network description. Build with :meth:`from_dict` or :meth:`from_json`."""

    __slots__ = ("input_shape", "num_classes", "layers", "__dict__")

    def __init__(self, input_shape: Shape, num_classes: int,
                 layers: list[tuple[str, dict[str, Any], tuple[int, ...]]]) -> None:
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.layers = tuple(layers)
        self._infos = self._infer()

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_dict(cls, obj: Any) -> Architecture:
        """Validate a JSON-like dict (see the module docstring); raises :class:`ArchError`."""
        if not isinstance(obj, dict):
            raise ArchError(f"an architecture must be an object, got {type(obj).__name__}")
        unknown = set(obj) - {"input", "layers", "name"}
        if unknown:
            raise ArchError(f"unknown top-level field(s) {sorted(unknown)}",
                            field=sorted(unknown)[0])
        inp = obj.get("input")
        if not isinstance(inp, dict):
            raise ArchError("is required: an object with 'shape' and 'num_classes'", field="input")
        shape = inp.get("shape")
        if not isinstance(shape, list | tuple) or len(shape) != 3:
            raise ArchError(f"must be [channels, height, width], got {shape!r}",
                            field="input.shape")
        c = _check_int(shape[0], None, None, "input.shape", 1, MAX_CHANNELS)  # type: ignore[arg-type]
        h, w = (_check_int(s, None, None, "input.shape", 1, MAX_SPATIAL)  # type: ignore[arg-type]
                for s in shape[1:])
        if "num_classes" not in inp:
            raise ArchError("is required", field="input.num_classes")
        k = _check_int(inp["num_classes"], None, None, "input.num_classes", 2, MAX_CLASSES)  # type: ignore[arg-type]
        layers = obj.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ArchError("must be a non-empty list", field="layers")
        if len(layers) > MAX_LAYERS:
            raise ArchError(f"has {len(layers)} layers; at most {MAX_LAYERS} are supported",
                            field="layers")
        return cls((c, h, w), k, [_normalize_layer(raw, i) for i, raw in enumerate(layers)])

    @classmethod
    def from_canonical(cls, obj: dict[str, Any]) -> Architecture:
        """Rebuild from a canonical dict (``to_dict()`` output, e.g. read back from the LDE).

        Skips per-field normalisation, which such a dict has already been through;
        shape inference still runs, and anything not in canonical form falls back to
        the full :meth:`from_dict` validation.
        """
        try:
            inp = obj["input"]
            layers = []
            for d in obj["layers"]:
                spec = OPS[d["op"]]
                n_opt = sum(k in d for k in spec.optional)
                if len(d) != len(spec.fields) - len(spec.optional) + n_opt + 2:
                    return cls.from_dict(obj)
                layers.append((d["op"], {k: d.get(k, spec.fields[k]) if k in spec.optional
                                         else d[k] for k in spec.fields}, tuple(d["inputs"])))
            return cls(tuple(inp["shape"]), int(inp["num_classes"]), layers)
        except (KeyError, TypeError, IndexError):
            return cls.from_dict(obj)

    @classmethod
    def from_json(cls, text: str | bytes) -> Architecture:
        return cls.from_dict(json_value(text))

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """The canonical form: defaults filled in, inputs explicit."""
        return {
            "input": {"shape": list(self.input_shape), "num_classes": self.num_classes},
            "layers": [{"op": op, **_canonical_fields(op, fields), "inputs": list(inputs)}
                       for op, fields, inputs in self.layers],
        }

    @cached_property
    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @cached_property
    def id(self) -> str:
        """Content hash of the canonical JSON: the architecture's identity."""
        return hashlib.sha256(self.canonical_json.encode()).hexdigest()[:32]

    @cached_property
    def template_id(self) -> str:
        """Identity of the layer structure regardless of input shape and class count.

        The same network trained on datasets of different image size or number of
        classes has different ``id``s but one ``template_id``: the hash of the layer
        list without the input description and without the classifier's width.
        """
        layers = self.to_dict()["layers"]
        layers[-1] = {k: v for k, v in layers[-1].items() if k != "out"}
        text = json.dumps(layers, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Architecture) and self.canonical_json == other.canonical_json

    def __hash__(self) -> int:
        return hash(self.id)

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return (f"Architecture(id={self.id[:12]}, layers={len(self.layers)}, "
                f"params={self.params}, input={list(self.input_shape)})")

    # ---------------------------------------------------------------- analysis
    @property
    def infos(self) -> tuple[LayerInfo, ...]:
        """Per-layer shapes, params and FLOPs, in layer order."""
        return self._infos

    @property
    def params(self) -> int:
        return sum(li.params for li in self._infos)

    @property
    def flops(self) -> int:
        return sum(li.flops for li in self._infos)

    @property
    def output_shape(self) -> Shape:
        return self._infos[-1].out_shape

    def _infer(self) -> tuple[LayerInfo, ...]:
        n = len(self.layers)
        shapes: list[Shape] = []
        params = np.zeros(n, dtype=np.int64)
        flops = np.zeros(n, dtype=np.int64)
        depths: list[int] = []
        # Ancestor sets as int bitsets (bit j: layer j is layer i or an ancestor), unpacked
        # once into a matrix: exact cumulative params/FLOPs on DAGs, where shared
        # ancestors must count once.
        masks: list[int] = []
        for i, (op, fields, inputs) in enumerate(self.layers):
            in_shapes = [self.input_shape if x == INPUT else shapes[x] for x in inputs]
            try:
                out, p, f = OPS[op].rule(fields, in_shapes)
            except _Fail as e:
                raise ArchError(str(e), i, e.field, op) from None
            if len(out) == 3 and out[0] > MAX_CHANNELS:
                raise ArchError(f"output of {out[0]} channels is absurdly large", i, op=op)
            if p > MAX_PARAMS or f > MAX_PARAMS * 1000:
                raise ArchError(f"layer of {p:,} parameters is over the limit of "
                                f"{MAX_PARAMS:,}", i, op=op)
            shapes.append(tuple(out))
            params[i], flops[i] = p, f
            m = 1 << i
            d = 0
            for x in inputs:
                if x != INPUT:
                    m |= masks[x]
                    d = max(d, depths[x])
            masks.append(m)
            depths.append(d + (op in WEIGHTED_OPS))
        nbytes = (n + 7) // 8
        bits = np.frombuffer(b"".join(m.to_bytes(nbytes, "little") for m in masks), np.uint8)
        anc = np.unpackbits(bits.reshape(n, nbytes), axis=1, bitorder="little")[:, :n]
        cum_p = anc @ params
        cum_f = anc @ flops
        if int(params.sum()) > MAX_PARAMS:
            raise ArchError(f"network has {int(params.sum()):,} parameters, over the limit of "
                            f"{MAX_PARAMS:,}")
        infos = [
            LayerInfo(i, op, fields, inputs,
                      tuple(self.input_shape if x == INPUT else shapes[x] for x in inputs),
                      shapes[i], int(params[i]), int(flops[i]), int(cum_p[i]), int(cum_f[i]),
                      depths[i])
            for i, (op, fields, inputs) in enumerate(self.layers)
        ]
        last = infos[-1]
        if last.out_shape != (self.num_classes,):
            raise ArchError(
                f"the last layer must output ({self.num_classes},) class scores for "
                f"num_classes={self.num_classes}, but it outputs {list(last.out_shape)}",
                last.index, op=last.op)
        return tuple(infos)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: id, totals and the layer table."""
        return {
            "id": self.id,
            "input": {"shape": list(self.input_shape), "num_classes": self.num_classes},
            "params": self.params,
            "flops": self.flops,
            "depth": self._infos[-1].depth,
            "n_layers": len(self.layers),
            "layers": [
                {"index": li.index, "op": li.op, "inputs": list(li.inputs),
                 "out_shape": list(li.out_shape), "params": li.params, "flops": li.flops}
                for li in self._infos
            ],
        }


class LayerBuilder:
    """Collects the ``layers`` list of an IR dict, one :meth:`add` a layer (the cell
    spaces' network builders extend it with their composite blocks)."""

    def __init__(self) -> None:
        self.layers: list[dict[str, Any]] = []

    def add(self, op: str, inputs: int | list[int], **fields: Any) -> int:
        """Append layer ``op`` reading ``inputs`` (an index, or a list); its index."""
        ins = [inputs] if isinstance(inputs, int) else inputs
        self.layers.append({"op": op, **fields, "inputs": ins})
        return len(self.layers) - 1
