"""Cross-cell-type matrix (paper Figure 3): a set chosen in one cell type, applied in another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .drop import CellTypePredictions, Predict, drop_summary
from .selections import peak_sets, selection_keys

__all__ = ["cross_celltype", "CROSS_COLUMNS"]

CROSS_COLUMNS = ["method", "L", "source_cell_type", "target_cell_type", "n_genes", "n_cells", "rel_delta_pct",
                 "normalised"]


def cross_celltype(predict: Predict, X: sp.csr_matrix, cell_type: np.ndarray, *, genes: Sequence[str],
                   selections: pd.DataFrame, markers: Mapping[str, Sequence[str]], method: str) -> pd.DataFrame:
    """Rel Δ (%) of cell type b's marker genes in b's cells after removing the set that
    ``method`` chose for cell type a's gene set (the per-cell-type target), for every a, b and L.

    ``normalised`` is the drop (−Rel Δ) divided by the largest drop in its row (source a, L):
    1 where the row's set acts most, negative where it raises expression; rows then compare on
    one scale whatever the size of their own drop.

    Parameters
    ----------
    predict
        The surrogate's prediction: cells x peaks -> cells x genes, log-normalised.
    X
        Evaluation cells x peaks (e.g. the test split).
    cell_type
        Cell type of each row of ``X``.
    genes
        The surrogate's genes, in the order of its output columns.
    selections
        The long selections table (:func:`grids.evaluate.selections.read_selections`); the source sets
        are ``method``'s selections of kind 'set' with status 'ok'.
    markers
        Cell type b -> b's marker genes (names in ``genes``); a cell type without evaluation cells is
        left out as a target.
    method
        The method whose per-cell-type sets are applied.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CROSS_COLUMNS`: one row per source selection (first-seen order) and target cell
        type b (the order of ``markers``), with n_genes (b's markers), n_cells (b's cells), rel_delta_pct
        (:func:`grids.evaluate.drop.drop_summary`) and normalised (NaN where the row's largest drop is not
        positive).

    Raises
    ------
    ValueError
        When ``method`` has no per-cell-type selection that ran, or no cell type in ``markers`` has
        evaluation cells.
    """
    gene_index = {g: i for i, g in enumerate(genes)}
    keys = selection_keys(selections)
    sources = keys[(keys["method"] == method) & (keys["kind"] == "set") & (keys["status"] == "ok")]
    if sources.empty:
        raise ValueError(f"no per-cell-type selections by {method!r} to build the cross-cell-type matrix from; "
                         "turn on explain.per_cell_type")
    sets = peak_sets(selections)
    targets = [b for b in markers if np.any(cell_type == b)]
    if not targets:
        raise ValueError(f"none of the cell types with marker genes ({', '.join(markers)}) has evaluation cells")
    rows = []
    by_type = CellTypePredictions(predict, X, cell_type)
    for key in sources.itertuples(index=False):
        peaks = sets[(key.method, key.L, key.cell_type, key.target)]
        for b in targets:
            columns = [gene_index[g] for g in markers[b]]
            rel = drop_summary(by_type.before(b)[:, columns], by_type.after(b, peaks)[:, columns])[1]
            rows.append({"method": method, "L": key.L, "source_cell_type": key.cell_type, "target_cell_type": b,
                         "n_genes": len(columns), "n_cells": by_type.cells(b).shape[0], "rel_delta_pct": rel})
    table = pd.DataFrame(rows)
    drop = -table["rel_delta_pct"]
    largest = drop.groupby([table["L"], table["source_cell_type"]]).transform("max")
    table["normalised"] = drop / largest.where(largest > 0)
    return table[CROSS_COLUMNS]
