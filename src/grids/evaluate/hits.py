"""Hit ratios of per-gene selections (paper Table 3): overlap with the gene body, or nearby."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .overlap import interval_distance, overlap_matrix
from .selections import KEY

__all__ = ["gene_bodies", "target_hits", "hit_ratios", "HIT_COLUMNS"]

log = logging.getLogger(__name__)

HIT_COLUMNS = ["method", "L", "n_targets", "hr_pct", "shr_pct"]


def gene_bodies(gene_models: pd.DataFrame) -> pd.DataFrame:
    """gene, chrom, start, end of each gene's 'gene' record (the first, for repeated names).

    Parameters
    ----------
    gene_models
        Gene models (:func:`grids.genome.read_gene_models`): chrom, start, end, strand, feature, gene.

    Returns
    -------
    pandas.DataFrame
        Columns chrom, start, end, indexed by gene name, in the order of the gene records.
    """
    genes = gene_models[gene_models["feature"] == "gene"]
    return genes.drop_duplicates("gene").set_index("gene")[["chrom", "start", "end"]]


def target_hits(selections: pd.DataFrame, bodies: pd.DataFrame, *, soft_distance: int) -> pd.DataFrame:
    """Per per-gene selection that ran: ``hit`` (a selected peak overlaps the gene body) and
    ``soft_hit`` (one lies on the gene's chromosome within ``soft_distance`` bp of it), with the
    nearest peak's distance. Targets without a GTF gene record are left out with a warning.

    Parameters
    ----------
    selections
        The long selections table (:func:`grids.evaluate.selections.read_selections`); only rows of
        kind 'gene' with status 'ok' are read.
    bodies
        Gene bodies indexed by gene (:func:`gene_bodies`).
    soft_distance
        Largest distance in bp from the gene body at which a peak still counts as a soft hit.

    Returns
    -------
    pandas.DataFrame
        One row per selection, in first-seen order: method, L, cell_type, target, hit, soft_hit
        (bools) and nearest_bp (float; inf when no selected peak lies on the gene's chromosome).
    """
    ok = selections[(selections["kind"] == "gene") & (selections["status"] == "ok")]
    rows, unplaced = [], set()
    for key, group in ok.groupby(KEY, sort=False):
        gene = key[3]
        if gene not in bodies.index:
            unplaced.add(gene)
            continue
        body = bodies.loc[gene]
        distance = interval_distance(group["chrom"].to_numpy(), group["start"].to_numpy(), group["end"].to_numpy(),
                                     chrom=str(body["chrom"]), start=int(body["start"]), end=int(body["end"]))
        nearest = float(distance.min()) if len(distance) else np.inf
        # A hit needs a shared base; a peak that only abuts the gene body is distance 0 but no hit.
        overlaps = bool(overlap_matrix(group[["chrom", "start", "end"]], body.to_frame().T).any())
        rows.append(dict(zip(KEY, key)) | {"hit": overlaps, "soft_hit": nearest <= soft_distance,
                                            "nearest_bp": nearest})
    if unplaced:
        log.warning("no gene record in the GTF for %d target(s), left out of the hit ratios: %s",
                    len(unplaced), ", ".join(sorted(unplaced)[:10]))
    return pd.DataFrame(rows, columns=[*KEY, "hit", "soft_hit", "nearest_bp"])


def hit_ratios(per_target: pd.DataFrame, methods: list[str], Ls: list[int]) -> pd.DataFrame:
    """HR and SHR in % over the targets each method ran on, per method and L.

    Parameters
    ----------
    per_target
        Per-selection hits (:func:`target_hits`).
    methods
        Methods to report, in the order of the rows.
    Ls
        Subset sizes to report, in the order of the rows within each method.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`HIT_COLUMNS` (method, L, n_targets, hr_pct, shr_pct), one row per method and L
        (methods outer); hr_pct and shr_pct are NaN where the method has no target at that L.
    """
    rows = []
    for method in methods:
        for L in Ls:
            part = per_target[(per_target["method"] == method) & (per_target["L"] == L)]
            n = len(part)
            rows.append({"method": method, "L": L, "n_targets": n,
                         "hr_pct": 100 * part["hit"].mean() if n else np.nan,
                         "shr_pct": 100 * part["soft_hit"].mean() if n else np.nan})
    return pd.DataFrame(rows, columns=HIT_COLUMNS)
