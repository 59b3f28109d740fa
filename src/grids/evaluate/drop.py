"""Expression drops of selections on held-out cells (paper Tables 1 and 2), and the paired tests.

Everything here runs the surrogate's plain ``predict`` on the perturbed matrix (the selected
columns set to 0), not the explainer's shortcuts, so the evaluation is an independent check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .selections import KEY, peak_sets, selection_keys

__all__ = ["remove_peaks", "stacked_removals", "removal_predictions", "drop_summary", "off_target_change",
           "CellTypePredictions", "expression_drop", "wide_table", "paired_tests", "DROP_COLUMNS"]

log = logging.getLogger(__name__)

DROP_COLUMNS = [*KEY, "kind", "n_genes", "n_cells", "n_peaks", "avg_delta", "rel_delta_pct", "off_target_pct", "status"]
Predict = Callable[[sp.csr_matrix], np.ndarray]  # cells x peaks -> cells x genes, log-normalised


def remove_peaks(X: sp.csr_matrix, peaks: np.ndarray) -> sp.csr_matrix:
    """X with the columns ``peaks`` closed in every cell (removal perturbation, p = 0).

    Parameters
    ----------
    X
        Cells x peaks.
    peaks
        Column indices to close.

    Returns
    -------
    scipy.sparse.csr_matrix
        A new matrix of the shape of ``X``, with the entries in ``peaks`` dropped (not kept as stored
        zeros).
    """
    keep = np.ones(X.shape[1], dtype=X.dtype)
    keep[np.asarray(peaks, dtype=np.int64)] = 0
    out = sp.csr_matrix(X.multiply(keep[None, :]))
    out.eliminate_zeros()
    return out


def stacked_removals(X: sp.csr_matrix, closed: Sequence[np.ndarray]) -> sp.csr_matrix:
    """Copies of ``X`` stacked vertically, copy k with the columns ``closed[k]`` set to 0.

    Equal to ``sp.vstack([remove_peaks(X, c) for c in closed])`` (closed entries are dropped, not
    kept as stored zeros, which a sparse model input would count as open), built in one pass.

    Parameters
    ----------
    X
        Cells x peaks.
    closed
        Column indices to close, one array per copy.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``len(closed) * n_cells`` x peaks: rows ``k * n_cells`` to ``(k + 1) * n_cells - 1`` are copy k.
    """
    X = sp.csr_matrix(X)
    n_cells, n_peaks = X.shape
    k, nnz = len(closed), X.nnz
    sets = [np.asarray(c, dtype=np.int64).ravel() for c in closed]
    union = np.unique(np.concatenate(sets)) if sets and any(len(s) for s in sets) else np.zeros(0, np.int64)
    # Only entries in closed columns can change: index them by their column's place in the union
    # (the extra last place is "never closed"), so masking costs k x nnz booleans, not k x peaks.
    place = np.full(n_peaks, len(union), dtype=np.int64)
    place[union] = np.arange(len(union))
    shut = np.zeros((k, len(union) + 1), dtype=bool)
    for row, columns in enumerate(sets):
        shut[row, place[columns]] = True
    keep = ~shut[:, place[X.indices]]  # k x nnz
    data = (X.data[None, :] * keep).ravel()
    indices = np.tile(X.indices, k)
    indptr = np.r_[(X.indptr[:-1][None, :] + nnz * np.arange(k)[:, None]).ravel(), k * nnz]
    out = sp.csr_matrix((data, indices, indptr), shape=(k * n_cells, n_peaks))
    out.eliminate_zeros()
    return out


class CellTypePredictions:
    """The evaluation cells of each cell type and the surrogate's prediction for them, each made
    once and shared by every selection evaluated on that cell type."""

    def __init__(self, predict: Predict, X: sp.csr_matrix, cell_type: np.ndarray) -> None:
        self.predict, self.X, self.cell_type = predict, X, cell_type
        self._cells: dict[str, sp.csr_matrix] = {}
        self._before: dict[str, np.ndarray] = {}

    def cells(self, name: str) -> sp.csr_matrix:
        """The cells of one cell type (cells x peaks; none when it has no cells here)."""
        if name not in self._cells:
            self._cells[name] = self.X[np.flatnonzero(self.cell_type == name)]
        return self._cells[name]

    def before(self, name: str) -> np.ndarray:
        """The unperturbed prediction for the cell type's cells (cells x genes, log-normalised)."""
        if name not in self._before:
            self._before[name] = self.predict(self.cells(name))
        return self._before[name]

    def after(self, name: str, peaks: np.ndarray) -> np.ndarray:
        """The prediction for the cell type's cells with ``peaks`` closed in every cell."""
        return self.predict(remove_peaks(self.cells(name), peaks))

    def after_many(self, name: str, closed: Sequence[np.ndarray], genes: Sequence[int],
                   max_cells_per_call: int = 8192) -> np.ndarray:
        """:meth:`after` for each set ``closed[k]``, read at gene ``genes[k]`` only (sets x cells),
        in a few stacked predict calls (:func:`removal_predictions`)."""
        cells = self.cells(name)
        genes = np.asarray(genes, dtype=np.int64)
        out = np.zeros((len(closed), cells.shape[0]), dtype=np.float64)
        for lo, hi, predicted in removal_predictions(self.predict, cells, closed,
                                                     max_cells_per_call=max_cells_per_call):
            out[lo:hi] = predicted[np.arange(hi - lo), :, genes[lo:hi]]
        return out


def removal_predictions(predict: Predict, X: sp.csr_matrix, closed: Sequence[np.ndarray], *,
                        max_cells_per_call: int = 8192) -> Iterator[tuple[int, int, np.ndarray]]:
    """The prediction of ``X`` with each set of ``closed`` removed, as ``(lo, hi, predicted)``
    chunks: ``predicted`` is (hi - lo) sets x cells x genes for ``closed[lo:hi]``. The removals
    are stacked (:func:`stacked_removals`) into calls of about ``max_cells_per_call`` cells: one
    call per small set of cells costs more in overhead than in arithmetic.

    Parameters
    ----------
    predict
        The surrogate's prediction: cells x peaks -> cells x genes, log-normalised.
    X
        Cells x peaks.
    closed
        Column indices to remove, one array per set.
    max_cells_per_call
        About how many rows one ``predict`` call is given (at least one set per call).

    Yields
    ------
    lo, hi : int
        The sets of this chunk, ``closed[lo:hi]``; chunks come in order and cover every set.
    predicted : numpy.ndarray
        (hi - lo) x cells x genes: the prediction of ``X`` with each of those sets removed.
    """
    n_cells = X.shape[0]
    per_call = max(1, max_cells_per_call // max(n_cells, 1))
    for lo in range(0, len(closed), per_call):
        hi = min(lo + per_call, len(closed))
        predicted = np.asarray(predict(stacked_removals(X, closed[lo:hi])))
        yield lo, hi, predicted.reshape(hi - lo, n_cells, -1)


def drop_summary(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(Avg Δ, Rel Δ %) on the natural scale from log-normalised cells x genes predictions.

    Avg Δ = mean over cells and genes of expm1(after) - expm1(before). Rel Δ is taken per gene
    as the change of the cell mean relative to the cell mean before, then averaged over genes:
    a per-cell ratio is unbounded where the surrogate predicts 0 for a cell, and one such cell
    would decide the table.

    Parameters
    ----------
    before
        Cells x genes prediction without the removal (log-normalised).
    after
        Cells x genes prediction with the removal (log-normalised), same shape.

    Returns
    -------
    avg_delta : float
        Avg Δ on the natural scale.
    rel_delta_pct : float
        Rel Δ in %, over the genes whose mean before is positive; NaN when none is.
    """
    b, a = np.expm1(before.astype(np.float64)), np.expm1(after.astype(np.float64))
    delta = a - b
    base = b.mean(0)
    rel = np.divide(delta.mean(0), base, out=np.full(base.shape, np.nan), where=base > 0)
    return float(delta.mean()), float(np.nanmean(rel) * 100) if np.isfinite(rel).any() else float("nan")


def off_target_change(before: np.ndarray, after: np.ndarray, target_columns: Sequence[int]) -> float:
    """The side effect of a removal (the paper's beta term, as a figure): the median over the
    non-target genes of each gene's Rel Δ % (change of the cell mean on the natural scale);
    genes the surrogate puts at 0 are left out.

    Parameters
    ----------
    before
        Cells x genes prediction without the removal (log-normalised).
    after
        Cells x genes prediction with the removal (log-normalised), same shape.
    target_columns
        Columns of the target genes, left out.

    Returns
    -------
    float
        The median Rel Δ % over the other genes; NaN when there are none, or none has a positive mean
        before.
    """
    others = np.setdiff1d(np.arange(before.shape[1]), np.asarray(target_columns, dtype=np.int64))
    if len(others) == 0:
        return float("nan")
    b = np.expm1(before[:, others].astype(np.float64)).mean(0)
    a = np.expm1(after[:, others].astype(np.float64)).mean(0)
    rel = np.divide(a - b, b, out=np.full(b.shape, np.nan), where=b > 0)
    return float(np.nanmedian(rel) * 100) if np.isfinite(rel).any() else float("nan")


def expression_drop(predict: Predict, X: sp.csr_matrix, cell_type: np.ndarray, *, genes: Sequence[str],
                    selections: pd.DataFrame, members: Mapping[str, Sequence[str]],
                    stem: Callable[[str, str], str]) -> pd.DataFrame:
    """Avg Δ and Rel Δ of every selection on the given cells of its own cell type, and its
    off-target effect (:func:`off_target_change`).

    ``X``/``cell_type`` are the evaluation cells (e.g. the test split); ``members`` maps a target's
    file stem to its genes; a selection whose cell type has no cells here is an error.

    Parameters
    ----------
    predict
        The surrogate's prediction: cells x peaks -> cells x genes, log-normalised.
    X
        Evaluation cells x peaks.
    cell_type
        Cell type of each row of ``X``.
    genes
        The surrogate's genes, in the order of its output columns.
    selections
        The long selections table (:func:`grids.evaluate.selections.read_selections`).
    members
        File stem -> the target's genes; a target missing here stands for itself alone.
    stem
        (cell_type, target) -> the file stem that keys ``members``
        (:func:`grids.explain.tasks.file_stem`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DROP_COLUMNS`, one row per selection in first-seen order: n_genes, n_cells,
        n_peaks (selected), avg_delta and rel_delta_pct (:func:`drop_summary`, over the target's genes),
        off_target_pct (:func:`off_target_change`) and status; a selection that did not run has 0 peaks,
        NaN metrics and its own status.

    Raises
    ------
    ValueError
        When a selection's cell type has no cells in ``X``.
    """
    gene_index = {g: i for i, g in enumerate(genes)}
    sets = peak_sets(selections)
    keys = selection_keys(selections)
    by_type = CellTypePredictions(predict, X, cell_type)
    rows = []
    for key in keys.itertuples(index=False):
        n_cells = by_type.cells(key.cell_type).shape[0]
        if n_cells == 0:
            raise ValueError(f"cell type {key.cell_type!r} has no held-out cells to evaluate on")
        target_genes = [gene_index[g] for g in members.get(stem(key.cell_type, key.target), [key.target])]
        common = {"method": key.method, "L": key.L, "cell_type": key.cell_type, "target": key.target,
                  "kind": key.kind, "n_genes": len(target_genes), "n_cells": n_cells}
        peaks = sets[(key.method, key.L, key.cell_type, key.target)]
        if key.status != "ok":
            rows.append({**common, "n_peaks": 0, "avg_delta": np.nan, "rel_delta_pct": np.nan,
                         "off_target_pct": np.nan, "status": key.status})
            continue
        before, after = by_type.before(key.cell_type), by_type.after(key.cell_type, peaks)
        avg, rel = drop_summary(before[:, target_genes], after[:, target_genes])
        rows.append({**common, "n_peaks": len(peaks), "avg_delta": avg, "rel_delta_pct": rel,
                     "off_target_pct": off_target_change(before, after, target_genes), "status": "ok"})
    return pd.DataFrame(rows, columns=DROP_COLUMNS)


WIDE_METRICS = ("avg_delta", "rel_delta_pct", "off_target_pct")


def wide_table(drops: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Paper-style table for one target kind: rows (L, cell type) plus an 'Avg.' row per L,
    columns ``{method} avg_delta``, ``{method} rel_delta_pct`` and ``{method} off_target_pct`` (means
    over the type's targets).

    Parameters
    ----------
    drops
        Expression drops (:func:`expression_drop`); only rows with status 'ok' are averaged.
    kind
        Target kind: 'gene' or 'set'.

    Returns
    -------
    pandas.DataFrame
        Columns L, cell_type, then the three metric columns of each method (in first-seen order of
        ``drops``); per L (ascending) one row per cell type and the 'Avg.' row (the mean over the cell
        types). Only columns L and cell_type, and no row, when no selection of ``kind`` ran.
    """
    part = drops[(drops["kind"] == kind) & (drops["status"] == "ok")]
    if part.empty:
        return pd.DataFrame(columns=["L", "cell_type"])
    methods = list(dict.fromkeys(drops["method"]))
    blocks = []
    for L, at_L in part.groupby("L", sort=True):
        means = at_L.groupby(["cell_type", "method"], sort=False)[list(WIDE_METRICS)].mean()
        table = means.unstack("method")
        table = table.reindex(columns=pd.MultiIndex.from_product([list(WIDE_METRICS), methods]))
        table.loc["Avg."] = table.mean(0)
        table.columns = [f"{method} {metric}" for metric, method in table.columns]
        table = table[[f"{m} {metric}" for m in methods for metric in WIDE_METRICS]]
        blocks.append(table.rename_axis("cell_type").reset_index().assign(L=L))
    out = pd.concat(blocks, ignore_index=True)
    return out[["L", "cell_type", *[c for c in out.columns if c not in ("L", "cell_type")]]]


def paired_tests(drops: pd.DataFrame, reference: str = "grids") -> pd.DataFrame:
    """One-sided paired t-test per L, target kind (and all kinds pooled) and baseline: is the
    reference's Rel Δ lower (a larger drop) than the baseline's over the targets both ran on?

    Parameters
    ----------
    drops
        Expression drops (:func:`expression_drop`); only rows with status 'ok' are tested.
    reference
        The method tested against every other method.

    Returns
    -------
    pandas.DataFrame
        Columns L, kind ('all' for the pooled kinds), reference, baseline, n_targets (targets both ran
        on), reference_rel_delta_pct and baseline_rel_delta_pct (means over those targets),
        mean_difference_pct (reference - baseline), t and p_value (NaN for fewer than two targets or
        identical drops). Rows sorted by L and kind, baselines in first-seen order; none for an L and
        kind where the reference did not run.
    """
    from scipy import stats

    ok = drops[drops["status"] == "ok"]
    rows = []
    # Per target kind, and pooled over kinds ("all": every target at that L).
    scopes = [((L, kind), part) for (L, kind), part in ok.groupby(["L", "kind"], sort=True)]
    scopes += [((L, "all"), part) for L, part in ok.groupby("L", sort=True)]
    for (L, kind), part in sorted(scopes, key=lambda item: item[0]):
        wide = part.pivot_table(index=["cell_type", "target"], columns="method", values="rel_delta_pct")
        if reference not in wide.columns:
            continue
        for baseline in [m for m in dict.fromkeys(drops["method"]) if m != reference and m in wide.columns]:
            pair = wide[[reference, baseline]].dropna()
            diff = pair[reference] - pair[baseline]
            if len(pair) >= 2 and diff.std() > 0:
                test = stats.ttest_rel(pair[reference], pair[baseline], alternative="less")
                t, p = float(test.statistic), float(test.pvalue)
            else:  # too few targets, or identical drops: the test is undefined
                t, p = np.nan, np.nan
            rows.append({"L": L, "kind": kind, "reference": reference, "baseline": baseline, "n_targets": len(pair),
                         "reference_rel_delta_pct": pair[reference].mean(),
                         "baseline_rel_delta_pct": pair[baseline].mean(),
                         "mean_difference_pct": diff.mean(), "t": t, "p_value": p})
    return pd.DataFrame(rows, columns=["L", "kind", "reference", "baseline", "n_targets", "reference_rel_delta_pct",
                                       "baseline_rel_delta_pct", "mean_difference_pct", "t", "p_value"])
