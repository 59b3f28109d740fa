"""The redundancy rules: maps of one method's selections from its explain shards, and the summary."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.explain.tasks import file_stem
from grids.io import atomic_output
from grids.io import write_tsv as _write_tsv
from grids.redundancy.maps import MAP_COLUMNS, SUMMARY_COLUMNS, MapSettings, RedundancyMap, map_selections, summary_row

__all__ = ["write_map_files", "write_map_bedpe", "run_redundancy_maps", "run_redundancy_summary", "read_summary",
           "BEDPE_COLUMNS"]

log = logging.getLogger(__name__)

SELECTION = ["L", "cell_type", "target"]
BEDPE_COLUMNS = ["chrom1", "start1", "end1", "chrom2", "start2", "end2", "name", "score"]
# Text columns of the summary that hold one number per group (a lone number must stay text).
LIST_COLUMNS = ["group_sizes", "protected_expression", "protected_fraction"]


def write_tsv(frame: pd.DataFrame, path: str | Path) -> None:
    """Six significant digits, as the evaluation tables."""
    _write_tsv(frame, path, float_format="%.6g")


def write_map_bedpe(result: RedundancyMap, peaks: pd.DataFrame, path: str | Path, *, target: str, title: str) -> None:
    """Redundant pairs as peak <-> peak arcs (BEDPE), named ``{target}|{group}``; score is the
    interaction as a share of the mean expression before, 0-1000 (comparable across targets).
    Header lines only when no pair is redundant.

    Parameters
    ----------
    result
        The map.
    peaks
        Consensus peaks (chrom, start, end), positions as the map's peak indices.
    path
        File to write.
    target
        The target, the start of each arc's name.
    title
        Title in the header comment.
    """
    redundant = result.pairs[result.pairs["redundant"] == "true"]
    with atomic_output(path) as tmp, open(tmp, "w") as handle:
        handle.write(f"# {title}: redundant peak pairs\n#" + "\t".join(BEDPE_COLUMNS) + "\n")
        for row in redundant.itertuples(index=False):
            a, b = peaks.iloc[int(row.peak_index_a)], peaks.iloc[int(row.peak_index_b)]
            share = row.interaction / result.mean_before if result.mean_before > 0 else 0.0
            score = int(np.clip(round(1000 * share), 0, 1000))
            handle.write(f"{a['chrom']}\t{int(a['start'])}\t{int(a['end'])}\t{b['chrom']}\t{int(b['start'])}\t"
                         f"{int(b['end'])}\t{target}|{row.group}\t{score}\n")


def write_map_files(result: RedundancyMap, peaks: pd.DataFrame, base: str | Path, *, target: str, title: str) -> None:
    """``{base}.tsv`` (MAP_COLUMNS; header only when nothing was mapped), ``.bedpe`` and ``.png``.

    Parameters
    ----------
    result
        The map.
    peaks
        Consensus peaks (chrom, start, end), positions as the map's peak indices.
    base
        Path of the files without their suffix.
    target
        The target (names the arcs, :func:`write_map_bedpe`).
    title
        Title of the BEDPE header and the figure.
    """
    from grids.redundancy.figures import map_figure

    write_tsv(result.pairs.reindex(columns=MAP_COLUMNS), f"{base}.tsv")
    write_map_bedpe(result, peaks, f"{base}.bedpe", target=target, title=title)
    map_figure(result, f"{base}.png", title=title)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(max(1, int(threads)))


def run_redundancy_maps(*, model: str, paired: str, gtf: str, tables: Sequence[str], metas: Sequence[str], method: str,
                        split: str, window: int, settings: Mapping[str, Any], out_dir: str,
                        expected: Sequence[str], out_summary: str, threads: int | None = None) -> pd.DataFrame:
    """Maps of every selection of ``method`` at every L: ``{out_dir}/L{L}/{stem}.tsv/.bedpe/.png``
    and the method's summary table. ``expected`` lists the ``L{L}/{stem}`` keys the rule promises.

    Parameters
    ----------
    model
        The surrogate (``model.pt``).
    paired
        The paired data (``paired.h5mu``).
    gtf
        The GTF that gives the TSSs of the cis windows.
    tables
        Explain shard tables; only ``method``'s rows are read.
    metas
        Their JSON metadata (the genes of each target).
    method
        The explain method whose selections are mapped.
    split
        The held-out cells the maps are made on (:func:`grids.workflow.stages.evaluate.evaluation_cells`).
    window
        Cis window in bp around each target gene's TSS.
    settings
        The ``redundancy`` config; the keys :class:`grids.redundancy.maps.MapSettings` knows are read.
    out_dir
        The method's results folder.
    expected
        The ``L{L}/{stem}`` keys that must have a selection.
    out_summary
        TSV of the method's summary.
    threads
        Torch threads for the job; torch's default when None or 0.

    Returns
    -------
    pandas.DataFrame
        The summary written: :data:`SUMMARY_COLUMNS`, one row per map, in the order of
        :func:`map_selections`.

    Raises
    ------
    ValueError
        When a key of ``expected`` has no selection (checked first), a setting is out of range, or as
        :func:`grids.workflow.stages.evaluate.evaluation_cells` and :func:`map_selections`.
    """
    from grids.explain.shards import read_shards
    from grids.genome import first_tss
    from grids.workflow.stages.evaluate import evaluation_cells

    options = MapSettings.from_config(dict(settings))
    table, members, _ = read_shards(tables, metas)
    table = table[table["method"] == method]
    keys = table[SELECTION].drop_duplicates().itertuples(index=False)
    found = {f"L{L}/{file_stem(str(c), str(t))}" for L, c, t in keys}
    missing = sorted(set(expected) - found)
    if missing:  # before the expensive part
        raise ValueError(f"{method} shard tables lack selections for {', '.join(missing[:5])}")
    _set_threads(threads)
    saved, data, X, names = evaluation_cells(model, paired, split)
    peaks = data.peaks.reset_index(drop=True)
    tss = first_tss(gtf, peaks["chrom"].astype(str).unique())
    summary = []
    for (L, cell_type, target), result in map_selections(saved.predict, X, names, genes=data.genes, peaks=peaks,
                                                         tss=tss, selections=table, members=members, window=window,
                                                         settings=options):
        stem = file_stem(cell_type, target)
        write_map_files(result, peaks, Path(out_dir) / f"L{L}" / stem, target=target,
                        title=f"{method} L={L}: {target} in {cell_type}")
        summary.append(summary_row(result, method=method, L=L, cell_type=cell_type, target=target))
    frame = pd.DataFrame(summary, columns=SUMMARY_COLUMNS)
    write_tsv(frame, out_summary)
    return frame


def read_summary(path: str | Path) -> pd.DataFrame:
    """A summary table, the per-group lists kept as text.

    Parameters
    ----------
    path
        A summary TSV (:func:`run_redundancy_maps`).

    Returns
    -------
    pandas.DataFrame
        Its rows in file order; the per-group lists, cell_type, target and status as text, an empty
        cell as ''.
    """
    return pd.read_csv(path, sep="\t", dtype={**{c: str for c in LIST_COLUMNS}, "cell_type": str, "target": str,
                                             "status": str}, keep_default_na=False)


def run_redundancy_summary(*, tables: Sequence[str], out_table: str, out_figure: str) -> pd.DataFrame:
    """The methods' summaries in one table (``results/redundancy/summary.tsv``) and its figure.

    Parameters
    ----------
    tables
        The methods' summary TSVs.
    out_table
        TSV of the combined summary.
    out_figure
        PNG of the figure (:func:`grids.redundancy.figures.summary_figure`).

    Returns
    -------
    pandas.DataFrame
        The summaries concatenated in the order of ``tables``, columns :data:`SUMMARY_COLUMNS`.

    Raises
    ------
    ValueError
        When ``tables`` is empty, or a table lacks a summary column.
    """
    from grids.redundancy.figures import summary_figure

    if not tables:
        raise ValueError("no redundancy summaries to combine")
    frames = [read_summary(path) for path in tables]
    for path, frame in zip(tables, frames):
        missing = [c for c in SUMMARY_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: not a redundancy summary, it lacks columns {', '.join(missing)}")
    summary = pd.concat(frames, ignore_index=True)[SUMMARY_COLUMNS]
    write_tsv(summary, out_table)
    summary_figure(summary, out_figure)
    return summary
