"""Export and import of a whole LDE as partitioned Parquet.

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
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lde.errors import IngestError
from lde.rows import SPLITS, IngestReport, Progress
from lde.schema import SCHEMA_VERSION
from tapas.types import MODEL_FILE_NAME, PREDICTOR_ID

if TYPE_CHECKING:
    from lde.store import Store

FORMAT = "tapas-lde"
FORMAT_VERSION = 1


def _sq(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def export_parquet(store: Store, directory: Path, progress: Progress | None = None,
                   overwrite: bool = False, model_dir: Path | None = None) -> dict[str, Any]:
    """Write the store to ``directory`` (created; must be empty unless ``overwrite``).

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
    opts = "(FORMAT PARQUET, COMPRESSION ZSTD)"
    steps = ["datasets", "architectures", "predictors", "experiments"]
    paths: list[str] = []
    try:
        with store.connection() as con:
            for i, table in enumerate(steps):
                if progress:
                    progress("export", i, len(steps))
                if table == "experiments":
                    n = con.execute("SELECT count(*) FROM experiments").fetchall()[0][0]
                    if n:
                        con.execute(f"COPY (SELECT * FROM experiments ORDER BY seq) TO "
                                    f"{_sq(tmp / 'experiments')} (FORMAT PARQUET, COMPRESSION "
                                    "ZSTD, PARTITION_BY (dataset_id))")
                    else:
                        (tmp / "experiments").mkdir()
                elif table == "predictors":
                    con.execute("COPY (SELECT * REPLACE (regexp_extract(artifact, '[^/]+$') "
                                "AS artifact) FROM predictors ORDER BY id) TO "
                                f"{_sq(tmp / 'predictors.parquet')} {opts}")
                    paths = [r[0] for r in con.execute("SELECT artifact FROM predictors")
                             .fetchall()]
                else:
                    con.execute(f"COPY (SELECT * FROM {table} ORDER BY id) TO "
                                f"{_sq(tmp / (table + '.parquet'))} {opts}")
            counts = store.counts()
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                        "schema_version": SCHEMA_VERSION, "snapshot": store.snapshot_id(),
                        "counts": counts, "source_path": str(store.path),
                        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        manifest["models"] = _copy_models(paths, model_dir, tmp / "models") if model_dir else 0
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


def _copy_models(artifacts: list[str], model_dir: Path, dest: Path) -> int:
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


def seed_shipped(store: Store, directory: Path, present: bool, what: str
                 ) -> IngestReport | None:
    """Merge an export shipped inside the package into ``store`` (idempotent); None, with
    a warning naming ``what``, when this installation left it out."""
    import warnings

    if not present:
        warnings.warn(f"{what} not found in {directory}; the database starts without it",
                      RuntimeWarning, stacklevel=3)
        return None
    return store.import_parquet(directory)


def _check_arch_ids(rows: list[tuple], rep: IngestReport, full: bool) -> set[str]:
    """Ids that do not match their descriptions (those rows are rejected).

    Canonical JSON is always hashed (cheap). NAS-Bench-201 rows are re-expanded in
    full when ``full``, else a random sample of 256 per input configuration (each
    stored cell is checked again when :meth:`Store.architectures` rebuilds it).
    """
    import random

    from lde.archs import nb201_rows

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
    from tapas.arch import ArchError, parse_cell

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


def import_parquet(store: Store, directory: Path, progress: Progress | None = None,
                   max_listed: int = 1000, verify: bool = False) -> IngestReport:
    """Merge the export at ``directory`` into ``store`` (see the module docstring).

    ``verify`` re-expands every NAS-Bench-201 architecture (about 0.5 ms each) instead
    of a sample; at most ``max_listed`` rejected experiments are listed one by one.
    """
    import pyarrow as pa

    from lde.archs import ArchRow, family_of

    directory = Path(directory)
    read_manifest(directory)
    rep = IngestReport()
    t0 = time.perf_counter()
    files = {t: directory / f"{t}.parquet" for t in ("datasets", "architectures", "predictors")}
    for f in files.values():
        if not f.is_file():
            raise IngestError(f"{directory} is missing {f.name}")
    exp_glob = directory / "experiments" / "*" / "*.parquet"
    has_exps = any((directory / "experiments").glob("*/*.parquet"))

    def step(i: int) -> None:
        if progress:
            progress("import", i, 5)

    step(0)
    with store.transaction() as con:
        # datasets: new ones inserted; a missing DCN filled in from the export
        con.execute(f"CREATE OR REPLACE TEMP VIEW _imp_ds AS SELECT * FROM "
                    f"read_parquet({_sq(files['datasets'])})")
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
                FROM read_parquet({_sq(files['architectures'])}, file_row_number = true) i
                ANTI JOIN architectures a ON a.id = i.id""").fetchall()
        bad = _check_arch_ids([r[:6] for r in new], rep, verify)
        good = [r for r in new if r[1] not in bad]
        if good:
            # family is recomputed from the canonical JSON (exports made before the
            # family was defined as Architecture.template_id carry an older hash)
            rows = [ArchRow(r[1], family_of(json.loads(r[2])) if r[2] is not None else r[6],
                            r[2], r[7], r[8], r[9], r[4], tuple(r[5]), r[3]) for r in good]
            store.insert_architectures(rows, "import")
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
            con.register("_imp_bad_arch", pa.table({"id": pa.array(sorted(bad), pa.string())}))
            splits = ", ".join(f"'{s}'" for s in SPLITS)
            src = (f"read_parquet({_sq(exp_glob)}, hive_partitioning = true, "
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
            step(3)
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
            store.ingest_rows([], "_imp_ok", kind="import", origin=str(directory), report=rep)
            con.execute("DROP VIEW _imp_ok")
            con.execute("DROP TABLE _imp_exp")
        step(4)
        # predictors: an id or model file name that could be a path is refused (a
        # crafted export must not make a later delete or load reach outside the model dir)
        ok = (f"regexp_full_match(CAST(id AS VARCHAR), '{PREDICTOR_ID.pattern}') AND "
              f"regexp_full_match(CAST(artifact AS VARCHAR), '{MODEL_FILE_NAME.pattern}')")
        for pid, art in con.execute(
                f"SELECT id, artifact FROM read_parquet({_sq(files['predictors'])}) "
                f"WHERE NOT coalesce({ok}, false) LIMIT 20").fetchall():
            rep.rejected.append(("predictors.parquet", f"predictor {str(pid)[:80]!r} with model "
                                 f"file {str(art)[:80]!r}: not a predictor id and plain file "
                                 "name; skipped"))
        con.execute(f"""INSERT INTO predictors SELECT i.* FROM
                        (SELECT * FROM read_parquet({_sq(files['predictors'])})
                         WHERE coalesce({ok}, false)) i
                        ANTI JOIN predictors p ON p.id = i.id""")
        con.execute("DROP VIEW _imp_ds")
    step(5)
    rep.seconds = time.perf_counter() - t0
    return rep
