"""Genome-wide explanations (``explain.genes``), as ArchR addPeak2GeneLinks and Signac LinkPeaks
give links for every gene.

The genes are known only once the paired file exists, so a Snakemake checkpoint writes the task
list (:func:`write_genome_wide_tasks`): one per-gene task per cell type and gene, cut into shards
of ``explain.shard_size``. The shards run through the per-target shard code
(:func:`grids.workflow.stages.explain.run_explain_shard`), and :func:`write_genome_wide` gathers them into
one table per method and L, a BEDPE and a UCSC interact track per cell type, and a figure.

The parse-time helpers (:func:`genes_mode`, :func:`genome_wide_cell_types`,
:func:`genome_wide_shards`) import neither torch nor the data readers.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import atomic_output
from .tasks import ExplainTask, cell_type_stem, file_name_clash, set_target, target_genes

__all__ = ["GENOME_WIDE_COLUMNS", "TASK_COLUMNS", "genes_mode", "genome_wide_cell_types", "genome_wide_genes",
           "plan_genome_wide", "write_genome_wide_tasks", "genome_wide_shards", "genome_wide_table",
           "write_genome_wide", "genome_wide_figure"]

log = logging.getLogger(__name__)

TASK_COLUMNS = ["cell_type", "gene", "shard"]
GENOME_WIDE_COLUMNS = ["cell_type", "gene", "rank", "peak", "score", "objective"]
MODES = ("targets", "all")


def genes_mode(genes: Any) -> str:
    """What ``explain.genes`` asks for: ``targets`` (config/targets.tsv only), ``all`` (every
    modelled gene), ``top`` (an integer N: each cell type's N most expressed genes) or ``list``
    (these genes). Anything else is a ValueError naming the key.

    Parameters
    ----------
    genes
        The value of ``explain.genes``.

    Returns
    -------
    str
        'targets', 'all', 'top' or 'list'.

    Raises
    ------
    ValueError
        When an integer is below 1, a list is empty, holds a non-string or empty name or a gene twice,
        or the value is of none of these kinds.
    """
    if isinstance(genes, str) and genes in MODES:
        return genes
    if isinstance(genes, int) and not isinstance(genes, bool):
        if genes < 1:
            raise ValueError(f"config key explain.genes: an integer must be at least 1, got {genes}")
        return "top"
    if isinstance(genes, (list, tuple)):
        if not genes or not all(isinstance(g, str) and g for g in genes):
            raise ValueError(f"config key explain.genes: a list must name at least one gene, all non-empty "
                             f"strings, got {genes!r}")
        duplicated = sorted({g for g in genes if list(genes).count(g) > 1})
        if duplicated:
            raise ValueError(f"config key explain.genes: gene(s) listed twice: {', '.join(duplicated)}")
        return "list"
    raise ValueError(f"config key explain.genes: {genes!r} is none of targets, all, a positive integer or a list "
                     "of gene names")


def genome_wide_cell_types(settings: Mapping[str, Any], targets: pd.DataFrame) -> list[str]:
    """``explain.genes_cell_types``, or when empty the cell types of the targets table in order.
    Two cell types that would share a file name are a ValueError naming the key.

    Parameters
    ----------
    settings
        The explain settings (config key ``explain``); ``genes_cell_types`` is read.
    targets
        The targets table (column cell_type).

    Returns
    -------
    list of str
        The cell types, in the order given or first seen.

    Raises
    ------
    ValueError
        When a cell type is listed twice, or two would share a file name.
    """
    given = list(settings.get("genes_cell_types") or [])
    cell_types = [str(c) for c in given] if given else list(dict.fromkeys(map(str, targets["cell_type"])))
    duplicated = sorted({c for c in cell_types if cell_types.count(c) > 1})
    if duplicated:
        raise ValueError(f"config key explain.genes_cell_types: listed twice: {', '.join(duplicated)}")
    clash = file_name_clash((c, "genome_wide") for c in cell_types)
    if clash:
        raise ValueError(f"config key explain.genes_cell_types: {clash}")
    return cell_types


def genome_wide_genes(genes: Any, cell_type: str, data, *, mito_prefix: str = "MT-", source: str = "") -> list[str]:
    """The genes of one cell type's genome-wide tasks, from ``data`` (a
    :class:`grids.surrogate.data.PairedData`): every modelled gene in the file's order (``all``),
    the cell type's N most expressed genes by mean over its training cells, mitochondrial genes
    left out, as for a ``top{N}`` gene set (an integer), or the listed genes in their order (a gene
    the model lacks is a ValueError naming it and the key).

    Parameters
    ----------
    genes
        The value of ``explain.genes`` (:func:`genes_mode`).
    cell_type
        The cell type (read for an integer only).
    data
        The paired data.
    mito_prefix
        Name prefix of the mitochondrial genes left out of the top N ('' leaves none out).
    source
        Name of the paired file in messages; "the paired file" when empty.

    Returns
    -------
    list of str
        The gene names; the top N most expressed first.

    Raises
    ------
    ValueError
        When ``genes`` is invalid or 'targets', a listed gene is not modelled, or (an integer) the cell
        type is not in the data or has no training cells.
    """
    mode = genes_mode(genes)
    modelled = list(map(str, data.genes))
    if mode == "all":
        return modelled
    if mode == "list":
        known = set(modelled)
        unknown = [g for g in genes if g not in known]
        if unknown:
            close = {g: difflib.get_close_matches(g, modelled, n=3) for g in unknown}
            hints = "; ".join(f"{g}: close matches {', '.join(m)}" for g, m in close.items() if m)
            raise ValueError(f"config key explain.genes: gene(s) {', '.join(map(repr, unknown))} not among the "
                             f"{len(modelled)} modelled genes of {source or 'the paired file'}"
                             + (f" ({hints})" if hints else ""))
        return list(genes)
    if mode == "top":
        rows = _training_rows(data, cell_type, source)
        task = ExplainTask(cell_type, set_target(int(genes)), "set")
        order = target_genes(task, modelled, data.rna[rows].mean(0), top_n=int(genes), mito_prefix=mito_prefix)
        return [modelled[g] for g in order]
    raise ValueError("explain.genes is 'targets': there are no genome-wide tasks")


def _training_rows(data, cell_type: str, source: str) -> np.ndarray:
    if cell_type not in data.cell_types:
        raise ValueError(f"config key explain.genes_cell_types (empty: the cell types of the targets table): cell type "
                         f"{cell_type!r} is not in {source or 'the paired file'} (it has: "
                         f"{', '.join(map(str, data.cell_types))})")
    code = list(data.cell_types).index(cell_type)
    rows = np.flatnonzero((np.asarray(data.cell_type) == code) & (np.asarray(data.split) == "train"))
    if len(rows) == 0:
        raise ValueError(f"config key explain.genes_cell_types (empty: the cell types of the targets table): cell type "
                         f"{cell_type!r} has no training cells in "
                         f"{source or 'the paired file'}; it cannot be explained")
    return rows


def plan_genome_wide(genes: Any, cell_types: Sequence[str], data, *, mito_prefix: str = "MT-", shard_size: int,
                     source: str = "") -> pd.DataFrame:
    """The genome-wide task table (:data:`TASK_COLUMNS`): for each cell type in order, its genes
    (:func:`genome_wide_genes`), numbered into shards of ``shard_size`` consecutive tasks.

    Parameters
    ----------
    genes
        The value of ``explain.genes`` (:func:`genes_mode`).
    cell_types
        The cell types explained, in order (:func:`genome_wide_cell_types`).
    data
        The paired data (:class:`grids.surrogate.data.PairedData`).
    mito_prefix
        Name prefix of the mitochondrial genes left out of a top N.
    shard_size
        Tasks per shard (``explain.shard_size``).
    source
        Name of the paired file in messages.

    Returns
    -------
    pandas.DataFrame
        Columns cell_type, gene, shard (0, 1, ...: consecutive tasks across cell types), one row per
        task, index 0..n-1.

    Raises
    ------
    ValueError
        When ``shard_size`` is below 1, there is no cell type, a cell type is not in the data or has
        no training cells, ``genes`` is invalid (:func:`genome_wide_genes`), or two tasks would share
        a file name.
    """
    if shard_size < 1:
        raise ValueError(f"config key explain.shard_size: must be at least 1, got {shard_size}")
    if not cell_types:
        raise ValueError("config key explain.genes_cell_types: no cell types to explain")
    rows = []
    for cell_type in cell_types:
        _training_rows(data, cell_type, source)
        rows += [(cell_type, gene) for gene in genome_wide_genes(genes, cell_type, data, mito_prefix=mito_prefix,
                                                                   source=source)]
    clash = file_name_clash(rows)
    if clash:
        raise ValueError(f"genome-wide explanation targets (explain.genes): {clash}")
    table = pd.DataFrame(rows, columns=["cell_type", "gene"])
    table["shard"] = np.arange(len(table)) // shard_size
    return table[TASK_COLUMNS]


def write_genome_wide_tasks(*, paired: str, genes: Any, cell_types: Sequence[str], mito_prefix: str,
                            shard_size: int, out: str) -> pd.DataFrame:
    """The checkpoint: read the paired file, plan the tasks (:func:`plan_genome_wide`) and write
    them as a TSV (cell_type, gene, shard).

    Parameters
    ----------
    paired
        The paired data (``paired.h5mu``).
    genes
        The value of ``explain.genes``.
    cell_types
        The cell types explained, in order.
    mito_prefix
        Name prefix of the mitochondrial genes left out of a top N.
    shard_size
        Tasks per shard.
    out
        The TSV to write.

    Returns
    -------
    pandas.DataFrame
        The task table written (:func:`plan_genome_wide`).

    Raises
    ------
    ValueError
        As :func:`plan_genome_wide`.
    """
    from ..surrogate.data import load_paired

    table = plan_genome_wide(genes, list(cell_types), load_paired(paired), mito_prefix=mito_prefix,
                             shard_size=int(shard_size), source=paired)
    with atomic_output(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    log.info("%d genome-wide tasks (%d cell types) in %d shards of up to %d", len(table), len(cell_types),
             table["shard"].nunique(), shard_size)
    return table


def genome_wide_shards(path: str | os.PathLike) -> list[list[ExplainTask]]:
    """The tasks of each shard of a task table written by :func:`write_genome_wide_tasks`, shard 0
    first. Read once per file version (path, size, modification time), since every shard job's
    params ask for it.

    Parameters
    ----------
    path
        A task table (TSV: cell_type, gene, shard).

    Returns
    -------
    list of list of ExplainTask
        Per shard, its per-gene tasks in table order.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the table lacks a column, or its shards are not numbered 0..n-1.
    """
    stat = Path(path).stat()
    return [list(tasks) for tasks in _read_shards(str(path), stat.st_size, stat.st_mtime_ns)]


@functools.lru_cache(maxsize=8)
def _read_shards(path: str, size: int, mtime_ns: int) -> tuple[tuple[ExplainTask, ...], ...]:
    table = pd.read_csv(path, sep="\t", dtype={"cell_type": str, "gene": str}, keep_default_na=False)
    missing = [c for c in TASK_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: not a genome-wide task table, it lacks columns {', '.join(missing)}")
    shards = sorted(table["shard"].unique())
    if shards != list(range(len(shards))):
        raise ValueError(f"{path}: shards are not numbered 0..{len(shards) - 1}")
    return tuple(tuple(ExplainTask(c, g) for c, g in zip(block["cell_type"], block["gene"]))
                 for _, block in table.groupby("shard", sort=True))


def genome_wide_table(shards: pd.DataFrame, tasks: Sequence[ExplainTask], L: int) -> pd.DataFrame:
    """One row per selected peak (:data:`GENOME_WIDE_COLUMNS`) of these tasks at this L, from the
    concatenated shard tables, sorted by cell type, gene and rank. A task the method did not run
    on (a ``not run`` row), or for which it selected nothing, has no row (logged).

    Parameters
    ----------
    shards
        The concatenated shard tables of one method (:func:`grids.explain.shards.read_shards`).
    tasks
        The genome-wide tasks.
    L
        The subset size.

    Returns
    -------
    pandas.DataFrame
        Columns cell_type, gene, rank, peak (``chrom:start-end``), score, objective (the selection's
        train_loss); index 0..n-1.
    """
    at_L = shards[(shards["L"].astype(int) == int(L))]
    wanted = {(t.cell_type, t.target) for t in tasks}
    at_L = at_L[[key in wanted for key in zip(at_L["cell_type"].astype(str), at_L["target"].astype(str))]]
    ok = at_L[(at_L["status"] == "ok") & (at_L["peak_index"] >= 0)]
    empty = len(wanted) - len(set(zip(ok["cell_type"].astype(str), ok["target"].astype(str))))
    if empty:
        not_run = at_L.loc[at_L["status"] != "ok", ["cell_type", "target"]].drop_duplicates()
        log.warning("L=%d: %d of %d genome-wide task(s) have no selected peak (%d not run%s)", L, empty, len(wanted),
                    len(not_run), ", e.g. " + ", ".join(f"{c}/{t}" for c, t in not_run.head(3).itertuples(index=False))
                    if len(not_run) else "")
    table = pd.DataFrame({
        "cell_type": ok["cell_type"].astype(str).to_numpy(),
        "gene": ok["target"].astype(str).to_numpy(),
        "rank": ok["rank"].astype(int).to_numpy(),
        "peak": [f"{c}:{int(s)}-{int(e)}" for c, s, e in zip(ok["chrom"], ok["start"], ok["end"])],
        "score": ok["score"].astype(float).to_numpy(),
        "objective": ok["train_loss"].astype(float).to_numpy(),
    }, columns=GENOME_WIDE_COLUMNS)
    return table.sort_values(["cell_type", "gene", "rank"], kind="stable").reset_index(drop=True)


def _write_tsv_gz(table: pd.DataFrame, path: str) -> None:
    """A gzip TSV with a fixed header time and no file name inside, so equal tables give equal bytes."""
    with atomic_output(path) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
        handle.write(table.to_csv(sep="\t", index=False).encode())


def _as_selection(rows: pd.DataFrame) -> pd.DataFrame:
    """Genome-wide rows as a per-target selection (chrom, start, end, rank, score, peak_index) for the track writers."""
    return pd.DataFrame({"rank": rows["rank"].to_numpy(), "peak_index": rows["peak_index"].to_numpy(),
                         "chrom": rows["chrom"].to_numpy(), "start": rows["start"].to_numpy(),
                         "end": rows["end"].to_numpy(), "score": rows["score"].to_numpy()})


def write_genome_wide(shard_tables: Sequence[str], shard_meta: Sequence[str], gtf: str, *, tasks: str, method: str,
                      Ls: Sequence[int], cell_types: Sequence[str], out_dir: str) -> None:
    """Gather the genome-wide shards of one method (``out_dir`` is ``results/explain/{method}``):
    per L, ``L{L}/genome_wide.tsv.gz`` (:func:`genome_wide_table`), ``L{L}/genome_wide.png``
    (:func:`genome_wide_figure`) and per cell type ``L{L}/genome_wide/{cell_type}.bedpe`` and
    ``.interact.bed``, each peak drawn to its gene's TSS by the per-target track writers.

    Parameters
    ----------
    shard_tables
        The method's genome-wide shard tables.
    shard_meta
        Their JSON metadata.
    gtf
        The GTF that gives each gene's TSS.
    tasks
        The task table (:func:`write_genome_wide_tasks`).
    method
        The explain method (named in the titles and track names).
    Ls
        The subset sizes; one set of files each.
    cell_types
        The expected cell types; each gets its tracks, empty when it has no selected peak.
    out_dir
        The method's results folder.

    Raises
    ------
    ValueError
        When the task table names a cell type not in ``cell_types``, or the shards lack a task of the
        table (both: out of date), or as :func:`grids.explain.shards.read_shards`.
    """
    from ..genome import tss_map
    from .shards import read_shards
    from .tracks import write_bedpe_links, write_interact_links

    planned = [task for shard in genome_wide_shards(tasks) for task in shard]
    unknown = sorted({t.cell_type for t in planned} - set(cell_types))
    if unknown:
        raise ValueError(f"{tasks}: cell type(s) {', '.join(unknown)} are not among the expected "
                         f"{', '.join(cell_types)}; the task list is out of date")
    table, members, _ = read_shards(shard_tables, shard_meta)
    unrun = [t.stem for t in planned if t.stem not in members]
    if unrun:
        raise ValueError(f"the genome-wide shards of {method} lack {len(unrun)} of the {len(planned)} tasks of "
                         f"{tasks}, e.g. {', '.join(unrun[:5])}; the shards are out of date")
    table["cell_type"] = table["cell_type"].astype(str)
    table["target"] = table["target"].astype(str)
    tss = tss_map(gtf)  # every chromosome: a gene's TSS may lie away from its selected peaks
    for L in sorted(int(L) for L in Ls):
        rows = genome_wide_table(table, planned, L)
        base = Path(out_dir) / f"L{L}"
        _write_tsv_gz(rows, str(base / "genome_wide.tsv.gz"))
        genome_wide_figure(rows, tss, path=str(base / "genome_wide.png"), title=f"{method} L={L}")
        ok = table[(table["L"].astype(int) == L) & (table["status"] == "ok") & (table["peak_index"] >= 0)]
        ok = ok.sort_values(["cell_type", "target", "rank"], kind="stable")
        for cell_type in cell_types:
            of_type = ok[ok["cell_type"] == cell_type]
            parts = [(_as_selection(block), [gene]) for gene, block in of_type.groupby("target", sort=True)]
            stem = cell_type_stem(cell_type)
            write_bedpe_links(parts, tss, path=str(base / "genome_wide" / f"{stem}.bedpe"),
                              name=f"{method} L{L} {cell_type} genome-wide")
            write_interact_links(parts, tss, path=str(base / "genome_wide" / f"{stem}.interact.bed"),
                                 name=f"{method}_L{L}_{stem}_genome_wide")
        log.info("%s L=%d: %d selected peaks for %d genes in %d cell types", method, L, len(rows),
                 rows[["cell_type", "gene"]].drop_duplicates().shape[0], rows["cell_type"].nunique())


def _tss_distances(table: pd.DataFrame, tss: Mapping[str, tuple[str, int]]) -> tuple[np.ndarray, int, int]:
    """Distances (bp) from each selected peak's midpoint to its gene's TSS on the same chromosome,
    and the numbers of peaks on another chromosome and of genes without a TSS."""
    distances, other_chrom, no_tss = [], 0, 0
    for gene, peak in zip(table["gene"], table["peak"]):
        if gene not in tss:
            no_tss += 1
            continue
        chrom, span = peak.rsplit(":", 1)
        start, end = (int(x) for x in span.split("-"))
        if chrom != tss[gene][0]:
            other_chrom += 1
            continue
        distances.append(abs((start + end) // 2 - tss[gene][1]))
    return np.asarray(distances, dtype=np.int64), other_chrom, no_tss


def _count_bars(ax, values: np.ndarray, *, colour: str, xlabel: str, ylabel: str, title: str) -> None:
    """A bar per integer value with its count written above it."""
    if len(values):
        counts = np.bincount(values)
        x = np.flatnonzero(counts)
        ax.bar(x, counts[x], color=colour, width=0.8)
        for xi in x:
            ax.text(xi, counts[xi], str(counts[xi]), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x if len(x) <= 20 else ax.get_xticks())
        ax.set_xlim(max(x.min() - 1, 0), x.max() + 1)
    else:
        ax.text(0.5, 0.5, "no selected peaks", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.title.set_fontsize(9)


def genome_wide_figure(table: pd.DataFrame, tss: Mapping[str, tuple[str, int]], *, path: str, title: str) -> None:
    """Three panels of a genome-wide table (:data:`GENOME_WIDE_COLUMNS`): the distance from each
    selected peak to its gene's TSS (log scale), the selected peaks per gene, and for each selected
    peak (per cell type) the number of genes it was selected for, with the share selected for
    two or more.

    Parameters
    ----------
    table
        A genome-wide table (:func:`genome_wide_table`).
    tss
        Gene -> (chrom, position) of its TSS; peaks of a gene without one, or on another chromosome,
        are counted in the first panel's title.
    path
        PNG file to write.
    title
        Start of the figure's title.
    """
    from ..plots import _pyplot, _save

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    n_genes = table[["cell_type", "gene"]].drop_duplicates().shape[0]
    fig.suptitle(f"{title}: {len(table)} selected peaks for {n_genes} genes in {table['cell_type'].nunique()} "
                 "cell type(s)", fontsize=10)
    distances, other_chrom, no_tss = _tss_distances(table, tss)
    ax = axes[0]
    if len(distances):
        clipped = np.maximum(distances, 1)
        bins = np.logspace(0, np.log10(max(clipped.max(), 10)) + 0.01, 40)
        ax.hist(clipped, bins=bins, color="tab:blue")
        ax.set_xscale("log")
        ax.axvline(np.median(clipped), color="k", ls="--", lw=1, label=f"median {int(np.median(distances)):,} bp")
        ax.legend(frameon=False, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no peak on its gene's chromosome", ha="center", va="center", transform=ax.transAxes)
    note = f"; {other_chrom} peak(s) on another chromosome, not shown" if other_chrom else ""
    note += f"; {no_tss} without a TSS in the GTF" if no_tss else ""
    ax.set(xlabel="peak midpoint to gene TSS (bp, log scale)", ylabel="selected peaks",
           title=f"Distance to the TSS{note}")
    ax.title.set_fontsize(9)
    per_gene = table.groupby(["cell_type", "gene"]).size().to_numpy()
    _count_bars(axes[1], per_gene, colour="tab:green", xlabel="selected peaks per gene", ylabel="genes",
                title="Peaks per gene")
    per_peak = table.groupby(["cell_type", "peak"])["gene"].nunique().to_numpy()
    shared = float((per_peak >= 2).mean()) if len(per_peak) else 0.0
    _count_bars(axes[2], per_peak, colour="tab:orange", xlabel="genes a peak is selected for (within a cell type)",
                ylabel="selected peaks",
                title=f"Shared peaks: {100 * shared:.1f}% of {len(per_peak)} selected for 2 or more genes")
    fig.tight_layout()
    _save(fig, path)
