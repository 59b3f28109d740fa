"""Readers and writers for the file formats the workflow exchanges.

Every writer goes through :func:`atomic_output`: data is written to a temporary file
next to the target and renamed into place only when complete, so a crash never leaves
a partial output behind.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import logging
import os
import tempfile
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from glob import escape as glob_escape
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "ChromSizes",
    "atomic_output",
    "check_10x_h5",
    "check_contig_naming",
    "gzip_errors",
    "is_gzip",
    "prefixed",
    "write_tsv",
    "tsv_lines",
    "read_chrom_sizes",
    "write_chrom_sizes",
    "write_gtf",
    "write_10x_h5",
    "FragmentsWriter",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


@contextlib.contextmanager
def atomic_output(path: PathLike, *companions: str) -> Iterator[Path]:
    """Yield a temporary path; on success rename it (and ``path+suffix`` companions) to ``path``.

    ``companions`` are suffixes of files written next to the temporary file (e.g. ``".tbi"``)
    that must be moved together with it. On error every temporary file is removed.

    Parameters
    ----------
    path
        The output file. Its folder is created if missing; temporary files an interrupted earlier
        writer of ``path`` left beside it are deleted first.
    *companions
        Suffixes of the files the block writes beside the temporary file (``f"{tmp}{suffix}"``);
        each is renamed to ``f"{path}{suffix}"`` before ``path`` itself.

    Yields
    ------
    pathlib.Path
        An empty temporary file in the folder of ``path``, ending in the suffix of ``path`` (some
        writers, such as anndata and cooler, look at the extension). On success it and its companions
        get the permissions a plain ``open()`` would give; ``path`` is replaced only then.

    Raises
    ------
    FileNotFoundError
        When the block did not write one of the ``companions`` (``path`` is not replaced then).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    # Keep the real extension last: some writers (anndata, cooler) look at it.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        mode = 0o666 & ~_current_umask()
        for file in (tmp, *(Path(f"{tmp}{s}") for s in companions)):
            if file.exists():
                os.chmod(file, mode)
        for suffix in companions:
            os.replace(f"{tmp}{suffix}", f"{target}{suffix}")
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{s}") for s in companions)):
            leftover.unlink(missing_ok=True)


def _remove_stale_temporaries(target: Path) -> None:
    """Delete temporary files that a killed earlier writer of ``target`` left behind.

    SIGKILL (the OOM killer, a node failure, ``scancel`` past its grace period) skips the
    clean-up below. Snakemake never runs two jobs that write the same output, so any such
    file beside the target is a leftover, not a concurrent writer.
    """
    for leftover in target.parent.glob(f".{glob_escape(target.name)}.*.tmp{glob_escape(target.suffix)}*"):
        log.info("removing %s, left by an interrupted earlier run", leftover)
        leftover.unlink(missing_ok=True)


def is_gzip(path: PathLike) -> bool:
    """Whether the file starts with the gzip magic bytes (gzip and bgzip alike), whatever its name.

    Readers decide on the content, not the suffix: bgzipped files are also named ``.bgz``.

    Parameters
    ----------
    path
        File to look at; only its first two bytes are read.

    Returns
    -------
    bool
        True when the file starts with ``1f 8b``; False otherwise, also for a file shorter than two bytes.
    """
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


# The empty block bgzip (htslib) writes last; see the SAM specification, section 4.1.2.
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _bgzf_eof_missing(path: PathLike) -> bool:
    """Whether ``path`` is bgzip (BGZF) but lacks its end-of-file block.

    A bgzip file cut at a block boundary (a writer killed after a flush, a copy stopped
    there) is valid gzip, so gzip readers return the blocks before the cut without an error.
    """
    with open(path, "rb") as handle:
        head = handle.read(18)
        if len(head) < 18 or head[:4] != b"\x1f\x8b\x08\x04" or head[12:14] != b"BC":
            return False
        size = handle.seek(0, os.SEEK_END)
        if size < len(_BGZF_EOF):
            return True
        handle.seek(size - len(_BGZF_EOF))
        return handle.read() != _BGZF_EOF


@contextlib.contextmanager
def gzip_errors(path: PathLike, error: type[ValueError] = ValueError) -> Iterator[None]:
    """Re-raise a truncated or corrupt gzip stream read inside the block as ``error`` naming ``path``.

    Python's gzip reports a cut-off file as a bare ``EOFError: Compressed file ended before the
    end-of-stream marker was reached``, without the file name; the usual cause is an
    interrupted download or copy. A bgzip file without its end-of-file block is refused up
    front, as htslib flags it: it was cut at a block boundary, which gzip cannot notice.

    Parameters
    ----------
    path
        The file the block reads; named in the error message. The up-front bgzip check runs only
        when it is an existing file.
    error
        Exception type raised instead (a ``ValueError`` subclass, or ``ValueError`` itself).

    Yields
    ------
    None
        Control to the block that reads ``path``.

    Raises
    ------
    ValueError
        ``error``, on entry when ``path`` is bgzip without its end-of-file block, and when the block
        raises ``EOFError`` (truncated stream), ``gzip.BadGzipFile`` or ``zlib.error`` (corrupt data);
        the original exception is chained. Other exceptions pass through unchanged.
    """
    if Path(path).is_file() and _bgzf_eof_missing(path):
        raise error(f"{path}: the file is truncated (a bgzip file without its end-of-file block); the "
                    "download, copy or the program writing it did not finish, make it again")
    try:
        yield
    except EOFError as err:
        raise error(f"{path}: the file is truncated (its compressed data ends before the end-of-stream "
                    "marker); the download or copy was incomplete, fetch it again") from err
    except (gzip.BadGzipFile, zlib.error) as err:
        raise error(f"{path}: corrupt gzip data ({err}); fetch or copy the file again") from err


_10X_DATASETS = ("barcodes", "data", "indices", "indptr", "shape")


def check_10x_h5(path: PathLike) -> None:
    """Raise ValueError naming ``path`` unless it holds a Cell Ranger matrix: a ``matrix`` group
    (v3+) or genome groups (v2), each with barcodes, data, indices, indptr and shape.

    scanpy reports a missing group as a bare ``Exception: File is missing one or more required
    datasets``, without the file or what is missing.

    Parameters
    ----------
    path
        The ``.h5`` file to check; only its group and dataset names are read.

    Raises
    ------
    ValueError
        When the file cannot be opened as HDF5 (missing, truncated or another format), has neither a
        ``matrix`` group nor a v2 genome group (a group with ``genes``), or such a group lacks one of
        barcodes, data, indices, indptr and shape.
    """
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            keys = list(h5.keys())
            if "matrix" in h5:
                groups = {"matrix": h5["matrix"]}
            else:  # Cell Ranger v2: one group per genome
                groups = {k: v for k, v in h5.items() if isinstance(v, h5py.Group) and "genes" in v}
            missing = {k: [d for d in _10X_DATASETS if d not in g] for k, g in groups.items()}
    except OSError as err:
        raise ValueError(f"{path}: cannot read the HDF5 file ({err}); is it complete, and a 10x .h5?") from err
    if not groups:
        raise ValueError(f"{path}: not a 10x Cell Ranger matrix: no 'matrix' group (top-level keys: "
                         f"{', '.join(keys) or 'none'}); expected a filtered_feature_bc_matrix.h5")
    for group, absent in missing.items():
        if absent:
            raise ValueError(f"{path}: not a complete 10x Cell Ranger matrix: group '{group}' lacks "
                             f"{', '.join(absent)}; expected a filtered_feature_bc_matrix.h5")


def prefixed(sample: str, barcodes: Sequence[str]) -> list[str]:
    """Cell names as the workflow writes them: ``{sample}#{barcode}`` (ArchR style), so the
    same barcode in two samples names two cells. Both modalities name cells this way.

    Parameters
    ----------
    sample
        Sample name.
    barcodes
        Cell barcodes of that sample.

    Returns
    -------
    list of str
        ``f"{sample}#{barcode}"`` for each barcode, in the order of ``barcodes``.
    """
    return [f"{sample}#{b}" for b in barcodes]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_tsv(frame: pd.DataFrame, path: PathLike, *, header: bool = True, float_format: str | None = None) -> None:
    """Write a tab-separated table atomically (no index).

    Parameters
    ----------
    frame
        Table to write; its columns in order, its index left out.
    path
        Output file, written through :func:`atomic_output`.
    header
        Whether the first line names the columns.
    float_format
        Format string for floats (``DataFrame.to_csv``'s ``float_format``); pandas' own when None.
    """
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, header=header, float_format=float_format)


class ChromSizes(dict):
    """Chromosome -> length in file order, remembering the file (``source``) for error messages."""

    def __init__(self, *args, source: str = "the chrom sizes", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.source = str(source)


def _toggle_chr(name: str) -> str:
    return name[3:] if name.startswith("chr") else f"chr{name}"


def check_contig_naming(names: Iterable[str], known: Collection[str], *, source: PathLike, known_source: PathLike,
                        error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming both files when contigs of ``source`` missing from ``known`` are
    there with the ``chr`` prefix added or removed (UCSC ``chr1`` against Ensembl ``1``).

    No mapping between the two namings is applied anywhere: one naming must be used throughout.

    Parameters
    ----------
    names
        Contig names found in ``source`` (repeats allowed).
    known
        Contig names of the reference, e.g. the chrom sizes.
    source
        File ``names`` come from; named in the message.
    known_source
        File ``known`` comes from; named in the message.
    error
        Exception type to raise.

    Raises
    ------
    ValueError
        ``error``, for the first name (in the order of ``names``) that is not in ``known`` while the
        same name with ``chr`` added or removed is. Names missing from ``known`` in any other way
        raise nothing here.
    """
    known = set(known)
    clash = next(((n, _toggle_chr(n)) for n in dict.fromkeys(map(str, names))
                  if n not in known and _toggle_chr(n) in known), None)
    if clash:
        raise error(
            f"{source} and {known_source}: contig names differ in their 'chr' prefix (chromosome naming differs): "
            f"{source} has {clash[0]!r} where {known_source} has {clash[1]!r}. Use one naming in every input "
            "(fragments/BAM, GTF, chrom sizes, blacklist, peak matrix): take the annotation files of the "
            "same naming (UCSC/GENCODE 'chr1', Ensembl '1') or rename the contigs of one file"
        )


def read_chrom_sizes(path: PathLike) -> ChromSizes:
    """Read a UCSC ``chrom.sizes`` file into an ordered dict (naming the file), with clear errors.

    Parameters
    ----------
    path
        Tab-separated ``<chrom>`` and ``<length>`` lines; blank lines and lines starting with ``#``
        are skipped, fields after the second ignored.

    Returns
    -------
    ChromSizes
        Chromosome -> length (int) in file order, with ``source`` set to ``path``.

    Raises
    ------
    ValueError
        When a line has no second tab-separated field or its length is not a non-negative integer,
        when a chromosome is listed twice, or when the file lists no chromosome; the message names
        the file and, for a bad line, its number.
    """
    sizes = ChromSizes(source=path)
    with open(path) as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2 or not fields[1].isdigit():
                raise ValueError(f"{path}: line {lineno}: expected '<chrom>\\t<length>', got {line.strip()!r}")
            if fields[0] in sizes:
                raise ValueError(f"{path}: line {lineno}: chromosome {fields[0]!r} listed twice")
            sizes[fields[0]] = int(fields[1])
    if not sizes:
        raise ValueError(f"{path}: no chromosomes found")
    return sizes


def write_chrom_sizes(sizes: dict[str, int], path: PathLike) -> None:
    """Write a UCSC ``chrom.sizes`` file.

    Parameters
    ----------
    sizes
        Chromosome -> length; written in its order, one tab-separated chrom, length line each, no header.
    path
        Output file, written atomically.
    """
    write_tsv(pd.DataFrame({"chrom": list(sizes), "size": list(sizes.values())}), path, header=False)


def write_gtf(records: pd.DataFrame, path: PathLike, *, source: str = "grids") -> None:
    """Write GTF lines from a frame with chrom, feature, start (1-based), end, strand, attributes.

    Parameters
    ----------
    records
        One row per GTF line, written in its order: ``chrom``, ``feature``, ``start`` (1-based),
        ``end`` (inclusive), ``strand`` and ``attributes`` (the ready-made attribute field, such as
        ``gene_id "g1"; gene_name "A";``, written unquoted); score and frame are written as ``.``.
    path
        Output file, written atomically after two ``##`` header lines (description and format).
    source
        The GTF source column of every line.
    """
    out = pd.DataFrame(
        {
            "seqname": records["chrom"],
            "source": source,
            "feature": records["feature"],
            "start": records["start"],
            "end": records["end"],
            "score": ".",
            "strand": records["strand"],
            "frame": ".",
            "attribute": records["attributes"],
        }
    )
    with atomic_output(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write("##description: simulated annotation written by grids\n")
            handle.write("##format: gtf\n")
            out.to_csv(handle, sep="\t", index=False, header=False, quoting=3)


def write_10x_h5(
    counts: sp.spmatrix,
    barcodes: Sequence[str],
    feature_ids: Sequence[str],
    *,
    feature_names: Sequence[str],
    path: PathLike,
    genome: str,
    intervals: Sequence[str] | None = None,
    feature_type: str | Sequence[str] = "Gene Expression",
) -> None:
    """Write a Cell Ranger (v3+) ``filtered_feature_bc_matrix.h5``.

    ``counts`` is cells x features. ``feature_type`` is one type for all features or one per
    feature (Cell Ranger ARC: "Gene Expression" and "Peaks" in one file, each feature with its
    entry in ``intervals``). The file stores features x barcodes CSC as Cell Ranger
    does, and is readable by ``scanpy.read_10x_h5`` and ``pegasusio.read_input``.

    Parameters
    ----------
    counts
        Cells x features counts; stored as int32.
    barcodes
        Cell barcodes, one per row of ``counts``.
    feature_ids
        Feature ids (e.g. Ensembl ids or peak names), one per column of ``counts``.
    feature_names
        Feature names (e.g. gene symbols), one per column of ``counts``.
    path
        Output file, written atomically.
    genome
        Genome name stored for every feature.
    intervals
        One ``chrom:start-end`` per feature, stored as the ``interval`` feature tag; no such tag
        when None.
    feature_type
        The feature type of every feature, or one per feature.

    Raises
    ------
    ValueError
        When ``feature_type`` is a sequence whose length differs from the number of features (no
        file is written then).
    """
    import h5py

    matrix = sp.csr_matrix(counts, dtype=np.int32)  # cells x features == CSC of features x cells
    matrix.sort_indices()
    n_cells, n_features = matrix.shape

    def fixed(values: Sequence[str]) -> np.ndarray:
        return np.array([v.encode() for v in values], dtype=f"S{max(1, max((len(v) for v in values), default=1))}")

    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as h5:
            h5.attrs["filetype"] = "matrix"
            h5.attrs["version"] = 2
            group = h5.create_group("matrix")
            opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
            group.create_dataset("barcodes", data=fixed(list(barcodes)))
            group.create_dataset("data", data=matrix.data.astype(np.int32), chunks=True, **opts)
            group.create_dataset("indices", data=matrix.indices.astype(np.int64), chunks=True, **opts)
            group.create_dataset("indptr", data=matrix.indptr.astype(np.int64))
            group.create_dataset("shape", data=np.array([n_features, n_cells], dtype=np.int32))
            features = group.create_group("features")
            tag_keys = ["genome"] + (["interval"] if intervals is not None else [])
            features.create_dataset("_all_tag_keys", data=fixed(tag_keys))
            types = [feature_type] * n_features if isinstance(feature_type, str) else list(feature_type)
            if len(types) != n_features:
                raise ValueError(f"{len(types)} feature types for {n_features} features")
            features.create_dataset("feature_type", data=fixed(types))
            features.create_dataset("genome", data=fixed([genome] * n_features))
            features.create_dataset("id", data=fixed(list(feature_ids)))
            features.create_dataset("name", data=fixed(list(feature_names)))
            if intervals is not None:
                features.create_dataset("interval", data=fixed(list(intervals)))


def tsv_lines(*columns: Iterable) -> str:
    """Rows of tab-separated fields, one line each, from equally long columns (arrays, lists or
    iterators such as ``itertools.repeat``; the shortest ends the rows). Python's own
    formatting of plain ints and strs: about 3x faster than ``DataFrame.to_csv`` for the
    millions of fragment and insertion lines the ATAC stages write.

    Parameters
    ----------
    *columns
        The columns, in field order; numpy arrays are converted with ``tolist()`` first.

    Returns
    -------
    str
        One newline-terminated line per row, fields formatted with ``str.format``; empty when the
        shortest column is empty.
    """
    line = "\t".join(["{}"] * len(columns)) + "\n"
    return "".join(map(line.format, *(c.tolist() if isinstance(c, np.ndarray) else c for c in columns)))


class FragmentsWriter:
    """Stream 10x fragments (chrom, start, end, barcode, count) to a bgzipped, tabix-indexed file.

    Chunks must arrive in the final sort order (chromosome blocks in order, sorted by start
    within each). The file and its ``.tbi`` appear only when :meth:`close` succeeds.
    """

    def __init__(self, path: PathLike, header: Sequence[str] = ()) -> None:
        import pysam

        self.path = Path(path)
        self._atomic = atomic_output(self.path, ".tbi")
        self._tmp = self._atomic.__enter__()
        # BGZF at compression level 1: 5x faster to write than the default level, for a file a
        # third larger (readers, tabix and MACS are indifferent to the level).
        self._handle = pysam.BGZFile(str(self._tmp), "wb1")
        self._closed = False
        for line in header:
            self._handle.write(f"# {line}\n".encode())

    def write(self, chrom: str, starts: np.ndarray, ends: np.ndarray, barcodes: np.ndarray, counts: np.ndarray) -> None:
        """Append one sorted block of fragments; ``barcodes`` is an array of strings."""
        if len(starts) == 0:
            return
        self._handle.write(tsv_lines(itertools.repeat(chrom), starts, ends, barcodes, counts).encode())

    def close(self) -> None:
        """Finish the bgzip stream, build the tabix index and move both into place."""
        import pysam

        if self._closed:
            return
        self._closed = True
        self._handle.close()
        try:
            pysam.tabix_index(str(self._tmp), preset="bed", force=True, index=f"{self._tmp}.tbi")
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Discard everything written so far."""
        if not self._closed:
            self._closed = True
            self._handle.close()
            err = RuntimeError("aborted")
            with contextlib.suppress(RuntimeError):
                self._atomic.__exit__(RuntimeError, err, None)

    def __enter__(self) -> FragmentsWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_cell_barcodes(path: PathLike, *, modality: str = "rna") -> list[str]:
    """Cell barcodes of a count matrix without loading the counts.

    Accepts a 10x ``.h5`` (Cell Ranger v3+), ``.h5ad``, ``.h5mu`` (``modality``) or a 10x
    mtx folder (``barcodes.tsv[.gz]``).
    """
    import h5py

    path = Path(path)
    if path.is_dir():
        for name in ("barcodes.tsv.gz", "barcodes.tsv"):
            if (path / name).exists():
                with gzip_errors(path / name):
                    return pd.read_csv(path / name, header=None, sep="\t", dtype=str,
                                       compression="gzip" if is_gzip(path / name) else None)[0].tolist()
        raise ValueError(f"{path}: a 10x mtx folder needs barcodes.tsv(.gz)")
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    suffix = "".join(path.suffixes[-1:]).lower()
    try:
        with h5py.File(path, "r") as h5:
            if suffix == ".h5" and "matrix" in h5:
                return [b.decode() for b in h5["matrix/barcodes"][:]]
            group = h5[f"mod/{modality}/obs"] if suffix == ".h5mu" else h5["obs"]
            index = group.attrs.get("_index", "_index")
            values = group[index][:]
            return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: cannot read cell barcodes ({err}); "
                         "expected a 10x h5, h5ad, h5mu or mtx folder") from err
