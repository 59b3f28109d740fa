"""Test metrics of the surrogate and of a ridge-regression baseline, and their figures."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .data import PairedData

__all__ = ["per_gene_pearson", "marker_mean_r2", "ridge_baseline", "evaluate_predictions"]

log = logging.getLogger(__name__)


def per_gene_pearson(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Pearson r per gene across cells (NaN for a gene constant in either)."""
    p = predicted - predicted.mean(0)
    o = observed - observed.mean(0)
    denominator = np.sqrt((p**2).sum(0) * (o**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (p * o).sum(0) / denominator, np.nan)


def marker_mean_r2(predicted: np.ndarray, observed: np.ndarray, cell_type: np.ndarray, genes: Sequence[int]) -> float:
    """R² between predicted and observed mean expression over (cell type, marker gene) pairs
    (the paper's Figure 2A statistic)."""
    types = np.unique(cell_type)
    obs = np.array([[observed[cell_type == k][:, g].mean() for g in genes] for k in types]).ravel()
    pred = np.array([[predicted[cell_type == k][:, g].mean() for g in genes] for k in types]).ravel()
    return float(1.0 - ((obs - pred) ** 2).sum() / ((obs - obs.mean()) ** 2).sum())


def ridge_baseline(data: PairedData, alphas: Sequence[float] = (10.0, 100.0, 1000.0, 3000.0)):
    """Ridge regression from the binary peak matrix (scikit-learn, dual form via KernelRidge
    with a linear kernel, which scales with cells rather than peaks); alpha chosen on ``val``."""
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


def evaluate_predictions(predicted: np.ndarray, data: PairedData, marker_genes: Sequence[str]) -> dict:
    """Per-gene r, its median, and marker-mean R² on the test cells."""
    test = data.rows("test")
    observed = data.rna[test]
    r = per_gene_pearson(predicted, observed)
    index = [data.genes.index(g) for g in marker_genes if g in data.genes]
    return {
        "median_pearson_r": float(np.nanmedian(r)),
        "mean_pearson_r": float(np.nanmean(r)),
        "marker_mean_r2": marker_mean_r2(predicted, observed, data.cell_type[test], index) if index else None,
        "test_mse": float(np.mean((predicted - observed) ** 2)),
        "pearson_r": {g: (None if np.isnan(v) else float(v)) for g, v in zip(data.genes, r)},
    }
