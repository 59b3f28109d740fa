"""Ground truth on simulated data: recovery of planted links, the surrogate's view of redundancy,
and the redundant pairs the redundancy maps call, against the planted OR / AND / additive groups."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..explain.tasks import SET_PREFIX, file_stem
from .drop import CellTypePredictions, Predict
from .overlap import overlap_matrix, overlaps_any
from .selections import KEY, selection_keys

__all__ = ["read_truth", "ground_truth", "redundancy_check", "redundancy_summary", "read_redundancy_maps",
           "call_outcomes", "redundancy_calls", "group_recovery", "TRUTH_KINDS", "LOGICS", "GROUND_TRUTH_COLUMNS",
           "REDUNDANCY_COLUMNS", "SUMMARY_COLUMNS", "OUTCOME_COLUMNS", "CALL_COLUMNS", "RECOVERY_COLUMNS"]

log = logging.getLogger(__name__)

# Reported link classes: direct = the gene's promoter and single enhancers.
TRUTH_KINDS = {"direct": ("promoter", "enhancer"), "redundant": ("redundant",), "indirect": ("indirect",)}
TRUTH_COLUMNS = ["gene", "chrom", "start", "end", "kind", "group", "cell_types"]  # "logic" is optional (old files)
# How a planted group's members combine: or = any open member keeps the gene on (redundant),
# and = every member is needed, additive = independent effects that add.
LOGICS = ("or", "and", "additive")
GROUND_TRUTH_COLUMNS = [*KEY, "link_kind", "n_selected", "n_planted", "n_callable", "n_hit_peaks", "n_recovered",
                        "precision", "recall"]
REDUNDANCY_COLUMNS = ["gene", "group", "logic", "cell_type", "n_members", "n_called", "n_cells", "drop_group",
                      "sum_single_drops", "ratio", "ideal_ratio", "n_any_open", "n_one_open", "n_all_open", "status"]
SUMMARY_COLUMNS = ["logic", "n_groups", "median_ratio", "median_ideal_ratio", "n_observable",
                   "median_fraction_reproduced", "frac_ratio_above_1_2"]
OUTCOME_COLUMNS = [*KEY, "kind", "status", "n_called", "n_true_positive", "n_callable_or_pairs",
                   "n_callable_in_selection", "n_recovered"]
CALL_COLUMNS = ["method", "L", "n_maps", "n_called", "n_true_positive", "precision", "n_gene_targets",
                "n_called_gene_targets", "n_true_positive_gene_targets", "precision_gene_targets",
                "n_callable_or_pairs", "n_recovered", "recall", "n_callable_in_selection", "recall_in_selection"]
RECOVERY_COLUMNS = [*KEY, "scope", "status", "n_targets", "n_groups", "n_groups_fully_recovered",
                    "n_callable_members", "n_recovered_members", "frac_targets_all_recovered"]
MAP_COLUMNS = ["peak_a", "peak_b", "redundant"]  # what this module reads of a redundancy map (docs/architecture.md §5b)


def read_truth(path: str) -> pd.DataFrame:
    """``truth/links.tsv`` (docs/architecture.md §3) with ``cell_types`` split into ``active`` sets and ``logic``
    filled in: files written before the simulator planted AND / additive controls have no
    ``logic`` column, and every redundant group in them is an OR group.

    Parameters
    ----------
    path
        The planted-links table (TSV): gene, chrom, start, end, kind, group, cell_types and optionally
        logic.

    Returns
    -------
    pandas.DataFrame
        The table in file order with ``group`` '' where empty, ``logic`` lower-cased ('or' for a
        grouped redundant link without one, '' for a link outside a group) and ``active``: the
        frozenset of cell types in ``cell_types``.

    Raises
    ------
    ValueError
        When a column is missing, a link kind or group logic is unknown, or a group mixes logics.
    """
    truth = pd.read_csv(path, sep="\t", dtype={"chrom": str, "group": str, "cell_types": str, "gene": str,
                                               "logic": str})
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{path}: not a planted-links table, it lacks columns {', '.join(missing)}")
    unknown = sorted(set(truth["kind"]) - {k for kinds in TRUTH_KINDS.values() for k in kinds})
    if unknown:
        raise ValueError(f"{path}: unknown link kind(s) {', '.join(unknown)}")
    truth["group"] = truth["group"].fillna("")
    truth["logic"] = _logic(truth)
    unknown = sorted(set(truth["logic"]) - {"", *LOGICS})
    if unknown:
        raise ValueError(f"{path}: unknown group logic(s) {', '.join(unknown)}; expected {', '.join(LOGICS)}")
    grouped = truth[truth["group"] != ""]
    mixed = grouped.groupby(["gene", "group"])["logic"].nunique()
    if (mixed > 1).any():
        gene, group = mixed[mixed > 1].index[0]
        raise ValueError(f"{path}: group {group!r} of {gene} mixes logics; one group has one logic")
    truth["active"] = truth["cell_types"].fillna("").map(lambda s: frozenset(filter(None, s.split(","))))
    return truth


def _logic(truth: pd.DataFrame) -> pd.Series:
    """Each link's group logic, lower-cased; a grouped redundant link without one is an OR member."""
    raw = truth["logic"] if "logic" in truth.columns else pd.Series("", index=truth.index)
    logic = raw.fillna("").astype(str).str.strip().str.lower()
    group = truth["group"].fillna("").astype(str)
    logic[(truth["kind"] == "redundant") & (group != "") & (logic == "")] = "or"
    return logic


def _planted(truth: pd.DataFrame, genes: Sequence[str], cell_type: str) -> pd.DataFrame:
    """The planted CREs of these genes active in the cell type, one row per CRE and link class."""
    links = truth[truth["gene"].isin(list(genes)) & truth["active"].map(lambda active: cell_type in active)]
    links = links.assign(link_kind=links["kind"].map({k: name for name, kinds in TRUTH_KINDS.items() for k in kinds}))
    return links.drop_duplicates(["chrom", "start", "end", "link_kind"]).reset_index(drop=True)


def ground_truth(selections: pd.DataFrame, members: Mapping[str, Sequence[str]], truth: pd.DataFrame,
                 *, peaks: pd.DataFrame, stem: Callable[[str, str], str]) -> pd.DataFrame:
    """Precision and recall of each selection that ran against its target's planted CREs.

    Rows per selection and link class (all, direct, redundant, indirect). A planted CRE counts as
    recovered when a selected peak overlaps it. Recall is over the *callable* CREs, those that
    overlap some consensus peak: a CRE no peak covers cannot be selected by any method.

    Parameters
    ----------
    selections
        The long selections table (:func:`grids.evaluate.selections.read_selections`); only selections
        with status 'ok' are scored.
    members
        File stem -> the target's genes; a target missing here stands for itself alone.
    truth
        Planted links (:func:`read_truth`); a target's CREs are those of its genes active in the
        selection's cell type.
    peaks
        Consensus peaks: chrom, start, end.
    stem
        (cell_type, target) -> the file stem that keys ``members``
        (:func:`grids.explain.tasks.file_stem`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GROUND_TRUTH_COLUMNS`, four rows per selection (first-seen order; link_kind all,
        direct, redundant, indirect): n_selected (selected peaks), n_planted, n_callable, n_hit_peaks
        (selected peaks overlapping a planted CRE of the class), n_recovered, precision (n_hit_peaks /
        n_selected) and recall (n_recovered / n_callable; NaN when no CRE is callable).
    """
    ok = selections[selections["status"] == "ok"]
    rows = []
    for key, group in ok.groupby(KEY, sort=False):
        method, L, cell_type, target = key
        chosen = group[["chrom", "start", "end"]].reset_index(drop=True)
        planted = _planted(truth, members.get(stem(cell_type, target), [target]), cell_type)
        callable_ = overlaps_any(planted, peaks) if len(planted) else np.zeros(0, bool)
        hits = overlap_matrix(chosen, planted)  # selected peaks x planted CREs
        for link_kind in ("all", *TRUTH_KINDS):
            columns = (np.ones(len(planted), bool) if link_kind == "all"
                       else (planted["link_kind"] == link_kind).to_numpy())
            n_hit_peaks = int(hits[:, columns].any(1).sum())
            recovered = hits[:, columns].any(0)
            n_callable = int(callable_[columns].sum())
            rows.append({"method": method, "L": L, "cell_type": cell_type, "target": target, "link_kind": link_kind,
                         "n_selected": len(chosen), "n_planted": int(columns.sum()), "n_callable": n_callable,
                         "n_hit_peaks": n_hit_peaks, "n_recovered": int(recovered.sum()),
                         "precision": n_hit_peaks / len(chosen) if len(chosen) else np.nan,
                         "recall": recovered.sum() / n_callable if n_callable else np.nan})
    return pd.DataFrame(rows, columns=GROUND_TRUTH_COLUMNS)


# -- openness of planted members --------------------------------------------------------------------

def _member_peaks(members: pd.DataFrame, peaks: pd.DataFrame) -> list[np.ndarray]:
    """Indices of the consensus peaks overlapping each member CRE (empty: no peak covers it)."""
    hits = overlap_matrix(members[["chrom", "start", "end"]].reset_index(drop=True), peaks)
    return [np.flatnonzero(row) for row in hits]


def _open_members(X: sp.spmatrix, member_peaks: Sequence[np.ndarray]) -> np.ndarray:
    """cells x members: a member is open in a cell when any consensus peak overlapping it is open.
    ``X`` is best CSC (column slices); a member no peak covers is never open."""
    out = np.zeros((X.shape[0], len(member_peaks)), dtype=bool)
    for j, p in enumerate(member_peaks):
        if len(p):
            out[:, j] = np.asarray((X[:, p] > 0).sum(axis=1)).ravel() > 0
    return out


class _OpenCells:
    """The evaluation cells of each cell type as CSC, made once: the openness counts slice a few
    columns per group, which CSR would pay for with a scan of every stored entry."""

    def __init__(self, X: sp.spmatrix, cell_type: np.ndarray) -> None:
        self.X, self.cell_type = sp.csr_matrix(X), np.asarray(cell_type)
        self._csc: dict[str, sp.csc_matrix] = {}

    def cells(self, name: str) -> sp.csc_matrix:
        if name not in self._csc:
            self._csc[name] = self.X[np.flatnonzero(self.cell_type == name)].tocsc()
        return self._csc[name]


# -- the surrogate's view of planted groups ---------------------------------------------------------

def redundancy_check(predict: Predict, X: sp.csr_matrix, cell_type: np.ndarray, *, genes: Sequence[str],
                     truth: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """For each planted group with a logic (or, and, additive) and each cell type it is active in
    (among the given cells): the surrogate's mean drop of the gene (natural scale) when the whole
    group is closed, against the sum of the drops when each member is closed alone.

    ``ratio`` = group drop / summed single drops: > 1 is redundancy (any open member keeps the gene
    on), 1 is additive, 1/k an AND of k members. ``ideal_ratio`` is what a perfect OR model gives
    on the same cells from the observed accessibility, n(>= 1 member open) / n(exactly 1 open): a
    gene that only one member can ever switch off (members rarely open together) shows no
    redundancy however good the surrogate. It is reported for every logic as the OR reference.
    A member is open in a cell when any consensus peak overlapping it is open; the counts use the
    members some peak covers (``n_called``), the others are never observed.

    Parameters
    ----------
    predict
        The surrogate's prediction: cells x peaks -> cells x genes, log-normalised.
    X
        Evaluation cells x peaks (e.g. the test split).
    cell_type
        Cell type of each row of ``X``.
    genes
        The surrogate's genes, in the order of its output columns.
    truth
        Planted links (:func:`read_truth`); the grouped links with a logic form the groups.
    peaks
        Consensus peaks (chrom, start, end), in the order of the columns of ``X``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`REDUNDANCY_COLUMNS`, one row per planted group (gene, group; first-seen order)
        and cell type it is active in (sorted): drop_group and sum_single_drops are mean changes of the
        gene's prediction over the cell type's cells (natural scale, negative for a drop), n_any_open,
        n_one_open and n_all_open count cells by their open called members. status is 'ok', or why the
        drops are NaN: the gene is not in the surrogate, the cell type has no cells here, or fewer than
        two members overlap a peak.
    """
    gene_index = {g: i for i, g in enumerate(genes)}
    truth = truth.assign(logic=_logic(truth))
    groups = truth[(truth["group"] != "") & truth["logic"].isin(LOGICS)]
    rows = []
    # (row, gene, sets to close: the whole group first, then each member alone) per cell type;
    # each cell type's removals are then predicted together, in a few stacked calls.
    pending: dict[str, list[tuple[int, int, list[np.ndarray]]]] = {}
    by_type = CellTypePredictions(predict, X, cell_type)
    open_cells = _OpenCells(X, cell_type)
    peak_frame = peaks.reset_index(drop=True)
    for (gene, group), links in groups.groupby(["gene", "group"], sort=False):
        links = links.reset_index(drop=True)
        member_peaks = _member_peaks(links, peak_frame)
        called = [p for p in member_peaks if len(p)]
        for cell_type_name in sorted(set().union(*links["active"])):
            n_cells = by_type.cells(cell_type_name).shape[0]
            opened = _open_members(open_cells.cells(cell_type_name), called).sum(1) if n_cells else np.zeros(0)
            n_one = int((opened == 1).sum())
            common = {"gene": gene, "group": group, "logic": links["logic"].iloc[0], "cell_type": cell_type_name,
                      "n_members": len(links), "n_called": len(called), "n_cells": n_cells,
                      "ideal_ratio": int((opened >= 1).sum()) / n_one if n_one else np.nan,
                      "n_any_open": int((opened >= 1).sum()), "n_one_open": n_one,
                      "n_all_open": int((opened == len(called)).sum()) if called else 0}
            status = ("gene not in the surrogate" if gene not in gene_index else
                      "cell type has no cells here" if n_cells == 0 else
                      "fewer than 2 members overlap a peak" if len(called) < 2 else "ok")
            rows.append({**common, "drop_group": np.nan, "sum_single_drops": np.nan, "ratio": np.nan,
                         "status": status})
            if status == "ok":
                pending.setdefault(cell_type_name, []).append(
                    (len(rows) - 1, gene_index[gene], [np.concatenate(called), *called]))
    for cell_type_name, work in pending.items():
        before = np.expm1(by_type.before(cell_type_name).astype(np.float64))
        after = by_type.after_many(cell_type_name, [closed for _, _, sets in work for closed in sets],
                                   [g for _, g, sets in work for _ in sets])
        at = 0
        for row, g, sets in work:
            drops = (np.expm1(after[at : at + len(sets)]) - before[:, g]).mean(1)
            at += len(sets)
            group_drop, single = float(drops[0]), float(drops[1:].sum())
            rows[row].update(drop_group=group_drop, sum_single_drops=single,
                             ratio=group_drop / single if single != 0 else np.nan)
    return pd.DataFrame(rows, columns=REDUNDANCY_COLUMNS)


def _median(values: np.ndarray) -> float:
    """Median of the finite values; NaN (no warning) when there are none."""
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else np.nan


def redundancy_summary(redundancy: pd.DataFrame) -> pd.DataFrame:
    """The redundancy check in one row per logic, over the group x cell-type rows that ran (ok).

    ``median_fraction_reproduced`` is the median of (ratio - 1) / (ideal_ratio - 1) over the rows
    whose ideal_ratio > 1 (``n_observable``): the share of the redundancy visible in the data that
    the surrogate reproduces (1 = a perfect OR model, 0 = additive). ``frac_ratio_above_1_2`` is
    the share of rows with a finite ratio above 1.2. Every logic gets a row, empty ones with NaN.

    Parameters
    ----------
    redundancy
        The redundancy check (:func:`redundancy_check`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`, one row per logic in the order of :data:`LOGICS`; n_groups
        counts the rows that ran, the medians are over finite values.
    """
    ok = redundancy[redundancy["status"] == "ok"]
    rows = []
    for logic in LOGICS:
        part = ok[ok["logic"] == logic]
        ratio, ideal = part["ratio"].to_numpy(float), part["ideal_ratio"].to_numpy(float)
        observable = np.isfinite(ratio) & np.isfinite(ideal) & (ideal > 1)
        fraction = (ratio[observable] - 1) / (ideal[observable] - 1)
        finite = np.isfinite(ratio)
        rows.append({"logic": logic, "n_groups": len(part), "median_ratio": _median(ratio),
                     "median_ideal_ratio": _median(ideal), "n_observable": int(observable.sum()),
                     "median_fraction_reproduced": _median(fraction),
                     "frac_ratio_above_1_2": float((ratio[finite] > 1.2).mean()) if finite.any() else np.nan})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# -- redundancy maps: called pairs against the planted OR groups ------------------------------------

_MAP_PATH = re.compile(r"(?:^|/)(?P<method>[^/]+)/L(?P<L>\d+)/(?P<stem>[^/]+)\.tsv$")
_PEAK = re.compile(r"^(?P<chrom>.+):(?P<start>\d+)-(?P<end>\d+)$")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def _parse_peaks(values: pd.Series, path: str) -> pd.DataFrame:
    """``chrom:start-end`` strings as chrom / start / end columns."""
    parts = values.astype(str).str.extract(_PEAK)
    if parts.isna().any().any():
        bad = values[parts.isna().any(axis=1)].iloc[0]
        raise ValueError(f"{path}: peak {bad!r} is not chrom:start-end")
    return pd.DataFrame({"chrom": parts["chrom"], "start": parts["start"].astype(np.int64),
                         "end": parts["end"].astype(np.int64)})


def _target_of(stem: str, targets: Mapping[str, tuple[str, str, str]],
               cell_types: Mapping[str, str]) -> tuple[str, str, str]:
    """(cell_type, target, kind) of a map's file stem: from the selections when they list it,
    else by splitting the stem (cell-type names restored from their file-safe form)."""
    if stem in targets:
        return targets[stem]
    if "__" not in stem:
        raise ValueError(f"redundancy map {stem!r} is not named {{cell_type}}__{{target}}")
    safe_type, target = stem.split("__", 1)
    kind = "set" if re.fullmatch(rf"{SET_PREFIX}\d+", target) else "gene"
    return cell_types.get(safe_type, safe_type), target, kind


def read_redundancy_maps(paths: Sequence[str], *, targets: Mapping[str, tuple[str, str, str]] | None = None,
                         cell_types: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The redundancy maps ``.../{method}/L{L}/{cell_type}__{target}.tsv`` (docs/architecture.md §5b) as
    (maps: one row per file with method, L, cell_type, target, kind; pairs: one row per pair with
    the map's key, chrom/start/end of both peaks and ``redundant`` as bool).

    ``targets`` maps file stems to (cell_type, target, kind), e.g. from the explain selections;
    ``cell_types`` are the data's names, to restore a stem the selections do not list.

    Parameters
    ----------
    paths
        Redundancy map files (TSV with peak_a, peak_b as ``chrom:start-end`` and redundant as
        true/false).
    targets
        File stem -> (cell_type, target, kind); when None or a stem is missing, the stem is split at
        its first ``__`` and a target ``top{N}`` is a set.
    cell_types
        The data's cell-type names, to restore a cell type from its file-safe form.

    Returns
    -------
    maps : pandas.DataFrame
        One row per file, in the order of ``paths``: method, L, cell_type, target, kind, path.
    pairs : pandas.DataFrame
        One row per pair, files in order: method, L, cell_type, target, kind, chrom_a, start_a, end_a,
        chrom_b, start_b, end_b, redundant (bool).

    Raises
    ------
    ValueError
        When a path is not ``.../{method}/L{L}/{cell_type}__{target}.tsv``, a file lacks a column, a
        peak is not ``chrom:start-end``, or ``redundant`` holds another value than true or false.
    """
    targets = targets or {}
    safe_types = {file_stem(c, "x")[:-3]: c for c in cell_types}
    maps, pairs = [], []
    for path in paths:
        found = _MAP_PATH.search(Path(path).as_posix())
        if not found:
            raise ValueError(f"{path}: not a redundancy map path .../{{method}}/L{{L}}/{{cell_type}}__{{target}}.tsv")
        cell_type, target, kind = _target_of(found["stem"], targets, safe_types)
        key = {"method": found["method"], "L": int(found["L"]), "cell_type": cell_type, "target": target,
               "kind": kind}
        maps.append({**key, "path": str(path)})
        frame = pd.read_csv(path, sep="\t", dtype={"peak_a": str, "peak_b": str, "redundant": str})
        missing = [c for c in MAP_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: not a redundancy map, it lacks columns {', '.join(missing)}")
        if frame.empty:
            continue
        flag = frame["redundant"].fillna("").str.strip().str.lower()
        unknown = sorted(set(flag) - _TRUE - _FALSE)
        if unknown:
            raise ValueError(f"{path}: column redundant has {unknown[0]!r}; expected true or false")
        a, b = _parse_peaks(frame["peak_a"], path), _parse_peaks(frame["peak_b"], path)
        pairs.append(pd.DataFrame({**{k: [v] * len(frame) for k, v in key.items()},
                                   "chrom_a": a["chrom"], "start_a": a["start"], "end_a": a["end"],
                                   "chrom_b": b["chrom"], "start_b": b["start"], "end_b": b["end"],
                                   "redundant": flag.isin(_TRUE).to_numpy()}))
    pair_columns = [*KEY, "kind", "chrom_a", "start_a", "end_a", "chrom_b", "start_b", "end_b", "redundant"]
    pair_table = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(columns=pair_columns)
    return pd.DataFrame(maps, columns=[*KEY, "kind", "path"]), pair_table[pair_columns]


def _or_groups(truth: pd.DataFrame) -> dict[str, list[tuple[str, pd.DataFrame]]]:
    """Planted OR groups per gene: (group id, member CREs with their ``active`` sets)."""
    truth = truth.assign(logic=_logic(truth))
    ors = truth[(truth["group"] != "") & (truth["logic"] == "or")]
    out: dict[str, list[tuple[str, pd.DataFrame]]] = {}
    for (gene, group), links in ors.groupby(["gene", "group"], sort=False):
        out.setdefault(gene, []).append((group, links[["chrom", "start", "end", "active"]].reset_index(drop=True)))
    return out


def _active_members(members: pd.DataFrame, cell_type: str) -> pd.DataFrame:
    """The members of a group that are active in the cell type (a group needs two to be redundant)."""
    return members[members["active"].map(lambda active: cell_type in active)].reset_index(drop=True)


def _distinct_pair(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether some item i with a[i] and some other item j != i with b[j] exist (bool vectors)."""
    n_a, n_b = int(a.sum()), int(b.sum())
    return n_a > 0 and n_b > 0 and not (n_a == 1 and n_b == 1 and bool((a & b).any()))


def _distinct_peaks(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two members' consensus peaks (index arrays) hold two different peaks, one each:
    two members inside one peak can never be told apart as a pair of peaks."""
    return len(a) > 0 and len(b) > 0 and not (len(a) == 1 and len(b) == 1 and a[0] == b[0])


def _coords(frame: pd.DataFrame, suffix: str) -> pd.DataFrame:
    return pd.DataFrame({"chrom": frame[f"chrom{suffix}"].astype(str).to_numpy(),
                         "start": frame[f"start{suffix}"].to_numpy(np.int64),
                         "end": frame[f"end{suffix}"].to_numpy(np.int64)})


def call_outcomes(maps: pd.DataFrame, pairs: pd.DataFrame, truth: pd.DataFrame, *, peaks: pd.DataFrame,
                  X: sp.spmatrix, cell_type: np.ndarray, members: Mapping[str, Sequence[str]],
                  min_cells: int = 10, status: Mapping[tuple, str] | None = None) -> pd.DataFrame:
    """Per redundancy map: the pairs called redundant, the true positives among them, and (per-gene
    targets) the planted OR pairs that are callable, in the map's selection and recovered.

    A called pair is a true positive when its two peaks overlap two different members of one
    planted OR group, active in the map's cell type, of a gene of the target: the gene itself, a
    set target's member genes (``members``, keyed by file stem), or any gene for a set whose genes
    are not known. AND and additive pairs, and every other pair, are negatives.

    A planted OR pair (two members of an OR group of a per-gene target, both active in its cell
    type) is callable when both members overlap consensus peaks that can form a pair and at least
    ``min_cells`` of the given (held-out) cells of the cell type have both members open: the
    surrogate cannot learn redundancy from cells it never sees with both open. It is in the
    selection when the map holds two different peaks overlapping the two members (the search found
    both), and recovered when a called pair does. ``status`` gives each map's selection status by
    (method, L, cell_type, target); a map whose selection did not run keeps zeros and its status.

    Parameters
    ----------
    maps
        The maps (:func:`read_redundancy_maps`), one row each.
    pairs
        Their pairs (:func:`read_redundancy_maps`).
    truth
        Planted links (:func:`read_truth`); its OR groups are the truth.
    peaks
        Consensus peaks: chrom, start, end, in the order of the columns of ``X``.
    X
        Held-out cells x peaks.
    cell_type
        Cell type of each row of ``X``.
    members
        File stem -> the genes of a set target.
    min_cells
        Fewest cells of the cell type with both members open for a planted OR pair to be callable.
    status
        Selection status by (method, L, cell_type, target); every map counts as 'ok' when None or
        its key is missing.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OUTCOME_COLUMNS`, one row per map in the order of ``maps``: n_called,
        n_true_positive, and for per-gene targets n_callable_or_pairs, n_callable_in_selection and
        n_recovered (0 for set targets and for maps whose selection did not run).
    """
    groups = _or_groups(truth)
    open_cells = _OpenCells(X, cell_type)
    peak_frame = peaks.reset_index(drop=True)
    opened: dict[tuple[str, str, str], tuple[list[np.ndarray], np.ndarray]] = {}

    def member_state(gene: str, group: str, active: pd.DataFrame, name: str) -> tuple[list[np.ndarray], np.ndarray]:
        """Consensus peaks of each active member and their openness in the cell type's cells, once."""
        if (gene, group, name) not in opened:
            member_peaks = _member_peaks(active, peak_frame)
            opened[(gene, group, name)] = (member_peaks, _open_members(open_cells.cells(name), member_peaks))
        return opened[(gene, group, name)]

    by_map = {key: part for key, part in pairs.groupby(KEY, sort=False)} if len(pairs) else {}
    rows = []
    for item in maps.itertuples(index=False):
        key = (item.method, item.L, item.cell_type, item.target)
        row = {"method": item.method, "L": item.L, "cell_type": item.cell_type, "target": item.target,
               "kind": item.kind, "status": (status or {}).get(key, "ok"), "n_called": 0, "n_true_positive": 0,
               "n_callable_or_pairs": 0, "n_callable_in_selection": 0, "n_recovered": 0}
        if row["status"] != "ok":
            rows.append(row)
            continue
        table = by_map.get(key, pairs.iloc[:0])
        called = table[table["redundant"].astype(bool)]
        called_a, called_b = _coords(called, "_a"), _coords(called, "_b")
        genes = ([item.target] if item.kind == "gene" else
                 list(members[file_stem(item.cell_type, item.target)])
                 if file_stem(item.cell_type, item.target) in members else list(groups))
        true_positive = np.zeros(len(called), dtype=bool)
        for gene in genes:
            for _, group_members in groups.get(gene, []):
                active = _active_members(group_members, item.cell_type)
                if len(active) < 2:
                    continue
                hit_a, hit_b = overlap_matrix(called_a, active), overlap_matrix(called_b, active)
                true_positive |= np.array([_distinct_pair(hit_a[r], hit_b[r]) for r in range(len(called))], bool)
        row["n_called"], row["n_true_positive"] = len(called), int(true_positive.sum())
        if item.kind == "gene":
            in_map = pd.concat([_coords(table, "_a"), _coords(table, "_b")], ignore_index=True).drop_duplicates()
            for group, group_members in groups.get(item.target, []):
                active = _active_members(group_members, item.cell_type)
                if len(active) < 2:
                    continue
                member_peaks, is_open = member_state(item.target, group, active, item.cell_type)
                in_selection = overlap_matrix(in_map, active)  # map peaks x members
                hit_a, hit_b = overlap_matrix(called_a, active), overlap_matrix(called_b, active)
                for i in range(len(active)):
                    for j in range(i + 1, len(active)):
                        if (not _distinct_peaks(member_peaks[i], member_peaks[j])
                                or (is_open[:, i] & is_open[:, j]).sum() < min_cells):
                            continue
                        row["n_callable_or_pairs"] += 1
                        row["n_callable_in_selection"] += _distinct_pair(in_selection[:, i], in_selection[:, j])
                        row["n_recovered"] += bool(((hit_a[:, i] & hit_b[:, j]) | (hit_a[:, j] & hit_b[:, i])).any())
        rows.append(row)
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else np.nan


def redundancy_calls(outcomes: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Precision and recall of the called redundant pairs per (method, L), and per method pooled
    over L (``L`` = "all"), from :func:`call_outcomes` over the maps whose selection ran.

    precision = true positives / pairs called, over every map, and ``precision_gene_targets``
    over the per-gene targets' maps alone: a planted OR group lies within one gene, so a gene
    set's map can also call pairs of two genes' CREs that interact through the set's total,
    which the planted truth can only count as negatives; recall = recovered / callable planted
    OR pairs of the per-gene targets; recall_in_selection = recovered / those callable pairs whose two members
    both have a peak in the map, so that a low recall splits into search (the selection missed a
    member) and map (the pair was there but not called) failures.

    Parameters
    ----------
    outcomes
        Per-map outcomes (:func:`call_outcomes`).
    methods
        The methods reported, in this order; those of ``outcomes`` in first-seen order when None.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CALL_COLUMNS`: per method, one row per L of its maps (ascending), then its
        ``L`` = "all" row; a ratio is NaN when its denominator is 0.
    """
    ok = outcomes[outcomes["status"] == "ok"]
    methods = list(methods) if methods is not None else list(dict.fromkeys(outcomes["method"]))
    rows = []

    def pooled(method: str, L: object, part: pd.DataFrame) -> dict:
        genes = part[part["kind"] == "gene"]
        return {"method": method, "L": L, "n_maps": len(part), "n_called": int(part["n_called"].sum()),
                "n_true_positive": int(part["n_true_positive"].sum()),
                "precision": _ratio(part["n_true_positive"].sum(), part["n_called"].sum()),
                "n_gene_targets": len(genes), "n_called_gene_targets": int(genes["n_called"].sum()),
                "n_true_positive_gene_targets": int(genes["n_true_positive"].sum()),
                "precision_gene_targets": _ratio(genes["n_true_positive"].sum(), genes["n_called"].sum()),
                "n_callable_or_pairs": int(genes["n_callable_or_pairs"].sum()),
                "n_recovered": int(genes["n_recovered"].sum()),
                "recall": _ratio(genes["n_recovered"].sum(), genes["n_callable_or_pairs"].sum()),
                "n_callable_in_selection": int(genes["n_callable_in_selection"].sum()),
                "recall_in_selection": _ratio(genes["n_recovered"].sum(), genes["n_callable_in_selection"].sum())}

    for method in methods:
        part = ok[ok["method"] == method]
        for L in sorted(outcomes.loc[outcomes["method"] == method, "L"].unique()):
            rows.append(pooled(method, int(L), part[part["L"] == L]))
        rows.append(pooled(method, "all", part))
    return pd.DataFrame(rows, columns=CALL_COLUMNS)


# -- selections: does the search find every member of a planted OR group? ---------------------------

def group_recovery(selections: pd.DataFrame, truth: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """Per selection of a per-gene target with a planted OR group active in its cell type: the
    groups, and those fully recovered (every callable member overlapped by a selected peak); then
    per (method, L) a pooled row (``scope`` "pooled", cell_type and target "all") with the share
    of targets whose every OR group is fully recovered.

    Only groups with at least two callable members (members that overlap a consensus peak, and
    are active in the cell type) count: with fewer there is no redundancy to find. Selections that
    did not run get a row with their status and no counts, and stay out of the pooled rows.

    Parameters
    ----------
    selections
        The long selections table (:func:`grids.evaluate.selections.read_selections`); its per-gene
        selections are read.
    truth
        Planted links (:func:`read_truth`); its OR groups are the truth.
    peaks
        Consensus peaks: chrom, start, end.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECOVERY_COLUMNS`: the ``scope`` "target" rows in selection order (n_targets 1,
        frac_targets_all_recovered 1.0 or 0.0), then one "pooled" row per (method, L) in first-seen
        order; no pooled rows when no target has such a group.
    """
    groups = _or_groups(truth)
    peak_frame = peaks.reset_index(drop=True)
    callable_members: dict[tuple[str, str], list[pd.DataFrame]] = {}
    keys = selection_keys(selections)
    keys = keys[keys["kind"] == "gene"]
    chosen_by_key = {key: part[["chrom", "start", "end"]].reset_index(drop=True)
                     for key, part in selections[selections["status"] == "ok"].groupby(KEY, sort=False)}
    rows = []
    for key in keys.itertuples(index=False):
        if (key.cell_type, key.target) not in callable_members:
            found = []
            for _, group_members in groups.get(key.target, []):
                active = _active_members(group_members, key.cell_type)
                active = active[overlaps_any(active, peak_frame)] if len(active) else active
                if len(active) >= 2:
                    found.append(active.reset_index(drop=True))
            callable_members[(key.cell_type, key.target)] = found
        found = callable_members[(key.cell_type, key.target)]
        if not found:
            continue
        common = {"method": key.method, "L": key.L, "cell_type": key.cell_type, "target": key.target,
                  "scope": "target", "status": key.status, "n_targets": 1, "n_groups": len(found)}
        if key.status != "ok":
            rows.append({**common, "n_groups_fully_recovered": np.nan, "n_callable_members": np.nan,
                         "n_recovered_members": np.nan, "frac_targets_all_recovered": np.nan})
            continue
        chosen = chosen_by_key[(key.method, key.L, key.cell_type, key.target)]
        recovered = [overlap_matrix(members, chosen).any(1) for members in found]
        n_full = sum(bool(r.all()) for r in recovered)
        rows.append({**common, "n_groups_fully_recovered": n_full,
                     "n_callable_members": sum(len(r) for r in recovered),
                     "n_recovered_members": int(sum(r.sum() for r in recovered)),
                     "frac_targets_all_recovered": float(n_full == len(found))})
    per_target = pd.DataFrame(rows, columns=RECOVERY_COLUMNS)
    pooled = []
    for (method, L), part in per_target.groupby(["method", "L"], sort=False):
        ok = part[part["status"] == "ok"]
        pooled.append({"method": method, "L": L, "cell_type": "all", "target": "all", "scope": "pooled",
                       "status": "ok", "n_targets": len(ok), "n_groups": int(ok["n_groups"].sum()),
                       "n_groups_fully_recovered": int(ok["n_groups_fully_recovered"].sum()),
                       "n_callable_members": int(ok["n_callable_members"].sum()),
                       "n_recovered_members": int(ok["n_recovered_members"].sum()),
                       "frac_targets_all_recovered": float(ok["frac_targets_all_recovered"].mean())
                       if len(ok) else np.nan})
    if not pooled:
        return per_target
    return pd.concat([per_target, pd.DataFrame(pooled, columns=RECOVERY_COLUMNS)], ignore_index=True)
