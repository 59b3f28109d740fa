"""Test metrics of the surrogate and of the baselines it is measured against.

- ridge: a linear map from the binary peak matrix;
- kNN in LSI: TF-IDF and truncated SVD of the peaks (as Signac and ArchR embed scATAC), then the
  mean expression of a test cell's 30 nearest training cells: what cell identity alone, read
  from sparse ATAC, predicts;
- cell-type mean: each test cell gets its labelled type's training mean. It reads the label,
  which no ATAC model has, so it is the reference for how much of the expression is cell type.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .data import PairedData

__all__ = ["per_gene_pearson", "marker_mean_r2", "ridge_baseline", "lsi_embedding", "knn_lsi_baseline",
           "cell_type_mean_baseline", "evaluate_predictions", "KNN_NEIGHBOURS"]

log = logging.getLogger(__name__)

KNN_NEIGHBOURS = 30  # training cells a test cell's kNN-in-LSI prediction averages


def per_gene_pearson(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Pearson r per gene across cells (NaN for a gene constant in either).

    Parameters
    ----------
    predicted
        Cells x genes.
    observed
        Cells x genes, same shape and order.

    Returns
    -------
    numpy.ndarray
        One r per gene (column).
    """
    p = predicted - predicted.mean(0)
    o = observed - observed.mean(0)
    denominator = np.sqrt((p**2).sum(0) * (o**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (p * o).sum(0) / denominator, np.nan)


def marker_mean_r2(predicted: np.ndarray, observed: np.ndarray, cell_type: np.ndarray, *,
                   genes: Sequence[int]) -> float:
    """R² between predicted and observed mean expression over (cell type, marker gene) pairs
    (the paper's Figure 2A statistic).

    Parameters
    ----------
    predicted
        Cells x genes.
    observed
        Cells x genes, same shape and order.
    cell_type
        Cell-type code of each cell; the types present are used.
    genes
        Column indices of the marker genes.

    Returns
    -------
    float
        1 - (residual sum of squares) / (total sum of squares) of the observed means; negative
        when the predicted means are worse than their overall mean.
    """
    types = np.unique(cell_type)
    obs = np.array([[observed[cell_type == k][:, g].mean() for g in genes] for k in types]).ravel()
    pred = np.array([[predicted[cell_type == k][:, g].mean() for g in genes] for k in types]).ravel()
    return float(1.0 - ((obs - pred) ** 2).sum() / ((obs - obs.mean()) ** 2).sum())


def ridge_baseline(data: PairedData, alphas: Sequence[float] = (10.0, 100.0, 1000.0, 3000.0)):
    """Ridge regression from the binary peak matrix (scikit-learn, dual form via KernelRidge
    with a linear kernel, which scales with cells rather than peaks); alpha chosen on ``val``.

    Parameters
    ----------
    data
        The paired data; fitted on its ``train`` cells (expression centred on their mean).
    alphas
        Ridge penalties tried; the best median per-gene r on ``val`` cells wins.

    Returns
    -------
    tuple
        ``(predicted, alpha)``: test cells x genes predictions, in the order of the test rows,
        clipped at 0, and the chosen alpha.
    """
    from sklearn.kernel_ridge import KernelRidge

    train, val, test = data.rows("train"), data.rows("val"), data.rows("test")
    mean = data.rna[train].mean(0)
    best = None
    for alpha in alphas:
        model = KernelRidge(alpha=alpha, kernel="linear").fit(data.atac[train], data.rna[train] - mean)
        score = np.nanmedian(per_gene_pearson(model.predict(data.atac[val]) + mean, data.rna[val]))
        log.info("ridge alpha=%g: median validation r %.4f", alpha, score)
        if best is None or score > best[0]:
            best = (score, alpha, model)
    _, alpha, model = best
    return np.maximum(model.predict(data.atac[test]) + mean, 0.0), alpha


def lsi_embedding(atac, fit_rows: np.ndarray, n_components: int = 30, *, seed: int = 0) -> np.ndarray:
    """Latent semantic indexing of a binary peak matrix, as Signac's RunTFIDF (method 1) and
    RunSVD: log(1 + 10^4 TF x IDF) with TF a cell's peak share and IDF the inverse peak frequency
    over the ``fit_rows`` cells, a truncated SVD fitted on them, the first component dropped (it
    follows sequencing depth) and rows L2-normalised.

    Parameters
    ----------
    atac
        Cells x peaks binary matrix (sparse or dense).
    fit_rows
        Rows the IDF and the SVD are fitted on (e.g. the training cells).
    n_components
        Components kept after the first is dropped; fewer when ``fit_rows`` or the peaks are too few.
    seed
        Seed of the randomised SVD.

    Returns
    -------
    numpy.ndarray
        Every row of ``atac`` (not only ``fit_rows``) x components, each row of unit length.
    """
    import scipy.sparse as sp
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    X = sp.csr_matrix(atac, dtype=np.float64)
    frequency = np.asarray(X[fit_rows].sum(0)).ravel() / len(fit_rows)
    idf = 1.0 / np.maximum(frequency, 1.0 / len(fit_rows))
    weighted = sp.diags(1.0 / np.maximum(np.asarray(X.sum(1)).ravel(), 1.0)) @ X @ sp.diags(idf)
    weighted.data = np.log1p(weighted.data * 1e4)
    k = max(2, min(n_components + 1, min(len(fit_rows), X.shape[1]) - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed).fit(weighted[fit_rows])
    return normalize(svd.transform(weighted)[:, 1:])


def knn_lsi_baseline(data: PairedData, n_neighbors: int = KNN_NEIGHBOURS, n_components: int = 30, *,
                     seed: int = 0) -> np.ndarray:
    """Test-cell expression as the mean over each cell's ``n_neighbors`` nearest training cells
    in the LSI embedding of the peaks (cosine distance).

    Parameters
    ----------
    data
        The paired data; neighbours are searched among its ``train`` cells.
    n_neighbors
        Training cells averaged per test cell (at most the number of training cells).
    n_components
        LSI components (:func:`lsi_embedding`, fitted on the training cells).
    seed
        Seed of the SVD.

    Returns
    -------
    numpy.ndarray
        Test cells x genes, in the order of the test rows.
    """
    from sklearn.neighbors import NearestNeighbors

    train, test = data.rows("train"), data.rows("test")
    embedding = lsi_embedding(data.atac, train, n_components, seed=seed)
    k = min(n_neighbors, len(train))
    neighbours = NearestNeighbors(n_neighbors=k).fit(embedding[train]).kneighbors(embedding[test],
                                                                                  return_distance=False)
    return data.rna[train][neighbours].mean(axis=1)


def cell_type_mean_baseline(data: PairedData) -> np.ndarray:
    """Test-cell expression as the training mean of the cell's labelled type (the overall
    training mean for a type with no training cells).

    Parameters
    ----------
    data
        The paired data.

    Returns
    -------
    numpy.ndarray
        Test cells x genes, in the order of the test rows.
    """
    train, test = data.rows("train"), data.rows("test")
    overall = data.rna[train].mean(0)
    means = np.array([data.rna[train][data.cell_type[train] == k].mean(0) if (data.cell_type[train] == k).any()
                      else overall for k in range(len(data.cell_types))])
    return means[data.cell_type[test]]


def evaluate_predictions(predicted: np.ndarray, data: PairedData, marker_genes: Sequence[str]) -> dict:
    """Per-gene r, its median, and marker-mean R² on the test cells.

    Parameters
    ----------
    predicted
        Test cells x genes, in the order of ``data.rows("test")`` and of ``data.genes``.
    data
        The paired data; the observed test expression and cell types come from it.
    marker_genes
        Marker gene names for the marker-mean R²; names not in ``data.genes`` are skipped.

    Returns
    -------
    dict
        ``median_pearson_r`` and ``mean_pearson_r`` (over genes with a finite r),
        ``marker_mean_r2`` (None when no marker gene is in the data), ``test_mse``, and
        ``pearson_r``: gene -> r (None where NaN), in the order of ``data.genes``.
    """
    test = data.rows("test")
    observed = data.rna[test]
    r = per_gene_pearson(predicted, observed)
    index = [data.genes.index(g) for g in marker_genes if g in data.genes]
    return {
        "median_pearson_r": float(np.nanmedian(r)),
        "mean_pearson_r": float(np.nanmean(r)),
        "marker_mean_r2": marker_mean_r2(predicted, observed, data.cell_type[test], genes=index) if index else None,
        "test_mse": float(np.mean((predicted - observed) ** 2)),
        "pearson_r": {g: (None if np.isnan(v) else float(v)) for g, v in zip(data.genes, r)},
    }
