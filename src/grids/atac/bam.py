"""Convert a coordinate-sorted paired-end scATAC BAM into a 10x fragments file.

Follows Cell Ranger ATAC / sinto: one fragment per properly paired read pair, Tn5-shifted
(+4 on the left, -5 on the right), so a fragment ``[start, end)`` is 0-based half-open with
its two insertions at ``start`` and ``end - 1`` (see :mod:`grids.intervals`). Identical
``(chrom, start, end, barcode)`` fragments are merged and the fifth column counts the read
pairs behind them (PCR/optical duplicates).

The BAM is read in one pass (no index needed; SAM works too) and only one chromosome's
fragments are held in memory at a time.
"""

from __future__ import annotations

import logging
import os
from array import array
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..fragments import merge_duplicate_fragments
from ..io import FragmentsWriter, _bgzf_eof_missing, check_contig_naming

__all__ = ["BamInputError", "bam_to_fragments"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

# Tn5 binds as a dimer and inserts with a 9 bp duplication: the cut sites are 4 bp in from
# the + strand read start and 5 bp in from the - strand read end.
TN5_SHIFT_LEFT = 4
TN5_SHIFT_RIGHT = 5
# How many usable reads (leftmost mates of usable pairs; for the paired-end check, mapped
# primary reads) are inspected before a BAM is declared to lack barcodes (or pairs).
CHECK_READS = 10_000

_PAIRED, _PROPER, _UNMAPPED, _MATE_UNMAPPED, _READ1 = 0x1, 0x2, 0x4, 0x8, 0x40
_NOT_PRIMARY = 0x100 | 0x200 | 0x800  # secondary, QC fail, supplementary
_PAIR_MASK = _PAIRED | _PROPER | _MATE_UNMAPPED


class BamInputError(ValueError):
    """The BAM cannot be converted (wrong format, unsorted, single-end, no barcodes...)."""


def bam_to_fragments(
    bam_path: PathLike,
    out_path: PathLike,
    *,
    barcode_tag: str = "CB",
    min_mapq: int = 30,
    chrom_sizes: dict[str, int] | None = None,
    sample_id: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Write the 10x fragments of a coordinate-sorted paired-end scATAC BAM.

    Parameters
    ----------
    bam_path
        Coordinate-sorted BAM (or SAM) with cell barcodes in ``barcode_tag``.
    out_path
        The bgzipped fragments file; its ``.tbi`` index is written next to it. Both
        appear only on success.
    barcode_tag
        Aux tag holding the cell barcode (``CB`` for Cell Ranger; ``CR`` is uncorrected).
    min_mapq
        Minimum MAPQ of the read (and of its mate, where the ``MQ`` tag records it).
    chrom_sizes
        Restrict the output to these contigs; lengths must agree with the BAM header.
        Output follows the BAM header's contig order either way.
    sample_id
        Written as the ``# id=`` header line; defaults to the BAM file name without ``.bam``.
    progress
        Show a progress bar over chromosomes.

    Returns
    -------
    pandas.DataFrame
        ``barcode``, ``n_fragments`` (distinct fragments, i.e. lines in the output), most
        fragments first.

    Raises
    ------
    BamInputError
        Not a BAM/SAM, not coordinate-sorted, single-end, no reads carrying
        ``barcode_tag``, or no usable read pairs at all.
    """
    import pysam

    bam_path = Path(bam_path)
    if not bam_path.exists():
        raise FileNotFoundError(f"{bam_path}: no such file")
    if _bgzf_eof_missing(bam_path):
        raise BamInputError(f"{bam_path}: the BAM is truncated (no BGZF end-of-file block); the copy, download "
                            "or the aligner writing it did not finish, make it again")
    try:
        bam = pysam.AlignmentFile(str(bam_path), "r")
    except (ValueError, OSError) as err:
        raise BamInputError(f"{bam_path}: not a BAM/SAM file ({err})") from err

    with bam:
        contigs = _contigs_to_write(bam, bam_path, chrom_sizes)
        if sample_id is None:
            sample_id = bam_path.name.removesuffix(".bam").removesuffix(".sam")
        header = [
            f"id={sample_id}",
            f"description=converted from {bam_path} by grids",
            "pipeline_name=grids",
            f"barcode_tag={barcode_tag}",
            f"min_mapq={min_mapq}",
        ]
        with FragmentsWriter(out_path, header=header) as writer:
            converter = _Converter(bam, bam_path, writer, barcode_tag, min_mapq)
            with tqdm(total=len(contigs), desc=f"{bam_path.name}: fragments", unit="chrom",
                      disable=not progress) as bar:
                converter.run(set(contigs), bar)
                bar.update(bar.total - bar.n)  # contigs without reads
            converter.final_checks()
    return converter.barcode_counts()


def _contigs_to_write(bam, bam_path: Path, chrom_sizes: dict[str, int] | None) -> list[str]:
    """Validate the header; the contigs to convert, in header order."""
    header = bam.header.to_dict()
    sort_order = header.get("HD", {}).get("SO")
    if sort_order not in (None, "coordinate", "unknown"):
        raise BamInputError(
            f"{bam_path}: header says SO:{sort_order}; fragments need a coordinate-sorted BAM "
            f"(run 'samtools sort {bam_path.name}')"
        )
    lengths = dict(zip(bam.references, bam.lengths))
    if not lengths:
        raise BamInputError(f"{bam_path}: the header has no @SQ lines (no reference contigs)")
    if chrom_sizes is None:
        return list(lengths)
    for chrom, size in chrom_sizes.items():
        if chrom in lengths and lengths[chrom] != size:
            raise BamInputError(
                f"{bam_path}: {chrom} is {lengths[chrom]} bp in the BAM header but {size} bp in "
                "chrom_sizes; was the BAM aligned to a different genome build?"
            )
    check_contig_naming(lengths, chrom_sizes, source=bam_path, error=BamInputError,
                        known_source=getattr(chrom_sizes, "source", "chrom_sizes"))
    skipped = [c for c in lengths if c not in chrom_sizes]
    if skipped:
        shown = ", ".join(skipped[:20]) + (f" and {len(skipped) - 20} more" if len(skipped) > 20 else "")
        log.info("%s: skipping %d contigs absent from chrom_sizes: %s", bam_path, len(skipped), shown)
    kept = [c for c in lengths if c in chrom_sizes]
    if not kept:
        raise BamInputError(
            f"{bam_path}: none of its contigs ({', '.join(list(lengths)[:5])}...) are in chrom_sizes "
            f"({', '.join(list(chrom_sizes)[:5])}...); chromosome naming differs (chr1 vs 1?)"
        )
    return kept


class _Converter:
    """One pass over the BAM; fragments of the current chromosome are buffered as arrays."""

    def __init__(self, bam, bam_path: Path, writer: FragmentsWriter, tag: str, min_mapq: int) -> None:
        self.bam, self.path, self.writer = bam, bam_path, writer
        self.tag, self.min_mapq = tag, min_mapq
        self.barcode_code: dict[str, int] = {}
        self.barcodes: list[str] = []
        self.fragments_per_code = np.zeros(0, dtype=np.int64)
        # Counters for the checks and the summary.
        self.n_reads = 0
        self.n_primary = 0  # mapped, primary, not QC-fail
        self.n_paired = 0
        self.n_usable = 0  # usable pairs (proper, MAPQ, one contig), counted at the leftmost mate
        self.n_tagged = 0
        self.n_pairs = 0  # read pairs turned into fragments (before merging duplicates)
        self.n_fragments = 0  # distinct fragments written
        self._reset_chrom()

    def _reset_chrom(self) -> None:
        self.pos = array("q")
        self.span = array("q")
        self.code = array("q")

    def run(self, wanted: set[str], bar: tqdm) -> None:
        """Read the whole BAM, writing each wanted chromosome when the next one starts."""
        tag, min_mapq, path = self.tag, self.min_mapq, self.path
        code_of, barcodes = self.barcode_code, self.barcodes
        references = self.bam.references
        tid, chrom, keep, prev_pos = -1, None, False, -1
        pos_buf, span_buf, code_buf = self.pos, self.span, self.code
        # Hot loop: counters are locals, copied back at the end (and on error).
        n_reads = n_primary = n_paired = n_usable = n_tagged = 0
        try:
            for read in self.bam.fetch(until_eof=True):
                n_reads += 1
                read_tid = read.reference_id
                if read_tid != tid:
                    if read_tid < 0:  # unplaced unmapped reads come last in a sorted BAM
                        break
                    if read_tid < tid:
                        self._unsorted(read, f"{references[read_tid]} after {chrom}")
                    self._flush(chrom, bar if keep else None)
                    pos_buf, span_buf, code_buf = self.pos, self.span, self.code
                    tid, chrom, keep, prev_pos = read_tid, references[read_tid], references[read_tid] in wanted, -1
                pos = read.reference_start
                if pos < prev_pos:
                    self._unsorted(read, f"{chrom}:{pos + 1} after {chrom}:{prev_pos + 1}")
                prev_pos = pos
                if not keep:
                    continue
                flag = read.flag
                if flag & (_UNMAPPED | _NOT_PRIMARY):
                    continue
                n_primary += 1
                if flag & _PAIRED:
                    n_paired += 1
                elif n_paired == 0 and n_primary >= CHECK_READS:
                    raise BamInputError(_single_end_message(path, n_primary))
                # One fragment per pair, from its leftmost mate (read 1 when both start together).
                mate_pos = read.next_reference_start
                if (flag & _PAIR_MASK) != (_PAIRED | _PROPER) or pos > mate_pos \
                        or (pos == mate_pos and not flag & _READ1) or read.next_reference_id != read_tid \
                        or read.mapping_quality < min_mapq or (read.has_tag("MQ") and read.get_tag("MQ") < min_mapq):
                    continue
                n_usable += 1
                try:
                    barcode = read.get_tag(tag)
                except KeyError:
                    if n_tagged == 0 and n_usable >= CHECK_READS:
                        raise BamInputError(_no_barcode_message(path, tag, n_usable)) from None
                    continue
                n_tagged += 1
                code = code_of.get(barcode)
                if code is None:
                    code = code_of[barcode] = len(barcodes)
                    barcodes.append(barcode if isinstance(barcode, str) else str(barcode))
                pos_buf.append(pos)
                span_buf.append(abs(read.template_length))
                code_buf.append(code)
            self._flush(chrom, bar if keep else None)
        except OSError as err:  # truncated or corrupt BGZF blocks
            raise BamInputError(f"{path}: cannot read the BAM after {n_reads} reads ({err})") from err
        finally:
            self.n_reads, self.n_primary, self.n_paired = n_reads, n_primary, n_paired
            self.n_usable, self.n_tagged = n_usable, n_tagged

    def _flush(self, chrom: str | None, bar: tqdm | None) -> None:
        """Shift, merge duplicates, sort and write the buffered chromosome."""
        if chrom is None or bar is None:
            return
        pos = np.frombuffer(self.pos, dtype=np.int64)
        span = np.frombuffer(self.span, dtype=np.int64)
        code = np.frombuffer(self.code, dtype=np.int64)
        starts = pos + TN5_SHIFT_LEFT
        ends = pos + span - TN5_SHIFT_RIGHT
        ok = ends > starts
        starts, ends, code = starts[ok], ends[ok], code[ok]
        self.n_pairs += len(starts)
        # Rank barcodes by their string so the merged output sorts by (start, end, barcode).
        used, inverse = np.unique(code, return_inverse=True)
        names = np.array([self.barcodes[c] for c in used], dtype=str)
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(used), dtype=np.int64)
        rank[order] = np.arange(len(used))
        ranked, starts, ends, counts = merge_duplicate_fragments(rank[inverse], starts, ends,
                                                                 reads=np.ones(len(starts), dtype=np.int64))
        self.writer.write(chrom, starts, ends, names[order][ranked], counts)
        self.n_fragments += len(starts)
        if len(self.fragments_per_code) < len(self.barcodes):
            grown = np.zeros(len(self.barcodes), dtype=np.int64)
            grown[: len(self.fragments_per_code)] = self.fragments_per_code
            self.fragments_per_code = grown
        np.add.at(self.fragments_per_code, used[order][ranked], 1)
        log.debug("%s: %s: %d read pairs -> %d fragments", self.path, chrom, int(ok.sum()), len(starts))
        bar.update(1)
        self._reset_chrom()

    def final_checks(self) -> None:
        """Raise for single-end data, missing barcodes or an empty result; log a summary."""
        if self.n_primary and not self.n_paired:
            raise BamInputError(_single_end_message(self.path, self.n_primary))
        if self.n_usable and not self.n_tagged:
            raise BamInputError(_no_barcode_message(self.path, self.tag, self.n_usable))
        if not self.n_fragments:
            raise BamInputError(
                f"{self.path}: no fragments: {self.n_reads} reads, {self.n_primary} mapped primary, "
                f"{self.n_usable} proper pairs with MAPQ >= {self.min_mapq}, {self.n_tagged} of them with a "
                f"{self.tag} tag"
            )
        untagged = self.n_usable - self.n_tagged
        if untagged:
            log.info("%s: %d of %d usable read pairs had no %s tag and were skipped",
                     self.path, untagged, self.n_usable, self.tag)
        log.info("%s: %d read pairs -> %d fragments (%.1f%% duplicates) from %d barcodes",
                 self.path, self.n_pairs, self.n_fragments,
                 100.0 * (1 - self.n_fragments / max(self.n_pairs, 1)), int((self.fragments_per_code > 0).sum()))

    def barcode_counts(self) -> pd.DataFrame:
        counts = np.zeros(len(self.barcodes), dtype=np.int64)
        counts[: len(self.fragments_per_code)] = self.fragments_per_code
        frame = pd.DataFrame({"barcode": self.barcodes, "n_fragments": counts})
        frame = frame[frame["n_fragments"] > 0]
        return frame.sort_values(["n_fragments", "barcode"], ascending=[False, True], ignore_index=True)

    def _unsorted(self, read, where: str) -> None:
        raise BamInputError(
            f"{self.path}: not coordinate-sorted: read {read.query_name} at {where}; "
            f"run 'samtools sort {self.path.name}'"
        )


def _single_end_message(path: Path, n_primary: int) -> str:
    return (f"{path}: no paired reads among the first {n_primary} mapped primary reads; "
            "fragments need paired-end scATAC data")


def _no_barcode_message(path: Path, tag: str, n_usable: int) -> str:
    return (f"{path}: no reads carry the {tag} tag among the first {n_usable} usable reads; "
            "set barcode_tag to the tag your aligner wrote (e.g. CB, CR, BC)")
