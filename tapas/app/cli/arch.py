"""``tapas arch``: inspect architectures (IR JSON files, NAS-Bench-201 cell strings, DARTS /
NAS-Bench-301 genotypes, NAS-Bench-101 cells)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tapas.app.cli.common import (
    InputShapeOpt,
    LegacyInputOpt,
    console,
    fail,
    input_shape_arg,
    print_json,
)
from tapas.core.lazy import LazyImport

# numpy and the IR: loaded when a command runs, not for `tapas --help`
core_arch = LazyImport("tapas.core.arch")
core_types = LazyImport("tapas.core.types")
arch_ops = LazyImport("tapas.core.arch.ops")

arch_app = typer.Typer(help="Inspect architecture descriptions.", no_args_is_help=True)


def resolve_arch(source: str, classes: int | None,  # noqa: ANN201
                 input_shape: tuple[int, int, int] | None):
    """Load an architecture from a cell spec (NAS-Bench-201 cell string, DARTS genotype)
    or a file (IR JSON, a genotype, a DARTS/NAS-Bench-101 cell object), with CLI-friendly
    errors. Cell specs go through :func:`tapas.core.types.parse_arch`, like every other input."""
    is_cell_spec, parse_arch = core_arch.is_cell_spec, core_types.parse_arch
    k = classes or core_types.DEFAULT_NUM_CLASSES
    shape = input_shape or core_types.DEFAULT_INPUT_SHAPE
    try:
        if is_cell_spec(source):
            return parse_arch(source, k, shape)
        path = Path(source)
        if not path.is_file():
            fail(f"{source!r} is neither a NAS-Bench-201 cell string, a DARTS genotype nor "
                 "a file")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read {path}: {e}")
        if is_cell_spec(text.strip()):
            return parse_arch(text.strip(), k, shape)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            fail(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}")
        if is_cell_spec(obj):
            return parse_arch(obj, k, shape)
        if isinstance(obj, dict) and isinstance(obj.get("input"), dict):
            if classes is not None:
                obj["input"]["num_classes"] = classes
            if input_shape is not None:
                obj["input"]["shape"] = list(input_shape)
        return parse_arch(obj)
    except core_arch.ArchError as e:
        label = source[:40] + "..." if is_cell_spec(source) and len(source) > 60 else source
        fail(f"{label}: {e}")


@arch_app.command("show")
def show(
    source: Annotated[str, typer.Argument(
        help="IR JSON file, NAS-Bench-201 cell string, DARTS genotype "
             "(Genotype(normal=[...], ...)) or a file holding a genotype or a DARTS "
             '({"genotype": ..., "C": 16, "layers": 8}) or NAS-Bench-101 '
             '({"matrix": ..., "ops": ...}) cell.')],
    classes: Annotated[int | None, typer.Option("--classes", help="Number of classes.")] = None,
    input_shape: InputShapeOpt = None,
    legacy_input: LegacyInputOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the layer table with output shapes, params and FLOPs."""
    arch = resolve_arch(source, classes, input_shape_arg(input_shape, legacy_input))
    summary = arch.summary()
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"architecture {arch.id}", show_lines=False)
    for col in ("#", "op", "inputs", "output", "params", "FLOPs (MACs)"):
        table.add_column(col, justify="right" if col in ("#", "params", "FLOPs (MACs)") else "left")
    for li in summary["layers"]:
        table.add_row(str(li["index"]), li["op"], ",".join(map(str, li["inputs"])),
                      "x".join(map(str, li["out_shape"])), f"{li['params']:,}",
                      f"{li['flops']:,}")
    console.print(table)
    console.print(f"input {list(arch.input_shape)}, {arch.num_classes} classes, "
                  f"{len(arch)} layers, depth {summary['depth']}, "
                  f"params {arch.params:,}, FLOPs {arch.flops:,} (multiply-accumulates)")


@arch_app.command("ops")
def ops(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the layer ops the IR knows, with their fields and defaults."""
    rows = {name: {k: ("required" if v is arch_ops.REQUIRED else v)
                   for k, v in spec.fields.items()} for name, spec in arch_ops.OPS.items()}
    if as_json:
        print_json(rows)
        return
    for name, spec in arch_ops.OPS.items():
        fields = ", ".join(f"{k}={v}" for k, v in rows[name].items()) or "-"
        console.print(f"[bold]{name}[/]: {spec.doc}  [dim]({fields})[/]")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``tapas arch``."""
    app.add_typer(arch_app, name="arch")

