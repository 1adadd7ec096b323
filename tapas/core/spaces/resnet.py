"""ResNet-style networks: stages of basic or bottleneck residual blocks.

A genotype is ``{"space": "resnet", "block": "basic" | "bottleneck", "stem": 16,
"stages": [{"width": 16, "depth": 2}, {"width": 32, "depth": 2}, ...]}``, the CIFAR
form of He et al.'s networks:

* a 3x3 conv-BN-ReLU stem of ``stem`` channels at stride 1;
* one to four stages of ``depth`` blocks of ``width`` output channels, the first block
  of every stage after the first at stride 2;
* a basic block is 3x3 conv-BN-ReLU then 3x3 conv-BN; a bottleneck block 1x1 conv-BN-ReLU
  to ``width // 4``, 3x3 conv-BN-ReLU, 1x1 conv-BN back to ``width`` (so ``width`` is
  always a block's output, 256 for ResNet-50's first stage); the block's input is added,
  through a strided 1x1 conv-BN projection where the shape changes, then a ReLU;
* global average pooling and a linear classifier.

ResNet-18 for CIFAR is ``basic``, stem 64, stages 64/128/256/512 of depth 2. Sampling
draws the scaled-down family of the starter data (stem 8-16, widths 8-32, depths 1-3,
two or three stages) that trains in a few core-seconds on 32x32 inputs; validation
accepts any size up to ImageNet widths. Mutation changes one gene.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from tapas.core.arch import INPUT, Architecture
from tapas.core.arch.ir import LayerBuilder
from tapas.core.spaces.base import DictSpace

BLOCKS = ("basic", "bottleneck")
BOTTLENECK = 4
"""A bottleneck block's 3x3 conv has ``width // BOTTLENECK`` channels."""
MAX_STAGES = 4
MAX_DEPTH = 8
MAX_WIDTH = 4096
MIN_SIDE = 4
#: What :meth:`ResNet.sample` draws: the scaled-down family of the starter data.
SAMPLE_STEMS = (8, 12, 16)
SAMPLE_WIDTHS = (8, 12, 16, 24, 32)
SAMPLE_DEPTHS = (1, 2, 3)
SAMPLE_STAGES = (2, 3)

Genotype = dict[str, Any]


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return not isinstance(v, bool) and isinstance(v, int) and lo <= v <= hi


class _Builder(LayerBuilder):
    def conv_bn(self, x: int, out: int, kernel: int, stride: int = 1, relu: bool = True) -> int:
        x = self.add("bn", self.add("conv", x, out=out, kernel=kernel, stride=stride))
        return self.add("relu", x) if relu else x

    def block(self, x: int, c_in: int, width: int, stride: int, kind: str) -> int:
        if kind == "basic":
            y = self.conv_bn(x, width, 3, stride)
            y = self.conv_bn(y, width, 3, relu=False)
        else:
            mid = width // BOTTLENECK
            y = self.conv_bn(x, mid, 1)
            y = self.conv_bn(y, mid, 3, stride)
            y = self.conv_bn(y, width, 1, relu=False)
        if stride != 1 or c_in != width:
            x = self.conv_bn(x, width, 1, stride, relu=False)
        return self.add("relu", self.add("add", [y, x]))


class ResNet(DictSpace):
    """Stages of basic or bottleneck residual blocks (CIFAR-style ResNets)."""

    name = "resnet"
    description = "ResNet-style stages of basic or bottleneck blocks (widths, depth per stage)"
    inputs = f"inputs whose sides are both at least {MIN_SIDE}"

    def sample(self, rng: random.Random) -> Genotype:
        """A scaled-down ResNet: widths grow (or stay) from stage to stage."""
        stages = []
        width = rng.choice(SAMPLE_WIDTHS[:3])
        for _ in range(rng.choice(SAMPLE_STAGES)):
            stages.append({"width": width, "depth": rng.choice(SAMPLE_DEPTHS)})
            width = rng.choice([w for w in SAMPLE_WIDTHS if w >= width])
        return {"space": self.tag, "block": rng.choice(BLOCKS), "stem": rng.choice(SAMPLE_STEMS),
                "stages": stages}

    def validate(self, genotype: Genotype) -> None:
        self._check_tag(genotype)
        if genotype.get("block") not in BLOCKS:
            raise ValueError(f"resnet genotype: 'block' must be one of {BLOCKS}")
        if not _is_int(genotype.get("stem"), 1, MAX_WIDTH):
            raise ValueError(f"resnet genotype: 'stem' must be an integer in [1, {MAX_WIDTH}]")
        stages = genotype.get("stages")
        if not isinstance(stages, list) or not 1 <= len(stages) <= MAX_STAGES:
            raise ValueError(f"resnet genotype: 'stages' must list 1 to {MAX_STAGES} stages")
        step = BOTTLENECK if genotype["block"] == "bottleneck" else 1
        for i, st in enumerate(stages):
            if not isinstance(st, dict) or set(st) != {"width", "depth"}:
                raise ValueError(f"resnet genotype: stage {i} must be {{'width', 'depth'}}")
            if not _is_int(st["width"], step, MAX_WIDTH) or st["width"] % step:
                raise ValueError(f"resnet genotype: stage {i}'s 'width' must be an integer in "
                                 f"[{step}, {MAX_WIDTH}]"
                                 + (f" divisible by {step}" if step > 1 else ""))
            if not _is_int(st["depth"], 1, MAX_DEPTH):
                raise ValueError(f"resnet genotype: stage {i}'s 'depth' must be an integer in "
                                 f"[1, {MAX_DEPTH}]")

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        """Strided 3x3 convs shrink any side to at least 1; below 4 a stage would
        down-sample nothing."""
        return min(input_shape[1:]) >= MIN_SIDE

    def _network(self, genotype: Genotype, input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        b = _Builder()
        x = b.conv_bn(INPUT, genotype["stem"], 3)
        c = genotype["stem"]
        for i, st in enumerate(genotype["stages"]):
            for j in range(st["depth"]):
                x = b.block(x, c, st["width"], 2 if i and not j else 1, genotype["block"])
                c = st["width"]
        b.add("linear", b.add("gap", x), out=num_classes)
        return Architecture.from_dict({"input": {"shape": list(input_shape),
                                                 "num_classes": num_classes},
                                       "layers": b.layers})

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        """One gene changed: the block kind, the stem, one stage's width or depth, or a
        stage added or dropped at the end."""
        self.validate(genotype)
        g = copy.deepcopy(genotype)
        stages = g["stages"]
        moves = ["block", "stem", "width", "depth"]
        if len(stages) < MAX_STAGES:
            moves.append("add")
        if len(stages) > 1:
            moves.append("drop")
        move = rng.choice(moves)
        if move == "block":
            g["block"] = "basic" if g["block"] == "bottleneck" else "bottleneck"
            for st in stages:  # a bottleneck's width must split in four
                st["width"] = max(BOTTLENECK, st["width"] - st["width"] % BOTTLENECK)
        elif move == "stem":
            g["stem"] = rng.choice([s for s in SAMPLE_STEMS if s != g["stem"]])
        elif move == "width":
            st = rng.choice(stages)
            st["width"] = rng.choice([w for w in SAMPLE_WIDTHS if w != st["width"]])
        elif move == "depth":
            st = rng.choice(stages)
            st["depth"] = rng.choice([d for d in range(1, MAX_DEPTH + 1)
                                      if abs(d - st["depth"]) == 1])
        elif move == "add":
            stages.append({"width": stages[-1]["width"], "depth": rng.choice(SAMPLE_DEPTHS)})
        else:
            stages.pop()
        return g

    def describe(self, genotype: Genotype) -> str:
        """Block kind, stem and ``width x depth`` per stage."""
        body = " ".join(f"{s['width']}x{s['depth']}" for s in genotype["stages"])
        return f"{genotype['block']} stem={genotype['stem']} {body}"


SPACE = ResNet()
