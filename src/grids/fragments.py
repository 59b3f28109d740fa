"""Streaming, validating reader for 10x scATAC fragments files.

A fragments file has one line per unique fragment: ``chrom, start, end, barcode[, count]``
(0-based, half-open), optionally preceded by ``#`` header lines, plain or gzip/bgzip. Files
come sorted by coordinate (Cell Ranger, tabix-ready) or grouped by barcode and sorted by
position within each barcode (some pipelines); both are read. Anything else is reported as
unsorted, with the file and line.

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
    """Open a plain or gzip/bgzip text file for reading."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


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


class _SortState:
    """Tracks whether the file is coordinate-sorted or barcode-grouped, across chunks."""

    def __init__(self) -> None:
        self.coordinate_ok = True
        self.barcode_ok = True
        self.last_coordinate: tuple[int, int] | None = None
        self.last_barcode: str | None = None
        self.last_in_barcode: tuple[int, int] | None = None
        self.finished_barcodes: set[str] = set()
        self.first_violation: dict[str, tuple[int, str]] = {}

    def check(self, chunk: FragmentChunk, path: Path) -> None:
        n = len(chunk)
        rank, start = chunk.chrom_rank, chunk.start
        if self.coordinate_ok:
            prev_rank = np.concatenate([[self.last_coordinate[0]] if self.last_coordinate else [rank[0]], rank[:-1]])
            prev_start = np.concatenate([[self.last_coordinate[1]] if self.last_coordinate else [start[0]], start[:-1]])
            bad = (rank < prev_rank) | ((rank == prev_rank) & (start < prev_start))
            if bad.any():
                self.coordinate_ok = False
                self.first_violation["coordinate"] = (chunk.first_line + int(np.argmax(bad)), "coordinate")
        if self.barcode_ok:
            codes = chunk.barcode_code
            change = np.ones(n, dtype=bool)
            change[1:] = codes[1:] != codes[:-1]  # categories are unique within a chunk
            first_name, last_name = chunk.barcodes[codes[0]], chunk.barcodes[codes[-1]]
            continues = self.last_barcode is not None and first_name == self.last_barcode
            if self.last_barcode is not None and not continues:
                self.finished_barcodes.add(self.last_barcode)
                change[0] = True
            elif continues:
                change[0] = False
            starts = np.flatnonzero(change)
            block_names = chunk.barcodes[codes[starts]]
            reopened = [i for i, b in zip(starts, block_names) if b in self.finished_barcodes]
            seen = pd.Index(block_names)
            if reopened or seen.has_duplicates:
                dup_pos = starts[seen.duplicated()] if seen.has_duplicates else np.array([], int)
                first = min([*reopened, *dup_pos.tolist()])
                self.barcode_ok = False
                self.first_violation["barcode"] = (chunk.first_line + int(first), "barcode")
            else:
                key = rank.astype(np.int64) * (1 << 40) + start
                prev = np.concatenate([[0], key[:-1]])
                if continues and self.last_in_barcode is not None:
                    prev[0] = self.last_in_barcode[0] * (1 << 40) + self.last_in_barcode[1]
                bad = (key < prev) & ~change
                if bad.any():
                    self.barcode_ok = False
                    self.first_violation["barcode"] = (chunk.first_line + int(np.argmax(bad)), "barcode")
                self.finished_barcodes.update(block_names[:-1].tolist())
                self.last_barcode = str(last_name)
                self.last_in_barcode = (int(rank[-1]), int(start[-1]))
        self.last_coordinate = (int(rank[-1]), int(start[-1]))
        if not (self.coordinate_ok or self.barcode_ok):
            line = max(v[0] for v in self.first_violation.values())
            raise FragmentsError(
                f"{path}: line {line}: fragments are neither sorted by coordinate nor grouped by barcode "
                "(sorted by position within each barcode). Sort the file, e.g. "
                "`sort -k1,1 -k2,2n -k3,3n` then bgzip and tabix -p bed."
            )

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
    ``skip_unknown_chroms``, which drops them with one log line) and unsorted files.
    """
    path = Path(path)
    if not path.exists():
        raise FragmentsError(f"{path}: fragments file not found")
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
    reader = pd.read_csv(
        path, sep="\t", header=None, names=names, comment="#", chunksize=chunk_size, engine="c",
        dtype={k: v for k, v in dtypes.items() if k in names}, na_filter=False,
    )
    state = _SortState()
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
    barcode: np.ndarray, start: np.ndarray, end: np.ndarray, reads: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort one chromosome's fragments by (start, end, barcode) and merge identical ones.

    ``barcode`` holds sortable codes (ranks of the barcode strings keep 10x's order); the
    merged fragment's read count is the sum of the merged counts.
    """
    order = np.lexsort((barcode, end, start))
    barcode, start, end, reads = barcode[order], start[order], end[order], reads[order]
    new = np.ones(len(barcode), dtype=bool)
    new[1:] = (start[1:] != start[:-1]) | (end[1:] != end[:-1]) | (barcode[1:] != barcode[:-1])
    first = np.flatnonzero(new)
    merged = np.add.reduceat(reads, first) if len(first) else reads[:0]
    return barcode[first], start[first], end[first], merged
