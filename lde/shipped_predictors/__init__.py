"""Predictors trained at release time on the default database, shipped with tapas.

A new database holds the shipped data only (:mod:`lde.default_data`), so the predictor
:meth:`tapas.app.pipeline.Pipeline.train` would train there for a DCN is known in advance: it
depends on the DCN's selection, the hyper-parameters and the code version alone
(:func:`tapas.app.pipeline.predictor_key`). ``python -m tapas.app.release`` trains the predictors
of a grid of DCNs on a freshly seeded database and writes them here, so a new user's first
answer is a DCN plus a lookup instead of a training run.

This folder holds ``manifest.json`` (one entry per predictor: its id, the registry row it
gets, the model file's name, size and SHA-256) and ``predictors.tap.xz``: the model files
concatenated in the manifest's order, compressed as one xz stream whose window spans
several files, so what the files share (the LDE history every predictor trained without
exclusions carries) is stored about once.

:meth:`~tapas.app.pipeline.Pipeline` registers those whose id it computes itself on the new
database (a changed version, shipped table or hyper-parameter registers none of them:
they are never used wrongly); a model file is unpacked into the model directory when
first needed (:func:`unpack`), checked against the manifest's size and SHA-256. Only
bytes here: no torch, no model code.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tapas.core.types import PredictorIdError, check_predictor_id, is_model_file_name

SHIPPED_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
PACK = "predictors.tap.xz"
FORMAT = "tapas-shipped-predictors"
FORMAT_VERSION = 1
#: The xz window: larger than a few model files, so the history they share compresses
#: to (nearly) nothing after its first copy. Unpacking needs about this much memory.
DICT_BYTES = 32 << 20
#: Largest model file unpacked (as predictor.persist.MAX_FILE_BYTES).
MAX_FILE_BYTES = 1 << 30
_CHUNK = 1 << 20
#: Registry fields every entry carries (what ``Store.register_predictor`` takes).
_NUMBERS = ("dcn", "tau", "dcn_lo", "dcn_hi")


class ShippedError(ValueError):
    """The shipped pack or manifest is unreadable or does not match itself."""


def _check_entry(e: Any, where: str) -> dict[str, Any]:
    if not isinstance(e, dict):
        raise ShippedError(f"{where}: an entry must be an object")
    try:
        pid = check_predictor_id(e.get("id"), "shipped predictor id")
    except PredictorIdError as err:
        raise ShippedError(f"{where}: {err}") from None
    if e.get("file") != f"{pid}.tap" or not is_model_file_name(e["file"]):
        raise ShippedError(f"{where}: predictor {pid} must be shipped as {pid}.tap")
    for k in _NUMBERS:
        if isinstance(e.get(k), bool) or not isinstance(e.get(k), int | float):
            raise ShippedError(f"{where}: predictor {pid}: {k} must be a number")
    if not e["dcn_lo"] <= e["dcn"] <= e["dcn_hi"]:
        raise ShippedError(f"{where}: predictor {pid}: dcn outside [dcn_lo, dcn_hi]")
    for k in ("bytes", "n_train"):
        v = e.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_FILE_BYTES:
            raise ShippedError(f"{where}: predictor {pid}: {k} must be a non-negative integer")
    if not isinstance(e.get("sha256"), str) or len(e["sha256"]) != 64:
        raise ShippedError(f"{where}: predictor {pid}: sha256 must be a hex digest")
    for k in ("metrics", "provenance"):
        if not isinstance(e.get(k), dict):
            raise ShippedError(f"{where}: predictor {pid}: {k} must be an object")
    if not isinstance(e.get("snapshot"), str):
        raise ShippedError(f"{where}: predictor {pid}: snapshot must be a string")
    return e


def manifest(directory: Path | None = None) -> dict[str, Any] | None:
    """The shipped manifest, checked entry by entry; None (with a warning when it is
    unreadable) when this installation ships no predictors."""
    d = Path(directory) if directory is not None else SHIPPED_DIR
    path = d / MANIFEST
    if not path.is_file() or not (d / PACK).is_file():
        return None
    try:
        m = json.loads(path.read_text())
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise ShippedError(f"{path}: not a {FORMAT} manifest")
        if m.get("format_version") != FORMAT_VERSION:
            raise ShippedError(f"{path}: format version {m.get('format_version')!r}, this "
                               f"tapas reads {FORMAT_VERSION}")
        entries = m.get("predictors")
        if not isinstance(entries, list):
            raise ShippedError(f"{path}: 'predictors' must be a list")
        for i, e in enumerate(entries):
            _check_entry(e, f"{path} entry {i}")
        if len({e["id"] for e in entries}) != len(entries):
            raise ShippedError(f"{path}: a predictor id appears twice")
    except (OSError, ValueError) as e:
        warnings.warn(f"shipped predictors not used: {e}", RuntimeWarning, stacklevel=2)
        return None
    return m


def entries(directory: Path | None = None) -> list[dict[str, Any]]:
    """The shipped predictors' manifest entries (none when this installation has none)."""
    m = manifest(directory)
    return list(m["predictors"]) if m else []


def entry(pid: str, directory: Path | None = None) -> dict[str, Any] | None:
    """The manifest entry of ``pid``, or None when it is not shipped."""
    return next((e for e in entries(directory) if e["id"] == pid), None)


def unpack(pid: str, dest: Path, directory: Path | None = None) -> bool:
    """Write shipped predictor ``pid``'s model file to ``dest`` (atomically, after checking
    its size and SHA-256 against the manifest); False when ``pid`` is not shipped.
    ``ShippedError`` when the pack does not hold what the manifest says."""
    d = Path(directory) if directory is not None else SHIPPED_DIR
    ents = entries(d)
    idx = next((i for i, e in enumerate(ents) if e["id"] == pid), None)
    if idx is None:
        return False
    want = ents[idx]
    skip = sum(e["bytes"] for e in ents[:idx])
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, lzma.open(d / PACK, "rb") as src:
            while skip:
                n = len(src.read(min(_CHUNK, skip)))
                if not n:
                    raise ShippedError(f"{d / PACK} ends before predictor {pid}")
                skip -= n
            left = want["bytes"]
            while left:
                chunk = src.read(min(_CHUNK, left))
                if not chunk:
                    raise ShippedError(f"{d / PACK} ends inside predictor {pid}")
                h.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        if h.hexdigest() != want["sha256"]:
            raise ShippedError(f"{d / PACK}: predictor {pid} fails its SHA-256")
        os.replace(tmp, dest)
    except (lzma.LZMAError, EOFError) as e:
        raise ShippedError(f"{d / PACK} is corrupt: {e}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def pack(files: Sequence[Path], rows: Sequence[dict[str, Any]], directory: Path,
         info: dict[str, Any]) -> dict[str, Any]:
    """Write ``files`` (model files named ``<id>.tap``) and their registry ``rows`` as the
    shipped pack and manifest in ``directory`` (replacing what is there); ``info`` goes
    into the manifest as it is (the release command, versions, coverage). Returns the
    manifest."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ents = []
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME,
                "dict_size": DICT_BYTES}]
    tmp = directory / (PACK + ".partial")
    with lzma.open(tmp, "wb", format=lzma.FORMAT_XZ, filters=filters) as out:
        for f, row in zip(files, rows, strict=True):
            data = Path(f).read_bytes()
            out.write(data)
            ents.append(_check_entry({**row, "file": Path(f).name, "bytes": len(data),
                                      "sha256": hashlib.sha256(data).hexdigest()},
                                     f"release entry {len(ents)}"))
    os.replace(tmp, directory / PACK)
    m = {"format": FORMAT, "format_version": FORMAT_VERSION, **info, "predictors": ents}
    (directory / MANIFEST).write_text(json.dumps(m, indent=1, sort_keys=True) + "\n")
    return m


__all__ = ["FORMAT", "MANIFEST", "PACK", "SHIPPED_DIR", "ShippedError", "entries", "entry",
           "manifest", "pack", "unpack"]
