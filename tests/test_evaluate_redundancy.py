"""The redundancy evaluation on hand-made inputs: the surrogate's ratio against the perfect-OR
ratio of the observed cells (OR, additive and AND groups), its per-logic summary, the called
pairs of redundancy maps against the planted OR groups, OR-group recovery, and old truth files.

Every surrogate is a fake ``predict`` whose natural-scale output (expm1) is computed by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from grids.evaluate.figures import redundancy_calls_figure, redundancy_figure
from grids.evaluate.truth import (
    CALL_COLUMNS,
    RECOVERY_COLUMNS,
    REDUNDANCY_COLUMNS,
    SUMMARY_COLUMNS,
    call_outcomes,
    group_recovery,
    read_redundancy_maps,
    read_truth,
    redundancy_calls,
    redundancy_check,
    redundancy_summary,
)
from grids.explain.tasks import file_stem

LINK_COLUMNS = ["gene", "chrom", "start", "end", "kind", "group", "cell_types", "logic"]
SHARD_COLUMNS = ["method", "L", "cell_type", "target", "kind", "n_genes", "train_loss", "seconds", "rank",
                 "peak_index", "chrom", "start", "end", "score", "status"]


def _peaks(n: int) -> pd.DataFrame:
    """Consensus peak i is chr1:[200 i, 200 i + 100)."""
    return pd.DataFrame({"chrom": "chr1", "start": 200 * np.arange(n), "end": 200 * np.arange(n) + 100})


def _write_truth(tmp_path, rows, columns=LINK_COLUMNS) -> str:
    path = tmp_path / "links.tsv"
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, sep="\t", index=False)
    return str(path)


def _member(gene, peak, kind, group, logic, cell_types="A"):
    """A planted CRE inside consensus peak ``peak``."""
    return (gene, "chr1", 200 * peak + 10, 200 * peak + 20, kind, group, cell_types, logic)


# -- redundancy_check: ratio against the perfect-OR ratio ------------------------------------------

CHECK_TRUTH = [
    _member("OR", 0, "redundant", "SG1_R1", "or", "A,B"),
    _member("OR", 1, "redundant", "SG1_R1", "or", "A,B"),
    _member("ADD", 2, "enhancer", "SG2_A1", "additive"),
    _member("ADD", 3, "enhancer", "SG2_A1", "additive"),
    _member("AND", 4, "enhancer", "SG3_N1", "and"),
    _member("AND", 5, "enhancer", "SG3_N1", "and"),
    _member("OR", 6, "promoter", "", ""),  # ungrouped: not checked
]
# Eight A cells (columns: peaks 0-5) and two B cells with every peak open.
A_OPEN = np.array([
    [1, 1, 1, 1, 1, 0, 0, 1],  # peak 0 (OR)
    [1, 0, 0, 1, 1, 0, 1, 0],  # peak 1 (OR)
    [1, 1, 0, 0, 1, 0, 0, 0],  # peak 2 (ADD)
    [0, 1, 1, 0, 1, 0, 0, 1],  # peak 3 (ADD)
    [1, 1, 1, 1, 0, 0, 0, 0],  # peak 4 (AND)
    [1, 1, 0, 0, 1, 0, 0, 0],  # peak 5 (AND)
]).T
CHECK_X = sp.csr_matrix(np.vstack([np.column_stack([A_OPEN, np.zeros(8)]), np.ones((2, 7))]))
CHECK_CELLS = np.array(["A"] * 8 + ["B"] * 2, dtype=object)


def _logic_predict(X):
    """OR = 4 max(x0, x1) (perfect OR), ADD = x2 + 2 x3, AND = 3 x4 x5, all natural scale."""
    d = X.toarray()
    return np.log1p(np.column_stack([4 * d[:, [0, 1]].max(1), d[:, 2] + 2 * d[:, 3], 3 * d[:, 4] * d[:, 5]]))


def _check(tmp_path) -> pd.DataFrame:
    truth = read_truth(_write_truth(tmp_path, CHECK_TRUTH))
    return redundancy_check(_logic_predict, CHECK_X, CHECK_CELLS, genes=["OR", "ADD", "AND"], truth=truth,
                            peaks=_peaks(7))


def test_redundancy_check_or_ratio_matches_the_ideal_of_a_perfect_or_model(tmp_path):
    """A perfect OR surrogate gives ratio = n(>= 1 open) / n(exactly 1 open) of the same cells."""
    table = _check(tmp_path)
    assert list(table.columns) == REDUNDANCY_COLUMNS
    row = table[(table["group"] == "SG1_R1") & (table["cell_type"] == "A")].iloc[0]
    # Peaks 0/1 over the A cells: both open in cells 0, 3 and 4, one open in 1, 2, 6, 7, none in 5.
    assert (row["logic"], row["status"], row["n_cells"]) == ("or", "ok", 8)
    assert (row["n_any_open"], row["n_one_open"], row["n_all_open"]) == (7, 4, 3)
    assert row["ideal_ratio"] == pytest.approx(7 / 4)
    # Closing one peak switches OR off (-4) where it was the only one open: peak 0 in 1, 2, 7 -> -12 / 8,
    # peak 1 in 6 -> -4 / 8; closing both: the 7 cells with any open -> -28 / 8.
    assert row["sum_single_drops"] == pytest.approx(-16 / 8)
    assert row["drop_group"] == pytest.approx(-28 / 8)
    assert row["ratio"] == pytest.approx(row["ideal_ratio"])


def test_redundancy_check_additive_is_one_and_and_is_one_half(tmp_path):
    """Additive members give ratio 1 and an AND pair 1/2, each with its own OR-ideal counts."""
    table = _check(tmp_path).set_index("group")
    add = table.loc["SG2_A1"]
    assert (add["logic"], add["cell_type"], add["status"]) == ("additive", "A", "ok")
    assert add["ratio"] == pytest.approx(1.0)
    # Peaks 2/3: any open in cells 0, 1, 2, 4, 7; exactly one in 0, 2, 7; both in 1, 4.
    assert (add["n_any_open"], add["n_one_open"], add["n_all_open"]) == (5, 3, 2)
    assert add["ideal_ratio"] == pytest.approx(5 / 3)
    conj = table.loc["SG3_N1"]
    # AND = 3 only in cells 0 and 1 (both open): each single closure and the joint one cost -6 / 8.
    assert conj["logic"] == "and"
    assert conj["drop_group"] == pytest.approx(-6 / 8)
    assert conj["sum_single_drops"] == pytest.approx(-12 / 8)
    assert conj["ratio"] == pytest.approx(0.5)
    assert (conj["n_any_open"], conj["n_one_open"], conj["n_all_open"]) == (5, 3, 2)


def test_redundancy_check_ideal_undefined_without_single_open_cells(tmp_path):
    """Where every cell has both members open, no cell shows a single member: ideal and ratio are NaN."""
    row = _check(tmp_path).set_index(["group", "cell_type"]).loc[("SG1_R1", "B")]
    assert row["status"] == "ok" and row["n_cells"] == 2
    assert (row["n_any_open"], row["n_one_open"], row["n_all_open"]) == (2, 0, 2)
    assert np.isnan(row["ideal_ratio"]) and np.isnan(row["ratio"])  # single closures change nothing


def test_redundancy_summary_per_logic(tmp_path):
    """One row per logic: medians, the reproduced share of the observable redundancy, ratios above 1.2."""
    summary = redundancy_summary(_check(tmp_path))
    assert list(summary.columns) == SUMMARY_COLUMNS
    s = summary.set_index("logic")
    assert list(s.index) == ["or", "and", "additive"]
    assert s.loc["or", "n_groups"] == 2 and s.loc["or", "n_observable"] == 1
    assert s.loc["or", "median_ratio"] == pytest.approx(1.75)
    assert s.loc["or", "median_fraction_reproduced"] == pytest.approx(1.0)
    assert s.loc["or", "frac_ratio_above_1_2"] == pytest.approx(1.0)  # over the rows with a finite ratio
    assert s.loc["additive", "median_fraction_reproduced"] == pytest.approx(0.0)
    assert s.loc["additive", "frac_ratio_above_1_2"] == 0.0
    assert s.loc["and", "median_ideal_ratio"] == pytest.approx(5 / 3)
    assert s.loc["and", "median_fraction_reproduced"] == pytest.approx((0.5 - 1) / (5 / 3 - 1))
    empty = redundancy_summary(_check(tmp_path).iloc[:0])
    assert empty["n_groups"].tolist() == [0, 0, 0] and empty["median_ratio"].isna().all()


def test_redundancy_figures_write_pngs(tmp_path):
    """Both figures render from their tables (and from empty ones)."""
    table = _check(tmp_path)
    redundancy_figure(table, tmp_path / "redundancy.png")
    redundancy_figure(table.iloc[:0], tmp_path / "empty.png")
    assert (tmp_path / "redundancy.png").stat().st_size > 5000 and (tmp_path / "empty.png").exists()


# -- truth files ------------------------------------------------------------------------------------

def test_read_truth_without_logic_column_makes_redundant_groups_or(tmp_path):
    """An old links.tsv (no logic column): grouped redundant links are OR, everything else has no logic."""
    rows = [r[:7] for r in CHECK_TRUTH[:2]] + [("OR", "chr1", 5, 9, "promoter", "", "A"),
                                                ("T", "chr1", 5, 9, "indirect", "", "A")]
    truth = read_truth(_write_truth(tmp_path, rows, columns=LINK_COLUMNS[:7]))
    assert truth["logic"].tolist() == ["or", "or", "", ""]
    table = redundancy_check(_logic_predict, CHECK_X, CHECK_CELLS, genes=["OR", "ADD", "AND"], truth=truth,
                             peaks=_peaks(7))
    assert set(table["logic"]) == {"or"} and len(table) == 2
    # A new file whose redundant rows leave logic empty is read the same way; an unknown logic is an error.
    new = read_truth(_write_truth(tmp_path, [(*r[:7], "") for r in rows]))
    assert new["logic"].tolist() == ["or", "or", "", ""]
    with pytest.raises(ValueError, match="xor"):
        read_truth(_write_truth(tmp_path, [_member("G", 0, "enhancer", "SG_X1", "xor")]))
    with pytest.raises(ValueError, match="mixes logics"):
        read_truth(_write_truth(tmp_path, [_member("G", 0, "enhancer", "SG_X1", "and"),
                                           _member("G", 1, "enhancer", "SG_X1", "additive")]))


# -- redundancy maps against the truth --------------------------------------------------------------

CALL_TRUTH = [
    *[_member("G1", p, "redundant", "SG1_R1", "or") for p in (0, 1, 2)],
    *[_member("G1", p, "enhancer", "SG1_A1", "additive") for p in (3, 4)],
    *[_member("G2", p, "redundant", "SG2_R1", "or") for p in (5, 6)],    # rarely open together
    _member("G3", 7, "redundant", "SG3_R1", "or"),
    ("G3", "chr1", 9000, 9010, "redundant", "SG3_R1", "A", "or"),       # no peak covers it
    ("G4", "chr1", 1610, 1890, "redundant", "SG4_R1", "A", "or"),       # spans peaks 8 and 9
    ("G4", "chr1", 9500, 9510, "redundant", "SG4_R1", "A", "or"),
    _member("G1", 7, "redundant", "SG1_R2", "or", "B"),                # inactive in A
    _member("G1", 2, "redundant", "SG1_R2", "or", "B"),
]
N_CELLS = 40
_open = np.zeros((N_CELLS, 10))
_open[:20, [0, 1, 2]] = 1          # every pair of G1's OR members open together in 20 cells
_open[::2, [3, 4]] = 1
_open[:20, 5] = 1
_open[15:, 6] = 1                  # G2's members both open in cells 15-19 only: 5 < 10
_open[:, [7, 8, 9]] = 1
CALL_X = sp.csr_matrix(np.vstack([_open, np.ones((5, 10))]))
CALL_CELLS = np.array(["A"] * N_CELLS + ["B"] * 5, dtype=object)


def _peak(i: int) -> str:
    return f"chr1:{200 * i}-{200 * i + 100}"


def _write_map(root, method, L, stem, pairs) -> str:
    """A redundancy map with the docs/architecture.md §5b columns from (peak i, peak j, redundant) triples."""
    path = root / "redundancy" / method / f"L{L}" / f"{stem}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"peak_a": _peak(i), "peak_b": _peak(j), "peak_index_a": i, "peak_index_b": j, "necessity_a": 0.1,
             "necessity_b": 0.1, "sufficiency_a": 0.5, "sufficiency_b": 0.5, "drop_a": -0.1, "drop_b": -0.1,
             "drop_ab": -1.0 if red else -0.2, "drop_multiplicative": -0.2, "interaction": -0.8 if red else 0.0,
             "ci_low": -0.9, "ci_high": -0.7, "redundant": "true" if red else "false", "group": "g1" if red else ""}
            for i, j, red in pairs]
    pd.DataFrame(rows, columns=["peak_a", "peak_b", "peak_index_a", "peak_index_b", "necessity_a", "necessity_b",
                                "sufficiency_a", "sufficiency_b", "drop_a", "drop_b", "drop_ab",
                                "drop_multiplicative", "interaction", "ci_low", "ci_high", "redundant",
                                "group"]).to_csv(path, sep="\t", index=False)
    return str(path)


def _maps(tmp_path) -> list[str]:
    return [
        # G1: the OR pair 0-1 (true positive), the additive pair 3-4 (false positive); peak 2 not selected.
        _write_map(tmp_path, "grids", 16, "A__G1", [(0, 1, True), (3, 4, True), (0, 3, False), (1, 4, False)]),
        # G2's OR pair is a true positive, but not callable: too few cells have both open.
        _write_map(tmp_path, "grids", 16, "A__G2", [(5, 6, True)]),
        # Two peaks inside one wide member are one CRE, not a pair of members: a false positive.
        _write_map(tmp_path, "grids", 16, "A__G4", [(8, 9, True)]),
        # A set target: a pair of a member gene's OR group counts, the additive pair does not.
        _write_map(tmp_path, "grids", 16, "A__top2", [(1, 2, True), (3, 4, True)]),
        _write_map(tmp_path, "grids", 32, "A__G1", [(0, 1, True), (0, 2, True), (1, 2, True)]),
        # Peaks of different genes' groups: a false positive; no OR pair in the selection.
        _write_map(tmp_path, "random", 16, "A__G1", [(0, 7, True)]),
        _write_map(tmp_path, "random", 16, "A__G2", []),  # did not run
    ]


def _selection(method, L, cell_type, target, kind, peaks, status="ok") -> list[dict]:
    common = dict(method=method, L=L, cell_type=cell_type, target=target, kind=kind, n_genes=1, train_loss=0.1,
                  seconds=1.0, status=status)
    if status != "ok":
        return [common | dict(rank=0, peak_index=-1, chrom="", start=-1, end=-1, score=np.nan)]
    return [common | dict(rank=r, peak_index=p, chrom="chr1", start=200 * p, end=200 * p + 100, score=1.0)
            for r, p in enumerate(peaks)]


SELECTIONS = pd.DataFrame([
    *_selection("grids", 16, "A", "G1", "gene", [0, 1, 3, 4]),
    *_selection("grids", 16, "A", "G2", "gene", [5, 6]),
    *_selection("grids", 16, "A", "G3", "gene", [7]),
    *_selection("grids", 16, "A", "G4", "gene", [8, 9]),
    *_selection("grids", 16, "A", "top2", "set", [1, 2, 3, 4]),
    *_selection("grids", 32, "A", "G1", "gene", [0, 1, 2]),
    *_selection("random", 16, "A", "G1", "gene", [0, 7]),
    *_selection("random", 16, "A", "G2", "gene", [], status="not run: fewer candidate peaks than L"),
], columns=SHARD_COLUMNS)
MEMBERS = {file_stem("A", "top2"): ["G1", "G2"]}


def _outcomes(tmp_path) -> pd.DataFrame:
    truth = read_truth(_write_truth(tmp_path, CALL_TRUTH))
    keys = SELECTIONS.drop_duplicates(["method", "L", "cell_type", "target"])
    targets = {file_stem(c, t): (c, t, k) for c, t, k in zip(keys["cell_type"], keys["target"], keys["kind"])}
    status = {(m, L, c, t): s for m, L, c, t, s in
              zip(keys["method"], keys["L"], keys["cell_type"], keys["target"], keys["status"])}
    maps, pairs = read_redundancy_maps(_maps(tmp_path), targets=targets)
    return call_outcomes(maps, pairs, truth, peaks=_peaks(10), X=CALL_X, cell_type=CALL_CELLS, members=MEMBERS,
                         min_cells=10, status=status)


def test_call_outcomes_per_map_hand_counted(tmp_path):
    """True positives, callable planted OR pairs, pairs in the selection and recovered pairs per map."""
    out = _outcomes(tmp_path).set_index(["method", "L", "target"])
    columns = ["n_called", "n_true_positive", "n_callable_or_pairs", "n_callable_in_selection", "n_recovered"]
    # G1's callable OR pairs: 0-1, 0-2, 1-2 (20 cells have both open); only 0-1 has both peaks in the map.
    assert out.loc[("grids", 16, "G1"), columns].tolist() == [2, 1, 3, 1, 1]
    assert out.loc[("grids", 16, "G2"), columns].tolist() == [1, 1, 0, 0, 0]
    assert out.loc[("grids", 16, "G4"), columns].tolist() == [1, 0, 0, 0, 0]
    assert out.loc[("grids", 16, "top2"), columns].tolist() == [2, 1, 0, 0, 0]  # sets: no recall
    assert out.loc[("grids", 32, "G1"), columns].tolist() == [3, 3, 3, 3, 3]
    assert out.loc[("random", 16, "G1"), columns].tolist() == [1, 0, 3, 0, 0]
    assert out.loc[("random", 16, "G2"), "status"].startswith("not run")


def test_call_outcomes_min_cells_decides_callable(tmp_path):
    """With min_cells 5, G2's pair (both open in 5 cells) becomes callable and recovered."""
    truth = read_truth(_write_truth(tmp_path, CALL_TRUTH))
    maps, pairs = read_redundancy_maps(_maps(tmp_path)[1:2])
    out = call_outcomes(maps, pairs, truth, peaks=_peaks(10), X=CALL_X, cell_type=CALL_CELLS, members={},
                        min_cells=5).iloc[0]
    assert (out["target"], out["n_callable_or_pairs"], out["n_recovered"]) == ("G2", 1, 1)


def test_redundancy_calls_precision_recall_and_pooled(tmp_path):
    """Per (method, L) and pooled over L; a false positive on the additive pair lowers precision."""
    calls = redundancy_calls(_outcomes(tmp_path), ["grids", "random"])
    assert list(calls.columns) == CALL_COLUMNS
    c = calls.set_index(["method", "L"])
    assert list(c.index) == [("grids", 16), ("grids", 32), ("grids", "all"), ("random", 16), ("random", "all")]
    g = c.loc[("grids", 16)]
    assert (g["n_maps"], g["n_called"], g["n_true_positive"], g["n_gene_targets"]) == (4, 6, 3, 3)
    assert g["precision"] == pytest.approx(0.5)
    # The set map (top2) calls 2 pairs, 1 true: the per-gene maps alone call 4, 2 true.
    assert (g["n_called_gene_targets"], g["n_true_positive_gene_targets"]) == (4, 2)
    assert g["precision_gene_targets"] == pytest.approx(0.5)
    assert (g["n_callable_or_pairs"], g["n_recovered"], g["n_callable_in_selection"]) == (3, 1, 1)
    assert g["recall"] == pytest.approx(1 / 3) and g["recall_in_selection"] == pytest.approx(1.0)
    pooled = c.loc[("grids", "all")]
    assert (pooled["n_called"], pooled["n_true_positive"]) == (9, 6)
    assert pooled["precision"] == pytest.approx(6 / 9)
    assert pooled["recall"] == pytest.approx(4 / 6) and pooled["recall_in_selection"] == pytest.approx(1.0)
    r = c.loc[("random", 16)]
    assert r["n_maps"] == 1  # the map whose selection did not run is left out
    assert (r["precision"], r["recall"]) == (0.0, 0.0) and np.isnan(r["recall_in_selection"])


def test_read_redundancy_maps_names_and_flags(tmp_path):
    """Method and L come from the path, the target from the selections or the stem, 'redundant' as bool."""
    path = _write_map(tmp_path, "sage", 8, "CD4_T__G1", [(0, 1, True), (1, 2, False)])
    maps, pairs = read_redundancy_maps([path], cell_types=["CD4 T"])
    assert maps[["method", "L", "cell_type", "target", "kind"]].iloc[0].tolist() == ["sage", 8, "CD4 T", "G1", "gene"]
    assert pairs["redundant"].tolist() == [True, False]
    assert pairs[["chrom_a", "start_a", "end_a"]].iloc[1].tolist() == ["chr1", 200, 300]
    top = _write_map(tmp_path, "sage", 8, "B__top50", [])
    assert read_redundancy_maps([top])[0]["kind"].tolist() == ["set"]
    bad = tmp_path / "redundancy" / "sage" / "L8" / "A__G9.tsv"
    pd.DataFrame({"peak_a": [_peak(0)], "peak_b": [_peak(1)], "redundant": ["maybe"]}).to_csv(bad, sep="\t",
                                                                                            index=False)
    with pytest.raises(ValueError, match="maybe"):
        read_redundancy_maps([str(bad)])
    with pytest.raises(ValueError, match="not a redundancy map path"):
        read_redundancy_maps([str(tmp_path / "A__G1.tsv")])


# -- OR-group recovery by the selections ------------------------------------------------------------

def test_group_recovery_counts_and_pooled_share(tmp_path):
    """A target's OR groups count when two members are callable; pooled rows give the fully recovered share."""
    truth = read_truth(_write_truth(tmp_path, CALL_TRUTH))
    table = group_recovery(SELECTIONS, truth, _peaks(10))
    assert list(table.columns) == RECOVERY_COLUMNS
    per = table[table["scope"] == "target"].set_index(["method", "L", "target"])
    # G3 and G4 have one callable member each, and sets are not per-gene targets: no rows.
    assert sorted(per.index) == [("grids", 16, "G1"), ("grids", 16, "G2"), ("grids", 32, "G1"),
                                 ("random", 16, "G1"), ("random", 16, "G2")]
    columns = ["n_groups", "n_groups_fully_recovered", "n_callable_members", "n_recovered_members"]
    assert per.loc[("grids", 16, "G1"), columns].tolist() == [1, 0, 3, 2]   # peak 2 not selected
    assert per.loc[("grids", 16, "G2"), columns].tolist() == [1, 1, 2, 2]
    assert per.loc[("grids", 32, "G1"), columns].tolist() == [1, 1, 3, 3]
    assert per.loc[("random", 16, "G1"), columns].tolist() == [1, 0, 3, 1]
    assert per.loc[("random", 16, "G2"), "status"].startswith("not run")
    pooled = table[table["scope"] == "pooled"].set_index(["method", "L"])
    assert pooled.loc[("grids", 16), ["n_targets", "frac_targets_all_recovered"]].tolist() == [2, 0.5]
    assert pooled.loc[("grids", 32), ["n_targets", "frac_targets_all_recovered"]].tolist() == [1, 1.0]
    assert pooled.loc[("random", 16), ["n_targets", "frac_targets_all_recovered"]].tolist() == [1, 0.0]

    calls = redundancy_calls(_outcomes(tmp_path), ["grids", "random"])
    redundancy_calls_figure(calls, table, tmp_path / "calls.png")
    assert (tmp_path / "calls.png").stat().st_size > 5000


# -- the rule's function, end to end on files -------------------------------------------------------

def _paired(tmp_path) -> str:
    """paired.h5mu with CALL_X as ATAC (peaks as _peaks(10)), one dummy gene, every cell in 'test'."""
    import anndata as ad

    from grids.multiome import write_paired

    cells = [f"c{i}" for i in range(CALL_X.shape[0])]
    peaks = _peaks(10).assign(start=lambda f: f["start"].astype(np.int64))
    atac = ad.AnnData(X=CALL_X.astype(np.float32), obs=pd.DataFrame(index=cells),
                      var=peaks.set_index(pd.Index([f"p{i}" for i in range(10)])))
    rna = ad.AnnData(X=np.ones((len(cells), 1), np.float32), obs=pd.DataFrame(index=cells),
                     var=pd.DataFrame(index=["G1"]))
    path = str(tmp_path / "paired.h5mu")
    write_paired(rna, atac, pd.Series(CALL_CELLS, index=cells), split=pd.Series("test", index=cells), path=path)
    return path


def test_run_redundancy_calls_writes_the_tables_and_figure(tmp_path):
    """run_redundancy_calls reads shards, truth, maps and paired cells; with no maps the recovery still runs."""
    import json

    from grids.workflow.stages.evaluate import run_redundancy_calls

    shard, meta = tmp_path / "shard0.tsv", tmp_path / "shard0.json"
    SELECTIONS.to_csv(shard, sep="\t", index=False)
    meta.write_text(json.dumps({"genes": MEMBERS, "curves": {}}))
    common = dict(paired=_paired(tmp_path), tables=[str(shard)], metas=[str(meta)],
                  truth=_write_truth(tmp_path, CALL_TRUTH), methods=["grids", "random"], split="test", min_cells=10)
    out = {name: str(tmp_path / f"{name}.{ext}") for name, ext in
           [("out_calls", "tsv"), ("out_recovery", "tsv"), ("out_figure", "png")]}
    run_redundancy_calls(maps=_maps(tmp_path), **common, **out)
    calls = pd.read_csv(out["out_calls"], sep="\t").set_index(["method", "L"])
    assert calls.loc[("grids", "16"), ["n_called", "n_true_positive", "n_recovered"]].tolist() == [6, 3, 1]
    assert calls.loc[("random", "16"), "n_maps"] == 1
    recovery = pd.read_csv(out["out_recovery"], sep="\t")
    assert recovery.loc[recovery["scope"] == "pooled", "frac_targets_all_recovered"].tolist() == [0.5, 1.0, 0.0]
    assert (tmp_path / "out_figure.png").stat().st_size > 5000

    run_redundancy_calls(maps=[], **common, **out)
    assert pd.read_csv(out["out_calls"], sep="\t").empty
    assert len(pd.read_csv(out["out_recovery"], sep="\t")) == len(recovery)
    with pytest.raises(ValueError, match="sage"):
        run_redundancy_calls(maps=[_write_map(tmp_path, "sage", 16, "A__G1", [])], **common, **out)
