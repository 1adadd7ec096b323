"""The predictor file format: fitted models saved and loaded without unpickling anything.

This module knows the bytes, not the model: :meth:`predictor.tap.TAPRegressor.save`
and ``load`` turn a model into hyper-parameters, scalar state and named arrays and back.

File format (one ``.tap`` file): the magic line ``TAPMODEL\\n``, an 8-byte
little-endian header length, a UTF-8 JSON header, then the raw little-endian
float32/float64/int64 bytes of every array. The header holds the format version, the
encoding version and width, the hyper-parameters, the scalar learned state, the
provenance (LDE snapshot, DCN, tau, training size, metrics, versions) and, per
array, its dtype, shape and byte range, plus a SHA-256 over the header (without
the checksum field) and the payload. Loading parses JSON and ``numpy.frombuffer``
only, so a file can never run code; a changed byte fails the checksum and a file
from an incompatible encoding or format version is refused with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from predictor.encoding import ENCODING_VERSION, STEP_DIM

MAGIC = b"TAPMODEL\n"
FORMAT_VERSION = 2
_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64}


class ModelFileError(ValueError):
    """A model file that is corrupt, tampered with, or incompatible with this code."""


def _versions() -> dict[str, str]:
    import sklearn
    import torch

    try:
        from importlib.metadata import version

        tapas_v = version("tapas-nas")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        tapas_v = "unknown"
    return {"tapas": tapas_v, "torch": torch.__version__, "numpy": np.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}


def _jsonable(obj: Any) -> Any:
    """Provenance must be plain JSON: numbers, strings, lists, dicts (no objects)."""
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"provenance must be plain JSON data: {e}") from None


def _digest(header: dict[str, Any], payload: bytes) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    h.update(payload)
    return h.hexdigest()


def write(path: str | os.PathLike[str], *, params: dict[str, Any], state: dict[str, Any],
          arrays: dict[str, np.ndarray], provenance: dict[str, Any] | None = None) -> Path:
    """Write a model's hyper-parameters, scalar state and arrays atomically to ``path``."""
    index, chunks, off = {}, [], 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        index[name] = {"dtype": str(a.dtype), "shape": list(a.shape), "offset": off,
                       "nbytes": len(b)}
        chunks.append(b)
        off += len(b)
    payload = b"".join(chunks)
    prov = dict(provenance or {})
    prov.setdefault("versions", _versions())
    header: dict[str, Any] = {
        "format": "tapas-tap", "format_version": FORMAT_VERSION,
        "encoding_version": ENCODING_VERSION, "step_dim": STEP_DIM,
        "params": _jsonable(params), "state": _jsonable(state),
        "provenance": _jsonable(prov),
        "arrays": index,
    }
    header["sha256"] = _digest(header, payload)
    hbytes = json.dumps(header, sort_keys=True).encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(hbytes)) + hbytes + payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """Parse and verify a model file; returns ``(header, payload)`` or raises ModelFileError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read model file {path}: {e.strerror}") from None
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 8:
        raise ModelFileError(f"{path} is not a tapas predictor file (bad magic)")
    (hlen,) = struct.unpack("<Q", raw[len(MAGIC):len(MAGIC) + 8])
    start = len(MAGIC) + 8
    if hlen > len(raw) - start:
        raise ModelFileError(f"{path} is truncated (header length {hlen} exceeds the file)")
    try:
        header = json.loads(raw[start:start + hlen].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path} has a corrupt header: {e}") from None
    if not isinstance(header, dict) or header.get("format") != "tapas-tap":
        raise ModelFileError(f"{path} is not a tapas predictor file (unknown format)")
    payload = raw[start + hlen:]
    want = header.pop("sha256", None)
    if want != _digest(header, payload):
        raise ModelFileError(f"{path} failed its checksum: the file was modified or is "
                             "corrupt; refusing to load it")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {header.get('format_version')}; "
                             f"this tapas reads version {FORMAT_VERSION}")
    if (header.get("encoding_version") != ENCODING_VERSION
            or header.get("step_dim") != STEP_DIM):
        raise ModelFileError(
            f"{path} was trained with encoding v{header.get('encoding_version')} "
            f"(width {header.get('step_dim')}); this tapas encodes networks with "
            f"v{ENCODING_VERSION} (width {STEP_DIM}); retrain the predictor")
    return header, payload


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A verified model file as ``(header, arrays)``; raises :class:`ModelFileError`."""
    header, payload = read_header(path)
    arrays: dict[str, np.ndarray] = {}
    for name, meta in header["arrays"].items():
        dt = _DTYPES.get(meta["dtype"])
        if dt is None:
            raise ModelFileError(f"{path}: array {name!r} has unsupported dtype {meta['dtype']}")
        o, nb = int(meta["offset"]), int(meta["nbytes"])
        if o < 0 or o + nb > len(payload):
            raise ModelFileError(f"{path}: array {name!r} lies outside the file")
        a = np.frombuffer(payload[o:o + nb], dtype=np.dtype(dt).newbyteorder("<"))
        try:
            arrays[name] = a.reshape(meta["shape"]).astype(dt)
        except ValueError:
            raise ModelFileError(f"{path}: array {name!r} does not match its shape") from None
    return header, arrays
