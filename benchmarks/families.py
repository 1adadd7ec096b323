"""Where a families generation stands (``--preset families``), from its database.

``python -m benchmarks.families /work/families-gen/lde.duckdb`` prints per family the
runs, the networks per dataset that hold a complete label (every seed of
:data:`~tapas.app.experiments.plan.FAMILIES_SEEDS`; a mean over the datasets), and the
mean over datasets of the seed-to-seed Kendall tau and of the label tau (two
independent labels, as the starter data card measures them, :func:`lde.starter.label_kendall`),
then one JSON object. DuckDB lets one process hold a database file: stop the generation
first (it resumes where it stopped).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from lde.starter import MIN_LABEL_NETWORKS, first_two_seeds, label_kendall, seed_to_seed_kendall


def status(db: Path, min_networks: int = MIN_LABEL_NETWORKS) -> dict[str, Any]:
    """Per family: runs, complete labels per dataset, and the seed-to-seed and label tau
    of the datasets where at least ``min_networks`` networks have the runs to compare."""
    import numpy as np

    from lde import Store
    from tapas.app.experiments.plan import (
        FAMILIES,
        FAMILIES_DATASETS,
        FAMILIES_SEEDS,
        FAMILIES_SOURCE,
    )

    with Store(db, read_only=True) as store:
        rows = store.sql("""
            SELECT json_extract_string(hparams, '$.family') AS family,
                   json_extract_string(hparams, '$.dataset_spec') AS dataset,
                   arch_id, seed, accuracy
            FROM experiments WHERE source = ? ORDER BY family, dataset, arch_id, seed""",
                         [FAMILIES_SOURCE]).to_pylist()
    out: dict[str, Any] = {}
    for fam in FAMILIES:
        runs = [(r["dataset"], r["arch_id"], r["seed"], r["accuracy"])
                for r in rows if r["family"] == fam]
        seeds: dict[tuple[str, str], set[int]] = {}
        for d, a, s, _ in runs:
            seeds.setdefault((d, a), set()).add(s)
        labelled = sum(set(FAMILIES_SEEDS) <= ss for ss in seeds.values())
        pairs = first_two_seeds(runs)
        enough = {d for d, n in Counter(d for d, *_ in pairs).items() if n >= min_networks}
        s2s = seed_to_seed_kendall([p for p in pairs if p[0] in enough])
        lab = label_kendall(runs, min_networks)
        out[fam] = {"runs": len(runs), "labels_per_dataset": labelled / len(FAMILIES_DATASETS),
                    "seed_to_seed_kendall": round(float(np.mean(list(s2s.values()))), 4)
                    if s2s else None,
                    "label_kendall": round(float(np.mean([t for t, _ in lab.values()])), 4)
                    if lab else None,
                    "label_kendall_seeds": min((k for _, k in lab.values()), default=0)}
    return out


def main(db: Annotated[Path, typer.Argument(help="The generation's database.")],
         min_networks: Annotated[int, typer.Option(
             "--min-networks", min=2, help="Networks a dataset needs for its taus.")
         ] = MIN_LABEL_NETWORKS) -> None:
    """Print the families generation's progress and label reproducibility."""
    out = status(db, min_networks)
    for fam, s in out.items():
        print(fam, s, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    from benchmarks import run_cli

    run_cli(main)
