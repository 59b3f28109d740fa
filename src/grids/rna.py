"""The RNA stage's library side: read counts, QC and normalise in Pegasus, label cell types.

Every step is a plain function on an :class:`anndata.AnnData` (cells x genes, cell names
``{sample}#{barcode}`` as on the ATAC side). Pegasus does the numerical work; this module
converts to and from its ``MultimodalData`` and checks inputs so that bad data fails with a
message naming the file or gene instead of deep inside Pegasus.
"""

from __future__ import annotations

import contextlib
import difflib
import gzip
import json
import logging
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .io import atomic_output, check_10x_h5, gzip_errors, is_gzip, prefixed
from .plots import _pyplot, _save

if TYPE_CHECKING:
    import anndata as ad

__all__ = [
    "PEGASUS_MARKER_SETS",
    "align_labels",
    "check_targets",
    "drop_small_cell_types",
    "infer_labels",
    "load_markers",
    "qc_violin_figure",
    "read_labels",
    "read_rna",
    "rna_qc",
    "umap",
    "umap_figure",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

# Marker sets shipped with Pegasus (pegasus/annotate_cluster/<name>_cell_markers.json).
PEGASUS_MARKER_SETS = (
    "human_immune", "mouse_immune", "human_brain", "mouse_brain", "human_lung", "mouse_lung", "mouse_liver",
)

QC_COLUMNS = ["n_genes", "n_counts", "percent_mito"]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def read_rna(path: PathLike, sample: str, *, modality: str = "rna") -> ad.AnnData:
    """Read one sample's raw RNA counts.

    Parameters
    ----------
    path
        A 10x ``.h5`` (Cell Ranger v2/v3+ or Cell Ranger ARC), a 10x mtx folder, an ``.h5ad``
        or an ``.h5mu`` (modality ``modality``).
    sample
        Sample name; cells are named ``{sample}#{barcode}``.
    modality
        The ``.h5mu`` modality holding RNA.

    Returns
    -------
    anndata.AnnData
        Integer counts (CSR, cells x genes), Gene Expression features only, unique gene names;
        ``obs`` has ``sample`` and ``barcode`` (as written in the file).

    Raises
    ------
    ValueError
        Unsupported file, no Gene Expression features, no cells, duplicated barcodes or
        counts that are not non-negative integers.
    """
    import anndata as ad

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: RNA input not found")
    adata = _read_any(path, modality)
    if "feature_types" in adata.var:
        # ARC h5 / h5mu files may carry Peaks or antibody features next to genes.
        keep = (adata.var["feature_types"].astype(str) == "Gene Expression").to_numpy()
        if not keep.any():
            raise ValueError(f"{path}: no 'Gene Expression' features (feature types: "
                             f"{', '.join(sorted(set(adata.var['feature_types'].astype(str))))})")
        adata = adata[:, keep]
    counts = _integer_counts(adata, path)
    if counts.shape[0] == 0 or counts.shape[1] == 0:
        raise ValueError(f"{path}: empty RNA matrix ({counts.shape[0]} cells x {counts.shape[1]} genes)")
    barcodes = adata.obs_names.astype(str)
    if barcodes.has_duplicates:
        raise ValueError(f"{path}: duplicated barcodes, e.g. {barcodes[barcodes.duplicated()][0]}")
    var = pd.DataFrame(index=pd.Index(adata.var_names.astype(str), name="gene"))
    if "gene_ids" in adata.var:
        var["gene_ids"] = adata.var["gene_ids"].astype(str).to_numpy()
    obs = pd.DataFrame({"sample": sample, "barcode": barcodes.to_numpy()},
                       index=pd.Index(prefixed(sample, barcodes), name="cell"))
    out = ad.AnnData(X=counts, obs=obs, var=var)
    if out.var_names.has_duplicates:
        # Cell Ranger references repeat a few symbols; Pegasus and targets need unique names.
        dups = sorted(set(out.var_names[out.var_names.duplicated()]))
        log.info("%s: %d duplicated gene names made unique (e.g. %s)", path, len(dups), ", ".join(dups[:3]))
        out.var_names_make_unique()
        out.var.index.name = "gene"
    log.info("%s: %d cells x %d genes for sample %s", path, out.n_obs, out.n_vars, sample)
    return out


def _read_any(path: Path, modality: str) -> ad.AnnData:
    """Dispatch on the input kind; 10x formats through scanpy (see comment below)."""
    import anndata as ad

    # scanpy rather than pegasusio for 10x files: pegasusio strips the GEM-well suffix from
    # barcodes ("AAAC-1" -> "AAAC"), which would no longer match the ATAC fragments.
    if path.is_dir():
        import scanpy as sc

        if not any((path / f).exists() for f in ("matrix.mtx.gz", "matrix.mtx")):
            raise ValueError(f"{path}: not a 10x mtx folder (no matrix.mtx[.gz])")
        try:
            return sc.read_10x_mtx(path, var_names="gene_symbols", gex_only=True, make_unique=False)
        except (EOFError, OSError, zlib.error):
            # scanpy does not say which of the folder's files failed: find it, then re-raise.
            for member in sorted(path.glob("*.gz")):
                _check_gzip_complete(member)
            raise
    suffix = path.suffix.lower()
    try:
        if suffix == ".h5":
            import scanpy as sc

            check_10x_h5(path)
            return sc.read_10x_h5(path, gex_only=True)
        if suffix == ".h5ad":
            return ad.read_h5ad(path)
        if suffix == ".h5mu":
            import mudata as md

            return md.read_h5ad(path, modality)
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: cannot read RNA counts ({err})") from err
    raise ValueError(f"{path}: unsupported RNA input; expected a 10x .h5, .h5ad, .h5mu or 10x mtx folder")


def _check_gzip_complete(path: Path) -> None:
    """Read a gzip file to its end; a truncated or corrupt one raises ValueError naming it."""
    with gzip_errors(path), gzip.open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


def _integer_counts(adata: ad.AnnData, path: Path) -> sp.csr_matrix:
    """The first of layers['counts'], X, raw.X that holds non-negative integers, as int32 CSR."""
    candidates = []
    if "counts" in adata.layers:
        candidates.append(("layers['counts']", adata.layers["counts"]))
    candidates.append(("X", adata.X))
    if adata.raw is not None and adata.raw.n_vars == adata.n_vars and adata.raw.var_names.equals(adata.var_names):
        candidates.append(("raw.X", adata.raw.X))
    for name, matrix in candidates:
        if matrix is None:
            continue
        matrix = sp.csr_matrix(matrix)
        values = matrix.data
        if values.size and (values.min() < 0 or not np.array_equal(values, np.round(values))):
            continue
        if values.size and values.max() > np.iinfo(np.int32).max:
            raise ValueError(f"{path}: counts in {name} overflow int32")
        if name != "X":
            log.info("%s: raw counts taken from %s", path, name)
        out = matrix.astype(np.int32)
        out.eliminate_zeros()
        return out
    raise ValueError(f"{path}: no raw integer counts (checked {', '.join(n for n, _ in candidates)}); "
                     "the RNA stage needs UMI counts, not normalised values")


# --------------------------------------------------------------------------------------------
# QC, normalisation, highly variable genes
# --------------------------------------------------------------------------------------------

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
    mito_prefix
        Mitochondrial gene prefix (``"MT-"`` human, ``"mt-"`` mouse). No such gene: a
        warning, ``percent_mito`` 0 and no mitochondrial filter.
    robust_percent_cells
        A gene is robust (HVG candidate, used for normalisation size factors) when detected in
        at least this percent of cells.
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


def _to_pegasus(X, obs: pd.DataFrame, var: pd.DataFrame):
    """A single-modality pegasusio ``MultimodalData`` (modality 'rna') over fresh obs/var frames."""
    import anndata as ad
    import pegasusio as io

    # Pegasus renames the frames' index and adds columns in place: give it copies.
    unidata = io.UnimodalData(ad.AnnData(X=sp.csr_matrix(X), obs=obs.copy(), var=var.copy()),
                              genome="rna", modality="rna")
    return io.MultimodalData(unidata)


def _columns(matrix: sp.csr_matrix, index: np.ndarray) -> sp.csr_matrix:
    """Columns of ``matrix`` by index, ``-1`` giving an all-zero column."""
    padded = sp.hstack([matrix, sp.csr_matrix((matrix.shape[0], 1), dtype=matrix.dtype)]).tocsc()
    return padded[:, np.where(index >= 0, index, matrix.shape[1])].tocsr()


def _log_qc(qc: pd.DataFrame) -> None:
    for sample, block in qc.groupby("sample", sort=False):
        log.info("RNA QC %s: %d of %d cells pass (median genes %d, UMIs %d, mito %.1f%%)", sample,
                 int(block["passed_qc"].sum()), len(block), block["n_genes"].median(),
                 block["n_counts"].median(), block["percent_mito"].median())


# --------------------------------------------------------------------------------------------
# Targets and labels
# --------------------------------------------------------------------------------------------

def check_targets(genes: Iterable[str], targets: pd.DataFrame | Iterable[str], *, source: str) -> None:
    """Raise when a target gene is not among ``genes``, suggesting close names.

    Parameters
    ----------
    genes
        Gene names present in the data.
    targets
        A table with a ``gene`` column (e.g. cell_type, gene) or plain gene names.
    source
        What ``genes`` come from, for the message.
    """
    if isinstance(targets, pd.DataFrame):
        if "gene" not in targets:
            raise ValueError(f"targets table needs a 'gene' column (has: {', '.join(map(str, targets.columns))})")
        wanted = targets["gene"].astype(str)
    else:
        wanted = pd.Series(list(targets), dtype=str)
    present = pd.Index(genes).astype(str)
    missing = [g for g in dict.fromkeys(wanted) if g not in present]
    if not missing:
        return
    vocabulary = list(present)
    lines = []
    for gene in missing:
        # Case-only differences (Cd14 vs CD14) first: difflib ranks them lower than they deserve.
        close = [g for g in vocabulary if g.lower() == gene.lower()]
        close += [g for g in difflib.get_close_matches(gene, vocabulary, n=3, cutoff=0.6) if g not in close]
        lines.append(f"  {gene}" + (f" (did you mean {', '.join(close[:3])}?)" if close else ""))
    raise ValueError(f"{len(missing)} target gene(s) not in {source}:\n" + "\n".join(lines))


def read_labels(tables: Mapping[str, PathLike]) -> pd.Series:
    """User cell-type tables (``barcode``, ``cell_type``; tab-separated), one per sample.

    Barcodes are prefixed ``{sample}#``; a barcode already written that way is kept.

    Returns
    -------
    pandas.Series
        Cell name -> cell type, named ``cell_type``.
    """
    series = []
    for sample, path in tables.items():
        with gzip_errors(path):
            table = pd.read_csv(path, sep="\t", dtype=str, compression="gzip" if is_gzip(path) else None)
        missing = {"barcode", "cell_type"} - set(table.columns)
        if missing:
            raise ValueError(f"{path}: cell-type table needs columns barcode, cell_type "
                             f"(missing {', '.join(sorted(missing))})")
        table = table.dropna(subset=["barcode"])
        empty = table["cell_type"].isna() | (table["cell_type"].str.strip() == "")
        if empty.any():
            raise ValueError(f"{path}: {int(empty.sum())} rows without a cell type, "
                             f"e.g. barcode {table.loc[empty, 'barcode'].iloc[0]}")
        own = f"{sample}#"
        cells = [b if b.startswith(own) else f"{own}{b}" for b in table["barcode"]]
        series.append(pd.Series(table["cell_type"].str.strip().to_numpy(), index=pd.Index(cells, name="cell")))
    labels = pd.concat(series) if series else pd.Series(dtype=str)
    if labels.index.has_duplicates:
        raise ValueError(f"cell-type tables label a cell twice, e.g. {labels.index[labels.index.duplicated()][0]}")
    return labels.rename("cell_type")


def align_labels(labels: pd.Series, cells: Sequence[str], *, source: str = "cell-type table") -> pd.Series:
    """Labels for ``cells`` (QC-passed), warning about cells the labels do not cover.

    Returns
    -------
    pandas.Series
        Labels of the covered cells, in ``cells`` order; uncovered cells are left out.
    """
    cells = pd.Index(cells)
    covered = cells.isin(labels.index)
    if not covered.any():
        raise ValueError(f"{source} labels none of the {len(cells)} RNA cells "
                         f"(e.g. table: {', '.join(labels.index[:2])}; data: {', '.join(cells[:2])})")
    if not covered.all():
        log.warning("%d of %d cells have no label in %s and are left out, e.g. %s", int((~covered).sum()),
                    len(cells), source, ", ".join(cells[~covered][:3]))
    return labels.reindex(cells[covered]).rename("cell_type")


def drop_small_cell_types(labels: pd.Series, *, min_cells: int) -> pd.Series:
    """Which cells to keep when cell types with fewer than ``min_cells`` cells are dropped.

    Returns
    -------
    pandas.Series
        Boolean mask on ``labels.index`` (True = keep). Dropped types are logged as a warning
        with their sizes.

    Raises
    ------
    ValueError
        When every cell type is below ``min_cells``.
    """
    sizes = labels.value_counts()
    small = sizes[sizes < min_cells].sort_index()
    if len(small) == len(sizes):
        raise ValueError(f"every cell type has fewer than min_cells={min_cells} cells: "
                         + ", ".join(f"{t} ({n})" for t, n in small.items()))
    if len(small):
        log.warning("dropping %d cell type(s) with fewer than %d cells: %s", len(small), min_cells,
                    ", ".join(f"{t} ({n} cells)" for t, n in small.items()))
    return (~labels.isin(small.index)).rename("keep")


def load_markers(markers: str | PathLike) -> dict:
    """A Pegasus marker set: a preset name (:data:`PEGASUS_MARKER_SETS`) or a JSON file."""
    from importlib.resources import files

    if str(markers) in PEGASUS_MARKER_SETS:
        text = files("pegasus.annotate_cluster").joinpath(f"{markers}_cell_markers.json").read_text()
        source = f"Pegasus preset '{markers}'"
    else:
        path = Path(markers)
        if not path.is_file():
            raise ValueError(f"marker set {markers!r} is neither a Pegasus preset ({', '.join(PEGASUS_MARKER_SETS)}) "
                             "nor an existing JSON file")
        text, source = path.read_text(), str(path)
    try:
        obj = json.loads(text)
        _ = [m["genes"] for ct in obj["cell_types"] for m in ct["markers"]]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{source}: not a Pegasus marker JSON ({{'cell_types': [{{'name', 'markers': "
                         f"[{{'genes': ['X+', ...], 'weight'}}]}}]}}): {err}") from err
    return obj


def _prune_markers(obj: dict, genes: set[str]) -> list[str]:
    """Drop (in place) cell types none of whose positive markers is in ``genes``; their names.

    Pegasus scores a type from the markers present. On a small panel a type may keep only
    negative markers (human_immune's Plasma cell keeps just ``MS4A1-`` on 45 PBMC genes) and
    then scores 1.0 in every cluster lacking that gene: absence of a marker is no evidence.
    """
    dropped, kept = [], []
    for ct in obj["cell_types"]:
        positive = {g[:-1] for m in ct["markers"] for g in m["genes"] if g.endswith("+")}
        if positive & genes:
            kept.append(ct)
            if ct.get("subtypes"):
                dropped += _prune_markers(ct["subtypes"], genes)
        else:
            dropped.append(ct["name"])
    obj["cell_types"] = kept
    return dropped


def _marker_genes(obj: dict) -> set[str]:
    genes = set()
    for ct in obj["cell_types"]:
        genes.update(g[:-1] for m in ct["markers"] for g in m["genes"])
        if ct.get("subtypes"):
            genes |= _marker_genes(ct["subtypes"])
    return genes


def infer_labels(
    adata: ad.AnnData,
    *,
    markers: str | PathLike,
    resolution: float = 1.0,
    n_pcs: int = 50,
    n_neighbors: int = 100,
    threshold: float = 0.5,
    random_state: int = 0,
    n_jobs: int = 1,
    report: PathLike | None = None,
) -> pd.Series:
    """Marker-based cell-type labels: Pegasus PCA, kNN, Leiden, DE, ``infer_cell_types``.

    Parameters
    ----------
    adata
        Output of :func:`rna_qc` (log-normalised ``X``; PCA on ``var['highly_variable_features']``
        when present, DE on every gene).
    markers
        Pegasus preset name (``human_immune``, ``mouse_brain``, ...) or a marker JSON path.
    resolution
        Leiden resolution.
    threshold
        Minimum Pegasus score for a cluster to be named; below it the cluster is called
        ``unknown_<cluster>``.
    report
        Optional text file with Pegasus' per-cluster cell-type scores.

    Returns
    -------
    pandas.Series
        Cell name -> cell type, named ``cell_type``. Clusters named alike are merged (no
        Pegasus ``-2`` suffixes). Deterministic for a given ``random_state``.
    """
    import pegasus as pg

    marker_set = load_markers(markers)
    known = _marker_genes(marker_set) & set(adata.var_names)
    if not known:
        raise ValueError(f"none of the genes of marker set {markers!r} is in the data "
                         f"(data genes e.g. {', '.join(adata.var_names[:5])})")
    dropped = _prune_markers(marker_set, set(adata.var_names))
    log.info("marker set %s: %d of its genes are in the data; %d cell type(s) without a positive marker "
             "in the data are not considered%s", markers, len(known), len(dropped),
             f" ({', '.join(dropped)})" if dropped else "")
    if not marker_set["cell_types"]:
        raise ValueError(f"no cell type of marker set {markers!r} has a positive marker in the data")

    data = _embedding(adata, n_pcs=n_pcs, random_state=random_state, n_jobs=n_jobs)
    pg.neighbors(data, K=n_neighbors, random_state=random_state, n_jobs=n_jobs)
    pg.leiden(data, resolution=resolution, random_state=random_state, class_label="cluster")
    # infer_cell_types scores clusters from DE results (varm['de_res']): de_analysis first.
    pg.de_analysis(data, cluster="cluster", n_jobs=n_jobs, verbose=False)
    with atomic_output(report) if report else contextlib.nullcontext() as out:
        scores = pg.infer_cell_types(data, markers=marker_set, de_test="mwu", threshold=threshold,
                                     output_file=str(out) if out else None)
    names = {}
    for cluster, ranked in scores.items():
        if not ranked or ranked[0].score < threshold:
            names[cluster] = f"unknown_{cluster}"
        else:
            # One cluster at a time: infer_cluster_names would suffix repeats ("T cell-2").
            names[cluster] = pg.infer_cluster_names({cluster: ranked}, threshold=threshold,
                                                    is_human_immune=str(markers) == "human_immune")[0]
    log.info("clusters -> cell types: %s", "; ".join(f"{c}: {n}" for c, n in names.items()))
    clusters = data.obs["cluster"].astype(str)
    return pd.Series(clusters.map(names).to_numpy(), index=pd.Index(adata.obs_names, name="cell"), name="cell_type")


def _embedding(adata: ad.AnnData, *, n_pcs: int, random_state: int, n_jobs: int):
    """Pegasus object over ``adata.X`` with PCA on its highly variable genes."""
    import pegasus as pg

    var = pd.DataFrame(index=adata.var_names)
    features = None
    if "highly_variable_features" in adata.var and adata.var["highly_variable_features"].sum() >= 2:
        var["highly_variable_features"] = adata.var["highly_variable_features"].to_numpy(bool)
        features = "highly_variable_features"
    data = _to_pegasus(adata.X.copy(), pd.DataFrame(index=adata.obs_names), var)
    n_features = int(var[features].sum()) if features else adata.n_vars
    # sklearn's PCA needs n_components < min(cells, genes): tiny panels (45 genes) cap it.
    n_comps = max(1, min(n_pcs, n_features - 1, adata.n_obs - 1))
    if n_comps < n_pcs:
        log.info("PCA with %d components (data too small for %d)", n_comps, n_pcs)
    pg.pca(data, n_components=n_comps, features=features, random_state=random_state, n_jobs=n_jobs)
    return data


# --------------------------------------------------------------------------------------------
# Embedding and figures
# --------------------------------------------------------------------------------------------

def umap(
    adata: ad.AnnData,
    *,
    n_pcs: int = 50,
    n_neighbors: int = 15,
    random_state: int = 0,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """UMAP coordinates from Pegasus (``pg.umap`` on the HVG PCA).

    Returns
    -------
    pandas.DataFrame
        Index: cell names; columns ``umap1``, ``umap2``.
    """
    import pegasus as pg

    data = _embedding(adata, n_pcs=n_pcs, random_state=random_state, n_jobs=n_jobs)
    pg.umap(data, n_neighbors=min(n_neighbors, adata.n_obs - 1), random_state=random_state, n_jobs=n_jobs)
    xy = np.asarray(data.obsm["X_umap"])
    return pd.DataFrame({"umap1": xy[:, 0], "umap2": xy[:, 1]}, index=pd.Index(adata.obs_names, name="cell"))


def umap_figure(coords: pd.DataFrame, labels: pd.Series, path: PathLike, *, title: str = "RNA UMAP") -> None:
    """PNG scatter of UMAP coordinates coloured by cell type (cells without a label in grey)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    types = labels.reindex(coords.index)
    unlabeled = types.isna()
    if unlabeled.any():
        ax.scatter(coords.loc[unlabeled, "umap1"], coords.loc[unlabeled, "umap2"], s=3, c="lightgrey",
                   label=f"unlabelled ({int(unlabeled.sum())})")
    cmap = plt.get_cmap("tab20")
    for i, name in enumerate(sorted(types.dropna().unique())):
        block = coords[types == name]
        ax.scatter(block["umap1"], block["umap2"], s=3, color=cmap(i % 20), label=f"{name} ({len(block)})")
    ax.set(title=title, xlabel="UMAP 1", ylabel="UMAP 2", xticks=[], yticks=[])
    ax.legend(fontsize=7, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    _save(fig, path)


def qc_violin_figure(
    qc: pd.DataFrame,
    path: PathLike,
    *,
    min_genes: float | None = None,
    max_genes: float | None = None,
    min_umis: float | None = None,
    max_umis: float | None = None,
    percent_mito: float | None = None,
) -> None:
    """Violins of n_genes, n_counts and percent_mito per sample, thresholds as dashed lines.

    ``qc`` is the table from :func:`rna_qc`; the threshold keywords match its options.
    """
    plt = _pyplot()
    samples = list(dict.fromkeys(qc["sample"].astype(str)))
    panels = [
        ("n_genes", "genes per cell", (min_genes, max_genes)),
        ("n_counts", "UMIs per cell", (min_umis, max_umis)),
        ("percent_mito", "mitochondrial UMIs (%)", (None, percent_mito)),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(4.5 * 3, 4.2), squeeze=False)
    ticks = [f"{s}\n{int(b['passed_qc'].sum())}/{len(b)} pass" for s, b in
             ((s, qc[qc["sample"].astype(str) == s]) for s in samples)]
    for ax, (column, label, (low, high)) in zip(axes[0], panels):
        values = [qc.loc[qc["sample"].astype(str) == s, column].to_numpy(float) for s in samples]
        positions = np.arange(1, len(samples) + 1)
        spread = [i for i, v in enumerate(values) if len(v) > 1 and np.ptp(v) > 0]
        if spread:
            ax.violinplot([values[i] for i in spread], positions=positions[spread], showmedians=True, widths=0.8)
        for i, v in enumerate(values):
            if i not in spread:  # a single value or constant: nothing to smooth
                ax.scatter(np.full(len(v), positions[i]), v, s=4, color="C0")
        if column == "n_counts" and qc[column].min() > 0:
            ax.set_yscale("log")
        top = float(qc[column].max()) if len(qc) else 1.0
        off_scale = []
        for value, name in ((low, "min"), (high, "max")):
            if value is None:
                continue
            if value > 2 * max(top, 1e-9):
                # A far-away cap (max_genes 6000 on a 250-gene panel) would squash the violins.
                off_scale.append(f"{name} {value:g}")
                continue
            ax.axhline(value, color="firebrick", linestyle="--", linewidth=1)
            ax.annotate(f"{name} {value:g}", (1.0, value), xycoords=("axes fraction", "data"),
                        fontsize=7, color="firebrick", ha="right", va="bottom")
        if off_scale:
            ax.annotate(f"{', '.join(off_scale)}: above the data", (0.01, 0.99), xycoords="axes fraction",
                        fontsize=7, color="firebrick", ha="left", va="top")
        ax.set_xticks(positions, ticks, fontsize=8)
        ax.set(title=label, ylabel=column)
    fig.suptitle("RNA QC (Pegasus qc_metrics)")
    fig.tight_layout()
    _save(fig, path)
