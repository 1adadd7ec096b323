"""The predictor registry: registered predictors listed, shown, loaded by id, exported as
one self-contained file, imported and deleted.

A predictor id (:func:`~tapas.core.types.check_predictor_id`) and a model file name are
names, never paths: every id from a user or a file is checked before it is looked up or
names a file. A shipped predictor's file is unpacked into the model directory when first
used (:meth:`RegistryMixin._model_file_of`).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lde.shipped_predictors import ShippedError, unpack
from predictor.persist import MAX_FILE_BYTES, ModelFileError, content_digest
from tapas.app.pipeline.memory import MemoryMixin
from tapas.app.pipeline.model_files import is_shipped, load_predictor, model_path
from tapas.core.errors import Conflict, PredictorNotFound
from tapas.core.types import (
    PredictorIdError,
    PredictorInfo,
    check_predictor_id,
    is_model_file_name,
)

if TYPE_CHECKING:  # its import loads scikit-learn (1.5 s); a load imports it
    from predictor import TAPRegressor

log = logging.getLogger(__package__)


class PredictorExistsError(Conflict, ValueError):
    """An import of a predictor id the registry already holds with other weights."""

    code = "predictor_exists"


def _model_file(artifact: str, model_dir: str | Path) -> Path | None:
    """:func:`model_path`, or None for a registry entry naming a file outside the model
    directory (treated as missing)."""
    try:
        return model_path(artifact, model_dir)
    except ModelFileError:
        return None


def _copy_bounded(src: Path, out: Any, limit: int) -> None:
    """Copy ``src`` into the open file ``out``; ``ModelFileError`` past ``limit`` bytes
    (checked as it is read: the file may grow) or when it cannot be read."""
    try:
        if not src.is_file():
            raise ModelFileError(f"{src}: no such file")
        with src.open("rb") as f:
            n = 0
            while chunk := f.read(1 << 20):
                n += len(chunk)
                if n > limit:
                    raise ModelFileError(f"{src} is over the {limit:,} bytes a tapas "
                                         "predictor file may hold")
                out.write(chunk)
    except OSError as e:
        raise ModelFileError(f"cannot read model file {src}: {e.strerror}") from None


def _registry_entry(src: Path, provenance: Any) -> dict[str, Any]:
    """The registry entry an exported file carries, checked field by field
    (``ModelFileError`` naming the field): the id is a predictor id, the numbers are
    finite numbers, the metrics and provenance are objects."""
    reg = provenance.get("registry") if isinstance(provenance, dict) else None
    if not isinstance(reg, dict) or "id" not in reg:
        raise ModelFileError(f"{src}: a model file without a registry entry; write one with "
                             "tapas predictor export ID FILE")
    try:
        pid = check_predictor_id(reg["id"], "registry id")
    except PredictorIdError as e:
        raise ModelFileError(f"{src}: {e}") from None
    out: dict[str, Any] = {"id": pid}
    for key in ("dcn", "tau", "dcn_lo", "dcn_hi"):
        v = reg.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ModelFileError(f"{src}: registry field {key!r} must be a finite number, "
                                 f"got {str(v)[:40]!r}")
        out[key] = float(v)
    n = reg.get("n_train")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ModelFileError(f"{src}: registry field 'n_train' must be a non-negative "
                             f"integer, got {str(n)[:40]!r}")
    out["n_train"] = n
    if not isinstance(reg.get("snapshot"), str):
        raise ModelFileError(f"{src}: registry field 'snapshot' must be a string")
    out["snapshot"] = reg["snapshot"]
    for key in ("metrics", "provenance"):
        v = reg.get(key) or {}
        if not isinstance(v, dict):
            raise ModelFileError(f"{src}: registry field {key!r} must be an object")
        out[key] = v
    return out


class RegistryMixin(MemoryMixin):
    """The registered predictors and their model files."""

    def predictors(self) -> list[PredictorInfo]:
        """Every registered predictor, oldest first."""
        return self.store.predictors()

    def predictor(self, ident: str) -> PredictorInfo | None:
        """The registry entry ``ident`` or None; ``PredictorIdError`` (a ``PredictorNotFound``)
        when ``ident`` is not a predictor id."""
        return self.store.predictor(check_predictor_id(ident))

    def model_path(self, artifact: str) -> Path:
        """The model file of a registry entry (:func:`model_path` in this model directory)."""
        return model_path(artifact, self.model_dir)

    def _model_file_of(self, info: PredictorInfo) -> Path | None:
        """:func:`_model_file` of a registry entry; a shipped predictor's file is unpacked
        there first when it is not yet (:func:`lde.shipped_predictors.unpack`)."""
        path = _model_file(info.artifact, self.model_dir)
        if path is not None and is_shipped(info) and not path.exists():
            try:
                unpack(info.id, path)
            except (ShippedError, OSError) as e:
                log.warning("cannot unpack shipped predictor %s: %s", info.id, e)
        return path

    def registered(self, pid: str) -> tuple[TAPRegressor, PredictorInfo]:
        """The registered predictor ``pid`` (pinned: whatever was trained since), loaded once
        and then held in memory; ``PredictorNotFound`` naming the id when it is unknown or
        its file is gone (``ModelFileError`` when the file is unreadable)."""
        reg = self.store.predictor(check_predictor_id(pid))
        if reg is None:
            raise PredictorNotFound(f"no predictor {pid!r} in the registry (tapas predictor "
                                    "list)")
        hit = self._loaded_model(pid)
        if hit is not None:
            return hit
        path = self.model_path(reg.artifact)
        self._model_file_of(reg)  # a shipped predictor's file is unpacked when first used
        if not path.is_file():
            raise PredictorNotFound(f"predictor {pid!r} is registered but its model file "
                                    f"{path} is missing (tapas predictor import FILE "
                                    "restores it)")
        model = load_predictor(path)
        info = reg.with_(cached=True)
        self._remember(model, info)
        return model, info

    def export_predictor(self, pid: str, dest: str | Path) -> Path:
        """Write predictor ``pid`` as one self-contained model file: its provenance gains the
        registry entry (DCN range, snapshot, metrics), so :meth:`import_predictor` restores it
        on another machine."""
        model, info = self.registered(pid)
        reg = self.store.predictor(pid)
        assert reg is not None  # registered() found it
        prov = {**(getattr(model, "provenance_", None) or {}),
                "registry": {"id": reg.id, "dcn": reg.dcn, "tau": reg.tau,
                             "dcn_lo": reg.dcn_lo, "dcn_hi": reg.dcn_hi,
                             "snapshot": reg.snapshot, "n_train": reg.n_train,
                             "metrics": reg.metrics, "provenance": reg.provenance}}
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        model.save(dest, provenance=prov)
        return dest

    def import_predictor(self, src: str | Path, *, replace: bool = False) -> PredictorInfo:
        """Register a model file written by :meth:`export_predictor`, copied into the model
        directory under its id.

        The whole file is verified first, on a private copy in the model directory (sizes,
        every array against the model's hyper-parameters, finite weights, the registry
        entry and its id), then file and registry entry are committed together or not at
        all. An id the registry holds is refused (``PredictorExistsError``) unless
        ``replace``: pinned predictions must not change behind a user's back. Importing
        the same weights again is a no-op (the entry comes back with ``cached=True``); an
        entry whose file is missing is restored without ``replace``.
        """
        src = Path(src)
        directory = self.model_dir
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".import-", suffix=".partial")
        tmp = Path(tmp_name)
        backup: Path | None = None
        placed = False
        final: Path | None = None
        try:
            with os.fdopen(fd, "wb") as out:
                _copy_bounded(src, out, MAX_FILE_BYTES)
            try:  # verifies all of it (predictor.tap.TAPRegressor.load)
                model = load_predictor(tmp)
            except ModelFileError as e:  # named by the file the user gave, not the copy
                raise ModelFileError(str(e).replace(str(tmp), str(src))) from None
            reg = _registry_entry(src, getattr(model, "provenance_", None))
            pid = reg["id"]
            artifact = f"{pid}.tap"
            final = directory / artifact
            old = self.store.predictor(pid)
            if old is not None and not replace:
                mine = _model_file(old.artifact, directory)
                if mine is not None and mine.is_file():
                    try:
                        same = content_digest(mine) == content_digest(tmp)
                    except ModelFileError:
                        same = False
                    if same:
                        return old.with_(cached=True)
                    raise PredictorExistsError(
                        f"predictor {pid} is already registered with other weights; "
                        "--replace (replace=True) overwrites it (predictions pinned to it "
                        "would change)")
            with self.store.transaction():
                self.store.register_predictor(
                    pid, reg["dcn"], reg["tau"], reg["dcn_lo"], reg["dcn_hi"], reg["snapshot"],
                    reg["n_train"], reg["metrics"], artifact, reg["provenance"])
                if final.exists():
                    backup = directory / f".{artifact}.{os.getpid()}.old"
                    os.replace(final, backup)
                os.replace(tmp, final)
                placed = True
        except BaseException:
            if backup is not None and final is not None:
                os.replace(backup, final)  # the previous file, as the registry still says
                backup = None
            elif placed and final is not None:
                final.unlink(missing_ok=True)
            raise
        finally:
            tmp.unlink(missing_ok=True)
            if backup is not None:
                backup.unlink(missing_ok=True)
        info = self.store.predictor(pid)
        assert info is not None  # just registered
        self._forget(pid)
        self._remember(model, info.with_(cached=True))
        return info

    def delete_predictor(self, pid: str) -> bool:
        """Remove ``pid`` from the registry, from memory and its file from the model
        directory (a file elsewhere, from an older absolute path, is left alone). False
        when unknown; ``PredictorIdError`` when ``pid`` is not a predictor id."""
        reg = self.store.predictor(check_predictor_id(pid))
        if reg is None:
            return False
        self.store.delete_predictor(pid)
        self._forget(pid)
        if is_model_file_name(reg.artifact):  # only ever a file inside the model directory
            (self.model_dir / reg.artifact).unlink(missing_ok=True)
        return True
