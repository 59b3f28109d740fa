"""Ground truth on simulated data: recovery of planted links, and the surrogate's view of redundancy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .drop import CellTypePredictions, Predict
from .overlap import overlap_matrix, overlaps_any
from .selections import KEY

__all__ = ["read_truth", "ground_truth", "redundancy_check", "TRUTH_KINDS", "GROUND_TRUTH_COLUMNS"]

log = logging.getLogger(__name__)

# Reported link classes: direct = the gene's promoter and single enhancers.
TRUTH_KINDS = {"direct": ("promoter", "enhancer"), "redundant": ("redundant",), "indirect": ("indirect",)}
TRUTH_COLUMNS = ["gene", "chrom", "start", "end", "kind", "group", "cell_types"]
GROUND_TRUTH_COLUMNS = [*KEY, "link_kind", "n_selected", "n_planted", "n_callable", "n_hit_peaks", "n_recovered",
                        "precision", "recall"]


def read_truth(path: str) -> pd.DataFrame:
    """``truth/links.tsv`` (DESIGN §3) with ``cell_types`` split into sets."""
    truth = pd.read_csv(path, sep="\t", dtype={"chrom": str, "group": str, "cell_types": str, "gene": str})
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{path}: not a planted-links table, it lacks columns {', '.join(missing)}")
    unknown = sorted(set(truth["kind"]) - {k for kinds in TRUTH_KINDS.values() for k in kinds})
    if unknown:
        raise ValueError(f"{path}: unknown link kind(s) {', '.join(unknown)}")
    truth["group"] = truth["group"].fillna("")
    truth["active"] = truth["cell_types"].fillna("").map(lambda s: frozenset(filter(None, s.split(","))))
    return truth


def _planted(truth: pd.DataFrame, genes: Sequence[str], cell_type: str) -> pd.DataFrame:
    """The planted CREs of these genes active in the cell type, one row per CRE and link class."""
    links = truth[truth["gene"].isin(list(genes)) & truth["active"].map(lambda active: cell_type in active)]
    links = links.assign(link_kind=links["kind"].map({k: name for name, kinds in TRUTH_KINDS.items() for k in kinds}))
    return links.drop_duplicates(["chrom", "start", "end", "link_kind"]).reset_index(drop=True)


def ground_truth(selections: pd.DataFrame, members: Mapping[str, Sequence[str]], truth: pd.DataFrame,
                 peaks: pd.DataFrame, *, stem: Callable[[str, str], str]) -> pd.DataFrame:
    """Precision and recall of each selection that ran against its target's planted CREs.

    Rows per selection and link class (all, direct, redundant, indirect). A planted CRE counts as
    recovered when a selected peak overlaps it. Recall is over the *callable* CREs, those that
    overlap some consensus peak: a CRE no peak covers cannot be selected by any method.
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
            columns = np.ones(len(planted), bool) if link_kind == "all" else (planted["link_kind"] == link_kind).to_numpy()
            n_hit_peaks = int(hits[:, columns].any(1).sum())
            recovered = hits[:, columns].any(0)
            n_callable = int(callable_[columns].sum())
            rows.append({"method": method, "L": L, "cell_type": cell_type, "target": target, "link_kind": link_kind,
                         "n_selected": len(chosen), "n_planted": int(columns.sum()), "n_callable": n_callable,
                         "n_hit_peaks": n_hit_peaks, "n_recovered": int(recovered.sum()),
                         "precision": n_hit_peaks / len(chosen) if len(chosen) else np.nan,
                         "recall": recovered.sum() / n_callable if n_callable else np.nan})
    return pd.DataFrame(rows, columns=GROUND_TRUTH_COLUMNS)


def redundancy_check(predict: Predict, X: sp.csr_matrix, cell_type: np.ndarray, genes: Sequence[str],
                     truth: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """For each planted redundant group and each cell type it is active in (among the given
    cells): the surrogate's mean drop of the gene (natural scale) when the whole group is closed,
    against the sum of the drops when each member is closed alone. Redundancy shows as
    ``ratio`` = group drop / summed single drops > 1 (any open member keeps the gene on)."""
    gene_index = {g: i for i, g in enumerate(genes)}
    groups = truth[(truth["kind"] == "redundant") & (truth["group"] != "")]
    columns = ["gene", "group", "cell_type", "n_members", "n_called", "n_cells", "drop_group", "sum_single_drops",
               "ratio", "status"]
    rows = []
    by_type = CellTypePredictions(predict, X, cell_type)
    peak_frame = peaks.reset_index(drop=True)
    for (gene, group), links in groups.groupby(["gene", "group"], sort=False):
        links = links.reset_index(drop=True)
        member_peaks = [np.flatnonzero(overlap_matrix(links.iloc[[i]], peak_frame)[0]) for i in range(len(links))]
        called = [p for p in member_peaks if len(p)]
        for cell_type_name in sorted(set().union(*links["active"])):
            n_cells = by_type.cells(cell_type_name).shape[0]
            common = {"gene": gene, "group": group, "cell_type": cell_type_name, "n_members": len(links),
                      "n_called": len(called), "n_cells": n_cells}
            status = ("gene not in the surrogate" if gene not in gene_index else
                      "cell type has no cells here" if n_cells == 0 else
                      "fewer than 2 members overlap a peak" if len(called) < 2 else "ok")
            if status != "ok":
                rows.append({**common, "drop_group": np.nan, "sum_single_drops": np.nan, "ratio": np.nan,
                             "status": status})
                continue
            g = gene_index[gene]
            before = np.expm1(by_type.before(cell_type_name)[:, g].astype(np.float64))

            def drop(closed: np.ndarray) -> float:
                after = np.expm1(by_type.after(cell_type_name, closed)[:, g].astype(np.float64))
                return float((after - before).mean())

            group_drop = drop(np.concatenate(called))
            single = sum(drop(p) for p in called)
            rows.append({**common, "drop_group": group_drop, "sum_single_drops": single,
                         "ratio": group_drop / single if single != 0 else np.nan, "status": "ok"})
    return pd.DataFrame(rows, columns=columns)
