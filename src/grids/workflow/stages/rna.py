"""The RNA stage as the workflow runs it: read every sample, Pegasus QC, labels, UMAP."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from grids.io import atomic_output, write_tsv
from grids.rna.embedding import umap
from grids.rna.figures import qc_violin_figure
from grids.rna.inputs import read_rna
from grids.rna.labels import align_labels, check_targets, infer_labels, read_labels
from grids.rna.qc import rna_qc
from grids.workflow.config import read_targets

__all__ = ["run_rna_stage"]

log = logging.getLogger(__name__)


def run_rna_stage(
    *,
    rna_files: Mapping[str, str],
    label_tables: Mapping[str, str],
    targets: str,
    settings: Mapping[str, Any],
    mito_prefix: str,
    out_h5ad: str,
    out_qc: str,
    out_figure: str,
    out_labels: str,
) -> None:
    """QC-passed, log-normalised cells x (HVGs + targets) with ``obs['cell_type']`` and a UMAP.

    Parameters
    ----------
    rna_files
        Sample -> RNA count file (:func:`grids.rna.inputs.read_rna`), in sample-sheet order.
    label_tables
        Sample -> cell-type table (:func:`grids.rna.labels.read_labels`); read only when
        ``settings["labels"]`` is ``"given"``.
    targets
        The targets file (:func:`grids.workflow.config.read_targets`): its genes are kept whatever their
        variability, and its cell types are checked against the labels.
    settings
        The ``rna`` config section: ``labels`` (``"given"``, else labels are inferred from
        ``markers`` at ``leiden_resolution``), the QC thresholds ``min_genes``, ``max_genes``,
        ``min_umis``, ``max_umis``, ``percent_mito``, and ``robust_percent_cells``, ``n_top_genes``,
        ``batch_aware_hvg`` and ``seed`` (labels and UMAP).
    mito_prefix
        Mitochondrial gene prefix (:func:`grids.rna.qc.rna_qc`).
    out_h5ad
        The AnnData of :func:`grids.rna.qc.rna_qc`, written gzip-compressed, with a categorical
        ``obs["cell_type"]`` (NaN for a cell the given tables do not label) and ``obsm["X_umap"]``.
    out_qc
        TSV of the per-cell QC table (every input cell).
    out_figure
        PNG of the QC violins (:func:`grids.rna.figures.qc_violin_figure`).
    out_labels
        TSV of ``cell``, ``sample``, ``cell_type`` for the QC-passed cells.

    Raises
    ------
    ValueError
        When an input cannot be read (:func:`grids.rna.inputs.read_rna`,
        :func:`grids.rna.labels.read_labels`), a target gene is in none of the RNA matrices, a
        target's cell type is not among the given labels, the given labels cover no QC-passed
        cell, or QC or label inference fails (:func:`grids.rna.qc.rna_qc`,
        :func:`grids.rna.labels.infer_labels`); :class:`grids.workflow.config.ConfigError` for a bad
        targets file; FileNotFoundError for a missing RNA file. An inferred label set that misses a
        target's cell type is only a warning.
    """
    parts = [read_rna(path, sample) for sample, path in rna_files.items()]
    target_table = read_targets(targets)
    genes = set().union(*(p.var_names for p in parts))
    check_targets(genes, target_table,
                  source=f"the RNA matrices {', '.join(map(str, rna_files.values()))} (targets from {targets})")
    given = read_labels(label_tables) if settings["labels"] == "given" else None
    if given is not None:
        _check_target_cell_types(target_table, given, targets, ", ".join(map(str, label_tables.values())))
    adata, qc = rna_qc(
        parts,
        min_genes=settings["min_genes"], max_genes=settings["max_genes"], min_umis=settings["min_umis"],
        max_umis=settings["max_umis"], percent_mito=settings["percent_mito"], mito_prefix=mito_prefix,
        robust_percent_cells=settings["robust_percent_cells"], n_top_hvg=settings["n_top_genes"],
        batch_aware=settings["batch_aware_hvg"], keep_genes=target_table["gene"].unique().tolist(),
    )
    write_tsv(qc, out_qc)
    qc_violin_figure(qc, out_figure, min_genes=settings["min_genes"], max_genes=settings["max_genes"],
                     min_umis=settings["min_umis"], max_umis=settings["max_umis"],
                     percent_mito=settings["percent_mito"])
    if given is not None:
        labels = align_labels(given, list(adata.obs_names))
    else:
        labels = infer_labels(adata, markers=settings["markers"], resolution=settings["leiden_resolution"],
                              random_state=settings["seed"])
        _check_target_cell_types(target_table, labels, targets, "the inferred labels", warn=True)
    coords = umap(adata, random_state=settings["seed"])
    adata.obs["cell_type"] = pd.Categorical(labels.reindex(adata.obs_names))
    adata.obsm["X_umap"] = coords.loc[adata.obs_names].to_numpy()
    log.info("RNA: %d cells x %d genes; cell types: %s", adata.n_obs, adata.n_vars,
             adata.obs["cell_type"].value_counts().to_dict())
    write_tsv(adata.obs[["sample", "cell_type"]].reset_index(names="cell"), out_labels)
    with atomic_output(out_h5ad) as tmp:
        adata.write_h5ad(tmp, compression="gzip")


def _check_target_cell_types(targets: pd.DataFrame, labels: pd.Series, path: str, source: str, *,
                             warn: bool = False) -> None:
    """Every cell type of the targets file is a label; given labels make a miss an error, inferred
    ones (whose names a user learns from this stage) a warning, as the explain stage rejects it."""
    known = sorted(set(labels.dropna().astype(str)))
    unknown = sorted(set(targets["cell_type"].astype(str)) - set(known))
    if not unknown:
        return
    message = (f"{path}: cell type(s) {', '.join(map(repr, unknown))} not among the cell-type labels of {source} "
               f"({', '.join(known[:12])}{', ...' if len(known) > 12 else ''})")
    if not warn:
        raise ValueError(message + "; spell them as the cell-type tables do")
    log.warning("%s; explaining them will fail until targets.tsv names labelled types", message)
