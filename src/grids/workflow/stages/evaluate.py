"""The evaluate rules: one function per rule, reading the explain shards and writing tables + figures."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from grids.evaluate.selections import KEY, read_selections
from grids.explain.tasks import file_stem
from grids.io import write_tsv as _write_tsv

__all__ = ["evaluation_cells", "run_expression_drop", "run_cross_celltype", "run_hit_ratio", "run_hic_validation",
           "run_ground_truth", "run_redundancy_calls", "run_track_figures", "marker_genes", "HIC_COLUMNS"]

log = logging.getLogger(__name__)

HIC_COLUMNS = [*KEY, "n_peaks", "obs_exp", "p_value", "observed", "expected", "status"]


def write_tsv(frame: pd.DataFrame, path: str) -> None:
    """Evaluation tables with six significant digits: enough for every metric, and readable."""
    _write_tsv(frame, path, float_format="%.6g")


def evaluation_cells(model: str, paired: str, split: str):
    """The surrogate, and the paired data's cells of one split with their cell-type names.

    Parameters
    ----------
    model
        The surrogate (``model.pt``).
    paired
        The paired data (``paired.h5mu``) it was trained on.
    split
        The split of cells to evaluate on ('train', 'val' or 'test').

    Returns
    -------
    saved : grids.surrogate.saved.SavedSurrogate
        The loaded surrogate.
    data : grids.surrogate.data.PairedData
        The paired data.
    X : scipy.sparse.csr_matrix
        The split's cells x peaks, in data order.
    names : numpy.ndarray
        The cell-type name of each row of ``X``.

    Raises
    ------
    grids.surrogate.saved.ModelMismatchError
        When the surrogate's peaks or genes are not the data's (a ValueError).
    ValueError
        When the split has no cells.
    """
    from grids.surrogate import load_paired, load_surrogate

    saved = load_surrogate(model)
    data = load_paired(paired)
    saved.check_compatible(list(map(str, data.peaks.index)), data.genes, source=paired)
    rows = data.rows(split)
    if len(rows) == 0:
        raise ValueError(f"{paired} has no cells in split {split!r} to evaluate on")
    names = np.asarray(data.cell_types, dtype=object)[data.cell_type[rows]]
    return saved, data, data.atac[rows], names


def run_expression_drop(*, model: str, paired: str, tables: Sequence[str], metas: Sequence[str], split: str,
                        out_table: str, out_genes: str, out_sets: str, out_tests: str, out_figure: str) -> pd.DataFrame:
    """Avg Δ / Rel Δ per selection on held-out cells, the paper-style wide tables, the paired
    one-sided t-tests of GRIDS against each baseline, and the heatmap figure.

    Parameters
    ----------
    model
        The surrogate (``model.pt``).
    paired
        The paired data (``paired.h5mu``).
    tables
        Explain shard tables of every method.
    metas
        Their JSON metadata (the genes of each target).
    split
        The cells to evaluate on (:func:`evaluation_cells`).
    out_table
        TSV of the drops per selection (:func:`grids.evaluate.drop.expression_drop`).
    out_genes
        TSV of the wide table of the per-gene targets (:func:`grids.evaluate.drop.wide_table`).
    out_sets
        TSV of the wide table of the per-cell-type gene sets.
    out_tests
        TSV of the paired tests of 'grids' against each baseline (:func:`grids.evaluate.drop.paired_tests`).
    out_figure
        PNG of the heatmaps (:func:`grids.evaluate.figures.drop_figure`).

    Returns
    -------
    pandas.DataFrame
        The drops written to ``out_table``.

    Raises
    ------
    ValueError
        As :func:`evaluation_cells`, or when a selection's cell type has no cells in the split.
    """
    from grids.evaluate.drop import expression_drop, paired_tests, wide_table
    from grids.evaluate.figures import drop_figure

    selections, members = read_selections(tables, metas)
    saved, data, X, names = evaluation_cells(model, paired, split)
    drops = expression_drop(saved.predict, X, names, genes=data.genes, selections=selections, members=members,
                            stem=file_stem)
    write_tsv(drops, out_table)
    write_tsv(wide_table(drops, "gene"), out_genes)
    write_tsv(wide_table(drops, "set"), out_sets)
    write_tsv(paired_tests(drops), out_tests)
    drop_figure(drops, out_figure)
    return drops


def marker_genes(targets: pd.DataFrame, members: Mapping[str, Sequence[str]], cell_types: Sequence[str],
                 *, set_target: str) -> dict[str, list[str]]:
    """Marker genes per cell type: its per-gene targets (targets.tsv), else its top-N gene set.

    Parameters
    ----------
    targets
        The targets table (config/targets.tsv: cell_type, gene).
    members
        File stem -> the target's genes, from the explain metas.
    cell_types
        The cell types to find markers for.
    set_target
        Name of the per-cell-type target, e.g. ``top100`` (:func:`grids.explain.tasks.set_target`).

    Returns
    -------
    dict
        Cell type -> its marker genes, in the order of ``cell_types``; a cell type with neither
        per-gene targets nor a gene set is left out.
    """
    markers = {}
    for cell_type in cell_types:
        genes = targets.loc[targets["cell_type"] == cell_type, "gene"].astype(str).tolist()
        markers[cell_type] = genes or list(members.get(file_stem(cell_type, set_target), []))
    return {c: g for c, g in markers.items() if g}


def run_cross_celltype(*, model: str, paired: str, tables: Sequence[str], metas: Sequence[str], targets: str,
                       split: str, method: str, set_target: str, out_table: str, out_figure: str) -> pd.DataFrame:
    """The cross-cell-type matrix (paper Figure 3) as a long TSV and a heatmap.

    Parameters
    ----------
    model
        The surrogate (``model.pt``).
    paired
        The paired data (``paired.h5mu``).
    tables
        Explain shard tables.
    metas
        Their JSON metadata (the genes of each target).
    targets
        The targets table (config/targets.tsv) the marker genes come from (:func:`marker_genes`).
    split
        The cells to evaluate on (:func:`evaluation_cells`).
    method
        The method whose per-cell-type sets are applied.
    set_target
        Name of the per-cell-type target, e.g. ``top100``.
    out_table
        TSV of the long matrix (:func:`grids.evaluate.cross.cross_celltype`).
    out_figure
        PNG of the heatmap (:func:`grids.evaluate.figures.cross_celltype_figure`).

    Returns
    -------
    pandas.DataFrame
        The matrix written to ``out_table``.

    Raises
    ------
    ValueError
        As :func:`evaluation_cells` and :func:`grids.evaluate.cross.cross_celltype`.
    """
    from grids.evaluate.cross import cross_celltype
    from grids.evaluate.figures import cross_celltype_figure
    from grids.workflow.config import read_targets

    selections, members = read_selections(tables, metas)
    saved, data, X, names = evaluation_cells(model, paired, split)
    markers = marker_genes(read_targets(targets), members, data.cell_types, set_target=set_target)
    cross = cross_celltype(saved.predict, X, names, genes=data.genes, selections=selections, markers=markers,
                           method=method)
    write_tsv(cross, out_table)
    cross_celltype_figure(cross, out_figure)
    return cross


def run_hit_ratio(*, tables: Sequence[str], metas: Sequence[str], gtf: str, soft_distance: int, out_table: str,
                  out_targets: str, out_figure: str) -> pd.DataFrame:
    """HR / SHR per method and L (plus the per-target hits) and a bar chart.

    Parameters
    ----------
    tables
        Explain shard tables of every method.
    metas
        Their JSON metadata.
    gtf
        The GTF whose gene records give the gene bodies.
    soft_distance
        Largest distance in bp from the gene body for a soft hit.
    out_table
        TSV of the hit ratios (:func:`grids.evaluate.hits.hit_ratios`).
    out_targets
        TSV of the per-target hits (:func:`grids.evaluate.hits.target_hits`).
    out_figure
        PNG of the bar chart (:func:`grids.evaluate.figures.hit_ratio_figure`).

    Returns
    -------
    pandas.DataFrame
        The hit ratios written to ``out_table``: every method (first-seen order) at every L
        (ascending).
    """
    from grids.evaluate.figures import hit_ratio_figure
    from grids.evaluate.hits import gene_bodies, hit_ratios, target_hits
    from grids.genome import read_gene_models

    selections, _ = read_selections(tables, metas)
    per_target = target_hits(selections, gene_bodies(read_gene_models(gtf)), soft_distance=soft_distance)
    ratios = hit_ratios(per_target, list(dict.fromkeys(selections["method"])), sorted(selections["L"].unique()))
    write_tsv(per_target, out_targets)
    write_tsv(ratios, out_table)
    hit_ratio_figure(ratios, out_figure, soft_distance=soft_distance)
    return ratios


def _hic_pairs(selections: pd.DataFrame, members: Mapping[str, Sequence[str]],
               tss: Mapping[str, tuple[str, int]]) -> pd.DataFrame:
    """One row per selected peak and its target TSS (a gene set: the nearest member on the
    peak's chromosome), keyed by selection."""
    from grids.explain.tracks import link_targets

    frames = []
    for key, group in selections[selections["status"] == "ok"].groupby(KEY, sort=False):
        genes = members.get(file_stem(key[2], key[3]), [key[3]])
        linked = link_targets(group, genes, tss)
        frames.append(pd.DataFrame({
            "key": "\t".join(map(str, key)), "peak_chrom": group["chrom"].to_numpy(),
            "peak_start": group["start"].to_numpy(), "peak_end": group["end"].to_numpy(),
            "tss_chrom": [tss[g][0] if g else "" for g in linked],
            "tss_pos": [tss[g][1] if g else -1 for g in linked]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["key", "peak_chrom", "peak_start", "peak_end", "tss_chrom", "tss_pos"])


def run_hic_validation(*, model: str, tables: Sequence[str], metas: Sequence[str], gtf: str,
                       hic_files: Mapping[str, str], resolution: int | None, n_draws: int, seed: int,
                       out_table: str, out_figure: str) -> pd.DataFrame:
    """Observed/expected Hi-C contact of each selection's peaks with its target TSS against
    distance-matched consensus peaks, per selection; explicit rows where no Hi-C covers it.

    Parameters
    ----------
    model
        The surrogate (``model.pt``); its consensus peaks are the background.
    tables
        Explain shard tables of every method.
    metas
        Their JSON metadata (the genes of each set target; a set's peak is paired with the nearest
        member TSS on its chromosome).
    gtf
        The GTF that gives each gene's TSS.
    hic_files
        Cell type -> its Hi-C file (:func:`grids.evaluate.hic.open_cooler`); the selections of a cell
        type without one get 'not covered' rows.
    resolution
        Bin size of the Hi-C files (see :func:`grids.evaluate.hic.open_cooler`).
    n_draws
        Background draws per selection.
    seed
        Seed of the draws.
    out_table
        TSV of the validation.
    out_figure
        PNG of the figure (:func:`grids.evaluate.figures.hic_figure`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`HIC_COLUMNS`, one row per selection, grouped by cell type (first-seen order);
        a selection that did not run keeps its status (see :func:`grids.evaluate.hic.validate_pairs`).

    Raises
    ------
    FileNotFoundError, ValueError
        When a Hi-C file is missing or unusable (:func:`grids.evaluate.hic.open_cooler`).
    """
    from grids.evaluate.figures import hic_figure
    from grids.evaluate.hic import open_cooler, validate_pairs
    from grids.genome import tss_map
    from grids.surrogate import load_surrogate

    selections, members = read_selections(tables, metas)
    background = load_surrogate(model).peaks.reset_index(drop=True)[["chrom", "start", "end"]]
    pairs = _hic_pairs(selections, members, tss_map(gtf))
    rows = []
    keys = selections.drop_duplicates(KEY)
    for cell_type, part in keys.groupby("cell_type", sort=False):
        part_keys = ["\t".join(map(str, k)) for k in part[KEY].itertuples(index=False)]
        status = dict(zip(part_keys, part["status"]))
        if cell_type not in hic_files:
            result = pd.DataFrame({"key": part_keys, "n_peaks": 0,
                                   "status": f"not covered: no Hi-C file for cell type {cell_type!r} in hic.files"})
        else:
            clr = open_cooler(hic_files[cell_type], resolution)
            result = validate_pairs(pairs[pairs["key"].isin(part_keys)], background, clr, n_draws=n_draws,
                                    seed=seed, source=hic_files[cell_type])
            result = result.set_index("key").reindex(part_keys).reset_index()
            # Selections that did not run keep their reason.
            result["status"] = [status[k] if status[k] != "ok" else s for k, s in zip(result["key"], result["status"])]
            result["n_peaks"] = result["n_peaks"].fillna(0).astype(int)
        rows.append(result)
    table = pd.concat(rows, ignore_index=True)
    table[KEY] = table["key"].str.split("\t", expand=True).to_numpy()
    table["L"] = table["L"].astype(int)
    table = table.reindex(columns=HIC_COLUMNS)
    write_tsv(table, out_table)
    hic_figure(table, out_figure)
    return table


def run_ground_truth(*, model: str, paired: str, tables: Sequence[str], metas: Sequence[str], truth: str, split: str,
                     out_table: str, out_redundancy: str, out_figure: str, out_redundancy_figure: str,
                     out_redundancy_summary: str | None = None) -> pd.DataFrame:
    """Precision / recall against planted links, and the redundancy check (per planted OR / AND /
    additive group, against the perfect-OR ratio the observed accessibility allows) with its
    one-row-per-logic summary, with figures.

    Parameters
    ----------
    model
        The surrogate (``model.pt``).
    paired
        The paired (simulated) data (``paired.h5mu``).
    tables
        Explain shard tables of every method.
    metas
        Their JSON metadata (the genes of each target).
    truth
        The planted links (:func:`grids.evaluate.truth.read_truth`).
    split
        The cells to evaluate on (:func:`evaluation_cells`).
    out_table
        TSV of precision and recall (:func:`grids.evaluate.truth.ground_truth`).
    out_redundancy
        TSV of the redundancy check (:func:`grids.evaluate.truth.redundancy_check`).
    out_figure
        PNG of precision and recall (:func:`grids.evaluate.figures.ground_truth_figure`).
    out_redundancy_figure
        PNG of the redundancy check (:func:`grids.evaluate.figures.redundancy_figure`).
    out_redundancy_summary
        TSV of its summary (:func:`grids.evaluate.truth.redundancy_summary`); not written when None or
        empty.

    Returns
    -------
    pandas.DataFrame
        The precision and recall written to ``out_table``.

    Raises
    ------
    ValueError
        As :func:`evaluation_cells` and :func:`grids.evaluate.truth.read_truth`.
    """
    from grids.evaluate.figures import ground_truth_figure, redundancy_figure
    from grids.evaluate.truth import ground_truth, read_truth, redundancy_check, redundancy_summary

    selections, members = read_selections(tables, metas)
    planted = read_truth(truth)
    saved, data, X, names = evaluation_cells(model, paired, split)
    peaks = data.peaks.reset_index(drop=True)
    recovery = ground_truth(selections, members, planted, peaks=peaks, stem=file_stem)
    redundancy = redundancy_check(saved.predict, X, names, genes=data.genes, truth=planted, peaks=peaks)
    write_tsv(recovery, out_table)
    write_tsv(redundancy, out_redundancy)
    if out_redundancy_summary:
        write_tsv(redundancy_summary(redundancy), out_redundancy_summary)
    ground_truth_figure(recovery, out_figure)
    redundancy_figure(redundancy, out_redundancy_figure)
    return recovery


def run_redundancy_calls(*, paired: str, tables: Sequence[str], metas: Sequence[str], truth: str,
                         maps: Sequence[str], methods: Sequence[str], split: str, min_cells: int, out_calls: str,
                         out_recovery: str, out_figure: str) -> pd.DataFrame:
    """The redundancy maps' called pairs against the planted OR groups (precision, recall, recall
    within the selection) per method and L, and per explain method the share of per-gene targets
    whose planted OR groups the selection recovers in full, with a figure (simulated data).

    Parameters
    ----------
    paired
        The paired (simulated) data (``paired.h5mu``).
    tables
        Explain shard tables of every method.
    metas
        Their JSON metadata (the genes of each target).
    truth
        The planted links (:func:`grids.evaluate.truth.read_truth`).
    maps
        Redundancy map files (:func:`grids.evaluate.truth.read_redundancy_maps`).
    methods
        The methods the redundancy rule ran, in the order of the rows.
    split
        The held-out cells that decide which planted pairs are callable.
    min_cells
        Fewest of those cells with both members open for a pair to be callable.
    out_calls
        TSV of precision and recall of the calls (:func:`grids.evaluate.truth.redundancy_calls`).
    out_recovery
        TSV of the OR-group recovery (:func:`grids.evaluate.truth.group_recovery`).
    out_figure
        PNG of both (:func:`grids.evaluate.figures.redundancy_calls_figure`).

    Returns
    -------
    pandas.DataFrame
        The calls written to ``out_calls``.

    Raises
    ------
    ValueError
        When the split has no cells, or a map is of a method not in ``methods``.
    """
    from grids.evaluate.figures import redundancy_calls_figure
    from grids.evaluate.truth import call_outcomes, group_recovery, read_redundancy_maps, read_truth, redundancy_calls
    from grids.surrogate import load_paired

    selections, members = read_selections(tables, metas)
    planted = read_truth(truth)
    data = load_paired(paired)
    rows = data.rows(split)
    if len(rows) == 0:
        raise ValueError(f"{paired} has no cells in split {split!r} to evaluate on")
    names = np.asarray(data.cell_types, dtype=object)[data.cell_type[rows]]
    peaks = data.peaks.reset_index(drop=True)
    keys = selections.drop_duplicates(KEY)
    targets = {file_stem(c, t): (c, t, k) for c, t, k in zip(keys["cell_type"], keys["target"], keys["kind"])}
    status = {tuple(k): s for k, s in zip(keys[KEY].itertuples(index=False), keys["status"])}
    map_table, pairs = read_redundancy_maps(maps, targets=targets, cell_types=data.cell_types)
    unknown = sorted(set(map_table["method"]) - set(methods))
    if unknown:
        raise ValueError(f"redundancy maps of {', '.join(unknown)}, a method the redundancy rule did not run "
                         f"(methods: {', '.join(methods)})")
    outcomes = call_outcomes(map_table, pairs, planted, peaks=peaks, X=data.atac[rows], cell_type=names,
                             members=members, min_cells=min_cells, status=status)
    calls = redundancy_calls(outcomes, [m for m in methods if m in set(map_table["method"])])
    recovery = group_recovery(selections, planted, peaks)
    write_tsv(calls, out_calls)
    write_tsv(recovery, out_recovery)
    redundancy_calls_figure(calls, recovery, out_figure)
    log.info("redundancy calls: %d maps, %d pairs called redundant", len(map_table), int(outcomes["n_called"].sum()))
    return calls


def run_track_figures(*, model: str, tables: Sequence[str], gtf: str, figures: Mapping[str, str], method: str, L: int,
                      hic_files: Mapping[str, str], resolution: int | None, truth: str = "",
                      window: int = 500_000) -> None:
    """A genome-track figure per per-gene target: gene models, peaks, the method's selected peaks
    at this L with arcs to the TSS, planted CREs (simulated data) and Hi-C contacts of the TSS.
    ``figures`` maps ``{cell_type}__{gene}`` stems to output PNGs.

    Parameters
    ----------
    model
        The surrogate (``model.pt``); its consensus peaks are drawn.
    tables
        Explain shard tables of ``method``.
    gtf
        The GTF of the gene models and TSSs.
    figures
        File stem -> the PNG to write; only these targets are drawn.
    method
        The method whose selections are drawn (named in the titles).
    L
        The subset size drawn.
    hic_files
        Cell type -> its Hi-C file; no Hi-C track for a cell type without one.
    resolution
        Bin size of the Hi-C files (see :func:`grids.evaluate.hic.open_cooler`).
    truth
        The planted links of simulated data, drawn as a track; none when empty.
    window
        Only the selected peaks within this many bp of the TSS decide the region shown.

    Raises
    ------
    ValueError
        When a target has no gene record in the GTF, or a stem of ``figures`` has no per-gene selection
        at ``L``.
    """
    from grids.evaluate.hic import open_cooler, tss_contacts
    from grids.evaluate.track_figure import genome_track_figure, track_region
    from grids.genome import read_gene_models, tss_map
    from grids.surrogate import load_surrogate

    selections, _ = read_selections(tables, [])
    selections = selections[(selections["L"] == L) & (selections["kind"] == "gene")]
    models = read_gene_models(gtf)
    tss = tss_map(gtf)
    peaks = load_surrogate(model).peaks.reset_index(drop=True)
    planted = None
    if truth:
        from grids.evaluate.truth import read_truth

        planted = read_truth(truth)
    coolers = {}
    for (cell_type, gene), chosen in selections.groupby(["cell_type", "target"], sort=False):
        stem = file_stem(cell_type, gene)
        if stem not in figures:
            continue
        if gene not in tss:
            raise ValueError(f"{gtf}: no gene record for target {gene!r}; cannot draw its genome track")
        chrom, position = tss[gene]
        chosen = chosen[(chosen["status"] == "ok") & (chosen["chrom"] == chrom)]
        # The region spans the selected peaks within the cis window; farther ones would shrink
        # the locus to unreadable ticks (they stay in the selection tables and tracks).
        near = chosen[((chosen["start"] + chosen["end"]) // 2 - position).abs() <= window]
        region = track_region(position, list(zip(near["start"], near["end"])))
        contacts = None
        if cell_type in hic_files:
            if cell_type not in coolers:
                coolers[cell_type] = open_cooler(hic_files[cell_type], resolution)
            sizes = coolers[cell_type].chromsizes
            if chrom in sizes.index and position < sizes[chrom]:  # subset files may stop short of the TSS
                contacts = tss_contacts(coolers[cell_type], chrom, position)
        genes_planted = None
        if planted is not None:
            here = planted[(planted["gene"] == gene) & planted["active"].map(lambda a: cell_type in a)]
            genes_planted = here[["chrom", "start", "end", "kind"]]
        genome_track_figure(figures[stem], region=(chrom, *region), gene_models=models, peaks=peaks,
                            selected=chosen[["chrom", "start", "end", "rank"]], target=gene, tss=(chrom, position),
                            contacts=contacts, planted=genes_planted,
                            title=f"{method} L={L}: {gene} in {cell_type}")
    missing = sorted(set(figures) - {file_stem(c, g) for c, g in zip(selections["cell_type"], selections["target"])})
    if missing:
        raise ValueError(f"no {method} selections at L={L} for {', '.join(missing[:5])}")
