"""A search result as a picture: best-so-far per query, and every query's prediction.

Left: the best objective value after each predictor query (the search's progress).
Right: the predicted mean of each query against its index, the top architectures
marked, so one sees where the search spent its budget. matplotlib is imported here
only (the server extra), never by ``tapas.app.search`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tapas.app.search.algorithms import SearchResult


def plot_search(results: SearchResult | Sequence[SearchResult], path: str | Path | None = None,
                *, labels: Sequence[str] | None = None) -> Any:
    """Draw one or more results side by side (one colour each); save a PNG at ``path``
    when given. Returns the matplotlib figure."""
    import matplotlib  # here: the backend must be chosen before pyplot loads

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = [results] if isinstance(results, SearchResult) else list(results)
    if not res:
        raise ValueError("no search result to plot")
    names = list(labels) if labels is not None else [
        f"{r.strategy} (seed {r.seed})" for r in res]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for r, name, color in zip(res, names, plt.rcParams["axes.prop_cycle"].by_key()["color"],
                              strict=False):
        a1.plot(range(1, len(r.history) + 1), r.history, color=color, label=name)
        if r.means:
            a2.scatter(range(1, len(r.means) + 1), r.means, s=5, alpha=0.35, color=color,
                       label=name)
        a2.scatter([c.query for c in r.best], [c.mean for c in r.best], s=30, marker="*",
                   color=color, edgecolors="black", linewidths=0.5)
    a1.set_xlabel("predictor queries")
    a1.set_ylabel(f"best {res[0].objective} so far")
    a1.set_title("best so far")
    a2.set_xlabel("query")
    a2.set_ylabel("predicted accuracy (mean)")
    a2.set_title(f"every query (stars: top {len(res[0].best)})")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
    a1.legend(loc="lower right", fontsize=8)
    t = res[0].target
    fig.suptitle(f"{res[0].space} search, " + (f"dataset {t.dataset}" if t.dataset
                                                else f"DCN {t.dcn:.3f}"))
    fig.tight_layout()
    if path is not None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=110)
        plt.close(fig)
    return fig
