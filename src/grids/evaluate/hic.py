"""Hi-C validation of selections: are selected peaks in contact with their target's TSS?

Every selected peak on its target gene's chromosome is paired with the gene's TSS. The
balanced contact between the peak's bin and the TSS bin is compared with distance-matched
background peaks drawn (seeded) from the consensus peak set, giving observed/expected and an
empirical one-sided p-value per selection key.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import cooler

__all__ = ["open_cooler", "tss_contacts", "validate_pairs"]

log = logging.getLogger(__name__)

RESULT_COLUMNS = ["key", "n_peaks", "observed", "expected", "obs_exp", "p_value", "status"]
NO_PEAK = "no selected peak on the target's chromosome"
NO_USABLE = "no usable pair: bins masked by balancing or no background peaks"


def open_cooler(path: str, resolution: int | None = None) -> cooler.Cooler:
    """Open a balanced ``.cool``, ``.mcool`` (``resolution`` picks the level) or ``FILE::GROUP`` URI.

    Parameters
    ----------
    path
        A ``.cool`` or ``.mcool`` file, or a ``FILE::GROUP`` URI of one cooler in it.
    resolution
        Bin size in bp: the level of an ``.mcool`` (None: its only level), and checked against the bin
        size of a ``.cool`` or URI (None: not checked).

    Returns
    -------
    cooler.Cooler
        The cooler at that resolution.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is not readable HDF5 or not a cooler, the group is not a cooler, an ``.mcool``
        has several resolutions and none is chosen or lacks the one chosen, the bin size differs from
        ``resolution``, or the bins have no balancing weights.
    """
    import cooler
    from cooler.fileops import is_cooler, is_multires_file, list_coolers

    file, _, group = str(path).partition("::")
    if not Path(file).exists():
        raise FileNotFoundError(f"Hi-C file not found: {file}")
    try:
        multires = is_multires_file(file)
    except OSError as err:  # h5py: a cut-off or corrupt HDF5 file, with no file name in the message
        raise ValueError(f"{file}: cannot read it as HDF5, the file is truncated or corrupt ({err}); "
                         "copy or download the .cool again") from err
    available = sorted(int(g.rsplit("/", 1)[-1]) for g in list_coolers(file)) if multires else []
    if group:
        uri = str(path)
        try:
            found = is_cooler(uri)
        except (KeyError, OSError):  # h5py raises for a group that does not exist
            found = False
        if not found:
            raise ValueError(f"{uri} is not a cooler" + (f"; available resolutions: {available}" if multires else ""))
    elif multires:
        if resolution is None and len(available) != 1:
            raise ValueError(f"{file} has several resolutions {available}; choose one")
        resolution = available[0] if resolution is None else int(resolution)
        if resolution not in available:
            raise ValueError(f"resolution {resolution} is not in {file}; available resolutions: {available}")
        uri = f"{file}::/resolutions/{resolution}"
    elif is_cooler(file):
        uri = file
    else:
        raise ValueError(f"{file} is not a cooler file (.cool or .mcool)")
    clr = cooler.Cooler(uri)
    if resolution is not None and clr.binsize != int(resolution):
        raise ValueError(f"{uri} has bin size {clr.binsize}, not the requested resolution {resolution}")
    # Raw counts are dominated by bin biases (mappability, GC); only balanced contacts compare.
    if "weight" not in clr.bins().columns:
        raise ValueError(f"{uri} has no balancing weights; run `cooler balance {uri}`")
    return clr


def _chrom_bins(clr: cooler.Cooler, chrom: str) -> tuple[np.ndarray, np.ndarray]:
    bins = clr.bins().fetch(chrom)
    return bins["start"].to_numpy(np.int64), bins["end"].to_numpy(np.int64)


def _bin_index(starts: np.ndarray, ends: np.ndarray, positions) -> np.ndarray:
    """Chromosome-relative bin of each position, -1 outside the chromosome (assembly mismatch)."""
    positions = np.asarray(positions, dtype=np.int64)
    idx = np.searchsorted(starts, positions, side="right") - 1
    return np.where((idx >= 0) & (positions < ends[-1]), idx, -1)


def tss_contacts(clr: cooler.Cooler, chrom: str, position: int) -> pd.DataFrame:
    """Balanced contacts of the bin holding ``position`` with every bin of ``chrom`` (virtual 4C).

    Returns columns ``start, end, contact``; bins masked by balancing stay NaN.

    Parameters
    ----------
    clr
        A balanced cooler (:func:`open_cooler`).
    chrom
        Chromosome.
    position
        Position on ``chrom`` (0-based), e.g. a TSS.

    Returns
    -------
    pandas.DataFrame
        One row per bin of ``chrom`` in order: start, end, contact (balanced; NaN where masked).

    Raises
    ------
    ValueError
        When ``position`` lies outside ``chrom`` in the file.
    """
    starts, ends = _chrom_bins(clr, chrom)
    i = int(_bin_index(starts, ends, [position])[0])
    if i < 0:
        raise ValueError(f"position {position} is outside {chrom} (length {ends[-1]}) in {clr.filename}")
    # One row only: a full chromosome at 10 kb is ~16k x 16k.
    row = clr.matrix(balance=True).fetch((chrom, int(starts[i]), int(ends[i])), chrom)[0]
    return pd.DataFrame({"start": starts, "end": ends, "contact": np.asarray(row, dtype=float)})


def _offset_class_edges(n_bins: int, factor: float = 1.3) -> np.ndarray:
    """Left edges of bin-offset classes: exact 0..3, then log-spaced (contacts decay as a power law)."""
    edges = [0, 1, 2, 3, 4]
    while edges[-1] < n_bins:
        edges.append(max(edges[-1] + 1, int(round(edges[-1] * factor))))
    return np.asarray(edges)


def _empty_row(key: str, status: str) -> dict:
    return dict(key=key, n_peaks=0, observed=np.nan, expected=np.nan, obs_exp=np.nan, p_value=np.nan, status=status)


def _uncovered(targets: pd.DataFrame, clr: cooler.Cooler, source: str) -> str:
    """Why none of these TSSs (``tss_chrom``, ``tss_pos``) lies in the file, or "" if one does.
    Subset files (one chromosome arm, say) name a chromosome but stop short of a TSS."""
    if targets.empty:
        return ""
    sizes = clr.chromsizes
    known = targets["tss_chrom"].isin(list(sizes.index))
    inside = known & (targets["tss_pos"].to_numpy() < sizes.reindex(targets["tss_chrom"]).fillna(0).to_numpy())
    if inside.any():
        return ""
    if not known.any():
        return f"{', '.join(dict.fromkeys(targets['tss_chrom']))} is not in {source}"
    chrom, position = targets.loc[known, ["tss_chrom", "tss_pos"]].iloc[0]
    return f"{chrom}:{int(position)} lies beyond the {int(sizes[chrom])} bp of {chrom} in {source}"


def validate_pairs(
    pairs: pd.DataFrame,
    background: pd.DataFrame,
    clr: cooler.Cooler,
    *,
    n_draws: int = 1000,
    seed: int = 0,
    source: str = "",
) -> pd.DataFrame:
    """Observed/expected balanced contact of selected peaks with their TSS, per selection key.

    ``pairs``: ``key, peak_chrom, peak_start, peak_end, tss_chrom, tss_pos`` (one row per selected
    peak); ``background``: consensus peaks ``chrom, start, end``. Returns one row per key (order of
    first appearance) with ``key, n_peaks, observed, expected, obs_exp, p_value, status``.

    Parameters
    ----------
    pairs
        One row per selected peak: key, peak_chrom, peak_start, peak_end, tss_chrom, tss_pos (a peak on
        another chromosome than its TSS is not used; an empty tss_chrom marks a target without a TSS).
    background
        Consensus peaks: chrom, start, end.
    clr
        A balanced cooler (:func:`open_cooler`).
    n_draws
        Background draws per key (one distance-matched peak per selected peak in each).
    seed
        Seed of the draws; each key's draws are seeded by it and the key, so they do not depend on the
        other keys.
    source
        Name of the Hi-C file in statuses and warnings; the cooler's file name when empty.

    Returns
    -------
    pandas.DataFrame
        One row per key in order of first appearance: key, n_peaks (pairs used), observed (mean
        balanced contact), expected (mean contact of the distance-matched draws), obs_exp, p_value
        (``(1 + draws with a mean >= observed) / (n_draws + 1)``), status ('ok', or why the key has no
        value: 'not covered: ...', no selected peak on the target's chromosome, no usable pair; then
        the values are NaN and n_peaks 0).
    """
    source = source or clr.filename
    chromnames = set(clr.chromnames)
    bins_cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # bin starts, ends, offset classes
    row_cache: dict[tuple[str, int], np.ndarray] = {}
    bg_cache: dict[str, np.ndarray] = {}
    bg_by_chrom = {c: df for c, df in background.groupby("chrom", sort=False, observed=True)}
    rows = []
    for key, kp in pairs.groupby("key", sort=False, observed=True):
        key = str(key)
        # Coverage first: a target on a chromosome the file lacks is "not covered" whether or
        # not any of its selected peaks share that chromosome.
        uncovered = _uncovered(kp.loc[kp["tss_chrom"].astype(str) != ""], clr, source)
        if uncovered:
            rows.append(_empty_row(key, f"not covered: {uncovered}"))
            continue
        kp = kp[kp["peak_chrom"] == kp["tss_chrom"]]
        if kp.empty:
            rows.append(_empty_row(key, NO_PEAK))
            continue
        covered = kp["tss_chrom"].isin(chromnames)
        if not covered.any():
            missing = ", ".join(dict.fromkeys(kp["tss_chrom"]))
            rows.append(_empty_row(key, f"not covered: {missing} is not in {source}"))
            continue
        if not covered.all():
            log.warning("hic %s: %d pair(s) on chromosomes not in %s dropped", key, int((~covered).sum()), source)
        observed, candidates = [], []
        for (chrom, tss_pos), grp in kp[covered].groupby(["tss_chrom", "tss_pos"], sort=False):
            if chrom not in bins_cache:
                starts, ends = _chrom_bins(clr, chrom)
                bins_cache[chrom] = starts, ends, _offset_class_edges(len(starts))
                bg = bg_by_chrom.get(chrom, background.iloc[:0])
                mids = (bg["start"].to_numpy(np.int64) + bg["end"].to_numpy(np.int64)) // 2
                bg_cache[chrom] = _bin_index(starts, ends, mids)
            starts, ends, edges = bins_cache[chrom]
            bg_bin = bg_cache[chrom]
            tss_bin = int(_bin_index(starts, ends, [tss_pos])[0])
            if tss_bin < 0:
                log.warning("hic %s: TSS %s:%d is outside the chromosome in %s; dropped", key, chrom, tss_pos, source)
                continue
            if (chrom, tss_bin) not in row_cache:
                row_cache[chrom, tss_bin] = tss_contacts(clr, chrom, int(tss_pos))["contact"].to_numpy()
            contact = row_cache[chrom, tss_bin]
            # Background: every consensus peak on this chromosome with a usable (non-NaN) contact
            # to the same TSS bin, the selection's own peaks included. Leaving them out would
            # empty the near classes of a selection that holds every peak near the TSS, and the
            # borrowed farther class would inflate obs/exp; with them in, a selected peak's class
            # is never empty and the test is, if anything, conservative.
            ok = bg_bin >= 0
            ok[ok] = ~np.isnan(contact[bg_bin[ok]])
            bg_contact = contact[bg_bin[ok]]
            bg_cls = np.searchsorted(edges, np.abs(bg_bin[ok] - tss_bin), side="right") - 1
            nonempty = np.unique(bg_cls)
            mids = (grp["peak_start"].to_numpy(np.int64) + grp["peak_end"].to_numpy(np.int64)) // 2
            pk_bin = _bin_index(starts, ends, mids)
            pk_cls = np.searchsorted(edges, np.abs(pk_bin - tss_bin), side="right") - 1
            for b, c in zip(pk_bin, pk_cls):
                if b < 0 or np.isnan(contact[b]) or nonempty.size == 0:
                    continue
                # A peak outside the background set may meet an empty class: it borrows the
                # nearest non-empty one (ties: the shorter distance).
                c = nonempty[np.argmin(np.abs(nonempty - c))]
                observed.append(contact[b])
                candidates.append(bg_contact[bg_cls == c])
        if not observed:
            rows.append(_empty_row(key, NO_USABLE))
            continue
        # All draws at once: one uniform index per (pair, draw) into that pair's candidate pool.
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        sizes = np.array([len(c) for c in candidates])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pick = rng.integers(0, sizes[:, None], size=(len(sizes), n_draws)) + offsets[:, None]
        draw_means = np.concatenate(candidates)[pick].mean(axis=0)
        obs, exp = float(np.mean(observed)), float(draw_means.mean())
        rows.append(dict(
            key=key, n_peaks=len(observed), observed=obs, expected=exp,
            obs_exp=obs / exp if exp != 0 else np.nan,
            p_value=(1 + int((draw_means >= obs).sum())) / (n_draws + 1), status="ok",
        ))
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return out.astype({"n_peaks": np.int64})
