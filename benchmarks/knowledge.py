"""``python -m benchmarks.knowledge``: what a fresh default install knows about each space.

Issue 34 asks the default install to know the families researchers bring (NAS-Bench-101,
DARTS, MobileNet-style, ResNet-style), not only NAS-Bench-201. This bench measures the
gap as it stands, with the issue's stable keys:

* ``in_domain_share``: a fresh database (seeded with the default data, its shipped
  predictors registered) scores ``n`` seeded random networks per space at 3x32x32 and 10
  classes for CIFAR-10 (its stored DCN); the share flagged ``in_domain``. ``accel`` is
  scored at 3x224x224 and 1,000 classes (its networks are ImageNet networks) for the same
  DCN; ``resnet-style`` is seeded CIFAR-style ResNets (basic blocks, 3 or 4 stages of 1-3
  blocks, base width 16-64) written in torch and imported with ``from_module``.
* ``seen``: Kendall tau on a held-out part of a published table after fitting on
  ``n_train`` of its networks (the in-dataset scenario A of :mod:`benchmarks.evaluate`):
  NAS-Bench-101 (1,000 cells, 108-epoch validation accuracy; 500 train, 500 test) and
  NAS-Bench-Macro (3,969 distinct networks, mean test accuracy of three seeds; 500 train,
  the rest test). TAP with its default hyper-parameters, the project's gradient boosting
  baseline, and the parameter-count ranking as a floor.
* ``orderings``: pairs any researcher knows on a CIFAR-like target (DARTS_V2 above an
  all-pooling cell, ResNet-18 above an MLP, ...), each "a above b by the fresh install's
  predicted mean"; which hold. Targets the product does not meet yet: reported, not
  asserted.
* ``unseen_families``: ``null`` until the project's own experiments on these families
  (issue 34, Build item 2) exist.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from benchmarks import run_cli
from predictor.table import SHARED_DATA
from tapas.app.cli.common import fail, print_json

CIFAR = (3, 32, 32)
IMAGENET = (3, 224, 224)
SPACES = ("nb201", "darts", "nb101", "macro", "accel", "resnet-style")
UNSEEN_NOTE = ("the project's own experiments on the new families across datasets "
               "(issue 34, Build item 2) are not generated yet")


class BenchError(RuntimeError):
    """A benchmark that cannot run (e.g. missing data); the CLI prints it as one line."""


# ------------------------------------------------------------------ torch networks


def _torch_nets() -> Any:
    """The torch module classes of the ResNet-style family and the ordering pairs (torch
    is imported here, when the bench needs it)."""
    from torch import nn

    def conv_bn(c_in: int, c_out: int, k: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False),
                             nn.BatchNorm2d(c_out))

    class Block(nn.Module):
        """A basic residual block; a 1x1 projection where the shape changes."""

        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(conv_bn(c_in, c_out, 3, stride), nn.ReLU(),
                                      conv_bn(c_out, c_out, 3, 1))
            self.short = (conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out
                          else nn.Identity())
            self.act = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.act(self.body(x) + self.short(x))

    class ResNet(nn.Module):
        """A CIFAR-style ResNet: 3x3 stem, stages of basic blocks doubling the width."""

        def __init__(self, blocks: tuple[int, ...], width: int, num_classes: int) -> None:
            super().__init__()
            layers: list[nn.Module] = [conv_bn(3, width, 3, 1), nn.ReLU()]
            c = width
            for i, n in enumerate(blocks):
                out = width * 2 ** i
                for j in range(n):
                    layers.append(Block(c, out, 2 if i and not j else 1))
                    c = out
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                      nn.Linear(c, num_classes))

        def forward(self, x: Any) -> Any:
            return self.head(self.features(x))

    class CNN(nn.Module):
        """Plain conv-relu-maxpool layers and a linear classifier."""

        def __init__(self, widths: tuple[int, ...], num_classes: int, side: int) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            c = 3
            for w in widths:
                layers += [nn.Conv2d(c, w, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2)]
                c = w
            self.features = nn.Sequential(*layers)
            s = side // 2 ** len(widths)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, num_classes))

        def forward(self, x: Any) -> Any:
            return self.head(self.features(x))

    class MLP(nn.Module):
        """Fully connected layers on the flattened image."""

        def __init__(self, hidden: tuple[int, ...], num_classes: int, inputs: int) -> None:
            super().__init__()
            layers: list[nn.Module] = [nn.Flatten()]
            for h in hidden:
                layers += [nn.Linear(inputs, h), nn.ReLU()]
                inputs = h
            layers.append(nn.Linear(inputs, num_classes))
            self.net = nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            return self.net(x)

    return ResNet, CNN, MLP


def resnet(blocks: tuple[int, ...], width: int) -> Any:
    """A CIFAR-style ResNet in the IR at 3x32x32, 10 classes."""
    from tapas.core.arch import from_module

    net, _, _ = _torch_nets()
    return from_module(net(blocks, width, 10), CIFAR, 10)


def resnet_style(n: int, seed: int) -> list[Any]:
    """``n`` distinct seeded ResNet-style networks: 3 or 4 stages of 1-3 basic blocks,
    base width 16, 24, 32, 48 or 64."""
    rng = random.Random(seed)
    seen: set[tuple[Any, ...]] = set()
    out = []
    while len(out) < n:
        blocks = tuple(rng.randint(1, 3) for _ in range(rng.choice((3, 4))))
        width = rng.choice((16, 24, 32, 48, 64))
        if (blocks, width) not in seen:  # 540 designs in all
            seen.add((blocks, width))
            out.append(resnet(blocks, width))
    return out


# ------------------------------------------------------------------ fresh install


def fresh_pipeline(home: Path) -> Any:
    """A pipeline on a new database under ``home``: seeded with the default data and
    the shipped predictors, as a first ``tapas`` command makes it."""
    from tapas.app.pipeline import Pipeline

    pipe = Pipeline(home / "lde.duckdb", model_dir=home / "models")
    pipe.store.counts()  # opening a new database seeds it
    return pipe


def _predict(pipe: Any, archs: list[Any], shape: tuple[int, int, int] = CIFAR,
             classes: int = 10) -> list[Any]:
    """The fresh install's predictions for ``archs`` on CIFAR-10's DCN (a shipped
    predictor answers; one is trained only if none covers it)."""
    dcn = pipe.dataset_info("cifar10").dcn
    return pipe.predict(archs, dcn=dcn, num_classes=classes, input_shape=shape, train=True)


def space_networks(space: str, n: int, seed: int) -> tuple[list[Any], tuple[int, int, int], int]:
    """``n`` distinct seeded networks of ``space``, the input shape and class count they
    are built for."""
    from tapas.core.spaces import get_space, sample_unique

    if space == "resnet-style":
        return resnet_style(n, seed), CIFAR, 10
    shape, classes = (IMAGENET, 1000) if space == "accel" else (CIFAR, 10)
    sp = get_space(space)
    return [sp.build(g, shape, classes) for g in sample_unique(space, n, seed)], shape, classes


def in_domain_share(pipe: Any, n: int, seed: int, spaces: tuple[str, ...] = SPACES,
                    say: Callable[[str], None] = lambda s: None
                    ) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """Per space, the share of ``n`` seeded networks the fresh install calls in domain,
    and how often each reason for "out of domain" was given."""
    share, reasons = {}, {}
    for space in spaces:
        say(f"in-domain share: {space}")
        archs, shape, classes = space_networks(space, n, seed)
        preds = _predict(pipe, archs, shape, classes)
        share[space] = float(np.mean([p.in_domain for p in preds]))
        counts: dict[str, int] = {}
        for p in preds:
            for r in p.domain_reasons:
                key = _reason_kind(r)
                counts[key] = counts.get(key, 0) + 1
        reasons[space] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    return share, reasons


def _reason_kind(reason: str) -> str:
    """A domain reason without its per-network figures, so equal kinds count together
    (``"3,617,958 parameters outside ..."`` -> ``"parameters outside ..."``)."""
    words = reason.split()
    return " ".join(words[1:]) if words and words[0].replace(",", "").isdigit() else reason


# ------------------------------------------------------------------ seen dataset


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise BenchError(f"published table not found at {path}")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _nb101_table(data_dir: Path) -> tuple[list[Any], np.ndarray]:
    """The 1,000 NAS-Bench-101 cells and their 108-epoch validation accuracy."""
    from tapas.core.spaces import get_space

    sp, rows = get_space("nb101"), _rows(data_dir / "nb101_cifar10.csv")
    archs = [sp.build({"space": "nb101", "matrix": json.loads(r["matrix"]),
                       "ops": json.loads(r["ops"])}, CIFAR, 10) for r in rows]
    return archs, np.array([float(r["val_acc_108"]) for r in rows])


def _macro_table(data_dir: Path) -> tuple[list[Any], np.ndarray]:
    """The 3,969 networks NAS-Bench-Macro trained and their mean test accuracy."""
    from tapas.core.spaces import get_space

    sp = get_space("macro")
    rows = [r for r in _rows(data_dir / "nas_bench_macro_cifar10.csv")
            if r["is_trained_arch"] == "1"]
    archs = [sp.build(r["trained_arch"], CIFAR, 10) for r in rows]
    return archs, np.array([float(r["mean_acc"]) for r in rows])


SEEN_TABLES = {"nb101": _nb101_table, "macro": _macro_table}


def seen(data_dir: Path, n_train: int = 500, seed: int = 0, limit: int | None = None,
         tap_kwargs: dict[str, Any] | None = None,
         say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Per published table, Kendall tau on the networks not trained on (``n_train``
    drawn with ``numpy.random.default_rng(seed)``, scenario A) of TAP, gradient boosting
    and the parameter-count ranking; ``limit`` keeps a table's first rows (tests)."""
    from benchmarks.evaluate import scenario_a
    from benchmarks.predictor import default_models
    from predictor.table import Table

    models = {k: v for k, v in default_models(seed, tap_kwargs).items()
              if k in ("tap", "gbr", "params")}
    out: dict[str, Any] = {}
    for name, load in SEEN_TABLES.items():
        say(f"seen: {name}")
        archs, y = load(data_dir)
        archs, y = archs[:limit], y[:limit]
        table = Table(archs, [name] * len(archs), np.full(len(archs), 0.86), y)
        res = {r.model: r for r in scenario_a(table, name, models, n_train=n_train, seed=seed)}
        out[name] = {m: round(r.metrics["kendall"], 4) for m, r in res.items()}
        out[name].update(n_train=res["tap"].n_train, n_test=res["tap"].n_test,
                         tap_fit_s=round(res["tap"].fit_seconds, 1))
    return out


# ------------------------------------------------------------------ orderings


def _nb201(op: str | tuple[str, ...]) -> str:
    from tapas.core.arch.nb201 import cell_string

    return cell_string([op] * 6 if isinstance(op, str) else list(op))


#: NB201's best CIFAR-10 cell, and a residual block (two 3x3 convolutions beside a skip).
NB201_BEST = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3",
              "nor_conv_3x3")
NB201_RESIDUAL = ("nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "none", "none")

#: The DARTS paper's first-order cell (Liu et al., ICLR 2019), as the DARTS code prints it.
DARTS_V1 = ("Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
            "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
            "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], "
            "reduce_concat=[2, 3, 4, 5])")

#: google-research/nasbench's README example cell.
NB101_README = ([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
                 [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
                 [0] * 7],
                ["conv1x1-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu",
                 "maxpool3x3"])
NB101_CHAIN = [[int(j == i + 1) for j in range(7)] for i in range(7)]


def _darts(text_or_op: str) -> Any:
    """A DARTS genotype at the space's size: printed genotype text, or one op on every
    edge of DARTS_V2's wiring in both cells."""
    from tapas.core.arch.darts import DARTS_V2, parse_genotype
    from tapas.core.spaces import get_space

    if text_or_op.startswith("Genotype"):
        g = parse_genotype(text_or_op)
    else:
        g = parse_genotype(DARTS_V2)
        for cell in ("normal", "reduce"):
            g[cell] = [[text_or_op, src] for _, src in g[cell]]
    g = {"space": "darts", **{k: [list(e) if isinstance(e, tuple) else e for e in v]
                              for k, v in g.items()}, "C": 16, "layers": 8}
    return get_space("darts").build(g, CIFAR, 10)


def _nb101(matrix: list[list[int]], ops: list[str] | str) -> Any:
    from tapas.core.spaces import get_space

    interior = [ops] * 5 if isinstance(ops, str) else list(ops)
    g = {"space": "nb101", "matrix": matrix, "ops": ["input", *interior, "output"]}
    return get_space("nb101").build(g, CIFAR, 10)


def ordering_networks() -> dict[str, Any]:
    """The named networks of the ordering pairs, in the IR at 3x32x32, 10 classes."""
    from tapas.core.arch import from_module
    from tapas.core.arch.darts import DARTS_V2
    from tapas.core.spaces import get_space

    _, cnn, mlp = _torch_nets()
    nb201, macro = get_space("nb201"), get_space("macro")
    nets: dict[str, Any] = {
        "darts:DARTS_V2": _darts(DARTS_V2),
        "darts:DARTS_V1": _darts(DARTS_V1),
        **{f"darts:all-{op}": _darts(op) for op in (
            "sep_conv_3x3", "dil_conv_3x3", "skip_connect", "max_pool_3x3", "avg_pool_3x3")},
        "nb101:README": _nb101(*NB101_README),
        "nb101:README-wiring-all-conv3x3": _nb101(NB101_README[0], "conv3x3-bn-relu"),
        "nb101:README-wiring-all-maxpool": _nb101(NB101_README[0], "maxpool3x3"),
        "nb101:chain-conv3x3": _nb101(NB101_CHAIN, "conv3x3-bn-relu"),
        "nb101:chain-maxpool": _nb101(NB101_CHAIN, "maxpool3x3"),
        "nb201:best": NB201_BEST, "nb201:residual-block": NB201_RESIDUAL,
        **{f"nb201:all-{op}": op for op in (
            "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none")},
        **{f"macro:{s}": s for s in ("22222222", "11111111", "00000000")},
        "torch:resnet18": (2, 2, 2, 2, 64),
        "torch:resnet10-w16": (1, 1, 1, 1, 16),
        "torch:cnn-2layer": from_module(cnn((32, 64), 10, 32), CIFAR, 10),
        "torch:mlp": from_module(mlp((512, 256), 10, 3 * 32 * 32), CIFAR, 10),
        "torch:linear": from_module(mlp((), 10, 3 * 32 * 32), CIFAR, 10),
    }
    for name, v in nets.items():
        if name.startswith("nb201:"):
            nets[name] = nb201.build(_nb201(v), CIFAR, 10)
        elif name.startswith("macro:"):
            nets[name] = macro.build(v, CIFAR, 10)
        elif name.startswith("torch:resnet"):
            nets[name] = resnet(v[:-1], v[-1])
    return nets


#: ``(a, b)``: a researcher expects ``a`` to reach a higher CIFAR-10 accuracy than ``b``.
PAIRS: tuple[tuple[str, str], ...] = (
    ("darts:DARTS_V2", "darts:all-skip_connect"),
    ("darts:DARTS_V2", "darts:all-max_pool_3x3"),
    ("darts:DARTS_V2", "darts:all-avg_pool_3x3"),
    ("darts:DARTS_V1", "darts:all-skip_connect"),
    ("darts:DARTS_V1", "darts:all-max_pool_3x3"),
    ("darts:all-sep_conv_3x3", "darts:all-skip_connect"),
    ("darts:all-sep_conv_3x3", "darts:all-max_pool_3x3"),
    ("darts:all-sep_conv_3x3", "darts:all-avg_pool_3x3"),
    ("darts:all-dil_conv_3x3", "darts:all-max_pool_3x3"),
    ("nb101:README", "nb101:README-wiring-all-maxpool"),
    ("nb101:README-wiring-all-conv3x3", "nb101:README-wiring-all-maxpool"),
    ("nb101:chain-conv3x3", "nb101:chain-maxpool"),
    ("nb101:README", "nb101:chain-maxpool"),
    ("nb201:all-nor_conv_3x3", "nb201:all-none"),
    ("nb201:all-nor_conv_3x3", "nb201:all-avg_pool_3x3"),
    ("nb201:all-nor_conv_3x3", "nb201:all-skip_connect"),
    ("nb201:all-nor_conv_1x1", "nb201:all-none"),
    ("nb201:all-nor_conv_1x1", "nb201:all-avg_pool_3x3"),
    ("nb201:best", "nb201:all-avg_pool_3x3"),
    ("nb201:residual-block", "nb201:all-skip_connect"),
    ("macro:22222222", "macro:00000000"),
    ("macro:11111111", "macro:00000000"),
    ("torch:resnet18", "torch:cnn-2layer"),
    ("torch:cnn-2layer", "torch:mlp"),
    ("torch:resnet18", "torch:mlp"),
    ("torch:resnet10-w16", "torch:cnn-2layer"),
    ("torch:resnet10-w16", "torch:mlp"),
    ("torch:mlp", "torch:linear"),
    ("darts:DARTS_V2", "torch:cnn-2layer"),
    ("nb101:README", "torch:cnn-2layer"),
    ("nb201:best", "torch:mlp"),
    ("macro:22222222", "torch:mlp"),
)


def orderings(pipe: Any) -> dict[str, Any]:
    """Which of :data:`PAIRS` the fresh install orders as researchers do."""
    nets = ordering_networks()
    names = list(nets)
    pred = dict(zip(names, _predict(pipe, [nets[k] for k in names]), strict=True))
    pairs = [{"a": a, "b": b, "a_mean": round(pred[a].mean, 4), "b_mean": round(pred[b].mean, 4),
              "a_in_domain": pred[a].in_domain, "b_in_domain": pred[b].in_domain,
              "held": bool(pred[a].mean > pred[b].mean)} for a, b in PAIRS]
    return {"held": sum(p["held"] for p in pairs), "total": len(pairs), "pairs": pairs}


# ------------------------------------------------------------------ the bench


def run_benchmark(n: int = 200, seed: int = 0, data_dir: Path | None = None,
                  spaces: tuple[str, ...] = SPACES, with_seen: bool = True,
                  n_train: int = 500, seen_limit: int | None = None,
                  tap_kwargs: dict[str, Any] | None = None,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure everything; one JSON-ready dict with the issue's stable keys
    (``seen`` is ``null`` when not asked for)."""
    say = log or (lambda s: None)
    bad = [s for s in spaces if s not in SPACES]
    if bad:
        raise BenchError(f"unknown space(s) {bad}; expected some of {', '.join(SPACES)}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        say("seeding a fresh database")
        with fresh_pipeline(Path(home)) as pipe:
            seeded_s = time.perf_counter() - t0
            share, reasons = in_domain_share(pipe, n, seed, spaces, say)
            say("orderings")
            order = orderings(pipe)
    seen_res = (seen(Path(data_dir) if data_dir else SHARED_DATA, n_train, seed, seen_limit,
                     tap_kwargs, say) if with_seen else None)
    return {
        "in_domain_share": share,
        "seen": seen_res,
        "unseen_families": None,
        "unseen_families_note": UNSEEN_NOTE,
        "orderings": order,
        "out_of_domain_reasons": reasons,
        "settings": {"n_per_space": n, "seed": seed, "target": "cifar10 DCN, 3x32x32, 10 "
                     "classes (accel: 3x224x224, 1000 classes)", "n_train": n_train,
                     "seeding_s": round(seeded_s, 1)},
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(
    n: Annotated[int, typer.Option(min=1, max=540,
                                   help="Random networks per space.")] = 200,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    data: Annotated[Path | None, typer.Option(
        help="Folder of the published tables (default ../shared/data).")] = None,
    space: Annotated[list[str] | None, typer.Option(
        "--space", help=f"{', '.join(SPACES)}; repeat for several (default all).")] = None,
    no_seen: Annotated[bool, typer.Option(
        "--no-seen", help="Skip the seen-dataset fits (TAP and trees).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What a fresh install knows about each space: in-domain shares, seen-dataset
    Kendall tau, researcher-known orderings."""
    try:
        res = run_benchmark(n, seed, data, tuple(space or SPACES), not no_seen,
                            log=lambda s: typer.echo(s, err=True))
    except BenchError as e:
        fail(str(e))
    if as_json:
        print_json(res)
        return
    for k, v in res["in_domain_share"].items():
        typer.echo(f"in domain  {k:<13} {v:.2f}")
    for k, v in (res["seen"] or {}).items():
        typer.echo(f"seen       {k:<13} tap {v['tap']:.3f}  gbr {v['gbr']:.3f}  "
                   f"params {v['params']:.3f}")
    o = res["orderings"]
    typer.echo(f"orderings  {o['held']}/{o['total']} hold")
    for p in o["pairs"]:
        typer.echo(f"  {'ok ' if p['held'] else 'NO '} {p['a']} ({p['a_mean']:.3f}) > "
                   f"{p['b']} ({p['b_mean']:.3f})")


if __name__ == "__main__":
    run_cli(main)
