"""Per-barcode scATAC QC in one streaming pass: fragments, TSS enrichment, nucleosome signal.

Definitions (as ArchR and Signac use them):

- ``n_fragments``: unique fragments (lines) of the barcode.
- ``tss_enrichment``: Tn5 insertions within +-50 bp of a TSS per bp, over insertions in the
  flanks 1,900-2,000 bp away per bp (pseudocount 1 on the flank count).
- ``nucleosome_signal``: mono-nucleosome fragments (147-294 bp) over nucleosome-free ones
  (< 147 bp), pseudocount 1.
- FRiP needs the peak set; the matrix builder adds it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..fragments import iter_fragments

__all__ = ["BarcodeQC", "barcode_qc", "call_cells", "TSS_CENTER", "TSS_FLANK"]

log = logging.getLogger(__name__)

TSS_CENTER = 50
TSS_FLANK = (1900, 2000)
PROFILE_HALF_WIDTH = 2000
MAX_FRAGMENT_LENGTH = 1000


@dataclass
class BarcodeQC:
    """Per-barcode table plus aggregate profiles over the called cells."""

    table: pd.DataFrame  # barcode, n_fragments, n_reads, tss_enrichment, nucleosome_signal, ...
    fragment_lengths: np.ndarray  # histogram 0..MAX_FRAGMENT_LENGTH over all fragments
    tss_profile: np.ndarray  # insertions by signed distance -2000..2000 bp from the nearest TSS


class _BarcodeRegistry:
    """Grows a global barcode list as chunks arrive, mapping chunk categories to global ids."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def ids(self, names: np.ndarray) -> np.ndarray:
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            out[i] = self.index.setdefault(name, len(self.index))
        return out

    @property
    def names(self) -> np.ndarray:
        return np.array(list(self.index), dtype=object)


def _grow(array: np.ndarray, size: int) -> np.ndarray:
    if size <= len(array):
        return array
    out = np.zeros(max(size, 2 * len(array)), dtype=array.dtype)
    out[: len(array)] = array
    return out


def _signed_tss_distance(positions: np.ndarray, tss_pos: np.ndarray, tss_minus: np.ndarray) -> np.ndarray:
    """Distance from each position to its nearest TSS, negative upstream (strand-aware)."""
    right = np.clip(np.searchsorted(tss_pos, positions), 0, len(tss_pos) - 1)
    left = np.clip(right - 1, 0, len(tss_pos) - 1)
    use_left = np.abs(positions - tss_pos[left]) < np.abs(positions - tss_pos[right])
    nearest = np.where(use_left, left, right)
    distance = positions - tss_pos[nearest]
    return np.where(tss_minus[nearest], -distance, distance)


def barcode_qc(
    fragments: str | Path,
    chrom_sizes: Mapping[str, int],
    tss: pd.DataFrame,
    *,
    chunk_size: int = 2_000_000,
    skip_unknown_chroms: bool = False,
) -> BarcodeQC:
    """Stream a fragments file once and compute QC for every barcode in it.

    Parameters
    ----------
    fragments
        Fragments file, read with :func:`grids.fragments.iter_fragments`.
    chrom_sizes
        Chromosome -> length, as for :func:`grids.fragments.iter_fragments`.
    tss
        ``chrom``, ``position`` (0-based) and ``strand`` of each TSS (:func:`grids.genome.read_tss`);
        every chrom must be in ``chrom_sizes``. Insertions count towards the nearest TSS on their
        chromosome; chromosomes without a TSS add nothing to the TSS counts.
    chunk_size
        Fragment lines read per chunk.
    skip_unknown_chroms
        Drop fragments on chromosomes absent from ``chrom_sizes`` instead of raising.

    Returns
    -------
    BarcodeQC
        ``table``: one row per barcode, in order of first appearance in the file, index 0..n-1, with
        ``barcode``, ``n_fragments`` (lines), ``n_reads`` (sum of the count column),
        ``tss_enrichment``, ``nucleosome_signal`` (as defined in the module docstring; mono-nucleosome
        fragments are 147 to 293 bp) and ``tss_insertions`` (insertions within 50 bp of a TSS).
        ``fragment_lengths``: fragments by length 0..1000 bp (longer ones in the last bin).
        ``tss_profile``: insertions by signed, strand-aware distance -2000..2000 bp to the nearest
        TSS (index = distance + 2000; negative upstream). Both profiles sum over all barcodes.

    Raises
    ------
    ValueError
        When a chrom of ``tss`` is not in ``chrom_sizes``.
    grids.fragments.FragmentsError
        When the fragments file is missing, malformed or unsorted.
    """
    chroms = list(chrom_sizes)
    tss_by_rank = {}
    for chrom, block in tss.groupby("chrom", sort=False):
        order = np.argsort(block["position"].to_numpy(), kind="stable")
        tss_by_rank[chroms.index(chrom)] = (block["position"].to_numpy()[order],
                                            (block["strand"].to_numpy() == "-")[order])
    registry = _BarcodeRegistry()
    counters = {name: np.zeros(1024, np.int64) for name in ("n_fragments", "n_reads", "nfr", "mono", "center", "flank")}
    lengths = np.zeros(MAX_FRAGMENT_LENGTH + 1, np.int64)
    profile = np.zeros(2 * PROFILE_HALF_WIDTH + 1, np.int64)
    for chunk in iter_fragments(fragments, chrom_sizes, chunk_size=chunk_size, skip_unknown_chroms=skip_unknown_chroms):
        bc = registry.ids(chunk.barcodes)[chunk.barcode_code]
        size = len(registry.index)
        for name in counters:
            counters[name] = _grow(counters[name], size)
        length = chunk.end - chunk.start
        counters["n_fragments"][:size] += np.bincount(bc, minlength=size)
        counters["n_reads"][:size] += np.bincount(bc, weights=chunk.count, minlength=size).astype(np.int64)
        counters["nfr"][:size] += np.bincount(bc[length < 147], minlength=size)
        counters["mono"][:size] += np.bincount(bc[(length >= 147) & (length < 294)], minlength=size)
        lengths += np.bincount(np.minimum(length, MAX_FRAGMENT_LENGTH), minlength=MAX_FRAGMENT_LENGTH + 1)
        for rank in np.unique(chunk.chrom_rank):
            if rank not in tss_by_rank:
                continue
            rows = np.flatnonzero(chunk.chrom_rank == rank)
            positions = np.concatenate([chunk.start[rows], chunk.end[rows] - 1])
            owner = np.concatenate([bc[rows], bc[rows]])
            distance = _signed_tss_distance(positions, *tss_by_rank[rank])
            near = np.abs(distance) <= PROFILE_HALF_WIDTH
            profile += np.bincount(distance[near] + PROFILE_HALF_WIDTH, minlength=len(profile))
            absolute = np.abs(distance)
            counters["center"][:size] += np.bincount(owner[absolute <= TSS_CENTER], minlength=size)
            flank = (absolute >= TSS_FLANK[0]) & (absolute <= TSS_FLANK[1])
            counters["flank"][:size] += np.bincount(owner[flank], minlength=size)
    n = len(registry.index)
    c = {name: values[:n] for name, values in counters.items()}
    center_width, flank_width = 2 * TSS_CENTER + 1, 2 * (TSS_FLANK[1] - TSS_FLANK[0] + 1)
    table = pd.DataFrame(
        {
            "barcode": registry.names,
            "n_fragments": c["n_fragments"],
            "n_reads": c["n_reads"],
            "tss_enrichment": (c["center"] / center_width) / ((c["flank"] + 1) / flank_width),
            "nucleosome_signal": (c["mono"] + 1) / (c["nfr"] + 1),
            "tss_insertions": c["center"],
        }
    )
    log.info("%s: %d barcodes, %d fragments", fragments, n, int(c["n_fragments"].sum()))
    return BarcodeQC(table=table, fragment_lengths=lengths, tss_profile=profile)


def call_cells(
    table: pd.DataFrame,
    *,
    rna_barcodes: list[str] | None,
    min_fragments: int,
    min_tss_enrichment: float,
    source: str,
) -> pd.Series:
    """Boolean cell calls per barcode.

    With RNA barcodes (paired multiome), a cell is an RNA cell present in the fragments; the
    thresholds are for ATAC-only calling and are reported, not applied, here. Without them, a
    cell has at least ``min_fragments`` unique fragments and TSS enrichment >= the minimum.

    Parameters
    ----------
    table
        :attr:`BarcodeQC.table`: ``barcode``, ``n_fragments`` and ``tss_enrichment`` are read.
    rna_barcodes
        The sample's RNA cell barcodes; None for ATAC-only calling.
    min_fragments
        Least unique fragments of a cell (ATAC-only calling).
    min_tss_enrichment
        Least TSS enrichment of a cell (ATAC-only calling).
    source
        What the data came from; named in the errors.

    Returns
    -------
    pandas.Series
        bool, on the index of ``table``: True for the barcodes called cells.

    Raises
    ------
    ValueError
        When no barcode is called: no fragment barcode is an RNA barcode, or none passes both
        thresholds.
    """
    if rna_barcodes is not None:
        is_cell = table["barcode"].isin(set(rna_barcodes))
        if not is_cell.any():
            raise ValueError(
                f"{source}: no fragment barcode matches an RNA cell barcode. Fragments: "
                f"{', '.join(map(str, table['barcode'].head(3)))}; RNA: {', '.join(rna_barcodes[:3])}. "
                "Check that both come from the same sample (and the same '-1' suffix convention)."
            )
        return is_cell
    is_cell = (table["n_fragments"] >= min_fragments) & (table["tss_enrichment"] >= min_tss_enrichment)
    if not is_cell.any():
        raise ValueError(f"{source}: no barcode has >= {min_fragments} fragments and TSS enrichment "
                         f">= {min_tss_enrichment}; lower atac.min_fragments / atac.min_tss_enrichment")
    return is_cell
