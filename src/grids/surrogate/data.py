"""Paired multiome data as the surrogate sees it: binary CSR peaks, dense log-normalised genes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["PairedData", "load_paired", "chrom_blocks", "cis_links", "CisRidge", "fit_cis_ridge"]


@dataclass
class PairedData:
    atac: sp.csr_matrix  # cells x peaks, 0/1
    rna: np.ndarray  # cells x genes, float32 log-normalised
    cell_type: np.ndarray  # int codes
    cell_types: list[str]
    split: np.ndarray  # "train" / "val" / "test"
    peaks: pd.DataFrame  # name (index), chrom, start, end
    genes: list[str]
    cells: list[str]
    umap: np.ndarray | None

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def chrom_blocks(chroms: pd.Series | np.ndarray) -> tuple[list[str], list[int], np.ndarray]:
    """Chromosome names, block sizes and the block index of each peak; peaks must be grouped.

    Parameters
    ----------
    chroms
        The chromosome of each peak, in peak order.

    Returns
    -------
    tuple
        ``(names, sizes, block)``: the chromosome names in order of appearance, the number of peaks
        of each, and an int array giving each peak's position in ``names``.

    Raises
    ------
    ValueError
        When a chromosome's peaks are not contiguous.
    """
    values = np.asarray(chroms).astype(str)
    change = np.r_[True, values[1:] != values[:-1]]
    names = values[change].tolist()
    if len(set(names)) != len(names):
        raise ValueError("peaks are not grouped by chromosome; sort peaks by chromosome, then start")
    starts = np.flatnonzero(change)
    sizes = np.diff(np.r_[starts, len(values)]).tolist()
    return names, sizes, np.repeat(np.arange(len(names)), sizes)


def load_paired(path: str) -> PairedData:
    """Read ``paired.h5mu`` (docs/architecture.md §3 fixed names).

    Parameters
    ----------
    path
        The paired file of :func:`grids.multiome.write_paired`: modalities ``rna`` (log-normalised
        ``X``) and ``atac`` (binary ``X``, ``var`` with chrom, start, end), global ``obs`` with
        ``cell_type`` and ``split``.

    Returns
    -------
    PairedData
        ``atac``: cells x peaks float32 CSR; ``rna``: dense float32 cells x genes; ``cell_type``:
        int64 codes into ``cell_types`` (the labels as str, sorted); ``split``: str per cell;
        ``peaks``: ``chrom``, ``start``, ``end`` indexed by peak name; ``genes`` and ``cells`` in
        file order; ``umap``: the RNA ``obsm["X_umap"]``, or None without one.

    Raises
    ------
    ValueError
        When the two modalities' cell names differ or are in another order.
    """
    import mudata as md

    mdata = md.read_h5mu(path)
    rna, atac = mdata["rna"], mdata["atac"]
    if not rna.obs_names.equals(atac.obs_names):
        raise ValueError(f"{path}: rna and atac cells differ")
    cell_type = pd.Categorical(mdata.obs["cell_type"].astype(str))
    X_rna = rna.X.toarray() if sp.issparse(rna.X) else np.asarray(rna.X)
    return PairedData(
        atac=sp.csr_matrix(atac.X, dtype=np.float32),
        rna=X_rna.astype(np.float32),
        cell_type=np.asarray(cell_type.codes, dtype=np.int64),
        cell_types=[str(c) for c in cell_type.categories],
        split=mdata.obs["split"].astype(str).to_numpy(),
        peaks=atac.var[["chrom", "start", "end"]].copy(),
        genes=list(rna.var_names),
        cells=list(rna.obs_names),
        umap=np.asarray(rna.obsm["X_umap"]) if "X_umap" in rna.obsm else None,
    )


def cis_links(peaks: pd.DataFrame, genes: list[str], tss: pd.DataFrame, *,
              window: int) -> tuple[np.ndarray, np.ndarray]:
    """(peak index, gene index) for every peak whose midpoint lies within ``window`` bp of the
    gene's TSS. ``tss`` has chrom, position, gene (:func:`grids.genome.read_tss`); a gene with
    several TSS records uses its first; genes without one get no link.

    Parameters
    ----------
    peaks
        ``chrom``, ``start``, ``end`` per peak; the midpoint is ``(start + end) // 2``.
    genes
        Gene names; the gene index is the position in this list.
    tss
        TSS table with ``chrom``, ``position``, ``gene``.
    window
        Largest distance in bp between a peak midpoint and the TSS (inclusive).

    Returns
    -------
    tuple of numpy.ndarray
        ``(peak, gene)``, int64, one entry per link: genes in the order of ``genes``, each gene's
        peaks by midpoint. Both empty when there is no link.
    """
    first_tss = tss.drop_duplicates("gene").set_index("gene")
    midpoint = ((peaks["start"].to_numpy(np.int64) + peaks["end"].to_numpy(np.int64)) // 2)
    chrom = peaks["chrom"].astype(str).to_numpy()
    by_chrom = {}
    for name in np.unique(chrom):
        index = np.flatnonzero(chrom == name)
        order = np.argsort(midpoint[index], kind="stable")
        by_chrom[name] = (index[order], midpoint[index][order])
    peak_index, gene_index = [], []
    for g, gene in enumerate(genes):
        if gene not in first_tss.index or first_tss.at[gene, "chrom"] not in by_chrom:
            continue
        index, mids = by_chrom[first_tss.at[gene, "chrom"]]
        position = int(first_tss.at[gene, "position"])
        lo = np.searchsorted(mids, position - window, side="left")
        hi = np.searchsorted(mids, position + window, side="right")
        peak_index.append(index[lo:hi])
        gene_index.append(np.full(hi - lo, g))
    if not peak_index:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(peak_index).astype(np.int64), np.concatenate(gene_index).astype(np.int64)


@dataclass
class CisRidge:
    """The cis path's weights: one ridge regression per gene on its nearby peaks."""

    weight: np.ndarray  # per link, in the order of the links given
    bias: np.ndarray  # per gene (standardised units)
    alpha: float
    validation_r: float  # median per-gene Pearson r of the full prediction on validation cells


def fit_cis_ridge(
    data: PairedData,
    peak: np.ndarray,
    gene: np.ndarray,
    *,
    residual_train: np.ndarray,
    base_val: np.ndarray,
    observed_val: np.ndarray,
    alphas: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
) -> CisRidge:
    """Fit each gene's residual on training cells (standardised units) on its linked peaks, for
    every alpha at once through one eigendecomposition per gene; keep the alpha whose
    ``base_val`` + cis prediction has the best median per-gene r against ``observed_val``.

    Parameters
    ----------
    data
        The paired data: its ``train`` and ``val`` rows of ``atac`` are used.
    peak
        Peak index of each link (:func:`cis_links`).
    gene
        Gene index of each link, aligned with ``peak``.
    residual_train
        Training cells x genes: what the cis path should fit.
    base_val
        Validation cells x genes: the prediction without the cis path, in the units of
        ``residual_train``.
    observed_val
        Validation cells x genes: the observed values, in the same units.
    alphas
        Ridge penalties tried, one shared by all genes.

    Returns
    -------
    CisRidge
        At the chosen alpha: ``weight`` per link (float32, in the order of ``peak``), ``bias`` per
        gene (float32; 0 for a gene without links), ``alpha``, and ``validation_r``, the median
        per-gene r on validation cells (NaN when no gene has a finite r; the first alpha is then
        kept).
    """
    from .metrics import per_gene_pearson  # metrics imports this module

    train, val = data.rows("train"), data.rows("val")
    X_train, X_val = data.atac[train].tocsc(), data.atac[val].tocsc()
    n_genes = residual_train.shape[1]
    weights = np.zeros((len(alphas), len(peak)))
    biases = np.zeros((len(alphas), n_genes))
    predicted = np.repeat(base_val[None].astype(np.float64), len(alphas), axis=0)
    order = np.argsort(gene, kind="stable")
    bounds = np.searchsorted(gene[order], np.arange(n_genes + 1))
    for g in range(n_genes):
        links = order[bounds[g] : bounds[g + 1]]
        if len(links) == 0:
            continue
        A = X_train[:, peak[links]].toarray().astype(np.float64)
        centre = A.mean(0)
        A -= centre
        target = residual_train[:, g] - residual_train[:, g].mean()
        eigenvalues, vectors = np.linalg.eigh(A.T @ A)
        projected = vectors.T @ (A.T @ target)
        A_val = X_val[:, peak[links]].toarray()
        for a, alpha in enumerate(alphas):
            w = vectors @ (projected / (eigenvalues + alpha))
            weights[a, links] = w
            biases[a, g] = residual_train[:, g].mean() - centre @ w
            predicted[a, :, g] += A_val @ w + biases[a, g]
    scores = []
    for a in range(len(alphas)):
        r = per_gene_pearson(predicted[a], observed_val)
        scores.append(float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan"))
    best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
    return CisRidge(weights[best].astype(np.float32), biases[best].astype(np.float32), float(alphas[best]),
                    scores[best])
