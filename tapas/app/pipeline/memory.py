"""The predictors a pipeline holds in memory: pinned ones for good (e.g. the service's
default), the rest in the process's one cache pool by their estimated size, and the map of
train requests already answered (the fast path of a repeated request)."""

from __future__ import annotations

from typing import Any

from tapas.app.pipeline.base import PipelineBase
from tapas.app.pipeline.model_files import model_path
from tapas.core.arch.cache import sizeof
from tapas.core.types import PredictorInfo

MODEL_BYTES_PER_FILE_BYTE = 2
"""A loaded predictor's memory per byte of its model file (an 8.5 MB file: +15.9 MB of
resident memory once loaded, its arrays plus the torch networks built from them)."""


class MemoryMixin(PipelineBase):
    """Holding, finding and forgetting loaded predictors."""

    def _resolve(self, snapshot: str, req: tuple[Any, ...], pid: str) -> None:
        key = (snapshot, *req)
        self._resolved.put(key, pid, sizeof(key) + sizeof(pid))

    def _forget(self, pid: str) -> None:
        with self._mem_lock:
            self._pinned.pop(pid, None)
        self._loaded.drop(lambda k, _: k != pid)
        self._resolved.drop(lambda _, v: v != pid)

    def _remember(self, model: Any, info: PredictorInfo, pin: bool = False) -> None:
        if info.created is None:  # just trained: the registration time orders it
            reg = self.store.predictor(info.id)
            info = info if reg is None else info.with_(created=reg.created)
        with self._mem_lock:
            self._seq += 1
            held = (model, info, self._seq)
            if pin or info.id in self._pinned:
                self._pinned[info.id] = held
                self._loaded.drop(lambda k, _: k != info.id)
            else:
                self._loaded.put(info.id, held, self._model_bytes(info))

    def _model_bytes(self, info: PredictorInfo) -> int:
        """A predictor's estimated memory, from its model file's size."""
        try:
            size = model_path(info.artifact or "", self.model_dir).stat().st_size
        except (OSError, ValueError):  # no file (yet): the size of a default-sized model
            size = 8 * 2**20
        return MODEL_BYTES_PER_FILE_BYTE * size

    def pin(self, pid: str) -> None:
        """Keep a loaded predictor in memory for good (e.g. the service's default)."""
        with self._mem_lock:
            held = self._loaded.get(pid)
            if held is not None:
                self._pinned[pid] = held
                self._loaded.drop(lambda k, _: k != pid)

    def _held(self) -> list[tuple[Any, PredictorInfo, int]]:
        """Every predictor in memory (pinned or pooled), in load order."""
        with self._mem_lock:
            return sorted([*self._pinned.values(), *(v for _, v in self._loaded.items())],
                          key=lambda v: v[2])

    def loaded(self) -> list[PredictorInfo]:
        """The predictors held in memory, most recently loaded last."""
        return [info for _, info, _ in self._held()]

    def _loaded_model(self, pid: str) -> tuple[Any, PredictorInfo] | None:
        with self._mem_lock:
            hit = self._pinned.get(pid) or self._loaded.get(pid)
            return None if hit is None else (hit[0], hit[1])
