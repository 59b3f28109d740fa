"""Genome-browser-style figure of one region: genes, Hi-C from the TSS, selected peaks linked to the TSS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..plots import _pyplot, _save

__all__ = ["genome_track_figure", "track_region"]

TARGET_COLOUR, GENE_COLOUR, SELECTED_COLOUR, PEAK_COLOUR = "#d62728", "#606060", "#1f5fbf", "#b0b0b0"
KIND_COLOURS = {"promoter": "#9467bd", "enhancer": "#2ca02c", "redundant": "#ff7f0e", "indirect": "#8c564b"}
MAX_GENE_ROWS, N_RANK_LABELS = 10, 5


def track_region(tss_position: int, selected_starts_ends: list[tuple[int, int]], *, min_width: int = 50_000,
                 pad_fraction: float = 0.1, chrom_size: int | None = None) -> tuple[int, int]:
    """Region covering the TSS and the selected peaks, padded by pad_fraction of its span on each side, widened
    to min_width around its centre, shifted (then clipped) to stay within [0, chrom_size].

    Parameters
    ----------
    tss_position
        The TSS (bp).
    selected_starts_ends
        (start, end) of each selected peak on the TSS's chromosome.
    min_width
        Smallest width of the region in bp.
    pad_fraction
        Padding on each side, as a fraction of the span of the TSS and peaks.
    chrom_size
        Length of the chromosome; no upper bound when None.

    Returns
    -------
    tuple of int
        (start, end) of the region, start rounded down and end up.
    """
    lo = min([tss_position] + [int(s) for s, _ in selected_starts_ends])
    hi = max([tss_position] + [int(e) for _, e in selected_starts_ends])
    lo, hi = lo - pad_fraction * (hi - lo), hi + pad_fraction * (hi - lo)
    if hi - lo < min_width:
        centre = (lo + hi) / 2
        lo, hi = centre - min_width / 2, centre + min_width / 2
    if lo < 0:
        lo, hi = 0, hi - lo
    if chrom_size is not None and hi > chrom_size:
        lo, hi = max(0, lo - (hi - chrom_size)), chrom_size
    return int(np.floor(lo)), int(np.ceil(hi))


def _in_region(frame: pd.DataFrame | None, chrom: str, start: int, end: int) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame(columns=["chrom", "start", "end"])
    return frame[(frame["chrom"].astype(str) == chrom) & (frame["end"] > start) & (frame["start"] < end)]


def _legend(ax, **kwargs) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, **kwargs)


def _bars(ax, frame: pd.DataFrame, y: float, height: float, colour, lw: float, label: str | None = None) -> None:
    """Intervals as boxes plus a minimum-width tick at their midpoint (a 500 bp peak is < 1 pixel wide)."""
    ax.broken_barh(list(zip(frame["start"], frame["end"] - frame["start"])), (y, height), color=colour)
    ax.vlines((frame["start"] + frame["end"]) / 2, y, y + height, color=colour, lw=lw, label=label)


def _gene_rows(models: pd.DataFrame, start: int, end: int) -> list[tuple]:
    """(row, start, end, label x, name, strand, exons) per gene, packed greedily into rows so that no two genes
    overlap, names (centred over the visible part) included."""
    width, genes, row_ends = end - start, [], []
    for name, block in models.groupby("gene", sort=False):
        body = block[block["feature"] == "gene"]
        body = block if body.empty else body
        g_lo, g_hi = int(body["start"].min()), int(body["end"].max())
        mid = (max(g_lo, start) + min(g_hi, end)) / 2
        half_label = 0.0034 * width * (len(str(name)) + 2)  # half the text width at fontsize 7, 11-inch figure
        genes.append((min(g_lo, mid - half_label), max(g_hi, mid + half_label), g_lo, g_hi, mid, str(name),
                      block["strand"].iloc[0], block[block["feature"] == "exon"]))
    laid_out = []
    for lo_ext, hi_ext, *gene in sorted(genes, key=lambda g: g[0]):
        row = next((i for i, last in enumerate(row_ends) if lo_ext > last + 0.005 * width), len(row_ends))
        row_ends[row:row + 1] = [hi_ext]
        laid_out.append((row, *gene))
    return laid_out


def _draw_genes(ax, genes: list[tuple], target: str, start: int, end: int) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    for row, g_lo, g_hi, mid, name, strand, exons in genes:
        y, colour = min(row, MAX_GENE_ROWS - 1), TARGET_COLOUR if name == target else GENE_COLOUR
        ax.plot([g_lo, g_hi], [y, y], color=colour, lw=1)
        blocks = [(s, e - s) for s, e in zip(exons["start"], exons["end"])] or [(g_lo, g_hi - g_lo)]
        ax.broken_barh(blocks, (y - 0.2, 0.4), facecolors=colour, edgecolors=colour, linewidth=0.5)
        lo, hi = max(g_lo, start), min(g_hi, end)
        chevrons = np.linspace(lo, hi, max(int((hi - lo) / (end - start) * 60), 0) + 2)[1:-1]
        ax.plot(chevrons, np.full(len(chevrons), y), ls="none", marker="<" if strand == "-" else ">",
                ms=3.5, mfc="none", mec=colour, mew=0.8)
        if row < MAX_GENE_ROWS:  # genes overflowing the last row are drawn there without a name
            ax.text(mid, y - 0.25, name, ha="center", va="bottom", fontsize=7, color=colour, clip_on=True,
                    fontweight="bold" if name == target else "normal")
    ax.set_ylim(min(max((g[0] for g in genes), default=0) + 1, MAX_GENE_ROWS) - 0.6, -0.6)
    if not genes:
        ax.text(0.5, 0.5, "no annotated genes in region", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color="grey")
    _legend(ax, handles=[Patch(color=TARGET_COLOUR, label=f"target gene ({target})"),
                         Patch(color=GENE_COLOUR, label="other genes"),
                         Line2D([], [], color=GENE_COLOUR, marker=">", mfc="none", ms=4,
                                label="box = exon, line = intron,\n▷ / ◁ = strand")])


def _draw_peaks(ax, peaks: pd.DataFrame, selected: pd.DataFrame, width: int) -> None:
    _bars(ax, peaks, 0.15, 0.3, PEAK_COLOUR, 0.8, f"consensus peaks ({len(peaks)})")
    if selected.empty:
        ax.text(0.5, 0.8, "no selected peaks in region", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color="grey")
    else:
        _bars(ax, selected, 0.05, 0.5, SELECTED_COLOUR, 1.8,
              f"selected peaks ({len(selected)}; number = rank, 1 = best)")
        top = selected.nsmallest(N_RANK_LABELS, "rank").sort_values("start")
        clusters: list[list[tuple[float, int]]] = []
        for mid, rank in zip((top["start"] + top["end"]) / 2, top["rank"]):  # one label for peaks too close
            if clusters and mid - clusters[-1][-1][0] < 0.02 * width:
                clusters[-1].append((mid, int(rank)))
            else:
                clusters.append([(mid, int(rank))])
        for cluster in clusters:
            text = ",".join(str(rank) for rank in sorted(r for _, r in cluster))
            ax.text(np.mean([m for m, _ in cluster]), 0.6, text, ha="center", va="bottom", fontsize=7,
                    color=SELECTED_COLOUR, fontweight="bold")
    ax.set_ylim(0, 1.2)
    _legend(ax)


def _draw_arcs(ax, selected: pd.DataFrame, tss_pos: int) -> None:
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    ordered = selected.sort_values("rank", ascending=False)  # best rank drawn last, on top
    mids = ((ordered["start"] + ordered["end"]) / 2).to_numpy(dtype=float)
    distance = np.abs(mids - tss_pos)
    ranks = ordered["rank"].to_numpy(dtype=float)
    score = 1.0 - (ranks - ranks.min(initial=0)) / max(np.ptp(ranks) if len(ranks) else 0, 1.0)  # 1 best, 0 worst
    heights = np.sqrt(distance / max(distance.max(initial=0), 1))  # sqrt: short links stay visible
    theta = np.linspace(0, np.pi, 60)
    lines = [np.column_stack([(m + tss_pos) / 2 - (tss_pos - m) / 2 * np.cos(theta), h * np.sin(theta)])
             for m, h in zip(mids, heights)]
    if lines:
        colours = [(0.12, 0.37, 0.75, 0.35 + 0.55 * s) for s in score]
        ax.add_collection(LineCollection(lines, colors=colours, linewidths=0.8 + 2.2 * score))
    else:
        ax.text(0.5, 0.5, "no selected peak in region on the TSS chromosome", transform=ax.transAxes,
                ha="center", va="center", fontsize=8, color="grey")
    ax.set_ylim(0, 1.22)
    link = Line2D([], [], color=SELECTED_COLOUR, lw=2.5, label="selected peak – TSS link\n(thicker = better rank)")
    _legend(ax, handles=[link, Line2D([], [], color=TARGET_COLOUR, ls="--", lw=1, label="target TSS")])


def _draw_hic(ax, contacts: pd.DataFrame, tss_pos: int) -> None:
    bins = contacts.sort_values("start")
    values = bins["contact"].to_numpy(dtype=float)
    positive = values[np.isfinite(values) & (values > 0)]
    log = positive.max() / positive.min() > 100 if positive.size else False
    base = positive.min() / 2 if log else 0.0
    x = np.column_stack([bins["start"], bins["end"]]).ravel()
    y = np.repeat(np.where(values > 0, values, base) if log else values, 2)  # NaN stays NaN: a gap
    ax.fill_between(x, y, base, color="#7f7f7f", alpha=0.35, lw=0)
    ax.plot(x, y, color="#404040", lw=0.8)
    at_tss = bins[(bins["start"] <= tss_pos) & (bins["end"] > tss_pos)]
    if not at_tss.empty:
        ax.axvspan(at_tss["start"].iloc[0], at_tss["end"].iloc[0], color=TARGET_COLOUR, alpha=0.25,
                   label="TSS bin (viewpoint)")
        _legend(ax)
    if log:
        ax.set_yscale("log")
    ax.set_ylim(bottom=base)
    ax.set_ylabel("Hi-C contact with TSS\n(balanced)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)


def genome_track_figure(path: str | Path, *, region: tuple[str, int, int], gene_models: pd.DataFrame,
                        peaks: pd.DataFrame, selected: pd.DataFrame, target: str, tss: tuple[str, int],
                        contacts: pd.DataFrame | None = None, planted: pd.DataFrame | None = None,
                        title: str = "") -> None:
    """Shared-x tracks of one region: genes, optional Hi-C virtual 4C from the TSS bin, arcs from selected peaks
    to the TSS, peaks (selected ones ranked), optional planted CREs; a dashed line marks the TSS.

    Parameters
    ----------
    path
        PNG file to write.
    region
        (chrom, start, end) shown.
    gene_models
        Gene models (:func:`grids.genome.read_gene_models`); the genes in the region are drawn, the
        target in red.
    peaks
        Consensus peaks: chrom, start, end.
    selected
        The selected peaks: chrom, start, end, rank (1 = best; the five best are numbered).
    target
        The target gene (highlighted, and named in the default title).
    tss
        (chrom, position) of the target's TSS; the links are drawn only when it lies on the region's
        chromosome.
    contacts
        Hi-C contacts with the TSS bin (:func:`grids.evaluate.hic.tss_contacts`: start, end, contact);
        no Hi-C track when None or no finite contact lies in the region.
    planted
        Planted CREs (chrom, start, end, kind) of simulated data; no such track when None or none lies
        in the region.
    title
        Figure title; ``"{target}: {chrom}:{start}-{end}"`` when empty.

    Raises
    ------
    ValueError
        When the region is empty (start >= end).
    """
    from matplotlib.ticker import FuncFormatter

    chrom, start, end = str(region[0]), int(region[1]), int(region[2])
    if start >= end:
        raise ValueError(f"empty region {chrom}:{start}-{end} (start must be < end)")
    tss_chrom, tss_pos = str(tss[0]), int(tss[1])
    chosen = _in_region(selected, chrom, start, end)
    planted = _in_region(planted, chrom, start, end) if planted is not None else None
    if contacts is not None:
        contacts = contacts[(contacts["end"] > start) & (contacts["start"] < end)]
        contacts = contacts if np.isfinite(contacts["contact"].to_numpy(dtype=float)).any() else None
    genes = _gene_rows(_in_region(gene_models, chrom, start, end), start, end)
    panels = [("genes", 0.3 + 0.38 * min(max((g[0] for g in genes), default=0) + 1.5, MAX_GENE_ROWS))]
    panels += [("hic", 1.5)] if contacts is not None else []
    panels += [("arcs", 1.3), ("peaks", 0.8)] + ([("planted", 0.45)] if planted is not None and len(planted) else [])
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(11, 0.6 + sum(h for _, h in panels)),
                             gridspec_kw={"height_ratios": [h for _, h in panels], "hspace": 0.12})
    ax_of = {name: ax for (name, _), ax in zip(panels, np.atleast_1d(axes))}
    _draw_genes(ax_of["genes"], genes, target, start, end)
    if contacts is not None:
        _draw_hic(ax_of["hic"], contacts, tss_pos)
    _draw_arcs(ax_of["arcs"], chosen if tss_chrom == chrom else chosen.iloc[:0], tss_pos)
    _draw_peaks(ax_of["peaks"], _in_region(peaks, chrom, start, end), chosen, end - start)
    if tss_chrom != chrom or not start <= tss_pos <= end:  # say where the TSS is
        right = tss_chrom == chrom and tss_pos > end
        note = (f"TSS at {tss_pos / 1e6:.3f} Mb →" if right else f"← TSS at {tss_pos / 1e6:.3f} Mb"
                ) if tss_chrom == chrom else f"TSS on {tss_chrom}"
        ax_of["arcs"].text(float(right), 0.99, note, transform=ax_of["arcs"].transAxes, va="top", fontsize=8,
                           ha="right" if right else "left", color=TARGET_COLOUR)
    if "planted" in ax_of:
        order = {kind: i for i, kind in enumerate(KIND_COLOURS)}
        for kind, block in sorted(planted.groupby("kind"), key=lambda item: order.get(str(item[0]), len(order))):
            _bars(ax_of["planted"], block, 0.2, 0.6, KIND_COLOURS.get(str(kind), "black"), 1.8, str(kind))
        ax_of["planted"].set_ylim(0, 1)
        _legend(ax_of["planted"], ncol=2, title="planted CREs (simulated truth)", title_fontsize=7)
    labels = {"genes": "genes", "arcs": "links", "peaks": "peaks", "planted": "planted"}
    for name, ax in ax_of.items():
        if name in labels:  # horizontal, right-aligned next to the axis (fig.align_ylabels is slow)
            ax.set_ylabel(labels[name], rotation=0, ha="right", va="center", fontsize=8)
            ax.yaxis.set_label_coords(-0.01, 0.5)
            ax.set_yticks([])
        for side in ("top", "right") + (("left",) if name != "hic" else ()):
            ax.spines[side].set_visible(False)
        if tss_chrom == chrom and start <= tss_pos <= end:
            ax.axvline(tss_pos, color=TARGET_COLOUR, ls="--", lw=0.9, zorder=0)
    bottom = list(ax_of.values())[-1]
    bottom.set_xlim(start, end)
    step = np.diff(bottom.get_xticks()[:2])[0] / 1e6 if len(bottom.get_xticks()) > 1 else (end - start) / 1e6
    decimals = max(0, int(-np.floor(np.log10(step)))) if step > 0 else 3
    decimals += not np.isclose(step * 10**decimals, round(step * 10**decimals))  # 0.025 Mb steps: 3 decimals
    bottom.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:.{decimals}f}"))
    bottom.set_xlabel(f"{chrom} position (Mb)")
    list(ax_of.values())[0].set_title(title or f"{target}: {chrom}:{start:,}-{end:,}", fontsize=10)
    _save(fig, path)
