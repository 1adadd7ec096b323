"""``tapas arch``: inspect architectures (IR JSON files, NAS-Bench-201 cell strings, DARTS /
NAS-Bench-301 genotypes, NAS-Bench-101 cells)."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
core_spaces = LazyImport("tapas.core.spaces")
arch_ops = LazyImport("tapas.core.arch.ops")

if TYPE_CHECKING:
    from tapas.core.errors import InvalidArchitecture

arch_app = typer.Typer(help="Inspect architecture descriptions.", no_args_is_help=True)


NOTATION_HELP = ("any notation of `tapas arch notations`: a NAS-Bench-201 cell string, a "
                 "DARTS genotype, a NAS-Bench-101 {\"matrix\", \"ops\"} object, a search "
                 "space's genotype (named by a SPACE: prefix or a \"space\" key) or IR JSON")


MAX_LABEL = 120
"""Longest line labelled by its text (a NAS-Bench-201 cell string fits; a DARTS genotype
does not)."""


@dataclass(frozen=True)
class Source:
    """One architecture a user gave: its label, where it was given, and its value as
    written (text or a JSON object), for a scorer that builds it for the target."""

    label: str
    where: str
    value: Any


def _with_target(value: Any, classes: int | None,
                 input_shape: tuple[int, int, int] | None) -> Any:
    """An IR network from a file takes ``--classes``/``--input-shape`` when given."""
    if isinstance(value, dict) and isinstance(value.get("input"), dict) and (
            classes is not None or input_shape is not None):
        given = {"num_classes": classes, "shape": None if input_shape is None
                 else list(input_shape)}
        value = {**value, "input": {**value["input"],
                                    **{k: v for k, v in given.items() if v is not None}}}
    return value


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte: text, not a path
        return False


def read_source(text: str, where: str) -> Any:
    """The value of ``text``: itself when a notation reads it, else the content of the
    file it names (a notation, or a JSON object); ``ArchError`` naming ``where`` (an
    argument: the text itself)."""
    ArchError, read_notation = core_arch.ArchError, core_spaces.read_notation
    try:
        read_notation(text)
        return json.loads(text) if text.lstrip().startswith("{") else text
    except ArchError as e:
        path = Path(text)
        if text.lstrip().startswith("{") or not _is_file(path):
            nor = "; nor is it a file" if isinstance(e, core_spaces.NotationError) else ""
            raise ArchError(f"{where}: {e}{nor}" if where else f"{e}{nor}") from None
    try:
        content = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ArchError(f"cannot read {path}: {e}") from None
    try:
        read_notation(content)
    except ArchError as e:
        raise ArchError(f"{path}: {e}") from None
    return json.loads(content) if content.startswith("{") else content


def read_sources(args: Sequence[str] = (), file: Path | None = None) -> list[Source]:
    """The architectures of the command line (each a notation or a file holding one) and
    of ``file`` (one a line, likewise; blank lines and ``#`` comments skipped). Each is
    read here, so an error names the argument or ``file:line`` and the notations tried.
    A line's label is its text, a JSON or long line's ``file:line``."""
    ArchError = core_arch.ArchError
    out: list[Source] = []
    try:
        for a in args:
            out.append(Source(a, repr(a) if len(a) < 60 else repr(a[:57] + "..."),
                              read_source(a, "")))
        if file is not None:
            try:
                lines = file.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise ArchError(f"cannot read {file}: {e}") from None
            for n, line in enumerate(lines, 1):
                text = line.strip()
                if text and not text.startswith("#"):
                    long = text.startswith("{") or len(text) > MAX_LABEL
                    label = f"{file.name}:{n}" if long else text
                    out.append(Source(label, f"{file}:{n}", read_source(text, f"{file}:{n}")))
    except core_arch.ArchError as e:
        fail(str(e))
    return out


def read_folder(path: Path) -> list[Source]:
    """A folder's ``.json`` files, one architecture each (as :func:`read_source` reads a file)."""
    files = sorted(path.glob("*.json"))
    if not files:
        fail(f"{path}: a folder without .json files")
    try:
        return [Source(f.name, str(f), read_source(str(f), str(f))) for f in files]
    except core_arch.ArchError as e:
        fail(str(e))


def read_genotypes(path: Path, space: str) -> list[Any]:
    """The genotypes of ``space`` in a file (one a line, in any notation that reads to
    that space: a search's starting points); a line of another notation is named."""
    out = []
    for src in read_sources(file=path):
        n = core_spaces.read_notation(src.value)
        if n.name != space:
            fail(f"{src.where}: reads as {n.name}, not as a genotype of the {space} space "
                 "(--space)")
        out.append(copy.deepcopy(n.value))  # the reader's is shared; a search mutates
    return out


def where_invalid(e: InvalidArchitecture, sources: Sequence[Source], offset: int = 0) -> str:
    """An error of a list of architectures scored (in process or by a service), its items
    named as the user gave them (``archs[3]`` -> ``nets.txt:5``)."""
    errors = [d for d in e.details or () if isinstance(d.get("index"), int)]
    if not errors or not 0 <= offset + errors[0]["index"] < len(sources):
        return str(e)
    more = f" ({len(errors)} invalid architectures)" if len(errors) > 1 else ""
    return f"{sources[offset + errors[0]['index']].where}: {errors[0]['message']}{more}"


def resolve_arch(source: str, classes: int | None,  # noqa: ANN201
                 input_shape: tuple[int, int, int] | None):
    """The network of one argument (a notation or a file holding one, see
    :func:`read_source`), built for ``classes`` and ``input_shape``, with one-line errors."""
    (src,) = read_sources([source])
    try:
        return core_spaces.parse_arch(_with_target(src.value, classes, input_shape), classes,
                                      input_shape)
    except core_arch.ArchError as e:
        fail(f"{src.where}: {e}")


@arch_app.command("show")
def show(
    source: Annotated[str, typer.Argument(
        help=f"An architecture in {NOTATION_HELP}; or a file holding one.")],
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


@arch_app.command("notations")
def notations_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the notations an architecture may be written in, in the order a value that
    names none is tried (a SPACE: prefix or a "space" key names one)."""
    IR, SPACES = core_spaces.IR, core_spaces.SPACES
    rows = []
    for name in core_spaces.notations():
        if name == IR:
            rows.append({"name": IR, "description": "the IR: a JSON object of layers "
                         "(docs/data.md), built as written", "example": '{"input": {...}, '
                         '"layers": [...]}'})
            continue
        sp = SPACES[name]
        rows.append({"name": name, "description": sp.description,
                     "example": sp.format(sp.sample(random.Random(0)))})
    if as_json:
        print_json({"notations": rows})
        return
    for r in rows:
        console.print(f"[bold]{r['name']}[/]: {r['description']}", highlight=False)
        console.print(f"  {r['example']}", highlight=False, markup=False, soft_wrap=True)


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

