"""Figures of the redundancy maps (PNG, Agg backend, for the report)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..plots import _pyplot, _save
from .maps import RedundancyMap

__all__ = ["map_figure", "summary_figure"]


def _short(label: str) -> str:
    """chr1:123456-124000 -> chr1:123.5k, so 16 tick labels stay readable."""
    chrom, _, span = label.partition(":")
    start = span.split("-")[0]
    if not start.isdigit():
        return label
    value = int(start)
    return f"{chrom}:{value / 1e6:.3f}M" if value >= 1_000_000 else f"{chrom}:{value / 1e3:.1f}k"


def _numbers(value: object) -> list[float]:
    """A comma-separated summary cell (read back as text, a float or NaN) as floats."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [float(v) for v in str(value).split(",") if v.strip()]


def map_figure(result: RedundancyMap, path: str | Path, *, title: str) -> None:
    """m x m heatmap: pairwise interaction above the diagonal, necessity on it (diverging, centred
    at 0), redundant pairs boxed with their group; sufficiency as a strip beside the matrix.

    Parameters
    ----------
    result
        The map (:func:`grids.redundancy.maps.redundancy_map`); a map without peaks gives a figure with
        its title and status only.
    path
        PNG file to write.
    title
        Figure title.
    """
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    plt = _pyplot()
    m = len(result.peaks)
    if m == 0:
        fig, ax = plt.subplots(figsize=(5, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title}\n{result.status if result.status != 'ok' else 'no selected peaks'}",
                ha="center", va="center", fontsize=9, wrap=True)
        _save(fig, path)
        return
    matrix = np.full((m, m), np.nan)
    matrix[np.diag_indices(m)] = result.necessity
    position = {int(p): i for i, p in enumerate(result.peaks)}
    pairs = result.pairs
    for a, b, value in zip(pairs["peak_index_a"], pairs["peak_index_b"], pairs["interaction"]):
        matrix[position[int(a)], position[int(b)]] = value
    finite = matrix[np.isfinite(matrix)]
    bound = float(np.max(np.abs(finite))) if finite.size else 1.0
    bound = bound if bound > 0 else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)
    size = 2.8 + 0.42 * m
    fig, (ax, strip) = plt.subplots(1, 2, figsize=(size + 1.4, size), gridspec_kw={"width_ratios": [m, 1.2],
                                                                                   "wspace": 0.08})
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu_r", norm=norm)
    ticks = [f"{i + 1}. {_short(label)}" for i, label in enumerate(result.labels)]
    ax.set_xticks(range(m), ticks, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(m), ticks, fontsize=7)
    ax.set_xlabel("peak b (rank)")
    ax.set_ylabel("peak a (rank)")
    for a, b, redundant, group in zip(pairs["peak_index_a"], pairs["peak_index_b"], pairs["redundant"],
                                      pairs["group"]):
        if redundant == "true":
            i, j = position[int(a)], position[int(b)]
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.6))
            dark = abs(norm(matrix[i, j]) - 0.5) > 0.35
            ax.text(j, i, str(group), ha="center", va="center", fontsize=6, color="white" if dark else "black")
    fig.colorbar(image, ax=[ax, strip], shrink=0.7, pad=0.02,
                 label="interaction (above diagonal) / necessity (diagonal)")
    strip.imshow(np.ma.masked_invalid(result.sufficiency[:, None]), cmap="Greens", vmin=0, vmax=1, aspect="auto")
    for i, value in enumerate(result.sufficiency):
        strip.text(0, i, "n/a" if not np.isfinite(value) else f"{value:.2f}", ha="center", va="center", fontsize=6)
    strip.set_xticks([0], ["sufficiency"], rotation=60, ha="right", fontsize=7)
    strip.set_yticks([])
    groups = "; ".join(f"{g.name}: {len(g.members)} peaks protect {100 * g.fraction:.0f}%" for g in result.groups)
    ax.set_title(f"{title}\n{groups or 'no redundant pair'} (boxes: redundant pairs)", fontsize=9)
    _save(fig, path)


def summary_figure(summary: pd.DataFrame, path: str | Path) -> None:
    """Per method and L: the share of each target's expression its redundant groups protect,
    one stacked segment per group (G1 at the bottom), with the group count above each bar.

    Parameters
    ----------
    summary
        Redundancy summary rows (:data:`grids.redundancy.maps.SUMMARY_COLUMNS`); those with status 'ok'
        are drawn, one panel per method and L.
    path
        PNG file to write.
    """
    plt = _pyplot()
    ok = summary[summary["status"] == "ok"]
    panels = list(ok.groupby(["method", "L"], sort=True)) if len(ok) else []
    if not panels:
        fig, ax = plt.subplots(figsize=(5, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, "no redundancy map ran", ha="center", va="center")
        _save(fig, path)
        return
    width = max(6.0, 0.32 * max(len(part) for _, part in panels) + 2)
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 3.2 * len(panels)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ((method, L), part) in zip(axes[:, 0], panels):
        x = np.arange(len(part))
        bottom = np.zeros(len(part))
        fractions = [_numbers(f) for f in part["protected_fraction"]]
        for g in range(max((len(f) for f in fractions), default=0)):
            heights = np.array([f[g] if g < len(f) and np.isfinite(f[g]) else 0.0 for f in fractions])
            ax.bar(x, heights, 0.7, bottom=bottom, color=colours[g % len(colours)],
                   label=f"G{g + 1}" if g < 6 else None)
            bottom += heights
        for i, n in enumerate(part["n_groups"].astype(int)):
            ax.text(i, bottom[i] + 0.02, str(n), ha="center", va="bottom", fontsize=7)
        labels = [f"{c} / {t}" for c, t in zip(part["cell_type"], part["target"])]
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, max(1.0, float(bottom.max()) + 0.12))
        ax.set_ylabel("expression protected\n(share of mean before)", fontsize=8)
        ax.set_title(f"{method}, L = {L}", fontsize=9)
        if (part["n_groups"] > 0).any():
            ax.legend(fontsize=7, loc="upper right", title="group", title_fontsize=7)
    fig.suptitle("Redundant groups among the top selected peaks: each group's share of the target's expression\n"
                 "(closed together; one segment per group, number of groups above the bar)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
