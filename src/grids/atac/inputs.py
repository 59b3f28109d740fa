"""Precomputed peak matrices (Cell Ranger ARC h5, h5ad, h5mu) as ATAC input.

When a sample arrives as a peak matrix, peak calling is skipped: its peaks are used as they
are, binarised, restricted to the chrom-sizes chromosomes and sorted in their order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..io import check_10x_h5, check_contig_naming

__all__ = ["read_peak_matrix", "parse_peak_names"]

log = logging.getLogger(__name__)

# 10x writes "chr1:100-200"; Signac/ArchR often "chr1-100-200"; SnapATAC2/ArchR exports also
# "chr1_100_200". The chromosome is everything before the last two numbers, so contig names
# with separators of their own ("chr1_KI270706v1_random") survive.
_PEAK_NAME = re.compile(r"^(?P<chrom>.+?)[:_-](?P<start>\d+)[-_](?P<end>\d+)$")


def parse_peak_names(names: Sequence[str], source: str) -> pd.DataFrame:
    """chrom/start/end from peak names like ``chr1:100-200``, ``chr1-100-200`` or ``chr1_100_200``.

    Parameters
    ----------
    names
        Peak names. The chromosome is everything before the last two numbers, so contig names with
        separators of their own (``chr1_KI270706v1_random``) are kept whole.
    source
        The file the names come from; named in the error.

    Returns
    -------
    pandas.DataFrame
        ``chrom`` (str), ``start`` and ``end`` (int64, as written in the names), one row per name in
        the order of ``names``, index 0..n-1.

    Raises
    ------
    ValueError
        When a name matches none of the three forms; the message shows up to three such names.
    """
    parsed = pd.Series(list(names), dtype=str).str.extract(_PEAK_NAME)
    bad = parsed["chrom"].isna()
    if bad.any():
        raise ValueError(f"{source}: cannot read peak coordinates from names such as "
                         f"{list(pd.Series(names)[bad.to_numpy()][:3])}; expected chr:start-end, "
                         "chr-start-end or chr_start_end")
    return parsed.astype({"start": np.int64, "end": np.int64})


def _var_peaks(var: pd.DataFrame, source: str) -> pd.DataFrame:
    """chrom/start/end from ``var`` columns as plain str/int64 columns.

    anndata stores string columns as categoricals, and a categorical chrom breaks the
    rank lookup and the name concatenation below.
    """
    peaks = pd.DataFrame({"chrom": np.asarray(var["chrom"]).astype(str)})
    for column in ("start", "end"):
        try:
            peaks[column] = np.asarray(var[column]).astype(np.int64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: var['{column}'] does not hold integer coordinates ({err})") from err
    return peaks


def _check_peaks(peaks: pd.DataFrame, chrom_sizes: Mapping[str, int], path: Path, sizes_source: str) -> None:
    """Every peak a non-empty interval inside its chromosome, each listed once."""
    empty = (peaks["end"] <= peaks["start"]) | (peaks["start"] < 0)
    if empty.any():
        raise ValueError(f"{path}: peak {peaks.loc[empty, 'name'].iloc[0]} has end <= start or a negative start "
                         f"({int(empty.sum())} such peaks)")
    past = peaks["end"].to_numpy() > peaks["chrom"].map(dict(chrom_sizes)).to_numpy()
    if past.any():
        row = peaks[past].iloc[0]
        raise ValueError(f"{path}: peak {row['name']} ends past the {chrom_sizes[row['chrom']]} bp of {row['chrom']} "
                         f"in {sizes_source}; was the matrix made on a different genome build?")
    twice = peaks["name"].duplicated()
    if twice.any():
        raise ValueError(f"{path}: peak {peaks.loc[twice, 'name'].iloc[0]} is listed twice ({int(twice.sum())} "
                         "repeated peaks); a peak matrix needs one column per peak")


def _load(path: Path):
    """The file's AnnData (the ``atac`` modality of an h5mu; Peaks features of a 10x h5)."""
    try:
        return _load_unchecked(path)
    except FileNotFoundError:
        raise
    except OSError as err:  # h5py: truncated or not HDF5; its message lacks the file name
        raise ValueError(f"{path}: cannot read the peak matrix ({err}); is the file complete?") from err


def _load_unchecked(path: Path):
    import anndata as ad

    suffix = path.suffix.lower()
    if suffix == ".h5":
        import scanpy as sc

        check_10x_h5(path)
        adata = sc.read_10x_h5(path, gex_only=False)
        if "feature_types" not in adata.var or not (adata.var["feature_types"] == "Peaks").any():
            raise ValueError(f"{path}: no 'Peaks' features; is this a Cell Ranger ARC/ATAC matrix?")
        return adata[:, adata.var["feature_types"] == "Peaks"].copy()
    if suffix == ".h5mu":
        import mudata as md

        data = md.read_h5mu(path)
        if "atac" not in data.mod:
            raise ValueError(f"{path}: no 'atac' modality (found {list(data.mod)})")
        return data.mod["atac"]
    if suffix == ".h5ad":
        return ad.read_h5ad(path)
    raise ValueError(f"{path}: unsupported peak matrix format (use a 10x .h5, .h5ad or .h5mu)")


def read_peak_matrix(
    path: str | Path,
    chrom_sizes: Mapping[str, int],
    *,
    exclude_chromosomes: Sequence[str] = (),
) -> tuple[sp.csr_matrix, list[str], pd.DataFrame]:
    """Binary cells x peaks (uint8 CSR), the cell barcodes and the peaks (chrom, start, end, name).

    Parameters
    ----------
    path
        A Cell Ranger ARC/ATAC ``.h5`` (its ``Peaks`` features), an ``.h5ad`` or an ``.h5mu`` (its
        ``atac`` modality), chosen by the suffix. Peak coordinates come from ``var`` columns
        ``chrom``, ``start``, ``end`` when all three are there, else from the peak names
        (:func:`parse_peak_names`).
    chrom_sizes
        Chromosome -> length; peaks on other chromosomes are dropped (logged), and its order sorts
        the peaks. Its ``source`` attribute, when it has one, names it in errors.
    exclude_chromosomes
        Chromosomes whose peaks are dropped as well.

    Returns
    -------
    tuple
        ``(X, barcodes, peaks)``: ``X`` the cells x kept peaks matrix as uint8 CSR, 1 where the
        stored value is > 0, indices sorted; ``barcodes`` the cell barcodes (``obs_names``) as str, in
        file order, one per row; ``peaks`` a DataFrame of ``chrom``, ``start``, ``end`` (int64) and
        ``name`` (``chrom:start-end``), one row per column of ``X``, sorted by the chrom-sizes order,
        then start, index 0..n-1.

    Raises
    ------
    FileNotFoundError
        When an ``.h5ad`` or ``.h5mu`` ``path`` does not exist.
    ValueError
        When the file is unreadable (a missing ``.h5``, truncated or not HDF5), of another suffix, lacks ``Peaks``
        features (``.h5``) or an ``atac`` modality (``.h5mu``); when coordinates cannot be read from
        ``var`` or the names; when its contig names differ from ``chrom_sizes`` only in the ``chr``
        prefix; when no peak is left on the chrom-sizes chromosomes; or when a kept peak is empty
        (end <= start), starts below 0, ends past its chromosome or is listed twice.
    """
    path = Path(path)
    adata = _load(path)
    var = adata.var
    if {"chrom", "start", "end"} <= set(var.columns):
        peaks = _var_peaks(var, str(path))
    else:
        peaks = parse_peak_names(adata.var_names, str(path))
    rank = {c: i for i, c in enumerate(chrom_sizes)}
    sizes_source = getattr(chrom_sizes, "source", "the chrom sizes")
    check_contig_naming(pd.unique(peaks["chrom"]), rank, source=path, known_source=sizes_source)
    keep = peaks["chrom"].isin(list(rank)) & ~peaks["chrom"].isin(list(exclude_chromosomes))
    if not keep.any():
        raise ValueError(f"{path}: no peak lies on the chrom-sizes chromosomes ({', '.join(list(rank)[:4])}, ...)")
    if (~keep).any():
        log.info("%s: dropping %d peaks on %s", path, int((~keep).sum()), sorted(set(peaks.loc[~keep, "chrom"])))
    order = np.lexsort((peaks["start"].to_numpy(), peaks["chrom"].map(rank).fillna(-1).to_numpy()))
    order = order[keep.to_numpy()[order]]
    peaks = peaks.iloc[order].reset_index(drop=True)
    peaks["name"] = peaks["chrom"] + ":" + peaks["start"].astype(str) + "-" + peaks["end"].astype(str)
    _check_peaks(peaks, chrom_sizes, path, sizes_source)
    X = sp.csr_matrix(adata.X)[:, order]
    X = sp.csr_matrix((X > 0).astype(np.uint8))
    X.sort_indices()
    return X, [str(b) for b in adata.obs_names], peaks
