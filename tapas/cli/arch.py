"""``tapas arch``: inspect architectures (IR JSON files or NAS-Bench-201 cell strings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tapas.cli.common import console, fail, print_json

arch_app = typer.Typer(help="Inspect architecture descriptions.", no_args_is_help=True)


def parse_input_shape(text: str | None) -> tuple[int, int, int] | None:
    """``"3,32,32"`` -> ``(3, 32, 32)``; a clean error otherwise."""
    if text is None:
        return None
    try:
        c, h, w = (int(p) for p in text.split(","))
    except ValueError:
        fail(f"--input must be C,H,W (three integers), got {text!r}")
    if h != w:
        fail(f"--input for a NAS-Bench-201 cell must be square, got {text!r}")
    return c, h, w


def resolve_arch(source: str, classes: int | None, input_shape: str | None):  # noqa: ANN201
    """Load an architecture from a cell string or a JSON file, with CLI-friendly errors."""
    from tapas.arch import ArchError, is_nb201_string
    from tapas.types import DEFAULT_INPUT_SHAPE, DEFAULT_NUM_CLASSES, parse_arch

    try:
        if is_nb201_string(source):
            return parse_arch(source, classes or DEFAULT_NUM_CLASSES,
                              parse_input_shape(input_shape) or DEFAULT_INPUT_SHAPE)
        path = Path(source)
        if not path.is_file():
            fail(f"{source!r} is neither a NAS-Bench-201 cell string nor a file")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read {path}: {e}")
        import json

        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            fail(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}")
        if isinstance(obj, dict) and isinstance(obj.get("input"), dict):
            if classes is not None:
                obj["input"]["num_classes"] = classes
            if input_shape is not None:
                obj["input"]["shape"] = [int(p) for p in input_shape.split(",")]
        return parse_arch(obj)
    except ArchError as e:
        fail(f"{source}: {e}")


@arch_app.command("show")
def show(
    source: Annotated[str, typer.Argument(help="IR JSON file or NAS-Bench-201 cell string.")],
    classes: Annotated[int | None, typer.Option("--classes", help="Number of classes.")] = None,
    input_shape: Annotated[str | None, typer.Option("--input", help="Input shape C,H,W.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the layer table with output shapes, params and FLOPs."""
    arch = resolve_arch(source, classes, input_shape)
    summary = arch.summary()
    if as_json:
        print_json(summary)
        return
    from rich.table import Table

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
    from tapas.arch.ops import OPS, REQUIRED

    rows = {name: {k: ("required" if v is REQUIRED else v) for k, v in spec.fields.items()}
            for name, spec in OPS.items()}
    if as_json:
        print_json(rows)
        return
    for name, spec in OPS.items():
        fields = ", ".join(f"{k}={v}" for k, v in rows[name].items()) or "-"
        console.print(f"[bold]{name}[/]: {spec.doc}  [dim]({fields})[/]")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``tapas arch``."""
    app.add_typer(arch_app, name="arch")
