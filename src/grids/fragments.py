"""Streaming, validating reader for 10x scATAC fragments files.

A fragments file has one line per unique fragment: ``chrom, start, end, barcode[, count]``
(0-based, half-open), optionally preceded by ``#`` header lines, plain or gzip/bgzip. Files
come sorted by coordinate (Cell Ranger, tabix-ready; chromosomes in any order, e.g. the
lexical order of ``sort -k1,1 -k2,2n``) or grouped by barcode and sorted by position within
each barcode (some pipelines); both are read. Anything else is reported as unsorted, with the
file and line.

The reader never holds the file in memory: :func:`iter_fragments` yields chunks parsed by
pandas' C parser with categorical chromosome and barcode columns, so per-chunk lookups
touch only the few distinct values.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .io import check_contig_naming, gzip_errors, is_gzip

__all__ = ["FragmentsError", "FragmentChunk", "iter_fragments", "merge_duplicate_fragments", "open_text"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 2_000_000
_COLUMNS = ["chrom", "start", "end", "barcode", "count"]


class FragmentsError(ValueError):
    """A fragments file is malformed, unsorted or inconsistent with the genome."""


@dataclass
class FragmentChunk:
    """One block of fragments.

    ``chrom_rank`` indexes the chrom-sizes order; ``barcode_code`` indexes ``barcodes`` (the
    chunk's distinct barcodes). ``first_line`` is the file line number of the first row.
    """

    chrom_rank: np.ndarray
    start: np.ndarray
    end: np.ndarray
    barcode_code: np.ndarray
    barcodes: np.ndarray
    count: np.ndarray
    first_line: int

    def __len__(self) -> int:
        return len(self.start)


def open_text(path: str | Path):
    """Open a plain or gzip/bgzip text file for reading (by content: ``.bgz`` names exist too).

    Parameters
    ----------
    path
        The file; gzip when it starts with the gzip magic bytes (:func:`grids.io.is_gzip`), whatever
        its name.

    Returns
    -------
    typing.TextIO
        A text-mode handle (``gzip.open(path, "rt")`` or ``open(path)``), to be closed by the caller
        (it is a context manager).
    """
    return gzip.open(path, "rt") if is_gzip(path) else open(path)


def _header_lines(path: Path) -> tuple[int, int]:
    """Number of leading '#' lines and of columns in the first record."""
    n_header = 0
    with open_text(path) as handle:
        for line in handle:
            if line.startswith("#"):
                n_header += 1
                continue
            if not line.strip():
                raise FragmentsError(f"{path}: line {n_header + 1}: empty line")
            return n_header, len(line.rstrip("\n").split("\t"))
    raise FragmentsError(f"{path}: no fragments (the file holds only header lines or nothing)")


def _locate_bad_line(path: Path, n_columns: int, chrom_sizes: Mapping[str, int]) -> str:
    """Slow path after a parse failure: find the first malformed line and say what is wrong."""
    with open_text(path) as handle:
        for lineno, line in enumerate(handle, 1):
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            problem = None
            if len(fields) != n_columns:
                problem = f"expected {n_columns} tab-separated columns, found {len(fields)}"
            elif not (fields[1].isdigit() and fields[2].isdigit()):
                problem = "start and end must be non-negative integers"
            elif n_columns == 5 and not fields[4].isdigit():
                problem = "the count column must be a positive integer"
            if problem:
                return f"line {lineno}: {problem}: {line.rstrip()[:120]!r}"
    return "could not locate the malformed line"


def _shifted(values: np.ndarray, first: int) -> np.ndarray:
    """``values`` moved one row down, ``first`` in front: each row's predecessor."""
    out = np.empty_like(values)
    out[0] = first
    out[1:] = values[:-1]
    return out


def _reopened(blocks: np.ndarray, done: set) -> np.ndarray:
    """True for each block whose label already had a block: earlier in ``blocks`` or in ``done``."""
    mask = pd.Index(blocks).duplicated()
    if done:
        mask |= np.fromiter((b in done for b in blocks), dtype=bool, count=len(blocks))
    return mask


class _SortState:
    """Tracks, across chunks, whether the file is in coordinate order or grouped by barcode.

    Coordinate order: each chromosome forms one contiguous block with starts ascending in it.
    The blocks may come in any order: chrom-sizes order (Cell Ranger), lexical order
    (``sort -k1,1 -k2,2n``: chr1, chr10, chr2, ...) or another; every consumer works per
    chromosome. Barcode grouping: each barcode forms one block, in coordinate order within.
    """

    def __init__(self, chroms: list[str]) -> None:
        self.chroms = chroms
        self.coordinate_ok = True
        self.barcode_ok = True
        self.last_row: tuple[int, int] | None = None  # (rank, start) of the previous chunk's last row
        self.done_chroms: set[int] = set()  # chromosome blocks already closed
        self.last_barcode: str | None = None
        self.done_barcodes: set[str] = set()
        self.barcode_chroms: set[int] = set()  # chromosome blocks closed within the open barcode
        self.first_violation: dict[str, tuple[int, str]] = {}

    @staticmethod
    def _chrom_blocks(start: np.ndarray, prev_start: np.ndarray, new_block: np.ndarray, label: np.ndarray,
                      open_label: int | None, done: set) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows that reopen a closed chromosome block, rows whose start goes backwards, and the
        block labels in order (the open one from the previous chunk first, when there is one)."""
        backwards = ~new_block & (start < prev_start)
        opened = np.flatnonzero(new_block)
        blocks = np.concatenate([[open_label] if open_label is not None else [], label[opened]]).astype(np.int64)
        reopened = _reopened(blocks, done)[len(blocks) - len(opened):]
        return opened[reopened], backwards, blocks

    def _violation(self, order: str, line: int, reason: str) -> None:
        setattr(self, f"{order}_ok", False)
        self.first_violation[order] = (line, reason)

    def check(self, chunk: FragmentChunk, path: Path) -> None:
        rank, start, first_line = chunk.chrom_rank, chunk.start, chunk.first_line
        prev_rank = _shifted(rank, self.last_row[0] if self.last_row else -1)
        prev_start = _shifted(start, self.last_row[1] if self.last_row else 0)
        if self.coordinate_ok:
            reopened, backwards, blocks = self._chrom_blocks(
                start, prev_start, rank != prev_rank, rank, self.last_row[0] if self.last_row else None,
                self.done_chroms)
            if len(reopened) or backwards.any():
                row = min([*reopened[:1], *np.flatnonzero(backwards)[:1]])
                name = self.chroms[rank[row]]
                if len(reopened) and row == reopened[0]:
                    reason = (f"chromosome {name!r} appears again after {self.chroms[prev_rank[row]]!r}: "
                              "its fragments are in two separate blocks")
                else:
                    reason = f"{name}:{start[row]} follows {name}:{prev_start[row]} (starts must ascend)"
                self._violation("coordinate", first_line + int(row), reason)
            else:
                self.done_chroms.update(blocks[:-1].tolist())
        if self.barcode_ok:
            self._check_barcodes(chunk, prev_rank, prev_start)
        self.last_row = (int(rank[-1]), int(start[-1]))
        if not (self.coordinate_ok or self.barcode_ok):
            (c_line, c_reason), (b_line, b_reason) = self.first_violation["coordinate"], self.first_violation["barcode"]
            raise FragmentsError(
                f"{path}: line {max(c_line, b_line)}: fragments are neither sorted by coordinate nor grouped by "
                f"barcode (sorted by position within each barcode). By coordinate, line {c_line}: {c_reason}; "
                f"by barcode, line {b_line}: {b_reason}. Sort the file, e.g. `sort -k1,1 -k2,2n -k3,3n` then "
                "bgzip and tabix -p bed."
            )

    def _check_barcodes(self, chunk: FragmentChunk, prev_rank: np.ndarray, prev_start: np.ndarray) -> None:
        codes, names, rank = chunk.barcode_code, chunk.barcodes, chunk.chrom_rank
        continues = self.last_barcode is not None and names[codes[0]] == self.last_barcode
        new_barcode = codes != _shifted(codes, -1)  # categories are unique within a chunk
        new_barcode[0] = not continues
        opened = np.flatnonzero(new_barcode)
        blocks = names[codes[opened]]
        if self.last_barcode is not None:
            blocks = np.concatenate([np.array([self.last_barcode], dtype=object), blocks])
        reopened = opened[_reopened(blocks, self.done_barcodes)[len(blocks) - len(opened):]]
        # Within a barcode, chromosome blocks are labelled (barcode block, rank); block 0 is the
        # barcode still open from the previous chunk, whose closed chromosomes are remembered.
        n_ranks = max(len(self.chroms), 1)
        block_id = np.cumsum(new_barcode)
        label = block_id * n_ranks + rank
        chrom_reopened, backwards, chrom_blocks = self._chrom_blocks(
            chunk.start, prev_start, new_barcode | (rank != prev_rank), label,
            int(prev_rank[0]) if continues else None, self.barcode_chroms if continues else set())
        bad = [*reopened[:1], *chrom_reopened[:1], *np.flatnonzero(backwards)[:1]]
        if bad:
            row = min(bad)
            barcode = names[codes[row]]
            reason = (f"barcode {barcode!r} appears in two separate blocks" if len(reopened) and row == reopened[0]
                      else f"fragments of barcode {barcode!r} are not in coordinate order")
            self._violation("barcode", chunk.first_line + int(row), reason)
            return
        self.done_barcodes.update(blocks[:-1].tolist())
        self.last_barcode = str(names[codes[-1]])
        open_block = chrom_blocks[:-1][chrom_blocks[:-1] // n_ranks == block_id[-1]] % n_ranks
        self.barcode_chroms = set(open_block.tolist()) | (self.barcode_chroms if block_id[-1] == 0 else set())

    @property
    def order(self) -> str:
        return "coordinate" if self.coordinate_ok else "barcode"


def iter_fragments(
    path: str | Path,
    chrom_sizes: Mapping[str, int],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    skip_unknown_chroms: bool = False,
) -> Iterator[FragmentChunk]:
    """Yield validated chunks of a fragments file.

    Raises :class:`FragmentsError` naming the file and line for malformed lines, end <= start,
    coordinates past the chromosome end, chromosomes absent from ``chrom_sizes`` (unless
    ``skip_unknown_chroms``, which drops them with one log line; never those that differ from a
    chrom-sizes name only in the ``chr`` prefix, a naming mismatch), unsorted files and truncated
    or corrupt gzip data (raised after the chunks before it were yielded, so consumers that
    write must do so atomically).

    Parameters
    ----------
    path
        Fragments file (plain, gzip or bgzip; 4 or 5 tab-separated columns, ``#`` header lines
        allowed), sorted by coordinate or grouped by barcode (see the module docstring).
    chrom_sizes
        Chromosome -> length; its order defines ``chrom_rank``. Its ``source`` attribute, when it has
        one (:class:`grids.io.ChromSizes`), names it in errors.
    chunk_size
        Lines parsed per chunk; a chunk holds fewer rows once fragments on skipped chromosomes are
        dropped.
    skip_unknown_chroms
        Drop fragments on chromosomes absent from ``chrom_sizes`` instead of raising.

    Yields
    ------
    FragmentChunk
        The fragments in file order, chunk by chunk: ``chrom_rank`` (index into ``chrom_sizes``),
        ``start``, ``end`` (int64), ``barcode_code`` indexing the chunk's distinct ``barcodes``,
        ``count`` (1 for every fragment of a 4-column file) and ``first_line``. A chunk left with no
        fragment after dropping unknown chromosomes is not yielded.

    Raises
    ------
    FragmentsError
        As above; also when the file does not exist, holds no fragment, its first record is an empty
        line or has other than 4 or 5 columns, or a count is below 1. Being a generator, it raises
        on iteration, not when called.
    """
    path = Path(path)
    if not path.exists():
        raise FragmentsError(f"{path}: fragments file not found")
    with gzip_errors(path, FragmentsError):
        yield from _read_chunks(path, chrom_sizes, chunk_size, skip_unknown_chroms)


def _read_chunks(
    path: Path, chrom_sizes: Mapping[str, int], chunk_size: int, skip_unknown_chroms: bool
) -> Iterator[FragmentChunk]:
    """The body of :func:`iter_fragments`, which turns its gzip errors into FragmentsError."""
    n_header, n_columns = _header_lines(path)
    if n_columns not in (4, 5):
        raise FragmentsError(
            f"{path}: line {n_header + 1}: expected 5 columns (chrom, start, end, barcode, count) "
            f"or 4 without count, found {n_columns}"
        )
    names = _COLUMNS[:n_columns]
    dtypes = {"chrom": "category", "start": np.int64, "end": np.int64, "barcode": "category", "count": np.int64}
    chrom_rank = {c: i for i, c in enumerate(chrom_sizes)}
    sizes = np.array(list(chrom_sizes.values()), dtype=np.int64)
    # Compression from the content, not the name: pandas would read a ".bgz" file as raw bytes.
    reader = pd.read_csv(
        path, sep="\t", header=None, names=names, comment="#", chunksize=chunk_size, engine="c",
        dtype={k: v for k, v in dtypes.items() if k in names}, na_filter=False,
        compression="gzip" if is_gzip(path) else None,
    )
    state = _SortState(list(chrom_sizes))
    unknown: set[str] = set()
    line = n_header + 1
    try:
        for frame in reader:
            first_line, line = line, line + len(frame)
            chroms = frame["chrom"].cat.categories
            rank_of_category = np.array([chrom_rank.get(str(c), -1) for c in chroms], dtype=np.int64)
            rank = rank_of_category[frame["chrom"].cat.codes.to_numpy()]
            start = frame["start"].to_numpy()
            end = frame["end"].to_numpy()
            count = frame["count"].to_numpy() if n_columns == 5 else np.ones(len(frame), np.int64)
            missing = rank < 0
            if missing.any():
                bad = sorted({str(c) for c, r in zip(chroms, rank_of_category) if r < 0})
                # Always an error: skipping would drop every fragment of a renamed chromosome.
                check_contig_naming(bad, chrom_rank, source=path, error=FragmentsError,
                                    known_source=getattr(chrom_sizes, "source", "the chrom sizes"))
                if not skip_unknown_chroms:
                    row = int(np.argmax(missing))
                    raise FragmentsError(
                        f"{path}: line {first_line + row}: chromosome {bad[0]!r} is not in the chrom sizes "
                        f"({', '.join(list(chrom_sizes)[:5])}, ...). Check the genome build or set "
                        "atac.skip_unknown_chromosomes."
                    )
                new = set(bad) - unknown
                if new:
                    log.info("%s: skipping fragments on contigs absent from chrom sizes: %s", path, sorted(new))
                    unknown |= new
            problems = (end <= start) | (start < 0) | (count < 1)
            problems |= ~missing & (end > sizes[np.clip(rank, 0, None)])
            if problems.any():
                row = int(np.argmax(problems))
                what = ("end <= start" if end[row] <= start[row] else "count < 1" if count[row] < 1
                        else "negative start" if start[row] < 0 else "fragment extends past the chromosome end")
                raise FragmentsError(f"{path}: line {first_line + row}: {what}: "
                                     f"{frame.iloc[row].astype(str).str.cat(sep=chr(9))!r}")
            chunk = FragmentChunk(
                chrom_rank=rank, start=start, end=end,
                barcode_code=frame["barcode"].cat.codes.to_numpy().astype(np.int64),
                barcodes=frame["barcode"].cat.categories.to_numpy(dtype=object), count=count,
                first_line=first_line,
            )
            if missing.any():
                chunk = _subset(chunk, ~missing)
                if not len(chunk):
                    continue
            state.check(chunk, path)
            yield chunk
    except (ValueError, pd.errors.ParserError) as err:
        if isinstance(err, FragmentsError):
            raise
        raise FragmentsError(f"{path}: {_locate_bad_line(path, n_columns, chrom_sizes)}") from err
    log.info("%s: %d fragment lines read, sorted by %s", path, line - n_header - 1, state.order)


def _subset(chunk: FragmentChunk, keep: np.ndarray) -> FragmentChunk:
    return FragmentChunk(
        chrom_rank=chunk.chrom_rank[keep], start=chunk.start[keep], end=chunk.end[keep],
        barcode_code=chunk.barcode_code[keep], barcodes=chunk.barcodes, count=chunk.count[keep],
        first_line=chunk.first_line,
    )


def merge_duplicate_fragments(
    barcode: np.ndarray, start: np.ndarray, end: np.ndarray, *, reads: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort one chromosome's fragments by (start, end, barcode) and merge identical ones.

    ``barcode`` holds sortable codes (ranks of the barcode strings keep 10x's order); the
    merged fragment's read count is the sum of the merged counts.

    Parameters
    ----------
    barcode
        Barcode code of each fragment.
    start
        Start of each fragment.
    end
        End of each fragment.
    reads
        Read count of each fragment.

    Returns
    -------
    tuple of numpy.ndarray
        ``(barcode, start, end, reads)`` of the distinct fragments, sorted by start, then end, then
        barcode; ``reads`` summed over each fragment's copies. All four are empty for no input.
    """
    order = np.lexsort((barcode, end, start))
    barcode, start, end, reads = barcode[order], start[order], end[order], reads[order]
    new = np.ones(len(barcode), dtype=bool)
    new[1:] = (start[1:] != start[:-1]) | (end[1:] != end[:-1]) | (barcode[1:] != barcode[:-1])
    first = np.flatnonzero(new)
    merged = np.add.reduceat(reads, first) if len(first) else reads[:0]
    return barcode[first], start[first], end[first], merged
