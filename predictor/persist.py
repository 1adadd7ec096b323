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

The checksum is no signature: anyone can write a file that passes it. So nothing a
header declares is trusted before it is checked against the file itself: the file and
header sizes are bounded, every header field has its type, and the arrays must tile the
payload exactly (each one's byte count is its shape times its item size), so reading
allocates no more than the file holds. What the arrays must be for a given model is the
model's check (:meth:`predictor.tap.TAPRegressor.load`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import struct
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from predictor.encoding import ENCODING_VERSION, STEP_DIM
from tapas.core.errors import UnreadablePredictor
from tapas.core.lazy import LazyImport

sklearn = LazyImport("sklearn")
torch = LazyImport("torch")

MAGIC = b"TAPMODEL\n"
FORMAT_VERSION = 2
_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64}
#: Largest model file read (a real predictor is a few MB; its history grows with the LDE).
MAX_FILE_BYTES = 1 << 30
#: Largest JSON header (the provenance and scalar state, not the weights).
MAX_HEADER_BYTES = 64 << 20
#: Most arrays and dimensions per array a file may declare.
MAX_ARRAYS, MAX_NDIM = 4096, 8


class ModelFileError(UnreadablePredictor, ValueError):
    """A model file that is corrupt, tampered with, or incompatible with this code."""


def _versions() -> dict[str, str]:
    try:
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
    """Parse and verify a model file; returns ``(header, payload)`` or raises ModelFileError.

    The header is checked for shape too (:func:`check_header`): a returned header's
    ``params``, ``state`` and ``provenance`` are dicts and its arrays tile the payload."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelFileError(f"{path} is {size:,} bytes, over the {MAX_FILE_BYTES:,} a "
                                 "tapas predictor file may hold")
        raw = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read model file {path}: {e.strerror}") from None
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 8:
        raise ModelFileError(f"{path} is not a tapas predictor file (bad magic)")
    (hlen,) = struct.unpack("<Q", raw[len(MAGIC):len(MAGIC) + 8])
    start = len(MAGIC) + 8
    if hlen > len(raw) - start:
        raise ModelFileError(f"{path} is truncated (header length {hlen} exceeds the file)")
    if hlen > MAX_HEADER_BYTES:
        raise ModelFileError(f"{path} declares a {hlen:,}-byte header, over the "
                             f"{MAX_HEADER_BYTES:,} a tapas predictor file may have")
    try:
        header = json.loads(raw[start:start + hlen].decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError too
        raise ModelFileError(f"{path} has a corrupt header: {str(e)[:200]}") from None
    if not isinstance(header, dict) or header.get("format") != "tapas-tap":
        raise ModelFileError(f"{path} is not a tapas predictor file (unknown format)")
    payload = raw[start + hlen:]
    want = header.pop("sha256", None)
    if want != _digest(header, payload):
        raise ModelFileError(f"{path} failed its checksum: the file was modified or is "
                             "corrupt; refusing to load it")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {_short(header.get('format_version'))}; "
                             f"this tapas reads version {FORMAT_VERSION}")
    if (header.get("encoding_version") != ENCODING_VERSION
            or header.get("step_dim") != STEP_DIM):
        raise ModelFileError(
            f"{path} was trained with encoding v{_short(header.get('encoding_version'))} "
            f"(width {_short(header.get('step_dim'))}); this tapas encodes networks with "
            f"v{ENCODING_VERSION} (width {STEP_DIM}); retrain the predictor")
    check_header(path, header, len(payload))
    return header, payload


def _short(value: Any, limit: int = 60) -> str:
    """A header value quoted in a message, shortened (a crafted one may be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 15] + f"...({len(text):,} chars)"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_header(path: Any, header: dict[str, Any], payload_bytes: int) -> None:
    """ModelFileError unless the header has its fields' types and its arrays tile the
    ``payload_bytes`` exactly: each array's byte count is its shape times its item size and
    the arrays follow one another from offset 0 to the payload's end without gap or
    overlap. So what a file declares can never allocate more than the file holds."""
    for key in ("params", "state", "provenance", "arrays"):
        if not isinstance(header.get(key), dict):
            raise ModelFileError(f"{path}: header field {key!r} must be an object, got "
                                 f"{type(header.get(key)).__name__}")
    arrays = header["arrays"]
    if len(arrays) > MAX_ARRAYS:
        raise ModelFileError(f"{path}: {len(arrays):,} arrays declared, over {MAX_ARRAYS:,}")
    spans = []
    for name, meta in arrays.items():
        where = f"{path}: array {_short(name)}"
        if not isinstance(meta, dict):
            raise ModelFileError(f"{where} must be described by an object")
        dt = _DTYPES.get(meta.get("dtype")) if isinstance(meta.get("dtype"), str) else None
        if dt is None:
            raise ModelFileError(f"{where} has unsupported dtype {_short(meta.get('dtype'))} "
                                 f"(one of {', '.join(_DTYPES)})")
        shape, off, nb = meta.get("shape"), meta.get("offset"), meta.get("nbytes")
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_int(d) and 0 <= d <= payload_bytes for d in shape)):
            raise ModelFileError(f"{where} has shape {_short(shape)}: a list of at most "
                                 f"{MAX_NDIM} non-negative integers is expected")
        if not (_is_int(off) and _is_int(nb) and off >= 0 and nb >= 0):
            raise ModelFileError(f"{where} has offset {_short(off)} and nbytes {_short(nb)}: "
                                 "non-negative integers are expected")
        count = 1
        for d in shape:
            count *= d
        if count * np.dtype(dt).itemsize != nb:
            raise ModelFileError(f"{where} declares {nb:,} bytes, but its shape {shape} of "
                                 f"{meta['dtype']} takes {count * np.dtype(dt).itemsize:,}")
        spans.append((off, nb, name))
    end = 0
    for off, nb, name in sorted(spans):
        if off != end:
            raise ModelFileError(f"{path}: array {_short(name)} starts at byte {off:,} of the "
                                 f"payload, expected {end:,} (arrays must not overlap or "
                                 "leave gaps)")
        end += nb
    if end != payload_bytes:
        raise ModelFileError(f"{path}: the arrays declare {end:,} bytes but the payload holds "
                             f"{payload_bytes:,}")


def content_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of what a model file computes with (hyper-parameters, state, arrays), not
    its provenance: an export of a predictor has the same content as its original."""
    header, payload = read_header(path)
    header.pop("provenance", None)
    return _digest(header, payload)


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A verified model file as ``(header, arrays)``; raises :class:`ModelFileError`.
    Each array is read from the file's bytes once (no more memory than the file holds)."""
    header, payload = read_header(path)
    view = memoryview(payload)
    arrays: dict[str, np.ndarray] = {}
    for name, meta in header["arrays"].items():
        dt = np.dtype(_DTYPES[meta["dtype"]])
        o, nb = meta["offset"], meta["nbytes"]
        a = np.frombuffer(view[o:o + nb], dtype=dt.newbyteorder("<"))
        arrays[name] = a.reshape(meta["shape"]).astype(dt)
    return header, arrays
