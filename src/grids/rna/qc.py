"""QC, normalisation and highly variable genes in Pegasus.

:func:`rna_qc` converts to Pegasus' ``MultimodalData``, runs its QC metrics, cell filter,
robust genes, log-normalisation and HVG selection, and converts back, keeping the target genes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .embedding import _to_pegasus
from .labels import check_targets

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["rna_qc"]

log = logging.getLogger(__name__)

QC_COLUMNS = ["n_genes", "n_counts", "percent_mito"]


def rna_qc(
    data: ad.AnnData | Sequence[ad.AnnData],
    *,
    min_genes: int | None = 500,
    max_genes: int | None = 6000,
    min_umis: int | None = 100,
    max_umis: int | None = None,
    percent_mito: float | None = 20.0,
    mito_prefix: str = "MT-",
    robust_percent_cells: float = 0.05,
    norm_count: float = 1e5,
    n_top_hvg: int = 3000,
    batch_aware: bool = True,
    keep_genes: Iterable[str] = (),
    subset_genes: bool = True,
) -> tuple[ad.AnnData, pd.DataFrame]:
    """Pegasus QC, filtering, log-normalisation and HVG selection.

    Runs ``pg.qc_metrics`` -> ``pg.filter_data`` -> ``pg.identify_robust_genes`` ->
    ``pg.log_norm`` -> ``pg.highly_variable_features``. Pegasus' comparisons: a cell passes
    with ``n_genes >= min_genes``, ``n_genes < max_genes``, ``n_counts >= min_umis``,
    ``n_counts < max_umis`` and ``percent_mito < percent_mito``; ``None`` disables a filter.

    Parameters
    ----------
    data
        One AnnData from :func:`read_rna` or several (one per sample; concatenated on their
        shared genes).
    min_genes
        Least genes detected in a passing cell.
    max_genes
        Genes detected in a passing cell stay below this.
    min_umis
        Least UMIs of a passing cell.
    max_umis
        UMIs of a passing cell stay below this.
    percent_mito
        Mitochondrial UMIs of a passing cell stay below this percentage.
    mito_prefix
        Mitochondrial gene prefix (``"MT-"`` human, ``"mt-"`` mouse). No such gene: a
        warning, ``percent_mito`` 0 and no mitochondrial filter.
    robust_percent_cells
        A gene is robust (HVG candidate, used for normalisation size factors) when detected in
        at least this percent of cells.
    norm_count
        Total each cell's counts are scaled to before the log (Pegasus ``log_norm``).
    n_top_hvg
        Highly variable genes to select (all robust genes when fewer).
    batch_aware
        Select HVGs per sample (Pegasus ``batch='Channel'``) when there are several samples.
    keep_genes
        Genes always kept in the output (target markers), HVG or not; each must be in the data.
    subset_genes
        Restrict the output to HVGs plus ``keep_genes``; ``False`` keeps every gene detected
        after QC (better for marker-based labelling with a large preset).

    Returns
    -------
    adata : anndata.AnnData
        Cells passing QC. ``X``: Pegasus log-normalised values (float32); ``layers['counts']``:
        raw counts of the same genes; ``obs``: sample, barcode, n_genes, n_counts,
        percent_mito; ``var``: robust, highly_variable_features, target.
    qc : pandas.DataFrame
        One row per input cell: cell, sample, barcode, n_genes, n_counts, percent_mito, passed_qc.

    Raises
    ------
    ValueError
        When no sample is given, a sample lacks ``obs['sample']`` or ``obs['barcode']``, the
        samples share no gene or repeat a cell name, a gene of ``keep_genes`` is not in the data,
        no cell passes QC, or fewer than two robust genes remain.
    """
    import anndata as ad
    import pegasus as pg

    adata = _concat(data)
    keep_genes = list(dict.fromkeys(keep_genes))
    check_targets(adata.var_names, keep_genes, source="the RNA matrix")
    samples = list(dict.fromkeys(adata.obs["sample"].astype(str)))

    mito = adata.var_names.str.startswith(mito_prefix)
    if not mito.any():
        other = mito_prefix.swapcase()
        hint = (f"; {int(adata.var_names.str.startswith(other).sum())} genes start with '{other}', "
                f"set mito_prefix: '{other}'") if adata.var_names.str.startswith(other).any() else ""
        log.warning("no gene starts with the mitochondrial prefix '%s'%s; percent_mito is 0 and not filtered on",
                    mito_prefix, hint)

    # Only sample/barcode go in: Pegasus reuses obs['n_genes'/'n_counts'] if they exist.
    data_pg = _to_pegasus(adata.X.copy(), adata.obs[["sample", "barcode"]], adata.var[[]])
    batch = "Channel" if batch_aware and len(samples) > 1 else None
    if batch:
        data_pg.obs["Channel"] = pd.Categorical(adata.obs["sample"].astype(str), categories=samples)

    pg.qc_metrics(data_pg, min_genes=min_genes, max_genes=max_genes, min_umis=min_umis, max_umis=max_umis,
                  mito_prefix=mito_prefix if mito.any() else None,
                  percent_mito=percent_mito if mito.any() else None)
    qc = data_pg.obs.copy()
    if "percent_mito" not in qc:
        qc["percent_mito"] = 0.0
    qc = pd.DataFrame({
        "cell": adata.obs_names, "sample": adata.obs["sample"].to_numpy(),
        "barcode": adata.obs["barcode"].to_numpy(),
        "n_genes": qc["n_genes"].to_numpy(np.int64), "n_counts": qc["n_counts"].to_numpy(np.int64),
        "percent_mito": qc["percent_mito"].to_numpy(float), "passed_qc": qc["passed_qc"].to_numpy(bool),
    })
    _log_qc(qc)
    if not qc["passed_qc"].any():
        raise ValueError(f"no cell passes RNA QC (min_genes={min_genes}, max_genes={max_genes}, "
                         f"min_umis={min_umis}, max_umis={max_umis}, percent_mito={percent_mito}); "
                         f"medians: {qc[QC_COLUMNS].median().round(1).to_dict()}")

    pg.filter_data(data_pg)
    pg.identify_robust_genes(data_pg, percent_cells=robust_percent_cells)
    # log_norm renames the count matrix 'X' to 'counts' and selects 'counts.log_norm' as X.
    pg.log_norm(data_pg, norm_count=norm_count)
    n_robust = int(data_pg.var["robust"].sum())
    if n_robust < 2:
        raise ValueError(f"only {n_robust} robust gene(s) after QC; lower robust_percent_cells or the cell filters")
    hvg_batch = ""
    if n_robust <= n_top_hvg:
        # identify_robust_genes already marks every robust gene highly variable, which is what
        # selection would return; skipping it also avoids the loess fit on a tiny gene panel.
        log.info("%d robust genes <= n_top_hvg=%d: all robust genes are highly variable", n_robust, n_top_hvg)
    else:
        # Pegasus' loess span (0.02) must cover a few genes: below one gene skmisc segfaults
        # instead of raising, so small panels get a wider span (15 genes, as for ~750 genes).
        span = min(1.0, max(0.02, 15.0 / n_robust))
        pg.highly_variable_features(data_pg, batch=batch, n_top=n_top_hvg, span=span, n_jobs=1)
        hvg_batch = batch or ""

    var = data_pg.var
    targets = pd.Index(keep_genes)
    genes = var.index[var["highly_variable_features"].to_numpy(bool)] if subset_genes else var.index
    # Mitochondrial genes are not regulated by nuclear CREs, so the surrogate does not model
    # them (they stay available for QC, and as targets if asked for).
    genes = genes[~genes.str.startswith(mito_prefix)]
    # Input order; targets with no count after QC were dropped by identify_robust_genes and
    # come back here as zero columns, so they stay addressable downstream.
    chosen = adata.var_names[adata.var_names.isin(genes.union(targets))]
    absent = targets.difference(var.index)
    if len(absent):
        log.warning("target genes with no count in any cell passing QC (kept as zeros): %s", ", ".join(absent))

    passed = qc["passed_qc"].to_numpy()
    assert data_pg.obs_names.equals(adata.obs_names[passed])  # filter_data keeps row order
    counts = adata.X[passed][:, adata.var_names.get_indexer(chosen)]
    lognorm = _columns(data_pg.X.tocsr() if sp.issparse(data_pg.X) else sp.csr_matrix(data_pg.X),
                       var.index.get_indexer(chosen))
    out_var = adata.var.loc[chosen].copy()
    for column in ("robust", "highly_variable_features"):
        out_var[column] = var[column].reindex(chosen, fill_value=False).to_numpy(bool)
    out_var["target"] = chosen.isin(targets)
    obs = adata.obs.loc[passed, ["sample", "barcode"]].copy()
    for column in QC_COLUMNS:
        obs[column] = qc.loc[passed, column].to_numpy()
    out = ad.AnnData(X=lognorm.astype(np.float32), obs=obs, var=out_var, layers={"counts": counts})
    out.uns["rna_qc"] = {k: v for k, v in {
        "min_genes": min_genes, "max_genes": max_genes, "min_umis": min_umis, "max_umis": max_umis,
        "percent_mito": percent_mito, "mito_prefix": mito_prefix, "robust_percent_cells": robust_percent_cells,
        "norm_count": norm_count, "n_top_hvg": n_top_hvg, "hvg_batch": hvg_batch,
    }.items() if v is not None}
    log.info("RNA after QC: %d cells x %d genes (%d highly variable, %d targets)", out.n_obs, out.n_vars,
             int(out_var["highly_variable_features"].sum()), int(out_var["target"].sum()))
    return out, qc


def _concat(data: ad.AnnData | Sequence[ad.AnnData]) -> ad.AnnData:
    """One AnnData from one or several samples, on the genes they share."""
    import anndata as ad

    parts = [data] if isinstance(data, ad.AnnData) else list(data)
    if not parts:
        raise ValueError("no RNA sample given")
    for part in parts:
        if not {"sample", "barcode"} <= set(part.obs):
            raise ValueError("RNA AnnData needs obs['sample'] and obs['barcode'] (use read_rna)")
    if len(parts) == 1:
        adata = parts[0]
    else:
        shared = parts[0].var_names
        for part in parts[1:]:
            shared = shared.intersection(part.var_names, sort=False)
        lost = max(p.n_vars for p in parts) - len(shared)
        if not len(shared):
            raise ValueError("the RNA samples share no gene name")
        if lost:
            log.warning("RNA samples differ in genes: %d genes not in every sample are dropped", lost)
        adata = ad.concat([p[:, shared] for p in parts], axis=0, join="inner", merge="same")
    if adata.obs_names.has_duplicates:
        first = adata.obs_names[adata.obs_names.duplicated()][0]
        raise ValueError(f"duplicated cell names across RNA samples, e.g. {first}")
    if not sp.isspmatrix_csr(adata.X):
        adata = adata.copy()  # never change the caller's object
        adata.X = sp.csr_matrix(adata.X)
    return adata


def _columns(matrix: sp.csr_matrix, index: np.ndarray) -> sp.csr_matrix:
    """Columns of ``matrix`` by index, ``-1`` giving an all-zero column."""
    padded = sp.hstack([matrix, sp.csr_matrix((matrix.shape[0], 1), dtype=matrix.dtype)]).tocsc()
    return padded[:, np.where(index >= 0, index, matrix.shape[1])].tocsr()


def _log_qc(qc: pd.DataFrame) -> None:
    for sample, block in qc.groupby("sample", sort=False):
        log.info("RNA QC %s: %d of %d cells pass (median genes %d, UMIs %d, mito %.1f%%)", sample,
                 int(block["passed_qc"].sum()), len(block), block["n_genes"].median(),
                 block["n_counts"].median(), block["percent_mito"].median())
