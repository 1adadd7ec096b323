"""NAS-Bench-Macro strings, expanded into the benchmark's network.

A network is an 8-character string, one character per searchable layer: ``0`` an
identity, ``1`` a MobileNetV2 inverted residual block of kernel 3 and expansion 3,
``2`` one of kernel 5 and expansion 6 (Su et al., CVPR 2021; 3^8 = 6,561 strings).
The layers form three stages of 2, 3 and 3; the first layer of each stage has stride 2
and doubles the width (32 -> 64 -> 128 -> 256).

The network: a 3x3 conv-BN-ReLU stem of 32 channels at stride 1, the eight layers, a
1x1 conv-BN-ReLU head of 1,280 channels, global average pooling and a linear
classifier. An inverted residual block is 1x1 conv-BN-ReLU to ``t * in`` channels,
a depthwise kxk conv-BN-ReLU with the layer's stride, 1x1 conv-BN to the output, and
a residual add when input and output shapes match. An identity layer that changes the
shape (the first of a stage) is a strided 1x1 conv-BN projection; any other identity
leaves no layer. Convs have no bias, BN is affine, the classifier has a bias.

Strings that differ only in where a stage's later identities sit are one network: the
benchmark trains the "real" string (:func:`canonical_string`), which keeps each stage's
first layer and moves its other non-identity layers before its identities.
"""

from __future__ import annotations

from typing import Any

from tapas.core.arch.ir import INPUT, Architecture, LayerBuilder
from tapas.core.arch.ops import ArchError

MACRO_CHOICES = "012"
"""``0`` identity, ``1`` inverted residual k3 e3, ``2`` inverted residual k5 e6."""
STAGES = (2, 3, 3)
LENGTH = sum(STAGES)
STEM, HEAD = 32, 1280
_BLOCKS = {"1": (3, 3), "2": (5, 6)}  # choice -> (kernel, expansion)


def parse_string(text: Any) -> str:
    """Validate a NAS-Bench-Macro string (surrounding blanks dropped)."""
    if not isinstance(text, str):
        raise ArchError(f"a NAS-Bench-Macro network is a string, got {type(text).__name__}",
                        field="arch")
    s = text.strip()
    if len(s) != LENGTH or any(ch not in MACRO_CHOICES for ch in s):
        raise ArchError(f"a NAS-Bench-Macro network is {LENGTH} characters from "
                        f"'{MACRO_CHOICES}' (0 identity, 1 MB k3 e3, 2 MB k5 e6), got {s!r}",
                        field="arch")
    return s


def stages(text: str) -> list[str]:
    """The string cut into its three stages."""
    out, i = [], 0
    for n in STAGES:
        out.append(text[i:i + n])
        i += n
    return out


def canonical_string(text: Any) -> str:
    """The string the benchmark trained for ``text`` (its ``trained_arch``): in each
    stage the first layer stays and the non-identity layers move before the identities."""
    out = []
    for st in stages(parse_string(text)):
        rest = st[1:]
        out.append(st[0] + rest.replace("0", "") + "0" * rest.count("0"))
    return "".join(out)


def macro_dict(text: Any, num_classes: int = 10,
               input_shape: tuple[int, int, int] = (3, 32, 32), stem: int = STEM,
               head: int = HEAD) -> dict[str, Any]:
    """The IR dict of the benchmark network of ``text`` (see the module); ``stem`` and
    ``head`` scale its widths down for small data (the stages stay 2x, 4x, 8x the stem)."""
    b = LayerBuilder()
    x = b.add("relu", b.add("bn", b.add("conv", INPUT, out=stem, kernel=3)))
    c = stem
    for st in stages(parse_string(text)):
        for j, ch in enumerate(st):
            stride, out = (2, 2 * c) if j == 0 else (1, c)
            if ch == "0":
                if j == 0:
                    x = b.add("bn", b.add("conv", x, out=out, kernel=1, stride=stride))
            else:
                k, t = _BLOCKS[ch]
                y = b.add("relu", b.add("bn", b.add("conv", x, out=c * t, kernel=1)))
                y = b.add("conv", y, out=c * t, kernel=k, stride=stride, groups=c * t)
                y = b.add("relu", b.add("bn", y))
                y = b.add("bn", b.add("conv", y, out=out, kernel=1))
                x = b.add("add", [y, x]) if j else y
            c = out
    x = b.add("relu", b.add("bn", b.add("conv", x, out=head, kernel=1)))
    b.add("linear", b.add("gap", x), out=num_classes)
    return {"input": {"shape": list(input_shape), "num_classes": num_classes},
            "layers": b.layers}


def from_macro(text: Any, num_classes: int = 10,
               input_shape: tuple[int, int, int] = (3, 32, 32), stem: int = STEM,
               head: int = HEAD) -> Architecture:
    """Expand a NAS-Bench-Macro string into the benchmark's network (CIFAR-10 by
    default); its ``params`` equal the benchmark's, and its ``flops`` the benchmark's
    plus the classifier's bias (``num_classes``), which the benchmark leaves out.
    A smaller ``stem``/``head`` gives the scaled-down networks of the ``macro-small``
    space."""
    return Architecture.from_dict(macro_dict(text, num_classes, tuple(input_shape), stem,
                                             head))
