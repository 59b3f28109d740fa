"""Selections as genome-browser tracks: BEDPE (IGV) and UCSC interact (IGV, UCSC custom track)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from ..io import atomic_output

__all__ = ["write_bedpe", "write_interact", "write_bedpe_links", "write_interact_links", "link_targets"]

TSS_WIDTH = 1  # the TSS end of an arc is one base


def link_targets(selection: pd.DataFrame, genes: Sequence[str], tss: Mapping[str, tuple[str, int]]) -> list:
    """For each selected peak, the gene it is drawn to: the only gene, or for a gene set the
    member whose TSS is nearest on the peak's chromosome (None when no member is there).

    Parameters
    ----------
    selection
        Selected peaks: chrom, start, end.
    genes
        The target's genes; those without a TSS in ``tss`` are ignored.
    tss
        Gene -> (chrom, position) of its TSS (:func:`grids.genome.tss_map`).

    Returns
    -------
    list
        One gene name (or None) per row of ``selection``, in its order; a target with one placed gene
        gets it for every peak, whatever the chromosome.
    """
    placed = [g for g in genes if g in tss]
    out = []
    for chrom, start, end in zip(selection["chrom"], selection["start"], selection["end"]):
        if len(placed) == 1:
            out.append(placed[0])
            continue
        middle = (int(start) + int(end)) // 2
        same = [g for g in placed if tss[g][0] == chrom]
        out.append(min(same, key=lambda g: abs(tss[g][1] - middle)) if same else None)
    return out


def _score(selection: pd.DataFrame) -> list[int]:
    """0-1000 by rank: the first peak 1000, the last at least 100."""
    n = max(len(selection), 1)
    return [int(1000 - 900 * i / max(n - 1, 1)) for i in range(len(selection))]


def write_bedpe(selection: pd.DataFrame, genes: Sequence[str], tss: Mapping[str, tuple[str, int]], *, path: str,
                name: str) -> None:
    """BEDPE: peak (chrom1, start1, end1) -> TSS (chrom2, start2, end2), name, score, strands.

    Parameters
    ----------
    selection
        One selection's peaks in rank order: chrom, start, end, rank.
    genes
        The target's genes (:func:`link_targets`); a peak without a gene to draw to is left out.
    tss
        Gene -> (chrom, position) of its TSS.
    path
        File to write.
    name
        Track name, written in the header comment.
    """
    write_bedpe_links([(selection, genes)], tss, path=path, name=name)


def write_bedpe_links(parts: Iterable[tuple[pd.DataFrame, Sequence[str]]], tss: Mapping[str, tuple[str, int]], *,
                      path: str, name: str) -> None:
    """:func:`write_bedpe` of several selections into one file, each ``(selection, genes)`` drawn to
    its own genes in turn (the genome-wide track of a cell type: one selection per gene).

    Parameters
    ----------
    parts
        (selection, genes) pairs, written in turn (see :func:`write_bedpe`).
    tss
        Gene -> (chrom, position) of its TSS.
    path
        File to write.
    name
        Track name, written in the header comment.
    """
    with atomic_output(path) as tmp, open(tmp, "w") as handle:
        handle.write(f"# {name}\n#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tname\tscore\tstrand1\tstrand2\n")
        for selection, genes in parts:
            for row, gene, score, chrom, position in _links(selection, genes, tss):
                handle.write(f"{row['chrom']}\t{int(row['start'])}\t{int(row['end'])}\t{chrom}\t{position}\t"
                             f"{position + TSS_WIDTH}\t{gene}:rank{int(row['rank'])}\t{score}\t.\t.\n")


def write_interact(selection: pd.DataFrame, genes: Sequence[str], tss: Mapping[str, tuple[str, int]], *, path: str,
                   name: str) -> None:
    """UCSC interact (bed5+13) with a track line, loadable as a custom track or in IGV.

    Parameters
    ----------
    selection
        One selection's peaks in rank order: chrom, start, end, rank, score, peak_index.
    genes
        The target's genes (:func:`link_targets`); a peak without a gene to draw to is left out.
    tss
        Gene -> (chrom, position) of its TSS.
    path
        File to write.
    name
        Track name and description in the track line.
    """
    write_interact_links([(selection, genes)], tss, path=path, name=name)


def write_interact_links(parts: Iterable[tuple[pd.DataFrame, Sequence[str]]], tss: Mapping[str, tuple[str, int]],
                         *, path: str, name: str) -> None:
    """:func:`write_interact` of several selections into one track, each ``(selection, genes)``
    drawn to its own genes in turn.

    Parameters
    ----------
    parts
        (selection, genes) pairs, written in turn (see :func:`write_interact`).
    tss
        Gene -> (chrom, position) of its TSS.
    path
        File to write.
    name
        Track name and description in the track line.
    """
    with atomic_output(path) as tmp, open(tmp, "w") as handle:
        handle.write(f'track type=interact name="{name}" description="{name}: selected peak -> target TSS" '
                     "interactDirectional=true maxHeightPixels=200:100:50 visibility=full\n")
        for selection, genes in parts:
            for row, gene, score, chrom, position in _links(selection, genes, tss):
                start, end = int(row["start"]), int(row["end"])
                if chrom == row["chrom"]:
                    span = (min(start, position), max(end, position + TSS_WIDTH))
                else:
                    span = (start, end)
                handle.write("\t".join(map(str, [
                    row["chrom"], span[0], span[1], f"{gene}:rank{int(row['rank'])}", score,
                    f"{float(row['score']):.6g}", "grids", "0", row["chrom"], start, end,
                    f"peak{int(row['peak_index'])}", ".", chrom, position, position + TSS_WIDTH, gene, "."])) + "\n")


def _links(selection: pd.DataFrame, genes: Sequence[str], tss: Mapping[str, tuple[str, int]]):
    """(row, gene, score, TSS chromosome, TSS position) for each selected peak that has a gene to be
    drawn to, in rank order; the score is by rank over the whole selection (:func:`_score`)."""
    targets = link_targets(selection, genes, tss)
    for (_, row), gene, score in zip(selection.iterrows(), targets, _score(selection)):
        if gene is not None:
            yield (row, gene, score, *tss[gene])
