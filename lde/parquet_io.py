"""The export format of a whole LDE as partitioned Parquet: its folder, manifest and checks.

:meth:`lde.store.Store.export_parquet` and :meth:`~lde.store.Store.import_parquet` do
the work and call the helpers here, which take paths and a DuckDB connection, never the
store (so the two modules do not call each other).

Layout of an export folder (readable by any Parquet engine)::

    manifest.json                       format, schema version, counts, snapshot
    datasets.parquet                    one row per dataset (DCN and how it was computed)
    architectures.parquet               id, family, canonical_json, params, flops, ...;
                                        NAS-Bench-201 networks carry ``nb201_cell`` and a
                                        null ``canonical_json`` (rebuilt from the cell)
    predictors.parquet                  the predictor registry
    experiments/dataset_id=<id>/*.parquet   experiments, partitioned by dataset

Import merges an export into a store in one transaction and is idempotent:
datasets, architectures and predictors already present (by id) are kept,
experiments already present (by natural key) are skipped. Architecture ids are
checked against their descriptions, and experiments are validated (accuracy in
[0, 1], known split, known architecture and dataset) before anything is written;
bad rows are rejected with their file and row number.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Any

from lde.archs import nb201_rows
from lde.errors import IngestError
from lde.rows import SPLITS, IngestReport, Progress
from tapas.core.arch import ArchError, parse_cell
from tapas.core.lazy import LazyImport

pa = LazyImport("pyarrow")

FORMAT = "tapas-lde"
FORMAT_VERSION = 1


def sql_path(path: Path) -> str:
    """``path`` as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def copy_models(artifacts: list[str], model_dir: Path, dest: Path) -> int:
    """Copy each registered model file that exists (relative names resolve in
    ``model_dir``) into ``dest`` under its file name; returns how many were copied."""
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for a in artifacts:
        src = Path(a) if Path(a).is_absolute() else Path(model_dir) / a
        if src.is_file():
            shutil.copyfile(src, dest / src.name)
            n += 1
    return n


def import_models(directory: Path, model_dir: Path) -> int:
    """Copy an export's ``models/`` files into ``model_dir`` (a file already there with
    the same name is kept: model files are named by their content-derived id)."""
    src = Path(directory) / "models"
    if not src.is_dir():
        return 0
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted(src.iterdir()):
        target = Path(model_dir) / f.name
        if f.is_file() and not target.exists():
            tmp = target.with_name(target.name + ".partial")
            shutil.copyfile(f, tmp)
            tmp.replace(target)
            n += 1
    return n


def read_manifest(directory: Path) -> dict[str, Any]:
    m = directory / "manifest.json"
    if not m.is_file():
        raise IngestError(f"{directory} is not an LDE export (no manifest.json)")
    try:
        manifest = json.loads(m.read_text())
    except json.JSONDecodeError as e:
        raise IngestError(f"{m}: malformed JSON at line {e.lineno}: {e.msg}") from None
    if manifest.get("format") != FORMAT:
        raise IngestError(f"{m}: not a {FORMAT} export (format={manifest.get('format')!r})")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise IngestError(f"{m}: export format version {manifest['format_version']} is newer "
                          "than this tapas understands; upgrade tapas")
    return manifest


def check_arch_ids(rows: list[tuple], rep: IngestReport, full: bool) -> set[str]:
    """Ids that do not match their descriptions (those rows are rejected).

    Canonical JSON is always hashed (cheap). NAS-Bench-201 rows are re-expanded in
    full when ``full``, else a random sample of 256 per input configuration (each
    stored cell is checked again when :meth:`Store.architectures` rebuilds it).
    """
    bad: set[str] = set()
    nb: dict[tuple[int, int], list[tuple[int, str, str]]] = {}
    for n, aid, cj, cell, k, shape in rows:
        if cell is None:
            if cj is None or hashlib.sha256(cj.encode()).hexdigest()[:32] != aid:
                bad.add(aid)
                rep.rejected.append((f"architectures.parquet row {n}",
                                     f"architecture {aid}: id does not match its canonical JSON"))
        elif shape[0] != 3 or shape[1] != shape[2]:
            bad.add(aid)
            rep.rejected.append((f"architectures.parquet row {n}",
                                 f"architecture {aid}: NAS-Bench-201 cell with input {shape}"))
        else:
            nb.setdefault((int(k), int(shape[1])), []).append((n, aid, cell))

    for cfg, items in nb.items():
        if not full and len(items) > 256:
            items = random.Random(0).sample(items, 256)
        good = []
        for n, aid, cell in items:
            try:
                parse_cell(cell)
                good.append((n, aid, cell))
            except ArchError as e:
                bad.add(aid)
                rep.rejected.append((f"architectures.parquet row {n}", str(e)))
        got = nb201_rows([c for _, _, c in good], [cfg])
        for (n, aid, _), (r,) in zip(good, got, strict=True):
            if r.id != aid:
                bad.add(aid)
                rep.rejected.append((f"architectures.parquet row {n}",
                                     f"architecture {aid}: id does not match its NAS-Bench-201 "
                                     "cell"))
    return bad


def copy_tables(con: Any, tmp: Path, steps: list[str], progress: Progress | None
                ) -> list[str]:
    """Write the tables ``steps`` of connection ``con`` into the export folder ``tmp``
    (experiments partitioned by dataset, predictors by model file name); returns the
    registered model files."""
    opts = "(FORMAT PARQUET, COMPRESSION ZSTD)"
    paths: list[str] = []
    for i, table in enumerate(steps):
        if progress:
            progress("export", i, len(steps))
        if table == "experiments":
            n = con.execute("SELECT count(*) FROM experiments").fetchall()[0][0]
            if n:
                con.execute(f"COPY (SELECT * FROM experiments ORDER BY seq) TO "
                            f"{sql_path(tmp / 'experiments')} (FORMAT PARQUET, COMPRESSION "
                            "ZSTD, PARTITION_BY (dataset_id))")
            else:
                (tmp / "experiments").mkdir()
        elif table == "predictors":
            con.execute("COPY (SELECT * REPLACE (regexp_extract(artifact, '[^/]+$') "
                        "AS artifact) FROM predictors ORDER BY id) TO "
                        f"{sql_path(tmp / 'predictors.parquet')} {opts}")
            paths = [r[0] for r in con.execute("SELECT artifact FROM predictors")
                     .fetchall()]
        else:
            con.execute(f"COPY (SELECT * FROM {table} ORDER BY id) TO "
                        f"{sql_path(tmp / (table + '.parquet'))} {opts}")
    return paths


def stage_experiments(con: Any, directory: Path, bad: set[str], rep: IngestReport,
                      max_listed: int) -> None:
    """Read an export's experiments (``directory``) into the temporary view ``_imp_ok``
    of connection ``con``: the rows that pass the checks (accuracy, split, curve, known
    architecture and dataset, none of the ``bad`` architectures); the others are listed
    in ``rep.rejected``, at most ``max_listed`` one by one."""
    exp_glob = directory / "experiments" / "*" / "*.parquet"
    con.register("_imp_bad_arch", pa.table({"id": pa.array(sorted(bad), pa.string())}))
    splits = ", ".join(f"'{s}'" for s in SPLITS)
    src = (f"read_parquet({sql_path(exp_glob)}, hive_partitioning = true, "
           "hive_types_autocast = false, filename = true, file_row_number = true)")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _imp_exp AS
        SELECT x.*, CASE
            WHEN x.accuracy IS NULL OR isnan(x.accuracy) THEN 'accuracy is missing or NaN'
            WHEN x.accuracy < 0 OR x.accuracy > 1 THEN
                 'accuracy ' || CAST(x.accuracy AS VARCHAR) || ' is outside [0, 1]'
            WHEN x.split IS NULL OR x.split NOT IN ({splits}) THEN
                 'split ' || coalesce(x.split, 'null') || ' is not one of '
                 || '{", ".join(SPLITS)}'
            WHEN x.curve IS NOT NULL AND list_count(list_filter(x.curve,
                 lambda v: v IS NULL OR isnan(v) OR v < 0 OR v > 1)) > 0 THEN
                 'curve has values outside [0, 1]'
            WHEN x.arch_id IN (SELECT id FROM _imp_bad_arch) THEN
                 'architecture ' || x.arch_id || ' was rejected'
            WHEN NOT EXISTS (SELECT 1 FROM architectures a WHERE a.id = x.arch_id) THEN
                 'unknown architecture ' || coalesce(x.arch_id, 'null')
            WHEN NOT EXISTS (SELECT 1 FROM datasets d WHERE d.id = x.dataset_id) THEN
                 'unknown dataset ' || coalesce(x.dataset_id, 'null')
            WHEN x.source IS NULL THEN 'source is missing'
            ELSE NULL END AS _why
        FROM {src} x""")
    con.unregister("_imp_bad_arch")
    n_bad = con.execute("SELECT count(*) FROM _imp_exp WHERE _why IS NOT NULL"
                        ).fetchall()[0][0]
    for fname, rn, why in con.execute(
            f"""SELECT filename, file_row_number + 1, _why FROM _imp_exp
                WHERE _why IS NOT NULL ORDER BY filename, file_row_number
                LIMIT {int(max_listed)}""").fetchall():
        rel = Path(fname).relative_to(directory) if fname.startswith(str(directory)) \
            else Path(fname)
        rep.rejected.append((f"{rel} row {rn}", why))
    if n_bad > max_listed:
        rep.rejected.append(("experiments", f"... and {n_bad - max_listed} more rejected "
                                            "rows"))
    con.execute("""CREATE OR REPLACE TEMP VIEW _imp_ok AS
        SELECT arch_id, dataset_id, split, seed, source, accuracy, epochs, hparams,
               curve, ingested_at, seq FROM _imp_exp WHERE _why IS NULL""")
