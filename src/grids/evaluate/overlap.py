"""Interval overlap and distance between small query sets and a sorted reference (per chromosome)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["overlaps_any", "overlap_matrix", "interval_distance"]


def overlaps_any(query: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """For each query interval (chrom, start, end; half-open), whether it overlaps any reference
    interval (pyranges; the reference may be a whole consensus peak set).

    Parameters
    ----------
    query
        Intervals with columns chrom, start, end.
    reference
        Intervals with columns chrom, start, end.

    Returns
    -------
    numpy.ndarray
        Boolean, one entry per row of ``query`` in its order; all False when either table is empty.
    """
    import pyranges as pr

    hit = np.zeros(len(query), dtype=bool)
    if len(query) == 0 or len(reference) == 0:
        return hit

    def ranges(frame: pd.DataFrame, **extra) -> pr.PyRanges:
        return pr.PyRanges(pd.DataFrame({"Chromosome": frame["chrom"].astype(str).to_numpy(),
                                         "Start": frame["start"].to_numpy(np.int64),
                                         "End": frame["end"].to_numpy(np.int64), **extra}))

    found = ranges(query, row=np.arange(len(query))).overlap(ranges(reference))
    if len(found):
        hit[found.df["row"].to_numpy()] = True
    return hit


def overlap_matrix(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Boolean len(a) x len(b): interval i of ``a`` overlaps interval j of ``b`` (small sets).

    Parameters
    ----------
    a
        Intervals with columns chrom, start, end (half-open).
    b
        Intervals with columns chrom, start, end (half-open).

    Returns
    -------
    numpy.ndarray
        Boolean ``len(a) x len(b)``, rows and columns in the tables' order; intervals that only abut do
        not overlap.
    """
    same = a["chrom"].astype(str).to_numpy()[:, None] == b["chrom"].astype(str).to_numpy()[None, :]
    return (same & (a["start"].to_numpy(np.int64)[:, None] < b["end"].to_numpy(np.int64)[None, :])
            & (a["end"].to_numpy(np.int64)[:, None] > b["start"].to_numpy(np.int64)[None, :]))


def interval_distance(a_chrom: np.ndarray, a_start: np.ndarray, a_end: np.ndarray,
                      *, chrom: str, start: int, end: int) -> np.ndarray:
    """Base pairs between each interval of ``a`` and one interval (0 when they overlap; inf on
    another chromosome).

    Parameters
    ----------
    a_chrom
        Chromosome of each interval of ``a``.
    a_start
        Start of each interval of ``a`` (0-based).
    a_end
        End of each interval of ``a`` (half-open).
    chrom
        Chromosome of the one interval.
    start
        Start of the one interval (0-based).
    end
        End of the one interval (half-open).

    Returns
    -------
    numpy.ndarray
        Float distance in bp per interval of ``a``, in its order.
    """
    gap = np.maximum(np.maximum(start - np.asarray(a_end, np.int64), np.asarray(a_start, np.int64) - end), 0)
    return np.where(np.asarray(a_chrom).astype(str) == chrom, gap.astype(float), np.inf)
