"""Paired multiome data as the surrogate sees it: binary CSR peaks, dense log-normalised genes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["PairedData", "load_paired", "chrom_blocks"]


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
    """Chromosome names, block sizes and the block index of each peak; peaks must be grouped."""
    values = np.asarray(chroms).astype(str)
    change = np.r_[True, values[1:] != values[:-1]]
    names = values[change].tolist()
    if len(set(names)) != len(names):
        raise ValueError("peaks are not grouped by chromosome; sort peaks by chromosome, then start")
    starts = np.flatnonzero(change)
    sizes = np.diff(np.r_[starts, len(values)]).tolist()
    return names, sizes, np.repeat(np.arange(len(names)), sizes)


def load_paired(path: str) -> PairedData:
    """Read ``paired.h5mu`` (DESIGN §3 fixed names)."""
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
