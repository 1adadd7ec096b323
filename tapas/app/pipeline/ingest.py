"""The LDE's experiments in and out: records and files ingested, export folders merged
(with their model files) and written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lde import IngestReport
from lde.ingest import ingest_path, record_from_row
from lde.parquet_io import import_models
from tapas.app.pipeline.base import PipelineBase


class IngestMixin(PipelineBase):
    """Ingest and export."""

    def ingest(self, records: Sequence[dict[str, Any]], source: str = "api") -> IngestReport:
        """Validate and add experiment records given as dicts (the JSONL record format);
        rejected records carry their index."""
        parsed, rejected = [], []
        for i, row in enumerate(records):
            try:
                parsed.append(record_from_row(dict(row), source))
            except (ValueError, TypeError, KeyError) as e:
                rejected.append((i, str(e)))
        report = self.store.add_experiments(parsed) if parsed else IngestReport()
        report.rejected = rejected + list(report.rejected)
        return report

    def ingest_file(self, path: str | Path, fmt: str = "auto", *, verify: bool = False,
                    **kwargs: Any) -> IngestReport:
        """Ingest a file (own records, a NAS-Bench-201 table) or merge an export folder
        (``fmt`` ``lde``; ``verify`` re-expands every NAS-Bench-201 architecture). ``kwargs``
        go to :func:`lde.ingest.ingest_path` (``dcn``, ``mapping``, ``columns``, ``source``,
        ``progress``, ``workers``). One transaction: all of it lands or none. An export's
        model files are copied into the model directory (a missing one shows in
        :meth:`predictors`' listing as missing)."""
        path = Path(path)
        if fmt == "lde" or (fmt == "auto" and path.is_dir()):
            rep = self.store.import_parquet(path, kwargs.get("progress"), verify=verify)
            import_models(path, self.model_dir)
            return rep

        return ingest_path(self.store, path, fmt, **kwargs)

    def export(self, directory: str | Path, *, progress: Callable[[str, int, int], None]
               | None = None, overwrite: bool = False) -> dict[str, Any]:
        """Write the whole LDE as partitioned Parquet (:mod:`lde.parquet_io`), with the
        registered predictors' model files (so the export restores them elsewhere)."""
        return self.store.export_parquet(directory, progress, overwrite=overwrite,
                                         model_dir=self.model_dir)
