"""Accel-NASBench designs, expanded into the benchmark's MBConv network.

A design sets four variables for each of seven blocks, named as the benchmark's
configuration space names them: ``block{b}_e`` (expansion, 1, 4 or 6), ``block{b}_k``
(depthwise kernel, 3 or 5), ``block{b}_l`` (layers, 1 to 3; block 5 up to 4) and
``block{b}_se`` (squeeze-and-excitation, a boolean; 0/1 as the published table
writes it are read too). As JSON: ``{"block0_e": 6, "block0_k": 3, "block0_l": 1,
"block0_se": false, ..., "block6_se": true}``.

The network (an EfficientNet-B0-style MBConv network with ReLU, as the benchmark
trained it on ImageNet at 224x224): a 3x3 stride-2 conv-BN-ReLU stem of 32 channels;
the seven blocks (strides 1, 2, 2, 2, 1, 2, 1; widths 16, 24, 40, 80, 112, 192, 320),
whose first layer takes the block's stride and the others stride 1; a 1x1 conv-BN-ReLU
head of 1,280 channels, global average pooling, dropout 0.2 and a linear classifier.
An MBConv layer of input ``c`` is a 1x1 conv-BN-ReLU to ``e * c`` channels (absent when
``e`` is 1), a depthwise kxk conv-BN-ReLU, when ``se`` a squeeze-and-excitation gate
(average pool, 1x1 conv with bias to ``max(1, c // 4)``, ReLU, 1x1 conv with bias back,
hard sigmoid, multiplied in), a 1x1 conv-BN to the output, and a residual add at stride
1 when the widths match. Stochastic depth on the residual branch is a training-time
device that changes no evaluated output; it is not part of the description.
"""

from __future__ import annotations

from typing import Any

from tapas.core.arch.ir import INPUT, Architecture, LayerBuilder
from tapas.core.arch.ops import ArchError, json_value

BLOCKS = 7
STRIDES = (1, 2, 2, 2, 1, 2, 1)
WIDTHS = (16, 24, 40, 80, 112, 192, 320)
STEM, HEAD = 32, 1280
EXPANSIONS = (1, 4, 6)
KERNELS = (3, 5)
VARIABLES = tuple(f"block{b}_{v}" for b in range(BLOCKS) for v in ("e", "k", "l", "se"))
"""The 28 variable names of a design, in the benchmark's order."""


def layer_choices(block: int) -> tuple[int, ...]:
    """How many layers block ``block`` may have (block 5 allows one more)."""
    return (1, 2, 3, 4) if block == 5 else (1, 2, 3)


def _choice(obj: dict[str, Any], name: str, allowed: tuple[int, ...]) -> int:
    v = obj[name]
    if isinstance(v, bool) or not isinstance(v, int | float) or v not in allowed:
        raise ArchError(f"must be one of {list(allowed)}, got {v!r}", field=name)
    return int(v)


def parse_design(obj: Any) -> dict[str, Any]:
    """A validated design (dict or JSON text) with ``se`` as booleans; extra keys other
    than ``space`` are refused, so a misspelt variable is named, not ignored."""
    if isinstance(obj, str):
        obj = json_value(obj, "Accel-NASBench design ", "design")
    if not isinstance(obj, dict):
        raise ArchError(f"an Accel-NASBench design is an object of {len(VARIABLES)} block "
                        f"variables, got {type(obj).__name__}", field="design")
    missing = [v for v in VARIABLES if v not in obj]
    extra = sorted(set(obj) - set(VARIABLES) - {"space"})
    if missing or extra:
        raise ArchError("an Accel-NASBench design needs exactly block0_e ... block6_se"
                        + (f"; missing {missing[:4]}" if missing else "")
                        + (f"; unknown {extra[:4]}" if extra else ""),
                        field=(missing or extra)[0])
    out: dict[str, Any] = {}
    for b in range(BLOCKS):
        out[f"block{b}_e"] = _choice(obj, f"block{b}_e", EXPANSIONS)
        out[f"block{b}_k"] = _choice(obj, f"block{b}_k", KERNELS)
        out[f"block{b}_l"] = _choice(obj, f"block{b}_l", layer_choices(b))
        se = obj[f"block{b}_se"]
        if se not in (0, 1) or isinstance(se, float):  # True == 1 and False == 0
            raise ArchError(f"must be true or false (or 1 / 0), got {se!r}",
                            field=f"block{b}_se")
        out[f"block{b}_se"] = bool(se)
    return out


def accel_dict(design: Any, num_classes: int = 1000,
               input_shape: tuple[int, int, int] = (3, 224, 224)) -> dict[str, Any]:
    """The IR dict of the benchmark network of ``design`` (see the module)."""
    d = parse_design(design)
    b = LayerBuilder()
    x = b.add("relu", b.add("bn", b.add("conv", INPUT, out=STEM, kernel=3, stride=2)))
    c = STEM
    for blk in range(BLOCKS):
        e, k, se = d[f"block{blk}_e"], d[f"block{blk}_k"], d[f"block{blk}_se"]
        out = WIDTHS[blk]
        for i in range(d[f"block{blk}_l"]):
            stride = STRIDES[blk] if i == 0 else 1
            hidden = c * e
            y = x
            if e != 1:
                y = b.add("relu", b.add("bn", b.add("conv", y, out=hidden, kernel=1)))
            y = b.add("conv", y, out=hidden, kernel=k, stride=stride, groups=hidden)
            y = b.add("relu", b.add("bn", y))
            if se:
                g = b.add("gap", y, flatten=False)
                g = b.add("relu", b.add("conv", g, out=max(1, c // 4), kernel=1, bias=True))
                g = b.add("hardsigmoid", b.add("conv", g, out=hidden, kernel=1, bias=True))
                y = b.add("mul", [y, g])
            y = b.add("bn", b.add("conv", y, out=out, kernel=1))
            x = b.add("add", [y, x]) if stride == 1 and c == out else y
            c = out
    x = b.add("relu", b.add("bn", b.add("conv", x, out=HEAD, kernel=1)))
    x = b.add("dropout", b.add("gap", x), p=0.2)
    b.add("linear", x, out=num_classes)
    return {"input": {"shape": list(input_shape), "num_classes": num_classes},
            "layers": b.layers}


def thop_macs(arch: Architecture) -> int:
    """Multiply-accumulates as ``thop`` counts them, the count the benchmark publishes
    (``macs_M`` x 1e6): conv and linear weights times output positions (biases not
    counted), 4 per batch-norm output value, and ``C x (H*W + 1)`` per global average
    pool. The IR's ``flops`` count conv and linear layers only, biases included."""
    total = 0
    for li in arch.infos:
        if li.op == "conv":
            bias = li.fields["out"] if li.fields["bias"] else 0
            total += li.flops - bias * li.out_shape[1] * li.out_shape[2]
        elif li.op == "linear":
            total += li.flops - (li.fields["out"] if li.fields["bias"] else 0)
        elif li.op == "bn":
            c, h, w = li.out_shape
            total += 4 * c * h * w
        elif li.op == "gap":
            c, h, w = li.in_shapes[0]
            total += c * (h * w + 1)
    return total


def from_accel(design: Any, num_classes: int = 1000,
               input_shape: tuple[int, int, int] = (3, 224, 224)) -> Architecture:
    """Expand an Accel-NASBench design into the benchmark's network (ImageNet at
    224x224 by default); its ``params`` equal the benchmark's ``params_M``."""
    return Architecture.from_dict(accel_dict(design, num_classes, tuple(input_shape)))
