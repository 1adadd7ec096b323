"""Chain CNNs: a documented search space of plain and residual convolutional chains.

A genotype is a small JSON-able dict, independent of the dataset::

    {"space": "chain",
     "stages": [{"width": 16, "blocks": [{"kind": "conv", "kernel": 3},
                                         {"kind": "res", "kernel": 3}]}, ...],
     "down": "max" | "avg" | "stride",   # how stages are joined (one 2x step each)
     "bn": "post" | "pre" | "none",      # conv-BN-ReLU, conv-ReLU-BN, or no BN
     "dropout": 0.0 | 0.1 | 0.25,         # after every stage but the last
     "head": {"pool": "gap" | "flatten", "hidden": 0 | 32 | 64, "dropout": 0.0 | 0.25}}

Design choices that make one genotype "the same architecture" on every dataset
(one :attr:`tapas.core.arch.Architecture.template_id`):

* widths are absolute channel counts, never scaled by the input;
* there are at most ``MAX_STAGES = 3`` stages, so at most two 2x down-sampling
  steps, which every supported input (down to 4x4 and 5x8) survives; the layer
  list never depends on the input size;
* only the classifier's width (``num_classes``) and the flattened feature count
  (not a layer field) change with the dataset.

Space size: 1-3 stages x widths {8, 12, 16, 24} x 1-3 blocks of {conv k1/3/5,
residual k3/5} x 3 down-sampling kinds x 3 BN placements x dropout x heads:
well over 10^7 genotypes.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from tapas.core.arch import INPUT, Architecture
from tapas.core.spaces.base import DictSpace

MAX_STAGES = 3
MAX_BLOCKS = 3
WIDTHS = (8, 12, 16, 24)
BLOCKS: tuple[dict[str, Any], ...] = (
    {"kind": "conv", "kernel": 1}, {"kind": "conv", "kernel": 3}, {"kind": "conv", "kernel": 5},
    {"kind": "res", "kernel": 3}, {"kind": "res", "kernel": 5},
)
BLOCK_WEIGHTS = (1, 4, 2, 2, 1)
DOWNS = ("max", "avg", "stride")
BNS = ("post", "pre", "none")
BN_WEIGHTS = (5, 2, 2)
DROPOUTS = (0.0, 0.1, 0.25)
HEAD_POOLS = ("gap", "flatten")
HEAD_HIDDEN = (0, 32, 64)
HEAD_DROPOUTS = (0.0, 0.25)

Genotype = dict[str, Any]


def _block(rng: random.Random) -> dict[str, Any]:
    return dict(rng.choices(BLOCKS, BLOCK_WEIGHTS)[0])








class _Layers:
    def __init__(self) -> None:
        self.layers: list[dict[str, Any]] = []

    def add(self, op: str, inputs: int | list[int], **fields: Any) -> int:
        self.layers.append({"op": op, **fields,
                            "inputs": [inputs] if isinstance(inputs, int) else inputs})
        return len(self.layers) - 1

    def conv_unit(self, x: int, out: int, kernel: int, bn: str, stride: int = 1,
                  act: bool = True) -> int:
        x = self.add("conv", x, out=out, kernel=kernel, stride=stride, padding=kernel // 2)
        if bn == "post":
            x = self.add("bn", x)
        if act:
            x = self.add("relu", x)
        if bn == "pre":
            x = self.add("bn", x)
        return x


class Chain(DictSpace):
    """Plain and residual convolutional chains (the starter data's main space)."""

    name = "chain"
    description = "plain and residual CNN chains of 1-3 stages (starter data)"
    inputs = "inputs whose sides are both at least 4"

    def sample(self, rng: random.Random) -> Genotype:
        n_stages = rng.choice((1, 2, 2, 3, 3))
        width = rng.choice(WIDTHS[:3])
        stages = []
        for _ in range(n_stages):
            stages.append({"width": width,
                           "blocks": [_block(rng) for _ in range(rng.randint(1, MAX_BLOCKS))]})
            # widths grow (or stay) from stage to stage, as in most hand-designed CNNs
            width = rng.choice([w for w in WIDTHS if w >= width])
        head_pool = rng.choice(HEAD_POOLS)
        return {
            "space": self.tag,
            "stages": stages,
            "down": rng.choice(DOWNS),
            "bn": rng.choices(BNS, BN_WEIGHTS)[0],
            "dropout": rng.choice(DROPOUTS),
            "head": {"pool": head_pool, "hidden": rng.choice(HEAD_HIDDEN),
                     "dropout": rng.choice(HEAD_DROPOUTS)},
        }

    def validate(self, genotype: Genotype) -> None:
        self._check_tag(genotype)
        stages = genotype.get("stages")
        if not isinstance(stages, list) or not 1 <= len(stages) <= MAX_STAGES:
            raise ValueError(f"chain genotype: 'stages' must list 1 to {MAX_STAGES} stages")
        for s, st in enumerate(stages):
            if st.get("width") not in WIDTHS:
                raise ValueError(f"chain genotype: stages[{s}].width must be one of {WIDTHS}")
            blocks = st.get("blocks")
            if not isinstance(blocks, list) or not 1 <= len(blocks) <= MAX_BLOCKS:
                raise ValueError(f"chain genotype: stages[{s}].blocks must hold 1 to "
                                 f"{MAX_BLOCKS} blocks")
            for b, blk in enumerate(blocks):
                if blk not in BLOCKS:
                    raise ValueError(f"chain genotype: stages[{s}].blocks[{b}] = {blk!r} is not "
                                     f"one of {list(BLOCKS)}")
        for key, allowed in (("down", DOWNS), ("bn", BNS), ("dropout", DROPOUTS)):
            if genotype.get(key) not in allowed:
                raise ValueError(f"chain genotype: {key!r} must be one of {allowed}")
        head = genotype.get("head")
        if not isinstance(head, dict) or head.get("pool") not in HEAD_POOLS or head.get(
                "hidden") not in HEAD_HIDDEN or head.get("dropout") not in HEAD_DROPOUTS:
            raise ValueError("chain genotype: 'head' must be {pool: gap|flatten, hidden: 0|32|64, "
                             "dropout: 0|0.25}")

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        """Two 2x down-sampling steps must leave a non-empty map."""
        return min(input_shape[1:]) >= 4

    def _network(self, genotype: Genotype, input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        g = _Layers()
        bn = genotype["bn"]
        x, c = INPUT, input_shape[0]
        stages = genotype["stages"]
        for s, st in enumerate(stages):
            w = st["width"]
            for b, blk in enumerate(st["blocks"]):
                # the first block of a later stage down-samples by a stride-2 conv if asked
                stride = 2 if (s > 0 and b == 0 and genotype["down"] == "stride") else 1
                k = blk["kernel"]
                if blk["kind"] == "conv":
                    x = g.conv_unit(x, w, k, bn, stride)
                else:
                    short = x
                    if c != w or stride != 1:
                        short = g.add("conv", x, out=w, kernel=1, stride=stride, padding=0)
                    y = g.conv_unit(x, w, k, bn, stride)
                    y = g.conv_unit(y, w, k, "post" if bn != "none" else "none", act=False)
                    x = g.add("relu", g.add("add", [short, y]))
                c = w
            if s < len(stages) - 1:
                if genotype["down"] in ("max", "avg"):
                    x = g.add(f"{genotype['down']}pool", x, kernel=2, stride=2)
                if genotype["dropout"] > 0:
                    x = g.add("dropout", x, p=genotype["dropout"])
        head = genotype["head"]
        x = g.add(head["pool"], x)
        if head["hidden"]:
            x = g.add("relu", g.add("linear", x, out=head["hidden"]))
        if head["dropout"] > 0:
            x = g.add("dropout", x, p=head["dropout"])
        g.add("linear", x, out=num_classes)
        return Architecture.from_dict({
            "input": {"shape": list(input_shape), "num_classes": num_classes},
            "layers": g.layers})

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        """Change a block, add or remove a block, change a stage width, add or remove a
        stage, or change the down-sampling, BN placement, dropout or head."""
        self.validate(genotype)
        for _ in range(100):
            g = copy.deepcopy(genotype)
            stages = g["stages"]
            s = rng.randrange(len(stages))
            kind = rng.choice(("block", "add_block", "del_block", "width", "stage", "down", "bn",
                               "dropout", "head"))
            if kind == "block":
                b = rng.randrange(len(stages[s]["blocks"]))
                stages[s]["blocks"][b] = _block(rng)
            elif kind == "add_block" and len(stages[s]["blocks"]) < MAX_BLOCKS:
                stages[s]["blocks"].insert(rng.randint(0, len(stages[s]["blocks"])), _block(rng))
            elif kind == "del_block" and len(stages[s]["blocks"]) > 1:
                stages[s]["blocks"].pop(rng.randrange(len(stages[s]["blocks"])))
            elif kind == "width":
                stages[s]["width"] = rng.choice(WIDTHS)
            elif kind == "stage":
                if len(stages) < MAX_STAGES and (len(stages) == 1 or rng.random() < 0.5):
                    stages.append({"width": rng.choice(WIDTHS), "blocks": [_block(rng)]})
                elif len(stages) > 1:
                    stages.pop(s)
            elif kind == "down":
                g["down"] = rng.choice(DOWNS)
            elif kind == "bn":
                g["bn"] = rng.choice(BNS)
            elif kind == "dropout":
                g["dropout"] = rng.choice(DROPOUTS)
            elif kind == "head":
                field = rng.choice(("pool", "hidden", "dropout"))
                choices = {"pool": HEAD_POOLS, "hidden": HEAD_HIDDEN, "dropout": HEAD_DROPOUTS}
                g["head"][field] = rng.choice(choices[field])
            if g != genotype:
                return g
        raise RuntimeError("mutate found no different genotype in 100 tries")  # unreachable

    def describe(self, genotype: Genotype) -> str:
        """A short label naming every choice, so distinct networks get distinct labels, e.g.
        ``16[c3,r3] > 32[c5] max bn=post drop=0.1 head=gap+fc32+drop0.25``."""
        st = " > ".join(f"{s['width']}[" + ",".join(f"{b['kind'][0]}{b['kernel']}"
                                                     for b in s["blocks"]) + "]"
                        for s in genotype["stages"])
        head = genotype["head"]
        h = head["pool"] + (f"+fc{head['hidden']}" if head.get("hidden") else "") + (
            f"+drop{head['dropout']:g}" if head.get("dropout") else "")
        drop = f" drop={genotype['dropout']:g}" if genotype.get("dropout") else ""
        return f"{st} {genotype['down']} bn={genotype['bn']}{drop} head={h}"


SPACE = Chain()
