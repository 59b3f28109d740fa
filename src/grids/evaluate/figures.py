"""Figures of the evaluation tables (PNG, for the report)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..plots import _pyplot, _save

__all__ = ["drop_figure", "hit_ratio_figure", "hic_figure", "ground_truth_figure", "redundancy_figure",
           "redundancy_calls_figure", "cross_celltype_figure"]

KIND_TITLES = {"gene": "per-gene targets (Table 1)", "set": "per-cell-type gene sets (Table 2)"}


def _method_order(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["method"]))


def _annotated_heatmap(ax, values: pd.DataFrame, *, vmin: float, vmax: float, fmt: str = "{:.1f}",
                       cmap: str = "RdBu_r") -> object:
    """Diverging heatmap centred at 0 with each cell's value written in it (drops in blue)."""
    from matplotlib.colors import TwoSlopeNorm

    norm = TwoSlopeNorm(vcenter=0.0, vmin=min(vmin, -1e-9), vmax=max(vmax, 1e-9))
    image = ax.imshow(np.clip(values.to_numpy(float), vmin, vmax), cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(values.shape[1]), values.columns, rotation=45, ha="right")
    ax.set_yticks(range(values.shape[0]), values.index)
    for (i, j), value in np.ndenumerate(values.to_numpy(float)):
        if np.isfinite(value):
            shade = abs(norm(value) - 0.5) > 0.35
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7, color="white" if shade else "black")
        else:
            ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="0.5")
    return image


def drop_figure(drops: pd.DataFrame, path: str | Path) -> None:
    """Mean Rel Δ (%) on test cells per cell type and method: rows are target kinds, columns L.
    Colours saturate at ±100 % (the annotations give the values).

    Parameters
    ----------
    drops
        Expression drops (:func:`grids.evaluate.drop.expression_drop`); rows with status 'ok' are shown.
    path
        PNG file to write.
    """
    plt = _pyplot()
    ok = drops[drops["status"] == "ok"]
    kinds = [kind for kind in ("gene", "set") if (drops["kind"] == kind).any()]
    Ls = sorted(drops["L"].unique())
    methods = _method_order(drops)
    fig, axes = plt.subplots(len(kinds), len(Ls), figsize=(0.75 * len(methods) * len(Ls) + 2.5, 3.6 * len(kinds) + 0.8),
                             squeeze=False, gridspec_kw={"hspace": 0.55})
    image = None
    for i, kind in enumerate(kinds):
        for j, L in enumerate(Ls):
            part = ok[(ok["kind"] == kind) & (ok["L"] == L)]
            table = part.pivot_table(index="cell_type", columns="method", values="rel_delta_pct", aggfunc="mean")
            table = table.reindex(columns=methods)
            table.loc["Avg."] = table.mean(0)
            image = _annotated_heatmap(axes[i][j], table, vmin=-100.0, vmax=100.0)
            axes[i][j].set_title(f"L = {L}: {KIND_TITLES[kind]}", fontsize=10)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="Rel Δ (%) on test cells")
    fig.suptitle("Predicted expression change after removing each method's selected peaks (more negative = better)",
                 fontsize=11)
    _save(fig, path)


def hit_ratio_figure(hits: pd.DataFrame, path: str | Path, *, soft_distance: int) -> None:
    """HR and SHR (%) per method, one panel per L.

    Parameters
    ----------
    hits
        Hit ratios (:func:`grids.evaluate.hits.hit_ratios`).
    path
        PNG file to write.
    soft_distance
        The soft-hit distance in bp the ratios were computed with (for the legend).
    """
    plt = _pyplot()
    Ls = sorted(hits["L"].unique())
    fig, axes = plt.subplots(1, len(Ls), figsize=(5 * len(Ls), 3.6), squeeze=False, sharey=True)
    for ax, L in zip(axes[0], Ls):
        part = hits[hits["L"] == L].set_index("method")
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["hr_pct"], 0.4, label="HR: overlaps the gene body", color="#3b6ea8")
        ax.bar(x + 0.2, part["shr_pct"], 0.4, label=f"SHR: within {soft_distance / 1e6:g} Mb", color="#9cc3e6")
        ax.set_xticks(x, part.index, rotation=45, ha="right")
        ax.set_title(f"L = {L} ({int(part['n_targets'].max()) if len(part) else 0} per-gene targets)", fontsize=9)
        ax.set_ylim(0, 105)
    axes[0][0].set_ylabel("targets hit (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    _save(fig, path)


def hic_figure(hic: pd.DataFrame, path: str | Path) -> None:
    """Observed/expected Hi-C contact of each selection's peaks with the target TSS, per method.

    Parameters
    ----------
    hic
        The Hi-C validation table (:func:`grids.workflow.stages.evaluate.run_hic_validation`); rows with status
        'ok' and a positive obs_exp are drawn, those not covered or without a usable peak counted in
        the panel titles.
    path
        PNG file to write.
    """
    plt = _pyplot()
    Ls = sorted(hic["L"].unique())
    methods = _method_order(hic)
    fig, axes = plt.subplots(1, len(Ls), figsize=(5 * len(Ls), 3.8), squeeze=False, sharey=True)
    rng = np.random.default_rng(0)  # horizontal jitter only
    for ax, L in zip(axes[0], Ls):
        part = hic[(hic["L"] == L) & (hic["status"] == "ok")]
        for i, method in enumerate(methods):
            rows = part[part["method"] == method]
            values = rows["obs_exp"].to_numpy(float)
            shown = np.isfinite(values) & (values > 0)  # a log axis: the p-values follow the same rows
            values, significant = values[shown], rows["p_value"].to_numpy(float)[shown] < 0.05
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=14,
                       c=np.where(significant, "#c0392b", "#7f8c8d"), alpha=0.8)
            if len(values):
                ax.hlines(np.median(values), i - 0.3, i + 0.3, color="black", lw=1.5)
        ax.axhline(1.0, color="0.4", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right")
        status = hic.loc[hic["L"] == L, "status"].astype(str)
        without = int((status.str.startswith("not covered")).sum())
        unusable = int((~status.str.startswith(("not covered", "not run")) & (status != "ok")).sum())
        notes = ([f"{without} not covered by Hi-C"] * bool(without)
                 + [f"{unusable} without a usable peak"] * bool(unusable))
        ax.set_title(f"L = {L}" + (f" ({'; '.join(notes)})" if notes else ""), fontsize=9)
    axes[0][0].set_ylabel("Hi-C obs/exp vs distance-matched peaks")
    fig.suptitle("Hi-C support of selected peaks (red: empirical p < 0.05; bar: median)", fontsize=10)
    _save(fig, path)


def ground_truth_figure(truth: pd.DataFrame, path: str | Path) -> None:
    """Mean recall of planted CREs per link class and method, and precision, per L.

    Parameters
    ----------
    truth
        Ground-truth recovery (:func:`grids.evaluate.truth.ground_truth`): method, L, link_kind, recall,
        precision.
    path
        PNG file to write.
    """
    plt = _pyplot()
    Ls = sorted(truth["L"].unique())
    methods = _method_order(truth)
    kinds = ["all", "direct", "redundant", "indirect"]
    fig, axes = plt.subplots(2, len(Ls), figsize=(5.5 * len(Ls), 6.5), squeeze=False, sharey="row")
    colours = dict(zip(kinds, ["#34495e", "#2e86c1", "#e67e22", "#8e44ad"]))
    for j, L in enumerate(Ls):
        part = truth[truth["L"] == L]
        means = part.groupby(["method", "link_kind"])[["recall", "precision"]].mean()
        x = np.arange(len(methods))
        for row, metric in enumerate(("recall", "precision")):
            ax = axes[row][j]
            for k, kind in enumerate(kinds):
                values = [means[metric].get((m, kind), np.nan) for m in methods]
                ax.bar(x + (k - 1.5) * 0.2, values, 0.2, label=kind, color=colours[kind])
            ax.set_xticks(x, methods, rotation=45, ha="right")
            ax.set_title(f"L = {L}: {metric} of planted CREs", fontsize=9)
            ax.set_ylim(0, 1.05)
    axes[0][0].legend(title="link class", fontsize=7)
    _save(fig, path)


LOGIC_STYLE = {"or": ("#e67e22", "OR (redundant)"), "additive": ("#2e86c1", "additive control"),
               "and": ("#8e44ad", "AND control")}


def _finite_limits(*columns: np.ndarray, floor: float | None = None) -> tuple[float, float]:
    """Axis limits spanning the finite values (and ``floor``), padded by 5 %."""
    values = np.concatenate([np.asarray(c, float) for c in columns] + [np.array([floor] if floor is not None else [])])
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) or 0.5
    return low - pad, high + pad


def redundancy_figure(redundancy: pd.DataFrame, path: str | Path) -> None:
    """Left: the surrogate's ratio (group drop / summed single drops) against the ratio a perfect
    OR model gives on the same cells, one point per planted group and cell type, coloured by the
    group's logic. OR groups belong on y = x, additive ones on y = 1, AND ones below it. Right:
    the drops themselves (group against summed single drops).

    Parameters
    ----------
    redundancy
        The redundancy check (:func:`grids.evaluate.truth.redundancy_check`); rows with status 'ok' are
        drawn, all as OR groups when there is no logic column.
    path
        PNG file to write.
    """
    plt = _pyplot()
    ok = redundancy[redundancy["status"] == "ok"]
    logic = ok["logic"] if "logic" in ok.columns else pd.Series("or", index=ok.index)
    ideal = ok["ideal_ratio"] if "ideal_ratio" in ok.columns else pd.Series(np.nan, index=ok.index)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 4.4))
    for name, (colour, label) in LOGIC_STYLE.items():
        part = ok[logic == name]
        if not len(part):
            continue
        median = float(np.nanmedian(part["ratio"])) if part["ratio"].notna().any() else np.nan
        left.scatter(ideal[logic == name], part["ratio"], s=16, color=colour, alpha=0.8,
                     label=f"{label}: n = {len(part)}, median ratio {median:.2f}")
        right.scatter(-part["sum_single_drops"], -part["drop_group"], s=14, color=colour, alpha=0.8, label=label)
    low, high = _finite_limits(ideal, ok["ratio"], floor=1.0)
    left.plot([low, high], [low, high], color="0.3", ls="--", lw=0.8, label="perfect OR model (y = x)")
    left.axhline(1.0, color="0.5", ls=":", lw=0.9, label="additive (y = 1)")
    left.set_xlim(low, high)
    left.set_ylim(low, high)
    left.set_xlabel("ideal ratio: cells with ≥ 1 member open / cells with exactly 1")
    left.set_ylabel("surrogate ratio: group drop / summed single drops")
    left.set_title("Does the surrogate reproduce the redundancy the data allows?", fontsize=9)
    left.legend(fontsize=6.5, loc="upper left")
    top = float(np.nanmax(-ok[["sum_single_drops", "drop_group"]].to_numpy())) if len(ok) else 1.0
    top = top if np.isfinite(top) and top > 0 else 1.0
    right.plot([0, top], [0, top], color="0.4", ls="--", lw=0.8, label="additive (y = x)")
    right.set_xlabel("sum of drops, each member removed alone")
    right.set_ylabel("drop with the whole group removed")
    right.set_title("Predicted drops (natural scale, held-out cells)", fontsize=9)
    right.legend(fontsize=6.5)
    _save(fig, path)


def _labelled_bars(ax, x: np.ndarray, values: np.ndarray, width: float, **style) -> None:
    """Bars with their value written on top ("n/a" where undefined), so a zero still shows."""
    values = np.asarray(values, float)
    ax.bar(x, np.nan_to_num(values), width, **style)
    for xi, value in zip(x, values):
        ax.text(xi, (value if np.isfinite(value) else 0) + 0.02, f"{value:.2f}" if np.isfinite(value) else "n/a",
                ha="center", va="bottom", fontsize=6, rotation=90)


def redundancy_calls_figure(calls: pd.DataFrame, recovery: pd.DataFrame, path: str | Path) -> None:
    """Top: precision, recall and recall within the selection of the called redundant pairs per
    method, one panel per L. Bottom: per explain method, the share of per-gene targets whose
    planted OR groups the selection recovers in full (dashed: 80 %).

    Parameters
    ----------
    calls
        Redundant-pair calls per method and L (:func:`grids.evaluate.truth.redundancy_calls`); the rows
        with L 'all' are left out.
    recovery
        OR-group recovery (:func:`grids.evaluate.truth.group_recovery`); its 'pooled' rows are drawn.
    path
        PNG file to write.
    """
    plt = _pyplot()
    per_L = calls[calls["L"].astype(str) != "all"]
    pooled = recovery[recovery["scope"] == "pooled"] if len(recovery) else recovery
    Ls = sorted({int(L) for L in per_L["L"]} | {int(L) for L in pooled["L"]}) or [0]
    call_methods, recovery_methods = _method_order(per_L), _method_order(pooled)
    width = max(4.2, 0.75 * max(len(call_methods), len(recovery_methods), 4))
    fig, axes = plt.subplots(2, len(Ls), figsize=(width * len(Ls), 7.2), squeeze=False, sharey=True,
                             gridspec_kw={"hspace": 0.65})
    metrics = [("precision", "precision", "#34495e"), ("recall", "recall (callable OR pairs)", "#e67e22"),
               ("recall_in_selection", "recall (both members selected)", "#f5b041")]
    for j, L in enumerate(Ls):
        ax = axes[0][j]
        part = per_L[per_L["L"].astype(int) == L].set_index("method").reindex(call_methods) if len(per_L) else per_L
        x = np.arange(len(call_methods))
        for k, (column, label, colour) in enumerate(metrics):
            _labelled_bars(ax, x + (k - 1) * 0.27, part[column].to_numpy(float), 0.27, label=label, color=colour)
        ax.set_xticks(x, call_methods, rotation=45, ha="right")
        called = int(part["n_called"].fillna(0).sum()) if len(part) else 0
        ax.set_title(f"L = {L}: pairs called redundant ({called})", fontsize=9)
        ax.set_ylim(0, 1.2)
        ax = axes[1][j]
        part = (pooled[pooled["L"].astype(int) == L].set_index("method").reindex(recovery_methods)
                if len(pooled) else pooled)
        x = np.arange(len(recovery_methods))
        _labelled_bars(ax, x, part["frac_targets_all_recovered"].to_numpy(float) if len(part) else [], 0.6,
                       color="#27ae60")
        ax.axhline(0.8, color="0.4", ls="--", lw=0.8)
        ax.set_xticks(x, recovery_methods, rotation=45, ha="right")
        n = int(part["n_targets"].fillna(0).max()) if len(part) else 0
        ax.set_title(f"L = {L}: OR groups fully selected ({n} targets)", fontsize=9)
    axes[0][0].set_ylabel("share of pairs")
    axes[1][0].set_ylabel("share of targets")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0.99))
    _save(fig, path)


def cross_celltype_figure(cross: pd.DataFrame, path: str | Path) -> None:
    """Row-normalised cross-cell-type heatmap per L (rows: where the set was chosen).

    Parameters
    ----------
    cross
        The cross-cell-type matrix (:func:`grids.evaluate.cross.cross_celltype`) of one method.
    path
        PNG file to write.
    """
    plt = _pyplot()
    Ls = sorted(cross["L"].unique())
    fig, axes = plt.subplots(1, len(Ls), figsize=(4.8 * len(Ls), 4.2), squeeze=False)
    for ax, L in zip(axes[0], Ls):
        table = cross[cross["L"] == L].pivot(index="source_cell_type", columns="target_cell_type", values="normalised")
        image = _annotated_heatmap(ax, table, vmin=-1.0, vmax=1.0, fmt="{:.2f}", cmap="RdBu")
        ax.set_xlabel("marker genes measured in cell type")
        if ax is axes[0][0]:
            ax.set_ylabel("set chosen in cell type")
        ax.set_title(f"L = {L}", fontsize=9)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="drop / largest drop in the row")
    fig.suptitle(f"Cross-cell-type expression drops ({cross['method'].iloc[0]} sets)", fontsize=10)
    _save(fig, path)
