"""Vectorised interval arithmetic on sorted, non-overlapping intervals of one chromosome.

Conventions (shared by the simulator and the ATAC stage): intervals are BED-style,
0-based half-open ``[start, end)``. A 10x fragment ``[start, end)`` has its two Tn5
insertions at ``start`` and ``end - 1``; a fragment counts for an interval when either
insertion lies inside it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["interval_index", "insertion_interval_index", "fragment_in_intervals"]


def interval_index(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of the interval holding each position, or -1.

    ``starts``/``ends`` must be sorted and non-overlapping (as merged peaks are).

    Parameters
    ----------
    positions
        0-based positions.
    starts
        Interval starts (inclusive), ascending.
    ends
        Interval ends (exclusive), one per start.

    Returns
    -------
    numpy.ndarray
        For each position, the index into ``starts`` of the interval ``[start, end)`` that holds it,
        or -1 when none does; the shape of ``positions``.
    """
    positions = np.asarray(positions)
    idx = np.searchsorted(starts, positions, side="right") - 1
    inside = (idx >= 0) & (positions < np.asarray(ends)[np.clip(idx, 0, None)])
    return np.where(inside, idx, -1)


def insertion_interval_index(
    frag_starts: np.ndarray, frag_ends: np.ndarray, starts: np.ndarray, *, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interval index (or -1) of the left and right Tn5 insertion of each fragment.

    Parameters
    ----------
    frag_starts
        Fragment starts: the left insertions.
    frag_ends
        Fragment ends (exclusive): the right insertion is at ``end - 1``.
    starts
        Interval starts, sorted and non-overlapping as for :func:`interval_index`.
    ends
        Interval ends (exclusive), one per start.

    Returns
    -------
    tuple of numpy.ndarray
        ``(left, right)``: the :func:`interval_index` of each fragment's left and right insertion.
    """
    left = interval_index(frag_starts, starts, ends)
    right = interval_index(np.asarray(frag_ends) - 1, starts, ends)
    return left, right


def fragment_in_intervals(
    frag_starts: np.ndarray, frag_ends: np.ndarray, starts: np.ndarray, *, ends: np.ndarray
) -> np.ndarray:
    """Boolean: does either insertion of each fragment fall inside an interval?

    Parameters
    ----------
    frag_starts
        Fragment starts: the left insertions.
    frag_ends
        Fragment ends (exclusive): the right insertion is at ``end - 1``.
    starts
        Interval starts, sorted and non-overlapping as for :func:`interval_index`.
    ends
        Interval ends (exclusive), one per start.

    Returns
    -------
    numpy.ndarray
        bool, one per fragment: True when its left or right insertion lies in one of the intervals.
    """
    left, right = insertion_interval_index(frag_starts, frag_ends, starts, ends=ends)
    return (left >= 0) | (right >= 0)
