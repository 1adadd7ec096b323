"""Targets: the LDE's datasets, a request's target resolved against them, and a dataset's
DCN (computed once per content, by fingerprint, and stored)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import probenet
from probenet import Dataset, DCNResult
from probenet.dcn import probe_settings, reuse_or_probe, store_name, stored_result
from tapas.app.pipeline.base import PipelineBase
from tapas.core.errors import DatasetNotFound
from tapas.core.types import DatasetInfo, Target, resolve_target


def load_dataset(spec: str | Path, limits: Any = None) -> Dataset:
    """A dataset from a built-in spec, an ``.npz`` file or an image folder (``limits``:
    a ``probenet.DataLimits``, default from the settings)."""
    return probenet.load_dataset(spec, limits)


class DatasetsMixin(PipelineBase):
    """Datasets and targets: lookups, characterising (dataset -> fingerprint -> DCN, reused
    by fingerprint) and replacing a stored DCN."""

    def dataset(self, ident: str) -> DatasetInfo | None:
        """A stored dataset by id or name (None when unknown)."""
        row = self.store.dataset(ident)
        return None if row is None else DatasetInfo.from_row(row)

    def dataset_info(self, ident: str) -> DatasetInfo:
        """A stored dataset by id or name (:class:`~tapas.core.errors.DatasetNotFound`
        when unknown)."""
        info = self.dataset(ident)
        if info is None:
            names = [r.name for r in self.store.datasets()]
            close = difflib.get_close_matches(ident, names, n=3, cutoff=0.6) or \
                [n for n in names if ident.lower() in n.lower()][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise DatasetNotFound(f"no dataset {ident!r} in the LDE{hint}; characterise it first "
                              "(tapas dcn DATASET --store)")
        return info

    def datasets(self) -> list[DatasetInfo]:
        return [DatasetInfo.from_row(r) for r in self.store.datasets()]

    def target(self, *, dcn: float | None = None, dataset: str | None = None,
               num_classes: int | None = None,
               input_shape: Sequence[int] | None = None) -> Target:
        """A prediction target resolved against this LDE
        (:func:`tapas.core.types.resolve_target`)."""
        return resolve_target(self.dataset_info, dcn=dcn, dataset=dataset,
                              num_classes=num_classes, input_shape=input_shape)

    def characterize(self, dataset: str | Path | Dataset, *, seed: int = 0,
                     force: bool = False, progress: Callable[[int, int], None] | None = None,
                     **probe: Any) -> tuple[DatasetInfo, DCNResult]:
        """Load a dataset, compute (or reuse, by fingerprint) its DCN, record both in the LDE.

        ``probe``: ``device``, ``epochs``, ``max_samples``, ``max_steps`` (see
        ``probenet.characterize``, which computes; the new DCN is stored here).
        Data already stored (by fingerprint) resolve to that dataset. A name that stands
        for other content raises :class:`~lde.errors.DatasetConflict` before the probe runs
        (:meth:`recharacterize` is the explicit way to replace a stored DCN).
        """
        ds = dataset if isinstance(dataset, probenet.Dataset) else probenet.load_dataset(dataset)
        stored = self.store.dataset_by_fingerprint(ds.fingerprint)
        if force or stored is None:
            self.check_dataset(store_name(ds), ds.fingerprint, ds.num_classes, ds.input_shape)
        res = probenet.characterize(ds, stored=stored, seed=seed, force=force,
                                    progress=progress, **probe)
        if not res.cached:
            self.store.upsert_dataset(store_name(ds), ds.fingerprint, ds.n_samples,
                                      ds.num_classes, list(ds.input_shape), dcn=res.dcn,
                                      dcn_meta=res.meta, source="probenet")
        return DatasetInfo.from_row(self.store.dataset_by_fingerprint(ds.fingerprint)), res

    def check_dataset(self, name: str, fingerprint: str, n_classes: int,
                      input_shape: Sequence[int]) -> DatasetInfo | None:
        """The stored dataset ``name`` if these data may be characterised under it (None:
        the name is free); :class:`~lde.errors.DatasetConflict` naming what differs when
        the name stands for other content (``lde.store.identity_differences``)."""
        row = self.store.check_dataset(name, fingerprint, n_classes, input_shape, probing=True)
        return None if row is None else DatasetInfo.from_row(row)

    def recharacterize(self, name: str, dataset: str | Path | Dataset, *, seed: int = 0,
                       force: bool = False, reprobe: bool = False,
                       progress: Callable[[int, int], None] | None = None,
                       **probe: Any) -> tuple[DatasetInfo, DCNResult]:
        """Probe ``dataset`` (images) and store the DCN as the DCN of the stored dataset
        ``name`` (id or name), e.g. NAS-Bench-201's ``cifar10``, whose DCN follows the
        reference-cell convention because the images are not shipped.

        The row keeps its id, name and experiments; its ``dcn_meta`` becomes the probe's
        (``method = "probe"``) with the value it replaces under ``replaced`` (``dcn``,
        ``method``, ``meta``), written in one transaction. Predictors are keyed on the
        content of their DCN selection, so the next :meth:`train` whose selection holds
        this dataset trains a new one; predictors in memory that trained on it are
        dropped (pinned ones stay), registered ones stay in the registry.

        ``DatasetNotFound`` when ``name`` is unknown (with close names); ``ValueError`` when
        the images' input shape or class count differ from the stored dataset's, unless
        ``force``. A probe result already stored for the same images and probe settings
        is reused unless ``reprobe``. ``probe``: ``device``, ``epochs``, ``max_samples``,
        ``max_steps``.
        """
        store = self.store
        row = store.dataset(self.dataset_info(name).id)
        assert row is not None
        ds = dataset if isinstance(dataset, probenet.Dataset) else probenet.load_dataset(dataset)
        shape, k = tuple(ds.input_shape), int(ds.num_classes)
        if not force and (shape != tuple(row.input_shape) or k != int(row.n_classes)):
            raise ValueError(
                f"the images ({'x'.join(map(str, shape))}, {k} classes) do not match dataset "
                f"{row.name!r} ({'x'.join(map(str, row.input_shape))}, {row.n_classes} "
                "classes); --force (force=True) replaces its DCN anyway")
        want = probe_settings(seed, probe.get("epochs"), probe.get("max_samples"),
                              probe.get("max_steps"))
        if not reprobe:
            # already done for this row (a re-run): nothing to write
            same = stored_result(row, ds.fingerprint, want)
            if same is not None:
                return DatasetInfo.from_row(row), same
        rows = [] if reprobe else [store.dataset_by_fingerprint(ds.fingerprint)]
        res = reuse_or_probe(ds, rows, want, device=probe.get("device"), progress=progress)
        meta = {**res.meta, "images": ds.name, "n_samples": ds.n_samples}
        new = store.replace_dcn(row.id, res.dcn, meta)
        self._dcn_changed(row.id)
        return DatasetInfo.from_row(new), res

    def _dcn_changed(self, dataset_id: str) -> None:
        """Forget what this pipeline holds on a dataset's old DCN: the fast-path request
        map and the (unpinned) predictors in memory that trained on it."""
        self._resolved.drop()
        self._loaded.drop(lambda pid, held: dataset_id not in held[1].datasets)
