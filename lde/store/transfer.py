"""Parquet export and import of a whole store (the format: :mod:`lde.parquet_io`), also how
shipped data seeds a new database."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from lde.archs import ArchRow, family_of
from lde.errors import IngestError
from lde.parquet_io import (
    FORMAT,
    FORMAT_VERSION,
    check_arch_ids,
    copy_models,
    copy_tables,
    read_manifest,
    sql_path,
    stage_experiments,
)
from lde.rows import IngestReport, Progress
from lde.schema import SCHEMA_VERSION
from lde.store.experiments import Experiments
from lde.store.summary import Summary
from tapas.core.lazy import LazyImport
from tapas.core.types import MODEL_FILE_NAME, PREDICTOR_ID

pa = LazyImport("pyarrow")


class Transfer(Experiments, Summary):
    """Whole-store copies in and out (an import writes datasets, architectures, experiments
    and predictors; an export names the snapshot and counts)."""

    def export_parquet(self, directory: str | Path, progress: Progress | None = None,
                       overwrite: bool = False, model_dir: str | Path | None = None
                       ) -> dict[str, Any]:
        """Write the whole LDE to ``directory`` (created; must be empty unless
        ``overwrite``) as partitioned Parquet (the format: :mod:`lde.parquet_io`).

        Predictors are exported by model file name (never an absolute path of this
        machine); with ``model_dir`` (where relative names resolve) their files are copied
        into ``models/``, so the export carries everything its registry names.
        """
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            if not overwrite:
                raise IngestError(f"{directory} exists and is not empty; choose a new folder")
            shutil.rmtree(directory)
        tmp = directory.with_name(directory.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        steps = ["datasets", "architectures", "predictors", "experiments"]
        try:
            with self.connection() as con:
                paths = copy_tables(con, tmp, steps, progress)
                counts = self.counts()
                manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                            "schema_version": SCHEMA_VERSION, "snapshot": self.snapshot_id(),
                            "counts": counts, "source_path": str(self.path),
                            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            manifest["models"] = copy_models(paths, model_dir, tmp / "models") if model_dir else 0
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if directory.exists():
                directory.rmdir()
            tmp.rename(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if progress:
            progress("export", len(steps), len(steps))
        return {"path": str(directory), **manifest}

    def import_parquet(self, directory: str | Path, progress: Progress | None = None,
                       verify: bool = False, max_listed: int = 1000) -> IngestReport:
        """Merge an export (or shipped data) at ``directory`` into this LDE, idempotently, in
        one transaction (the format: :mod:`lde.parquet_io`).

        ``verify`` re-expands every NAS-Bench-201 architecture (about 0.5 ms each) instead
        of a sample; at most ``max_listed`` rejected experiments are listed one by one.
        """
        directory = Path(directory)
        read_manifest(directory)
        rep = IngestReport()
        t0 = time.perf_counter()
        files = {t: directory / f"{t}.parquet" for t in ("datasets", "architectures", "predictors")}
        for f in files.values():
            if not f.is_file():
                raise IngestError(f"{directory} is missing {f.name}")
        has_exps = any((directory / "experiments").glob("*/*.parquet"))

        def step(i: int) -> None:
            if progress:
                progress("import", i, 5)

        step(0)
        with self.transaction() as con:
            # datasets: new ones inserted; a missing DCN filled in from the export
            con.execute(f"CREATE OR REPLACE TEMP VIEW _imp_ds AS SELECT * FROM "
                        f"read_parquet({sql_path(files['datasets'])})")
            before = con.execute("SELECT count(*) FROM datasets").fetchall()[0][0]
            con.execute("""INSERT INTO datasets SELECT i.* FROM _imp_ds i
                           ANTI JOIN datasets d ON d.id = i.id""")
            con.execute("""UPDATE datasets SET dcn = i.dcn, dcn_meta = i.dcn_meta
                           FROM _imp_ds i WHERE datasets.id = i.id AND datasets.dcn IS NULL
                             AND i.dcn IS NOT NULL""")
            rep.datasets_added = int(con.execute("SELECT count(*) FROM datasets").fetchall()[0][0]
                                     - before)
            step(1)
            # architectures not yet stored, checked against their descriptions
            new = con.execute(
                f"""SELECT i.file_row_number + 1, i.id, i.canonical_json, i.nb201_cell,
                           i.num_classes, i.input_shape, i.family, i.params, i.flops, i.n_layers,
                           i.source, i.added_at
                    FROM read_parquet({sql_path(files['architectures'])}, file_row_number = true) i
                    ANTI JOIN architectures a ON a.id = i.id""").fetchall()
            bad = check_arch_ids([r[:6] for r in new], rep, verify)
            good = [r for r in new if r[1] not in bad]
            if good:
                # family is recomputed from the canonical JSON (exports made before the
                # family was defined as Architecture.template_id carry an older hash)
                rows = [ArchRow(r[1], family_of(json.loads(r[2])) if r[2] is not None else r[6],
                                r[2], r[7], r[8], r[9], r[4], tuple(r[5]), r[3]) for r in good]
                self.insert_architectures(rows, "import")
                # keep the exported source and time of each architecture
                con.register("_imp_arch_meta", pa.table({
                    "id": [r[1] for r in good], "source": [r[10] for r in good],
                    "added_at": pa.array([r[11] for r in good], pa.timestamp("us"))}))
                con.execute("""UPDATE architectures SET source = m.source, added_at = m.added_at
                               FROM _imp_arch_meta m WHERE architectures.id = m.id""")
                con.unregister("_imp_arch_meta")
            rep.architectures_added = len(good)
            step(2)
            if has_exps:
                stage_experiments(con, directory, bad, rep, max_listed)
                step(3)
                self.ingest_rows([], "_imp_ok", kind="import", origin=str(directory), report=rep)
                con.execute("DROP VIEW _imp_ok")
                con.execute("DROP TABLE _imp_exp")
            step(4)
            # predictors: an id or model file name that could be a path is refused (a
            # crafted export must not make a later delete or load reach outside the model dir)
            ok = (f"regexp_full_match(CAST(id AS VARCHAR), '{PREDICTOR_ID.pattern}') AND "
                  f"regexp_full_match(CAST(artifact AS VARCHAR), '{MODEL_FILE_NAME.pattern}')")
            for pid, art in con.execute(
                    f"SELECT id, artifact FROM read_parquet({sql_path(files['predictors'])}) "
                    f"WHERE NOT coalesce({ok}, false) LIMIT 20").fetchall():
                rep.rejected.append((
                    "predictors.parquet", f"predictor {str(pid)[:80]!r} with model file "
                    f"{str(art)[:80]!r}: not a predictor id and plain file name; skipped"))
            con.execute(f"""INSERT INTO predictors SELECT i.* FROM
                            (SELECT * FROM read_parquet({sql_path(files['predictors'])})
                             WHERE coalesce({ok}, false)) i
                            ANTI JOIN predictors p ON p.id = i.id""")
            con.execute("DROP VIEW _imp_ds")
        step(5)
        rep.seconds = time.perf_counter() - t0
        return rep

    def seed_shipped(self, directory: Path, present: bool, what: str) -> IngestReport | None:
        """Merge an export shipped inside the package (idempotent); None, with
        a warning naming ``what``, when this installation left it out."""
        if not present:
            warnings.warn(f"{what} not found in {directory}; the database starts without it",
                          RuntimeWarning, stacklevel=3)
            return None
        return self.import_parquet(directory)
