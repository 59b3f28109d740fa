"""The genome annotation: one GTF reader for every stage's genes, TSSs and gene models.

pyranges parses the GTF (its attributes become columns: ``gene_id``, ``gene_name``, ...);
:func:`read_gtf` is the one place that calls it, and :func:`gene_names` the one place that
turns a record's attributes into the gene name the rest of the workflow matches targets and
RNA genes against. The readers built on them:

- :func:`read_tss`: every gene record's TSS (ATAC QC, the surrogate's cis links);
- :func:`first_tss`, :func:`tss_map`: each gene's first TSS (explain, redundancy, evaluate);
- :func:`read_gene_models`: gene, transcript and exon records (hit ratios, track figures).

Every reader names a record by its ``gene_name``, else its ``gene_id`` (Ensembl GTFs leave
``gene_name`` off many non-coding genes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .io import gzip_errors

__all__ = ["read_gtf", "gene_names", "read_tss", "first_tss", "tss_map", "read_gene_models"]

GENE_MODEL_FEATURES = ("gene", "transcript", "exon")


def read_gtf(gtf: str | Path) -> pd.DataFrame:
    """Every record of a GTF (plain or gzip) as pyranges reads it.

    Parameters
    ----------
    gtf
        GTF file; a truncated or corrupt gzip raises ValueError naming it.

    Returns
    -------
    pandas.DataFrame
        One row per record, in file order: pyranges' ``Chromosome``, ``Source``, ``Feature``,
        ``Start`` (0-based), ``End`` (half-open), ``Score``, ``Strand``, ``Frame``, then one column
        per attribute key (NaN where a record lacks it).
    """
    import pyranges as pr

    with gzip_errors(gtf):
        return pr.read_gtf(str(gtf), as_df=True)


def gene_names(records: pd.DataFrame) -> pd.Series:
    """The gene name of each GTF record: its ``gene_name``, else its ``gene_id``.

    The fallback is per record: the TSS readers once decided it per file, so in a GTF where some
    genes lack ``gene_name`` all of those became one gene called ``"nan"``, with no TSS of its
    own and no cis window.

    Parameters
    ----------
    records
        Rows of :func:`read_gtf`.

    Returns
    -------
    pandas.Series
        Gene names as ``str`` (``"nan"`` only for a record with neither attribute), on the
        index of ``records``.
    """
    gene = (records["gene_id"].astype(object) if "gene_id" in records
            else pd.Series(np.nan, index=records.index, dtype=object))
    if "gene_name" in records:
        gene = records["gene_name"].astype(object).where(records["gene_name"].notna(), gene)
    return gene.astype(str)


def read_tss(gtf: str | Path, chrom_sizes: Mapping[str, int] | None = None) -> pd.DataFrame:
    """The TSS of every gene record of a GTF.

    Parameters
    ----------
    gtf
        GTF file with ``gene`` records.
    chrom_sizes
        Keep the TSSs on these chromosomes (its keys; the sizes are not used); all when None.

    Returns
    -------
    pandas.DataFrame
        chrom, position (0-based: the record's start, or its end - 1 on the minus strand),
        strand, gene (:func:`gene_names`); sorted by chrom, position
        (stable, so records at one position keep their file order), index 0..n-1. A gene with
        several records has several rows.

    Raises
    ------
    ValueError
        When the GTF has no ``gene`` record.
    """
    genes = read_gtf(gtf)
    if "Feature" not in genes.columns or not (genes["Feature"] == "gene").any():
        raise ValueError(f"{gtf}: no 'gene' records; the GTF needs gene lines to locate TSSs")
    genes = genes[genes["Feature"] == "gene"]
    tss = pd.DataFrame(
        {
            "chrom": genes["Chromosome"].astype(str).to_numpy(),
            "position": np.where(genes["Strand"].astype(str) == "-", genes["End"] - 1, genes["Start"]),
            "strand": genes["Strand"].astype(str).to_numpy(),
            "gene": gene_names(genes).to_numpy(),
        }
    )
    if chrom_sizes is not None:
        tss = tss[tss["chrom"].isin(list(chrom_sizes))]
    return tss.sort_values(["chrom", "position"], kind="stable").reset_index(drop=True)


def first_tss(gtf: str | Path, chroms: Sequence[str] | None = None) -> pd.DataFrame:
    """Each gene's first TSS.

    Parameters
    ----------
    gtf
        GTF file with ``gene`` records.
    chroms
        Keep the TSSs on these chromosomes; all when None.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`read_tss` (same columns, order and index), the first per gene name.
    """
    return read_tss(gtf, None if chroms is None else {c: 0 for c in chroms}).drop_duplicates("gene")


def tss_map(gtf: str | Path, chroms: Sequence[str] | None = None) -> dict[str, tuple[str, int]]:
    """Each gene's first TSS as a mapping.

    Parameters
    ----------
    gtf
        GTF file with ``gene`` records.
    chroms
        Keep the TSSs on these chromosomes; all when None.

    Returns
    -------
    dict
        gene -> (chrom, position), from :func:`first_tss`, in its order.
    """
    tss = first_tss(gtf, chroms)
    return {g: (c, int(p)) for g, c, p in zip(tss["gene"], tss["chrom"], tss["position"])}


def read_gene_models(gtf: str | Path) -> pd.DataFrame:
    """The gene, transcript and exon records of a GTF.

    Parameters
    ----------
    gtf
        GTF file with ``gene`` records.

    Returns
    -------
    pandas.DataFrame
        chrom, start, end (0-based half-open, int64), strand, feature, gene (:func:`gene_names`); one row per
        record in file order, index 0..n-1.

    Raises
    ------
    ValueError
        When the GTF has no ``gene`` record.
    """
    raw = read_gtf(gtf)
    raw = raw[raw["Feature"].astype(str).isin(GENE_MODEL_FEATURES)]
    models = pd.DataFrame({
        "chrom": raw["Chromosome"].astype(str), "start": raw["Start"].astype(np.int64),
        "end": raw["End"].astype(np.int64), "strand": raw["Strand"].astype(str),
        "feature": raw["Feature"].astype(str), "gene": gene_names(raw),
    }).reset_index(drop=True)
    if not (models["feature"] == "gene").any():
        raise ValueError(f"{gtf}: no gene records in GTF")
    return models
