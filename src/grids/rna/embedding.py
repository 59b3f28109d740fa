"""Pegasus' view of the RNA cells: the ``MultimodalData`` conversion, the HVG PCA and the UMAP."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["umap"]

log = logging.getLogger(__name__)


def umap(
    adata: ad.AnnData,
    *,
    n_pcs: int = 50,
    n_neighbors: int = 15,
    random_state: int = 0,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """UMAP coordinates from Pegasus (``pg.umap`` on the HVG PCA).

    Parameters
    ----------
    adata
        Log-normalised cells x genes (:func:`grids.rna.qc.rna_qc`); the PCA uses the genes of
        ``var['highly_variable_features']`` when at least two are marked, else every gene.
    n_pcs
        PCA components; fewer when the data has too few genes or cells (logged).
    n_neighbors
        Neighbours of the UMAP graph, at most the number of cells - 1.
    random_state
        Seed of the PCA and the UMAP.
    n_jobs
        Threads for Pegasus.

    Returns
    -------
    pandas.DataFrame
        Index: cell names (named ``cell``, in the order of ``adata``); columns ``umap1``, ``umap2``.
    """
    import pegasus as pg

    data = _embedding(adata, n_pcs=n_pcs, random_state=random_state, n_jobs=n_jobs)
    pg.umap(data, n_neighbors=min(n_neighbors, adata.n_obs - 1), random_state=random_state, n_jobs=n_jobs)
    xy = np.asarray(data.obsm["X_umap"])
    return pd.DataFrame({"umap1": xy[:, 0], "umap2": xy[:, 1]}, index=pd.Index(adata.obs_names, name="cell"))


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


def _to_pegasus(X, obs: pd.DataFrame, var: pd.DataFrame):
    """A single-modality pegasusio ``MultimodalData`` (modality 'rna') over fresh obs/var frames."""
    import anndata as ad
    import pegasusio as io

    # Pegasus renames the frames' index and adds columns in place: give it copies.
    unidata = io.UnimodalData(ad.AnnData(X=sp.csr_matrix(X), obs=obs.copy(), var=var.copy()),
                              genome="rna", modality="rna")
    return io.MultimodalData(unidata)
