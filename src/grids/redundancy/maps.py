"""Redundancy maps of a selection (docs/architecture.md §5b): necessity, sufficiency and pairwise interaction.

For a target (one gene, or a gene set whose natural-scale expression is summed) and the top m
peaks of a selection, on held-out cells of the target's cell type, with the surrogate's plain
``predict`` on perturbed inputs (columns set to 0, as :func:`grids.evaluate.drop.remove_peaks`):

- necessity of j: mean(before) - mean(j closed), positive when the peak matters;
- sufficiency of j (CREME): expression kept when j is the only window peak left open, relative
  to every window peak closed; NaN outside the window or when closing the window costs nothing;
- interaction of a, b: drop_ab - drop_a - drop_b with a percentile bootstrap interval over
  cells, beside the multiplicative (GLiMMIRS) expectation of the joint drop;
- groups: connected components of the redundant pairs, and the expression each protects.

:func:`map_selections` maps every selection of one method's shard rows, and :func:`summary_row`
sums a map up in one line of the summary table (:data:`SUMMARY_COLUMNS`).

Every perturbed copy of the cells goes into a few stacked sparse matrices, so a map of 16 peaks
(120 pairs, 16 singles, the window runs) costs a handful of ``predict`` calls, not ~150.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..evaluate.drop import removal_predictions, stacked_removals  # shared with the evaluation
from ..explain.tasks import file_stem

__all__ = ["MapSettings", "RedundancyGroup", "RedundancyMap", "TargetEvaluator", "redundancy_map", "empty_map",
           "stacked_removals", "bootstrap_interval", "redundancy_groups", "map_selections", "summary_row",
           "MAP_COLUMNS", "SUMMARY_COLUMNS"]

log = logging.getLogger(__name__)

MAP_COLUMNS = ["peak_a", "peak_b", "peak_index_a", "peak_index_b", "necessity_a", "necessity_b", "sufficiency_a",
               "sufficiency_b", "drop_a", "drop_b", "drop_ab", "drop_multiplicative", "interaction", "ci_low",
               "ci_high", "redundant", "group"]
SUMMARY_COLUMNS = ["method", "L", "cell_type", "target", "n_peaks", "n_pairs", "n_redundant_pairs", "n_groups",
                   "group_sizes", "protected_expression", "protected_fraction", "status"]
# Relative size of per-cell interactions treated as 0: the float32 predictions carry ~1e-7
# relative rounding, and an interaction adds four of them.
FLOAT_NOISE = 1e-5
Predict = Callable[[sp.csr_matrix], np.ndarray]  # cells x peaks -> cells x genes, log-normalised


@dataclass(frozen=True)
class MapSettings:
    """How a map is made (config key ``redundancy``)."""

    top_m: int = 16  # peaks of the selection mapped, in rank order
    bootstrap: int = 1000  # bootstrap draws over cells for the interaction interval
    confidence: float = 0.95
    min_interaction_fraction: float = 0.1  # a redundant pair's interaction is at least this share of drop_ab
    seed: int = 0
    max_cells_per_call: int = 8192  # stacked cells per predict call: bounds the cells x genes output

    def __post_init__(self) -> None:
        if self.top_m < 1 or self.bootstrap < 1 or self.max_cells_per_call < 1:
            raise ValueError(f"redundancy settings: top_m, bootstrap and max_cells_per_call must be >= 1 ({self})")
        if not 0 < self.confidence < 1:
            raise ValueError(f"redundancy.confidence must lie in (0, 1), got {self.confidence}")
        if self.min_interaction_fraction < 0:
            raise ValueError(f"redundancy.min_interaction_fraction must be >= 0, got {self.min_interaction_fraction}")

    @classmethod
    def from_config(cls, settings: dict) -> MapSettings:
        """The keys of the ``redundancy`` config this class knows (``methods`` is the workflow's)."""
        known = {k: settings[k] for k in ("top_m", "bootstrap", "confidence", "min_interaction_fraction", "seed",
                                          "max_cells_per_call") if k in settings}
        return cls(**known)


@dataclass(frozen=True)
class RedundancyGroup:
    """A connected set of mutually redundant peaks and the expression it protects."""

    name: str  # G1, G2, ... by decreasing protected expression
    members: tuple[int, ...]  # peak indices, in selection rank order
    protected: float  # drop with every member closed together (natural scale, mean over cells)
    fraction: float  # protected / mean expression before


@dataclass
class RedundancyMap:
    """One selection's map: the mapped peaks, per-peak tests, the pair table and the groups."""

    peaks: np.ndarray  # peak indices of the top m, in rank order
    labels: list[str]  # chrom:start-end of each
    necessity: np.ndarray
    sufficiency: np.ndarray
    in_window: np.ndarray  # bool per peak: within the target's cis window
    pairs: pd.DataFrame  # MAP_COLUMNS, one row per pair a < b in rank order
    groups: list[RedundancyGroup] = field(default_factory=list)
    mean_before: float = float("nan")
    n_cells: int = 0
    status: str = "ok"


def empty_map(status: str = "ok") -> RedundancyMap:
    """A map with no peaks: a selection that did not run, or one with nothing to pair.

    Parameters
    ----------
    status
        The map's status, e.g. why its selection did not run.

    Returns
    -------
    RedundancyMap
        No peaks, an empty pair table with :data:`MAP_COLUMNS`, no groups, NaN mean_before, 0 cells.
    """
    none = np.zeros(0)
    return RedundancyMap(np.zeros(0, np.int64), [], none, none, np.zeros(0, bool),
                         pd.DataFrame(columns=MAP_COLUMNS), status=status)


class TargetEvaluator:
    """Per-cell natural-scale target expression of the same cells under column removals.

    Each distinct removal is predicted once and remembered, so maps of the same target at several
    L (and the shared 'before' and 'window closed' inputs) reuse what was already predicted.
    """

    def __init__(self, predict: Predict, X: sp.csr_matrix, genes: Sequence[int], *,
                 max_cells_per_call: int = 8192) -> None:
        self.predict, self.X = predict, sp.csr_matrix(X)
        self.genes = np.asarray(genes, dtype=np.int64)
        if self.genes.size == 0:
            raise ValueError("a redundancy map needs at least one target gene")
        self.max_cells = max_cells_per_call
        self.calls = 0
        self._cache: dict[Hashable, np.ndarray] = {}

    @property
    def n_cells(self) -> int:
        return self.X.shape[0]

    def expression(self, closed: Sequence[np.ndarray]) -> np.ndarray:
        """removals x cells: sum over target genes of expm1(prediction) with each set closed."""
        keys = [frozenset(np.asarray(c, dtype=np.int64).ravel().tolist()) for c in closed]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        sets = [np.fromiter(k, np.int64, len(k)) for k in todo]
        for lo, hi, predicted in removal_predictions(self.predict, self.X, sets, max_cells_per_call=self.max_cells):
            self.calls += 1
            values = np.expm1(predicted[:, :, self.genes].astype(np.float64)).sum(2)
            self._cache.update(zip(todo[lo:hi], values))
        return np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, self.n_cells))


def bootstrap_interval(values: np.ndarray, *, draws: int, confidence: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over cells, for every row of ``values`` (rows x cells).

    One seeded resampling of cells serves every row (a paired bootstrap), as a counts matrix, so
    all rows' bootstrap means are one matrix product instead of a loop over draws.

    Parameters
    ----------
    values
        Rows x cells (a 1-D array is one row).
    draws
        Bootstrap draws.
    confidence
        Coverage of the interval, in (0, 1).
    seed
        Seed of the resampling.

    Returns
    -------
    low, high : numpy.ndarray
        The interval's bounds, one per row; NaN when there are no cells.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n = values.shape[1]
    if n == 0:
        nan = np.full(values.shape[0], np.nan)
        return nan, nan.copy()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(draws, n))
    counts = np.bincount((picks + n * np.arange(draws)[:, None]).ravel(), minlength=draws * n).reshape(draws, n)
    means = values @ counts.T.astype(np.float64) / n  # rows x draws
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=1)
    return low, high


def redundancy_groups(n: int, edges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Connected components (of two or more) of the graph on 0..n-1 with these edges, each sorted.

    Parameters
    ----------
    n
        Number of nodes.
    edges
        Pairs (i, j) of nodes in 0..n-1.

    Returns
    -------
    list of list of int
        The components, ordered by their smallest node; none when there are no edges.
    """
    from scipy.sparse.csgraph import connected_components

    if not edges:
        return []
    a, b = np.asarray(edges, dtype=np.int64).T
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    components = [np.flatnonzero(label == c).tolist() for c in np.unique(label)]
    return sorted((c for c in components if len(c) > 1), key=lambda c: c[0])


def _fraction(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


def redundancy_map(evaluator: TargetEvaluator, selected: Sequence[int], window: np.ndarray, *,
                   labels: Sequence[str] | None = None, settings: MapSettings = MapSettings()) -> RedundancyMap:
    """The redundancy map of the first ``settings.top_m`` peaks of a ranked selection.

    ``evaluator`` holds the cells and target genes; ``window`` lists the target's cis-window peak
    indices (the sufficiency test closes all of them but one). Natural scale, means over cells.

    Parameters
    ----------
    evaluator
        The held-out cells of the target's cell type and the target genes.
    selected
        Peak indices of the selection in rank order; a repeated peak counts once.
    window
        Peak indices of the target's cis window.
    labels
        A label (``chrom:start-end``) per mapped peak, in rank order; the peak indices when None.
    settings
        How the map is made (top_m, bootstrap, confidence, min_interaction_fraction, seed).

    Returns
    -------
    RedundancyMap
        The mapped peaks in rank order with their labels, necessity, sufficiency (NaN outside the
        window, or when closing the window costs nothing) and in_window; ``pairs`` with
        :data:`MAP_COLUMNS`, one row per pair a < b in rank order (``redundant`` 'true' or 'false',
        ``group`` the redundant pair's group name or ''); the groups G1, G2, ... by decreasing
        protected expression; mean_before and n_cells. :func:`empty_map` when ``selected`` is empty.
    """
    order = list(dict.fromkeys(int(p) for p in selected))[: settings.top_m]
    peaks = np.asarray(order, dtype=np.int64)
    labels = list(labels)[: len(peaks)] if labels is not None else [str(p) for p in peaks]
    m = len(peaks)
    if m == 0:
        return empty_map()
    window = np.unique(np.asarray(window, dtype=np.int64))
    in_window = np.isin(peaks, window)
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    # One request for every removal of the map; the evaluator stacks them into few predict calls.
    closed = [np.zeros(0, np.int64), *([p] for p in peaks), *([peaks[i], peaks[j]] for i, j in pairs),
              window, *(np.setdiff1d(window, [p]) for p in peaks[in_window])]
    values = evaluator.expression(closed)
    before, single = values[0], values[1 : 1 + m]
    joint = values[1 + m : 1 + m + len(pairs)]
    window_closed, only = values[1 + m + len(pairs)], values[2 + m + len(pairs) :]
    mean_before = float(before.mean())
    drop = before.mean() - single.mean(1)  # per peak: necessity and the single drop
    sufficiency = np.full(m, np.nan)
    kept_by_window = mean_before - float(window_closed.mean())
    sufficiency[in_window] = [_fraction(float(o.mean() - window_closed.mean()), kept_by_window) for o in only]
    a = np.array([i for i, _ in pairs], dtype=np.int64)
    b = np.array([j for _, j in pairs], dtype=np.int64)
    # Per cell: (before - ab) - (before - a) - (before - b) = a + b - ab - before.
    per_cell = single[a] + single[b] - joint - before[None, :] if pairs else np.zeros((0, evaluator.n_cells))
    # A cell where a or b is closed anyway has interaction 0, up to the float32 noise of the
    # predictions. Zero that noise: otherwise a resample without the few cells that carry the
    # signal gives a bound of +-1e-15, and "above 0" would be decided by rounding.
    per_cell[np.abs(per_cell) <= FLOAT_NOISE * np.abs(before)[None, :]] = 0.0
    interaction = per_cell.mean(1)
    drop_ab = before.mean() - joint.mean(1) if pairs else np.zeros(0)
    low, high = bootstrap_interval(per_cell, draws=settings.bootstrap, confidence=settings.confidence,
                                   seed=settings.seed) if pairs else (np.zeros(0), np.zeros(0))
    if mean_before > 0:
        kept_a, kept_b = single[a].mean(1) / mean_before, single[b].mean(1) / mean_before
        multiplicative = mean_before * (1 - kept_a * kept_b)
    else:
        multiplicative = np.full(len(pairs), np.nan)
    # The relative threshold keeps float noise of additive pairs (an interval of width ~1e-7
    # that happens to sit above 0) from being called redundant.
    redundant = (low > 0) & (drop_ab > 0) & (interaction >= settings.min_interaction_fraction * drop_ab)
    components = redundancy_groups(m, [pairs[k] for k in np.flatnonzero(redundant)])
    groups, member_of = _named_groups(evaluator, peaks, components, before, mean_before)
    table = pd.DataFrame({
        "peak_a": [labels[i] for i in a], "peak_b": [labels[j] for j in b],
        "peak_index_a": peaks[a], "peak_index_b": peaks[b],
        "necessity_a": drop[a], "necessity_b": drop[b],
        "sufficiency_a": sufficiency[a], "sufficiency_b": sufficiency[b],
        "drop_a": drop[a], "drop_b": drop[b], "drop_ab": drop_ab, "drop_multiplicative": multiplicative,
        "interaction": interaction, "ci_low": low, "ci_high": high,
        "redundant": np.where(redundant, "true", "false"),
        "group": [member_of.get(i, "") if r else "" for i, r in zip(a, redundant)],
    }, columns=MAP_COLUMNS)
    return RedundancyMap(peaks, labels, drop, sufficiency, in_window, table, groups, mean_before, evaluator.n_cells)


def _named_groups(evaluator: TargetEvaluator, peaks: np.ndarray, components: list[list[int]], before: np.ndarray,
                  mean_before: float) -> tuple[list[RedundancyGroup], dict[int, str]]:
    """Groups named G1, G2, ... by decreasing protected expression (ties: the best-ranked first),
    and the group name of each member position."""
    if not components:
        return [], {}
    together = evaluator.expression([peaks[c] for c in components])
    protected = before.mean() - together.mean(1)
    order = sorted(range(len(components)), key=lambda k: (-protected[k], components[k][0]))
    groups, member_of = [], {}
    for rank, k in enumerate(order, start=1):
        name = f"G{rank}"
        groups.append(RedundancyGroup(name, tuple(int(p) for p in peaks[components[k]]), float(protected[k]),
                                      _fraction(float(protected[k]), mean_before)))
        member_of.update({i: name for i in components[k]})
    return groups, member_of


def _joined(values: Sequence[float], fmt: str = "{:.6g}") -> str:
    return ",".join(fmt.format(v) for v in values)


def summary_row(result: RedundancyMap, *, method: str, L: int, cell_type: str, target: str) -> dict[str, Any]:
    """One summary line: counts, group sizes and the expression each group protects.

    Parameters
    ----------
    result
        The map (:func:`grids.redundancy.maps.redundancy_map`).
    method
        The explain method of the selection.
    L
        The selection's subset size.
    cell_type
        The selection's cell type.
    target
        The selection's target.

    Returns
    -------
    dict
        The keys of :data:`SUMMARY_COLUMNS`; group_sizes, protected_expression and protected_fraction
        are comma-separated, one value per group from G1 on ('' without groups).
    """
    return {"method": method, "L": int(L), "cell_type": cell_type, "target": target, "n_peaks": len(result.peaks),
            "n_pairs": len(result.pairs), "n_redundant_pairs": int((result.pairs["redundant"] == "true").sum()),
            "n_groups": len(result.groups), "group_sizes": _joined([len(g.members) for g in result.groups], "{}"),
            "protected_expression": _joined([g.protected for g in result.groups]),
            "protected_fraction": _joined([g.fraction for g in result.groups]), "status": result.status}


def map_selections(predict: Callable[[sp.csr_matrix], np.ndarray], X: sp.csr_matrix, cell_type: np.ndarray,
                   *, genes: Sequence[str], peaks: pd.DataFrame, tss: pd.DataFrame, selections: pd.DataFrame,
                   members: Mapping[str, Sequence[str]], window: int,
                   settings: MapSettings = MapSettings()) -> Iterator[tuple[tuple[int, str, str], RedundancyMap]]:
    """The map of every selection in ``selections`` (one method's shard rows), on the cells ``X``
    of its own cell type (``cell_type``: a name per row of ``X``).

    Yields ``((L, cell_type, target), map)``. A selection that did not run gives an empty map with
    its status. ``members`` maps a target's file stem to its genes (a gene set's window is the
    union of its members' windows); ``tss`` is :func:`grids.genome.first_tss`.

    Parameters
    ----------
    predict
        The surrogate's prediction: cells x peaks -> cells x genes, log-normalised.
    X
        Held-out cells x peaks.
    cell_type
        Cell-type name of each row of ``X``.
    genes
        The surrogate's genes, in the order of its output columns.
    peaks
        Consensus peaks (chrom, start, end), in the order of the columns of ``X``.
    tss
        Each gene's first TSS (:func:`grids.genome.first_tss`).
    selections
        One method's shard rows (:func:`grids.explain.shards.read_shards`).
    members
        File stem -> the target's genes; a target missing here stands for itself alone.
    window
        Cis window in bp around each target gene's TSS.
    settings
        How the maps are made.

    Yields
    ------
    key : tuple
        (L, cell_type, target); targets in first-seen order, each target's L ascending.
    map : RedundancyMap
        Its map.

    Raises
    ------
    ValueError
        When a target's genes are not in ``genes``, or its cell type has no cells in ``X`` (raised
        while iterating).
    """
    from ..explain.baselines import window_peaks

    gene_index = {g: i for i, g in enumerate(genes)}
    for (type_name, target), rows in selections.groupby(["cell_type", "target"], sort=False):
        type_name, target = str(type_name), str(target)
        names = list(members.get(file_stem(type_name, target), [target]))
        unknown = [g for g in names if g not in gene_index]
        if unknown:
            raise ValueError(f"target {target!r} ({type_name}): genes {', '.join(unknown[:5])} are not in the model")
        cells = X[np.flatnonzero(np.asarray(cell_type) == type_name)]
        if cells.shape[0] == 0:
            raise ValueError(f"cell type {type_name!r} has no held-out cells to map redundancy on")
        # One evaluator per target: its L's share the 'before' and window predictions.
        evaluator = TargetEvaluator(predict, cells, [gene_index[g] for g in names],
                                    max_cells_per_call=settings.max_cells_per_call)
        window_set = window_peaks(peaks, tss, names, window=window)
        for L, selection in rows.groupby("L", sort=True):
            status = str(selection["status"].iloc[0])
            if status != "ok":
                yield (int(L), type_name, target), empty_map(status)
                continue
            chosen = selection.sort_values("rank", kind="stable")
            chosen = chosen[chosen["peak_index"] >= 0]
            labels = [f"{c}:{int(s)}-{int(e)}" for c, s, e in zip(chosen["chrom"], chosen["start"], chosen["end"])]
            started, calls = time.perf_counter(), evaluator.calls
            result = redundancy_map(evaluator, chosen["peak_index"].astype(np.int64).to_numpy(), window_set,
                                    labels=labels, settings=settings)
            log.info("L=%d %s / %s: %d peaks, %d of %d pairs redundant, %d group(s), %d cells, %d predict call(s), "
                     "%.1f s", int(L), type_name, target, len(result.peaks),
                     int((result.pairs["redundant"] == "true").sum()), len(result.pairs), len(result.groups),
                     cells.shape[0], evaluator.calls - calls, time.perf_counter() - started)
            yield (int(L), type_name, target), result
