"""Pairing RNA and ATAC cells, the stratified train/val/test split, and the paired MuData file."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .io import atomic_output

__all__ = ["PairingError", "atac_qc_pass", "pair_cells", "stratified_split", "write_paired"]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class PairingError(ValueError):
    """RNA and ATAC share no usable cell."""


def atac_qc_pass(obs: pd.DataFrame, *, min_fragments: int, min_tss_enrichment: float) -> pd.Series:
    """ATAC-side QC of paired cells: enough unique fragments and TSS enrichment.

    Imported peak matrices carry no fragment QC; there a cell passes when it has any open peak.

    Parameters
    ----------
    obs
        Per-cell ATAC ``obs`` with ``n_fragments``, ``tss_enrichment`` and ``n_peaks``; when every
        ``n_fragments`` is NaN (an imported peak matrix) only ``n_peaks`` is used.
    min_fragments
        Least unique fragments of a passing cell.
    min_tss_enrichment
        Least TSS enrichment of a passing cell (a missing value counts as 0).

    Returns
    -------
    pandas.Series
        bool, on the index of ``obs``: True for the cells that pass.
    """
    if obs["n_fragments"].isna().all():
        return obs["n_peaks"] > 0
    return (obs["n_fragments"] >= min_fragments) & (obs["tss_enrichment"].fillna(0) >= min_tss_enrichment)


def pair_cells(rna_obs: pd.DataFrame, atac_obs: pd.DataFrame, rna_passed: pd.Series, *, atac_passed: pd.Series):
    """Cells that passed both QCs, in the RNA order, and a per-sample report of what was dropped and why.

    ``rna_obs``/``atac_obs`` index every cell each modality saw (``{sample}#{barcode}``) and have
    a ``sample`` column; ``*_passed`` are boolean Series on the same index.

    Parameters
    ----------
    rna_obs
        Every RNA cell, indexed by cell name, with a ``sample`` column.
    atac_obs
        Every ATAC cell, indexed by cell name, with a ``sample`` column.
    rna_passed
        Whether each RNA cell passed RNA QC; a cell missing from it counts as failed.
    atac_passed
        Whether each ATAC cell passed ATAC QC (:func:`atac_qc_pass`); a cell missing from it counts
        as failed.

    Returns
    -------
    tuple
        ``(paired, report)``: ``paired`` the list of cell names that passed both QCs, in the order of
        ``rna_obs``; ``report`` a DataFrame with one row per sample (RNA samples in order of first
        appearance, then ATAC-only ones) and columns ``sample``, ``rna_cells``, ``rna_passed_qc``,
        ``atac_cells``, ``atac_passed_qc``, ``paired``, ``dropped_rna_failed_atac_qc``,
        ``dropped_rna_no_atac``, ``dropped_atac_failed_rna_qc`` and ``dropped_atac_no_rna`` (cell
        counts).

    Raises
    ------
    PairingError
        When no cell passed both QCs.
    """
    rna_ok = set(rna_obs.index[rna_passed.reindex(rna_obs.index, fill_value=False).to_numpy()])
    atac_ok = set(atac_obs.index[atac_passed.reindex(atac_obs.index, fill_value=False).to_numpy()])
    paired = [c for c in rna_obs.index if c in rna_ok and c in atac_ok]
    if not paired:
        rna_examples = ", ".join(sorted(rna_ok)[:3]) or "(none passed RNA QC)"
        atac_examples = ", ".join(sorted(atac_ok)[:3]) or "(none passed ATAC QC)"
        raise PairingError(
            f"no cell passed both RNA and ATAC QC with a shared barcode. RNA: {rna_examples}; ATAC: "
            f"{atac_examples}. Check that each sample's RNA and ATAC files come from the same library."
        )
    rows = []
    rna_sample, atac_sample = rna_obs["sample"].astype(str), atac_obs["sample"].astype(str)
    for sample in pd.unique(pd.concat([rna_sample, atac_sample])):
        rna_cells = set(rna_obs.index[rna_sample == sample])
        atac_cells = set(atac_obs.index[atac_sample == sample])
        rna_pass, atac_pass = rna_cells & rna_ok, atac_cells & atac_ok
        both = rna_pass & atac_pass
        rows.append({
            "sample": sample,
            "rna_cells": len(rna_cells),
            "rna_passed_qc": len(rna_pass),
            "atac_cells": len(atac_cells),
            "atac_passed_qc": len(atac_pass),
            "paired": len(both),
            "dropped_rna_failed_atac_qc": len(rna_pass & (atac_cells - atac_ok)),
            "dropped_rna_no_atac": len(rna_pass - atac_cells),
            "dropped_atac_failed_rna_qc": len(atac_pass & (rna_cells - rna_ok)),
            "dropped_atac_no_rna": len(atac_pass - rna_cells),
        })
    report = pd.DataFrame(rows)
    for row in report.itertuples():
        log.info(
            "%s: %d paired; dropped %d RNA cells failing ATAC QC, %d RNA cells without ATAC, %d ATAC cells "
            "failing RNA QC, %d ATAC cells without RNA", row.sample, row.paired, row.dropped_rna_failed_atac_qc,
            row.dropped_rna_no_atac, row.dropped_atac_failed_rna_qc, row.dropped_atac_no_rna,
        )
    return paired, report


def stratified_split(labels: pd.Series, fractions: Mapping[str, float], seed: int) -> pd.Series:
    """train/val/test per cell, stratified by cell type and seeded.

    Within each cell type the cells are shuffled and cut at the configured fractions; a type
    with at least three cells gets at least one validation and one test cell.

    Parameters
    ----------
    labels
        Cell type of each cell, indexed by cell name.
    fractions
        ``val`` and ``test`` fractions (``train`` is the rest; its own value is not read). Each cell
        type's count of validation and test cells is its size times the fraction, rounded.
    seed
        Seed of the shuffle (one generator, cell types taken in sorted order).

    Returns
    -------
    pandas.Series
        ``"train"``, ``"val"`` or ``"test"`` for each cell, on the index of ``labels``, as a
        categorical with the categories in that order.
    """
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=labels.index, dtype=object)
    for cell_type in sorted(pd.unique(labels)):
        cells = labels.index[labels.to_numpy() == cell_type].to_numpy()
        cells = cells[rng.permutation(len(cells))]
        n = len(cells)
        n_val = int(round(n * fractions["val"]))
        n_test = int(round(n * fractions["test"]))
        if n >= 3:
            n_val, n_test = max(n_val, 1), max(n_test, 1)
        split[cells[:n_test]] = "test"
        split[cells[n_test : n_test + n_val]] = "val"
    return split.astype(pd.CategoricalDtype(SPLITS))


def write_paired(rna, atac, cell_type: pd.Series, *, split: pd.Series, path: str) -> None:
    """Write ``paired.h5mu``: modalities ``rna`` and ``atac`` on the same cells, same order,
    with ``cell_type`` and ``split`` in the global and the per-modality ``obs``.

    Parameters
    ----------
    rna
        RNA AnnData of the paired cells; its ``obs`` gains ``cell_type`` and ``split`` in place.
    atac
        ATAC AnnData of the same cells in the same order; its ``obs`` gains the same columns.
    cell_type
        Cell type of each cell, indexed by cell name (stored as categorical).
    split
        ``train``/``val``/``test`` of each cell, indexed by cell name (:func:`stratified_split`).
    path
        The ``.h5mu`` file, written atomically.

    Raises
    ------
    ValueError
        When the two modalities' cell names differ, or are in another order.
    """
    import mudata as md

    if not rna.obs_names.equals(atac.obs_names):
        raise ValueError("RNA and ATAC cells differ in names or order")
    for modality in (rna, atac):
        modality.obs["cell_type"] = pd.Categorical(cell_type.loc[modality.obs_names])
        modality.obs["split"] = split.loc[modality.obs_names].to_numpy()
    mdata = md.MuData({"rna": rna, "atac": atac})
    mdata.obs["cell_type"] = rna.obs["cell_type"].to_numpy()
    mdata.obs["split"] = pd.Categorical(rna.obs["split"].to_numpy(), categories=SPLITS)
    with atomic_output(path) as tmp:
        mdata.write(str(tmp))


def run_pairing(
    *,
    rna_h5ad: str,
    rna_qc: str,
    atac_h5ad: str,
    min_fragments: int,
    min_tss_enrichment: float,
    min_cells_per_type: int,
    split_settings: Mapping[str, float],
    out_h5mu: str,
    out_report: str,
    out_umap: str,
) -> None:
    """Pair QC-passed cells of both modalities, drop unlabelled and rare types, split, write."""
    import anndata as ad

    from .io import write_tsv
    from .rna.figures import umap_figure
    from .rna.labels import drop_small_cell_types

    rna = ad.read_h5ad(rna_h5ad)
    atac = ad.read_h5ad(atac_h5ad)
    # Names as strings: a sample called "01" must not become the number 1.
    qc = pd.read_csv(rna_qc, sep="\t", dtype={"cell": str, "sample": str, "barcode": str}).set_index("cell")
    atac_passed = atac_qc_pass(atac.obs, min_fragments=min_fragments, min_tss_enrichment=min_tss_enrichment)
    paired, report = pair_cells(qc, atac.obs, qc["passed_qc"].astype(bool), atac_passed=atac_passed)
    labels = rna.obs["cell_type"].loc[paired]
    unlabelled = labels.isna()
    if unlabelled.any():
        log.warning("%d paired cells have no cell-type label and are dropped", int(unlabelled.sum()))
    labels = labels[~unlabelled].astype(str)
    keep = drop_small_cell_types(labels, min_cells=min_cells_per_type)
    labels = labels[keep.reindex(labels.index).to_numpy()]
    report["kept_after_labels"] = [int(labels.index.str.startswith(f"{s}#").sum()) for s in report["sample"]]
    split = stratified_split(labels, split_settings, int(split_settings["seed"]))
    cells = labels.index
    rna_paired, atac_paired = rna[cells].copy(), atac[cells].copy()
    write_paired(rna_paired, atac_paired, labels, split=split, path=out_h5mu)
    write_tsv(report, out_report)
    coords = pd.DataFrame(rna_paired.obsm["X_umap"], index=cells, columns=["umap1", "umap2"])
    umap_figure(coords, labels, out_umap, title=f"Paired cells ({len(cells)}), RNA UMAP by cell type")
    counts = pd.crosstab(labels, split)
    log.info("paired cells by cell type and split:\n%s", counts.to_string())
