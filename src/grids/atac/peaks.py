"""Peak calling with MACS on pseudobulk Tn5 insertions, and the consensus peak set."""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..fragments import iter_fragments
from ..io import atomic_output, check_contig_naming, gzip_errors, is_gzip, tsv_lines

__all__ = [
    "MACS_DEFAULTS", "PeakCallingError", "call_peaks", "consensus_peaks", "read_peaks_bed", "write_insertions",
    "write_peaks_bed",
]

log = logging.getLogger(__name__)

# Standard scATAC settings: each Tn5 cut site becomes a 200 bp window centred on it.
MACS_DEFAULTS = {"shift": -100, "extsize": 200, "qvalue": 0.01}


class PeakCallingError(RuntimeError):
    """MACS failed or returned nothing usable."""


def write_insertions(
    fragments: str | Path,
    chrom_sizes: Mapping[str, int],
    groups: Mapping[str, Sequence[str]],
    *,
    outputs: Mapping[str, str | Path],
    chunk_size: int = 2_000_000,
    skip_unknown_chroms: bool = False,
) -> dict[str, int]:
    """Write the Tn5 insertions (both ends of each fragment) of each barcode group as BED.

    ``groups`` maps barcode -> the pseudobulks it belongs to (e.g. ``["all", "B"]``), so every
    pseudobulk is written in one pass over the fragments; barcodes not in it are ignored.
    ``outputs`` maps pseudobulk -> BED path. Returns insertions written per pseudobulk.

    Parameters
    ----------
    fragments
        Fragments file, read with :func:`grids.fragments.iter_fragments`.
    chrom_sizes
        Chromosome -> length, as for :func:`grids.fragments.iter_fragments`.
    groups
        Barcode -> names of the pseudobulks it belongs to; pseudobulks missing from ``outputs`` are
        not written.
    outputs
        Pseudobulk -> BED file, written atomically: one ``chrom, position, position + 1`` line per
        insertion (at ``start`` and ``end - 1`` of each fragment, whatever its count), unsorted (MACS
        sorts its input). A pseudobulk without a fragment gets an empty file.
    chunk_size
        Fragment lines read per chunk.
    skip_unknown_chroms
        Drop fragments on chromosomes absent from ``chrom_sizes`` instead of raising.

    Returns
    -------
    dict
        Pseudobulk -> number of insertions written (two per fragment), for every key of ``outputs``,
        in sorted order.

    Raises
    ------
    grids.fragments.FragmentsError
        When the fragments file is missing, malformed or unsorted; no BED file is written then.
    """
    chroms = np.array(list(chrom_sizes), dtype=object)
    names = sorted(set(outputs))
    written = dict.fromkeys(names, 0)
    with contextlib.ExitStack() as stack:
        handles = []
        for name in names:
            tmp = stack.enter_context(atomic_output(outputs[name]))
            handles.append(stack.enter_context(open(tmp, "w")))
        for chunk in iter_fragments(fragments, chrom_sizes, chunk_size=chunk_size,
                                    skip_unknown_chroms=skip_unknown_chroms):
            for g, name in enumerate(names):
                member = np.fromiter((name in groups.get(b, ()) for b in chunk.barcodes), dtype=bool,
                                     count=len(chunk.barcodes))
                rows = member[chunk.barcode_code]
                if not rows.any():
                    continue
                position = np.concatenate([chunk.start[rows], chunk.end[rows] - 1])
                chrom = np.concatenate([chunk.chrom_rank[rows], chunk.chrom_rank[rows]])
                # MACS sorts its input itself, so chunk order is fine.
                handles[g].write(tsv_lines(chroms[chrom], position, position + 1))
                written[names[g]] += len(position)
        for handle in handles:
            handle.close()
    return written


def _macs_command(caller: str) -> str:
    executable = shutil.which(caller)
    if executable is None:
        hint = "Debian: apt-get install macs" if caller == "macs2" else "pip install macs3"
        raise PeakCallingError(f"{caller} not found on PATH ({hint})")
    return executable


def call_peaks(
    insertions: str | Path,
    outdir: str | Path,
    name: str,
    *,
    genome_size: int | str,
    caller: str = "macs2",
    shift: int = MACS_DEFAULTS["shift"],
    extsize: int = MACS_DEFAULTS["extsize"],
    qvalue: float = MACS_DEFAULTS["qvalue"],
    nolambda: bool = False,
) -> Path:
    """Run ``{caller} callpeak`` on an insertion BED; return the narrowPeak path.

    Raises :class:`PeakCallingError` when MACS fails (its stderr tail is included) or calls
    no peak.

    Parameters
    ----------
    insertions
        BED of Tn5 insertions (:func:`write_insertions`).
    outdir
        Folder for MACS's outputs; created if missing.
    name
        MACS's ``-n``: the prefix of its output files.
    genome_size
        MACS's ``-g``: the effective genome size in bp, or a MACS shorthand such as ``hs``.
    caller
        The MACS executable to run from PATH: ``macs2`` or ``macs3``.
    shift
        MACS's ``--shift`` (with ``--nomodel``); with the default ``extsize``, each insertion becomes a
        200 bp window centred on it.
    extsize
        MACS's ``--extsize``.
    qvalue
        MACS's ``-q``: the q-value cutoff.
    nolambda
        Pass ``--nolambda`` (MACS then uses the genome-wide background, not a local lambda).

    Returns
    -------
    pathlib.Path
        ``outdir / f"{name}_peaks.narrowPeak"``, non-empty. MACS writes its other outputs
        (``{name}_peaks.xls``, ``{name}_summits.bed``) there too.

    Raises
    ------
    PeakCallingError
        When ``caller`` is not on PATH, exits non-zero, or leaves no or an empty narrowPeak file.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    command = [
        _macs_command(caller), "callpeak", "-t", str(insertions), "-f", "BED", "-g", str(genome_size),
        "-n", name, "--outdir", str(outdir), "--nomodel", "--shift", str(shift), "--extsize", str(extsize),
        "--keep-dup", "all", "-q", str(qvalue),
    ] + (["--nolambda"] if nolambda else [])
    log.info("running: %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True)
    for line in (result.stdout + result.stderr).splitlines():
        log.info("%s: %s", caller, line)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise PeakCallingError(f"{caller} failed on {insertions} (exit {result.returncode}):\n{tail}")
    narrow = outdir / f"{name}_peaks.narrowPeak"
    if not narrow.exists() or narrow.stat().st_size == 0:
        raise PeakCallingError(
            f"{caller} called zero peaks on {insertions} (q < {qvalue}). Too few fragments or cells in "
            "this pseudobulk? Check the ATAC QC, or raise atac.macs_qvalue."
        )
    n = sum(1 for _ in open(narrow))
    log.info("%s: %d peaks", narrow, n)
    return narrow


def read_peaks_bed(path: str | Path) -> pd.DataFrame:
    """Read a BED/narrowPeak file's first three columns (plus name when present); plain or gzip.

    Parameters
    ----------
    path
        BED or narrowPeak file, plain or gzip (decided by its content); no header, ``#`` comments
        skipped.

    Returns
    -------
    pandas.DataFrame
        ``chrom`` (str), ``start``, ``end`` as written, and ``name`` (the fourth column as str, ``""``
        when the file has three columns); one row per line in file order, index 0..n-1.

    Raises
    ------
    ValueError
        When the file has fewer than three columns, or its gzip data is truncated or corrupt.
    """
    with gzip_errors(path):
        frame = pd.read_csv(path, sep="\t", header=None, comment="#", dtype={0: str},
                            compression="gzip" if is_gzip(path) else None)
    if frame.shape[1] < 3:
        raise ValueError(f"{path}: a BED file needs at least 3 columns")
    out = frame.iloc[:, :3].copy()
    out.columns = ["chrom", "start", "end"]
    out["name"] = frame.iloc[:, 3].astype(str) if frame.shape[1] > 3 else ""
    return out


def consensus_peaks(
    peak_files: Sequence[str | Path],
    chrom_sizes: Mapping[str, int],
    *,
    blacklist: str | Path | None = None,
    exclude_chromosomes: Sequence[str] = (),
) -> pd.DataFrame:
    """Merge peaks of several pseudobulks into one sorted, non-overlapping set.

    Overlapping or touching peaks are merged (bedtools merge), blacklisted regions removed
    (bedtools subtract -A), peaks on contigs absent from ``chrom_sizes`` or excluded dropped,
    and the result sorted by the chrom-sizes order, then start. Names are ``chrom:start-end``.

    Parameters
    ----------
    peak_files
        BED or narrowPeak files (plain or gzip), e.g. one per pseudobulk; their first three columns
        are read.
    chrom_sizes
        Chromosome -> length; only its names and their order are used. Its ``source`` attribute, when
        it has one, names it in errors.
    blacklist
        BED (plain or gzip) of problem regions: a merged peak overlapping one is removed whole. None:
        no blacklist.
    exclude_chromosomes
        Chromosomes whose peaks are dropped too.

    Returns
    -------
    pandas.DataFrame
        ``chrom``, ``start``, ``end`` (0-based, half-open), ``name``; sorted by the chrom-sizes order,
        then start, index 0..n-1.

    Raises
    ------
    PeakCallingError
        When no peak lies on the kept chromosomes, the blacklist's contig names differ from
        ``chrom_sizes`` only in the ``chr`` prefix, or the blacklist removes every merged peak.
    ValueError
        When a peak file or the blacklist has fewer than three columns or truncated gzip data.
    """
    import pybedtools

    frames = [read_peaks_bed(p)[["chrom", "start", "end"]] for p in peak_files]
    peaks = pd.concat(frames, ignore_index=True)
    known = peaks["chrom"].isin(list(chrom_sizes)) & ~peaks["chrom"].isin(list(exclude_chromosomes))
    dropped = sorted(set(peaks.loc[~known, "chrom"]))
    if dropped:
        log.info("dropping %d peaks on %s (unknown to chrom sizes or excluded)", int((~known).sum()), dropped)
    peaks = peaks[known]
    if peaks.empty:
        raise PeakCallingError("no peaks left on the configured chromosomes")
    # Through our reader, so a truncated blacklist.bed.gz is named as such (bedtools would
    # report a short last line instead).
    black_regions = read_peaks_bed(blacklist)[["chrom", "start", "end"]] if blacklist else None
    if black_regions is not None:
        check_contig_naming(pd.unique(black_regions["chrom"]), chrom_sizes, source=blacklist, error=PeakCallingError,
                            known_source=getattr(chrom_sizes, "source", "the chrom sizes"))
    try:
        merged = pybedtools.BedTool.from_dataframe(peaks).sort().merge()
        if black_regions is not None:
            before = merged.count()
            merged = merged.subtract(pybedtools.BedTool.from_dataframe(black_regions), A=True)
            after = merged.count()
            log.info("blacklist %s removed %d of %d peaks", blacklist, before - after, before)
            if after == 0:
                raise PeakCallingError(
                    f"the blacklist {blacklist} removed every one of the {before} merged peaks; is it the "
                    "blacklist of this genome build, and a list of problem regions rather than whole chromosomes?"
                )
        out = merged.to_dataframe(names=["chrom", "start", "end"], dtype={"chrom": str})
    finally:
        pybedtools.cleanup()
    rank = {c: i for i, c in enumerate(chrom_sizes)}
    out = out.assign(_rank=out["chrom"].map(rank)).sort_values(["_rank", "start"], kind="stable")
    out = out.drop(columns="_rank").reset_index(drop=True)
    out["name"] = out["chrom"] + ":" + out["start"].astype(str) + "-" + out["end"].astype(str)
    return out


def write_peaks_bed(peaks: pd.DataFrame, path: str | Path) -> None:
    """Write chrom, start, end, name as BED (no header).

    Parameters
    ----------
    peaks
        Frame with ``chrom``, ``start``, ``end`` and ``name`` columns (others are not written), one
        line per row in its order.
    path
        Output BED, written atomically.
    """
    with atomic_output(path) as tmp:
        peaks[["chrom", "start", "end", "name"]].to_csv(tmp, sep="\t", header=False, index=False)
