"""The RNA stage's figures: QC violins per sample, and the UMAP by cell type."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io import PathLike
from ..plots import _pyplot, _save

__all__ = ["qc_violin_figure", "umap_figure"]


def umap_figure(coords: pd.DataFrame, labels: pd.Series, path: PathLike, *, title: str = "RNA UMAP") -> None:
    """PNG scatter of UMAP coordinates coloured by cell type (cells without a label in grey).

    Parameters
    ----------
    coords
        ``umap1``, ``umap2`` per cell, indexed by cell name (:func:`grids.rna.embedding.umap`).
    labels
        Cell type per cell name; cells of ``coords`` missing from it (or NaN) are unlabelled. The
        legend lists the types in sorted order with their cell counts.
    path
        PNG file, written atomically.
    title
        Figure title.
    """
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
    A threshold above twice a panel's largest value is named in a note instead of drawn, so it
    does not squash the violins.

    Parameters
    ----------
    qc
        The QC table of :func:`grids.rna.qc.rna_qc`: ``sample``, ``n_genes``, ``n_counts``,
        ``percent_mito`` and ``passed_qc`` (the tick labels give passing/all cells per sample).
        Samples in order of first appearance.
    path
        PNG file, written atomically.
    min_genes
        Lower threshold line on the genes panel; none when None.
    max_genes
        Upper threshold line on the genes panel; none when None.
    min_umis
        Lower threshold line on the UMI panel; none when None.
    max_umis
        Upper threshold line on the UMI panel; none when None.
    percent_mito
        Upper threshold line on the mitochondrial panel; none when None.
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
