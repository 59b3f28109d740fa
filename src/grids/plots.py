"""Figures for QC and reports (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_output

__all__ = ["atac_qc_figure"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _pyplot().close(fig)


def atac_qc_figure(
    barcodes: Mapping[str, pd.DataFrame],
    profiles: Mapping[str, Mapping[str, np.ndarray]],
    cells: pd.DataFrame,
    *,
    path: str | Path,
    min_fragments: int | None = None,
    min_tss_enrichment: float | None = None,
) -> None:
    """Six-panel ATAC QC: barcode rank, TSS enrichment vs depth, fragment lengths, TSS profile,
    FRiP and nucleosome signal, one colour per sample.

    Parameters
    ----------
    barcodes
        Sample -> its barcode table (``n_fragments``, ``tss_enrichment``, ``is_cell``), as
        :func:`grids.workflow.stages.atac.run_barcode_qc` writes it. Empty for precomputed peak matrices: the
        figure is then one histogram of open peaks per cell (``cells["n_peaks"]``) per sample.
    profiles
        Sample -> ``fragment_lengths`` and ``tss_profile`` arrays
        (:class:`grids.atac.qc.BarcodeQC`), for every sample of ``barcodes``.
    cells
        Per-cell ``obs`` of the merged ATAC matrix (:func:`grids.workflow.stages.atac.merge_sample_matrices`):
        ``sample``, ``frip``, ``nucleosome_signal`` (``n_peaks`` for the precomputed case).
    path
        PNG file, written atomically.
    min_fragments
        Cell-calling threshold drawn as a dashed line on the first two panels; none when None or 0.
    min_tss_enrichment
        Threshold drawn on the TSS enrichment panel; none when None or 0.
    """
    plt = _pyplot()
    if not barcodes:
        # Precomputed peak matrices: no fragments, so only accessibility per cell.
        fig, ax = plt.subplots(figsize=(6, 4))
        for sample, block in cells.groupby("sample", sort=False):
            ax.hist(block["n_peaks"], bins=40, alpha=0.5, label=str(sample))
        ax.set(title="Open peaks per cell (precomputed matrix)", xlabel="open peaks", ylabel="cells")
        ax.legend(fontsize=8)
        _save(fig, path)
        return
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (sample, table) in enumerate(barcodes.items()):
        colour = colours[i % len(colours)]
        ranked = np.sort(table["n_fragments"].to_numpy())[::-1]
        axes[0, 0].loglog(np.arange(1, len(ranked) + 1), ranked, color=colour, label=sample)
        called = table[table["is_cell"]]
        axes[0, 1].scatter(np.log10(called["n_fragments"]), called["tss_enrichment"], s=3, alpha=0.4,
                           color=colour, label=sample)
        lengths = profiles[sample]["fragment_lengths"]
        axes[0, 2].plot(np.arange(len(lengths)), lengths / max(lengths.sum(), 1), color=colour, label=sample)
        tss = profiles[sample]["tss_profile"]
        half = len(tss) // 2
        flank = np.r_[tss[:100], tss[-100:]].mean() or 1.0
        smooth = np.convolve(tss, np.ones(25) / 25, mode="same")  # 25 bp running mean
        axes[1, 0].plot(np.arange(-half, half + 1), smooth / flank, color=colour, label=sample)
        in_sample = cells[cells["sample"] == sample]
        axes[1, 1].hist(in_sample["frip"], bins=40, alpha=0.5, color=colour, label=sample)
        axes[1, 2].hist(in_sample["nucleosome_signal"], bins=40, alpha=0.5, color=colour, label=sample)
    if min_fragments:
        axes[0, 0].axhline(min_fragments, color="grey", ls="--", lw=1, label=f"min_fragments={min_fragments}")
        axes[0, 1].axvline(np.log10(min_fragments), color="grey", ls="--", lw=1)
    if min_tss_enrichment:
        axes[0, 1].axhline(min_tss_enrichment, color="grey", ls="--", lw=1, label=f"min TSSe={min_tss_enrichment}")
    titles = [
        ("Barcode rank", "barcode rank", "unique fragments"),
        ("Cells: TSS enrichment vs depth", "log10 unique fragments", "TSS enrichment"),
        ("Fragment length (Tn5 ladder)", "fragment length (bp)", "fraction of fragments"),
        ("Insertions around TSSs", "distance to TSS (bp)", "insertions / flank"),
        ("Fraction of fragments in peaks (cells)", "FRiP", "cells"),
        ("Nucleosome signal (cells)", "mono / nucleosome-free", "cells"),
    ]
    for ax, (title, xlabel, ylabel) in zip(axes.ravel(), titles):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, loc="best")
    axes[0, 2].set_xlim(0, 800)
    fig.tight_layout()
    _save(fig, path)


def marker_heatmaps(observed: pd.DataFrame, predicted: pd.DataFrame, path: str | Path, *, r2: float | None) -> None:
    """Side-by-side heatmaps of mean marker expression per cell type: observed and predicted."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(2 + 0.45 * observed.shape[1] * 2, 1.5 + 0.4 * observed.shape[0]),
                             sharey=True)
    vmax = float(np.nanmax([observed.to_numpy().max(), predicted.to_numpy().max()]))
    for ax, frame, title in ((axes[0], observed, "observed (test cells)"), (axes[1], predicted, "surrogate")):
        image = ax.imshow(frame.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_xticks(range(frame.shape[1]), frame.columns, rotation=90, fontsize=7)
        ax.set_yticks(range(frame.shape[0]), frame.index, fontsize=8)
        ax.set_title(title)
    fig.colorbar(image, ax=axes, label="mean log-normalised expression", shrink=0.8)
    if r2 is not None:
        fig.suptitle(f"Marker means per cell type, R² = {r2:.3f}")
    _save(fig, path)


def umap_expression(coords: np.ndarray, observed: pd.DataFrame, predicted: pd.DataFrame, path: str | Path) -> None:
    """UMAP of test cells coloured by observed (top row) and predicted (bottom row) expression."""
    plt = _pyplot()
    genes = list(observed.columns)
    fig, axes = plt.subplots(2, len(genes), figsize=(3.2 * len(genes), 6.2), squeeze=False)
    for j, gene in enumerate(genes):
        vmax = float(max(observed[gene].max(), predicted[gene].max())) or 1.0
        for i, (frame, label) in enumerate(((observed, "observed"), (predicted, "predicted"))):
            ax = axes[i, j]
            ax.scatter(coords[:, 0], coords[:, 1], c=frame[gene].to_numpy(), s=4, cmap="magma_r", vmin=0, vmax=vmax)
            ax.set(xticks=[], yticks=[], title=f"{gene} {label}")
    _save(fig, path)


def objective_curve(curve: Mapping[str, list[float]], path: str | Path, *, title: str) -> None:
    """GRIDS convergence: the objective on each step's training batch and on validation cells."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    steps = curve.get("step", [])
    if steps:
        ax.plot(steps, curve["batch"], lw=0.8, alpha=0.5, label="training batch")
        if curve.get("train") and np.isfinite(curve["train"]).any():
            ax.plot(steps, curve["train"], lw=1.6, label="all training cells")
        if curve.get("validation"):
            ax.plot(steps, curve["validation"], lw=1.6, label="validation cells")
        ax.legend(frameon=False)
    else:
        ax.text(0.5, 0.5, "no steps recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("coordinate-descent step")
    ax.set_ylabel("objective L(r)")
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def predictor_comparison(per_gene_r: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Box plots of held-out per-gene Pearson r, one per predictor, medians written on them."""
    plt = _pyplot()
    names = list(per_gene_r)
    values = [np.asarray(per_gene_r[name], dtype=float) for name in names]
    values = [v[np.isfinite(v)] for v in values]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(names), 3.6))
    ax.boxplot(values, showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), [name.replace("_", " ") for name in names], rotation=20, ha="right")
    for i, v in enumerate(values, start=1):
        if len(v):
            ax.text(i, np.median(v), f"{np.median(v):.3f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(ylabel="per-gene Pearson r (test cells)", title="Surrogate against baselines")
    _save(fig, path)
