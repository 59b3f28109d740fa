"""Per-gene explanation targets that let the drop tables tell methods apart (issue 15).

A target whose planted CREs are fewer than L, or that has no redundant group, is removed
entirely by any reasonable method, so the tables measure nothing. These are each cell type's
markers with a planted OR group active in the type, most active CREs first.
"""

from __future__ import annotations

import pandas as pd

from .model import RegulatoryModel

__all__ = ["redundancy_targets"]


def redundancy_targets(model: RegulatoryModel, per_type: int = 2) -> pd.DataFrame:
    """``cell_type, gene`` rows (the ``config/targets.tsv`` layout): per cell type, up to
    ``per_type`` markers with an OR group active there, by number of active CREs (ties: gene order).

    Parameters
    ----------
    model
        The simulated genome and regulation; ``model.markers`` and :meth:`RegulatoryModel.links` are
        read.
    per_type
        Most targets per cell type.

    Returns
    -------
    pandas.DataFrame
        ``cell_type``, ``gene``; cell types in ``model.markers`` order, index 0..n-1. A marker
        qualifies when at least two of its OR-group CREs are active in the cell type; it ranks by its
        direct (not TF-mediated) links active there, most first. A cell type without such a marker
        has no row.
    """
    links = model.links()
    links = links[links["kind"] != "indirect"]
    rows = []
    for cell_type, genes in model.markers.items():
        active = links[links["gene"].isin(genes) & links["cell_types"].str.split(",").map(lambda c: cell_type in c)]
        ranked = []
        for order, gene in enumerate(genes):
            mine = active[active["gene"] == gene]
            if (mine["logic"] == "or").sum() >= 2:
                ranked.append((-len(mine), order, gene))
        rows += [(cell_type, gene) for _, _, gene in sorted(ranked)[:per_type]]
    return pd.DataFrame(rows, columns=["cell_type", "gene"])
