"""Evaluation metrics on tiny hand-made inputs: expression drops, paired tests, overlaps, hit
ratios, ground truth, redundancy, cross-cell-type matrix, marker genes and selection reading.

Every surrogate here is a fake ``predict`` whose natural-scale output (expm1) is computed by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from grids.evaluate.cross import CROSS_COLUMNS, cross_celltype
from grids.evaluate.drop import DROP_COLUMNS, drop_summary, expression_drop, paired_tests, remove_peaks, wide_table
from grids.evaluate.hits import HIT_COLUMNS, gene_bodies, hit_ratios, target_hits
from grids.evaluate.overlap import interval_distance, overlap_matrix, overlaps_any
from grids.evaluate.selections import read_selections
from grids.evaluate.truth import GROUND_TRUTH_COLUMNS, ground_truth, read_truth, redundancy_check
from grids.explain.tasks import file_stem
from grids.workflow.stages.evaluate import marker_genes

SHARD_COLUMNS = ["method", "L", "cell_type", "target", "kind", "n_genes", "train_loss", "seconds", "rank",
                 "peak_index", "chrom", "start", "end", "score", "status"]


def _shard(rows: list[tuple]) -> pd.DataFrame:
    """Shard-format selections from (method, L, cell_type, target, kind, peak_indices, status) tuples;
    a selection that did not run gets one row with peak_index -1 and no coordinates."""
    out = []
    for method, L, cell_type, target, kind, peaks, status in rows:
        common = dict(method=method, L=L, cell_type=cell_type, target=target, kind=kind, n_genes=1,
                      train_loss=0.1, seconds=1.0, status=status)
        if status != "ok":
            out.append(common | dict(rank=0, peak_index=-1, chrom="", start=-1, end=-1, score=np.nan))
            continue
        for rank, p in enumerate(peaks):
            out.append(common | dict(rank=rank, peak_index=int(p), chrom="chr1", start=100 * int(p),
                                     end=100 * int(p) + 50, score=1.0 / (rank + 1)))
    return pd.DataFrame(out, columns=SHARD_COLUMNS)


def _linear_predict(W: np.ndarray):
    """Fake surrogate log1p(X @ W): natural-scale expression is exactly X @ W."""
    def predict(X):
        return np.log1p(np.asarray(X @ W, dtype=np.float64))
    return predict


# -- drop.remove_peaks / drop_summary ---------------------------------------------------------------

def test_remove_peaks_closes_exactly_given_columns_and_keeps_input():
    """remove_peaks zeroes exactly the given columns in every row, keeps the rest, returns CSR, leaves X alone."""
    dense = np.array([[1, 2, 0, 3], [4, 0, 5, 6], [7, 8, 9, 0]], dtype=np.float32)
    X = sp.csr_matrix(dense)
    before = X.copy()
    out = remove_peaks(X, np.array([1, 3]))
    assert sp.isspmatrix_csr(out)
    expected = dense.copy()
    expected[:, [1, 3]] = 0
    np.testing.assert_array_equal(out.toarray(), expected)
    assert out.nnz == np.count_nonzero(expected)  # closed entries are not stored as explicit zeros
    np.testing.assert_array_equal(X.toarray(), before.toarray())
    assert X.nnz == before.nnz
    np.testing.assert_array_equal(remove_peaks(X, np.array([], dtype=np.int64)).toarray(), dense)


def test_drop_summary_hand_computed_natural_scale():
    """Avg Δ is the mean natural-scale change; Rel Δ averages per-gene mean changes over genes with mean > 0."""
    before_nat = np.array([[2.0, 0.0, 4.0], [2.0, 0.0, 2.0]])
    after_nat = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 2.0]])
    avg, rel = drop_summary(np.log1p(before_nat), np.log1p(after_nat))
    # deltas: [[-1, 1, -3], [-1, 1, 0]] -> mean -0.5; gene 1 has mean before 0 and is left out of Rel Δ:
    # gene 0: -1 / 2 = -50 %, gene 2: -1.5 / 3 = -50 %.
    assert avg == pytest.approx(-0.5)
    assert rel == pytest.approx(-50.0)


def test_drop_summary_all_zero_before_gives_nan_rel():
    """Rel Δ is NaN when every gene's mean before is 0 (Avg Δ still defined)."""
    zeros = np.zeros((3, 2))
    avg, rel = drop_summary(zeros, np.log1p(np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 2.0]])))
    assert avg == pytest.approx(0.5)
    assert np.isnan(rel)
    avg0, rel0 = drop_summary(zeros, zeros)
    assert avg0 == 0.0 and np.isnan(rel0)


# -- drop.expression_drop ---------------------------------------------------------------------------

# 4 peaks -> 3 genes: g0 = p0 + p1, g1 = 2 p1 + p2, g2 = 0 (never expressed).
W = np.array([[1, 0, 0], [1, 2, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64)
GENES = ["g0", "g1", "g2"]
X_EVAL = sp.csr_matrix(np.array([[1, 2, 0, 1], [3, 0, 1, 0], [5, 5, 5, 5]], dtype=np.float64))
CELL_TYPE = np.array(["A", "A", "B"], dtype=object)


def _drop_selections() -> tuple[pd.DataFrame, dict]:
    sel = _shard([
        ("grids", 1, "A", "g0", "gene", [1], "ok"),
        ("grids", 1, "A", "top2", "set", [2, 0], "ok"),
        ("random", 1, "A", "g0", "gene", [], "not run: fewer candidate peaks than L"),
        ("grids", 1, "B", "g2", "gene", [3], "ok"),
    ])
    return sel, {file_stem("A", "top2"): ["g0", "g1"]}


def test_expression_drop_gene_and_set_targets_match_hand_computation():
    """expression_drop evaluates each selection on its own cell type's cells with the hand-computed Avg/Rel Δ."""
    sel, members = _drop_selections()
    drops = expression_drop(_linear_predict(W), X_EVAL, CELL_TYPE, genes=GENES, selections=sel, members=members,
                            stem=file_stem)
    assert list(drops.columns) == DROP_COLUMNS
    assert len(drops) == 4
    gene = drops.iloc[0]
    # A cells, g0 natural: [3, 3] -> closing p1: [1, 3]; deltas [-2, 0].
    assert (gene["n_genes"], gene["n_cells"], gene["n_peaks"], gene["status"]) == (1, 2, 1, "ok")
    assert gene["avg_delta"] == pytest.approx(-1.0)
    assert gene["rel_delta_pct"] == pytest.approx(-100 / 3)
    # Off target: g1 natural [4, 1] -> [0, 1] (-80 %); g2 is never expressed and left out.
    assert gene["off_target_pct"] == pytest.approx(-80.0)
    st = drops.iloc[1]
    # g0: [3, 3] -> [2, 0]; g1: [4, 1] -> [4, 0]: deltas [[-1, 0], [-3, -1]].
    assert (st["kind"], st["n_genes"], st["n_cells"], st["n_peaks"]) == ("set", 2, 2, 2)
    assert st["avg_delta"] == pytest.approx(-1.25)
    assert st["rel_delta_pct"] == pytest.approx(100 * np.mean([-2 / 3, -0.5 / 2.5]))
    b = drops.iloc[3]
    # B has one cell; g2 is never expressed: no change, Rel Δ undefined.
    assert (b["cell_type"], b["n_cells"]) == ("B", 1)
    assert b["avg_delta"] == 0.0 and np.isnan(b["rel_delta_pct"])


def test_expression_drop_not_run_row_keeps_status_and_nan():
    """A 'not run: ...' selection gives one row with NaN drops, 0 peaks and its status kept."""
    sel, members = _drop_selections()
    drops = expression_drop(_linear_predict(W), X_EVAL, CELL_TYPE, genes=GENES, selections=sel, members=members,
                            stem=file_stem)
    row = drops[drops["method"] == "random"]
    assert len(row) == 1
    row = row.iloc[0]
    assert row["status"] == "not run: fewer candidate peaks than L"
    assert row["n_peaks"] == 0 and row["n_cells"] == 2
    assert np.isnan(row["avg_delta"]) and np.isnan(row["rel_delta_pct"]) and np.isnan(row["off_target_pct"])


def test_expression_drop_uses_only_own_cell_type_cells():
    """Cells of other cell types do not enter a selection's drop (a huge B cell would change A's numbers)."""
    sel, members = _drop_selections()
    sel = sel[sel["cell_type"] == "A"]
    X_big = sp.csr_matrix(np.array([[1, 2, 0, 1], [3, 0, 1, 0], [1000, 1000, 1000, 0]], dtype=np.float64))
    a = expression_drop(_linear_predict(W), X_EVAL, CELL_TYPE, genes=GENES, selections=sel, members=members,
                        stem=file_stem)
    b = expression_drop(_linear_predict(W), X_big, CELL_TYPE, genes=GENES, selections=sel, members=members,
                        stem=file_stem)
    pd.testing.assert_frame_equal(a, b)


def test_expression_drop_cell_type_without_cells_raises():
    """A selection whose cell type has no evaluation cells is a ValueError naming that cell type."""
    sel = _shard([("grids", 1, "Mono", "g0", "gene", [0], "ok")])
    with pytest.raises(ValueError, match="'Mono'"):
        expression_drop(_linear_predict(W), X_EVAL, CELL_TYPE, genes=GENES, selections=sel, members={}, stem=file_stem)


# -- drop.wide_table --------------------------------------------------------------------------------

def _drops_frame(rows: list[tuple]) -> pd.DataFrame:
    """A drops table from (method, L, cell_type, target, kind, avg, rel, status)."""
    frame = pd.DataFrame(rows, columns=["method", "L", "cell_type", "target", "kind", "avg_delta",
                                        "rel_delta_pct", "status"])
    return frame.assign(n_genes=1, n_cells=10, n_peaks=1, off_target_pct=0.0)[DROP_COLUMNS]


def test_wide_table_rows_columns_and_average():
    """wide_table has (L, cell_type) rows of per-type means, an 'Avg.' row = mean of those, method columns."""
    drops = _drops_frame([
        ("grids", 1, "A", "t1", "gene", -2.0, -20.0, "ok"),
        ("grids", 1, "A", "t2", "gene", -4.0, -40.0, "ok"),
        ("grids", 1, "B", "t3", "gene", -6.0, -60.0, "ok"),
        ("random", 1, "A", "t1", "gene", -1.0, -10.0, "ok"),
        ("random", 1, "A", "t2", "gene", np.nan, np.nan, "not run: x"),
        ("random", 1, "B", "t3", "gene", -2.0, -20.0, "ok"),
        ("grids", 1, "A", "top5", "set", -99.0, -99.0, "ok"),  # another kind: not in the gene table
        ("grids", 2, "A", "t1", "gene", -8.0, -80.0, "ok"),
        ("random", 2, "A", "t1", "gene", -3.0, -30.0, "ok"),
    ])
    table = wide_table(drops, "gene")
    assert list(table.columns) == ["L", "cell_type", "grids avg_delta", "grids rel_delta_pct", "grids off_target_pct",
                                   "random avg_delta", "random rel_delta_pct", "random off_target_pct"]
    at1 = table[table["L"] == 1].set_index("cell_type")
    assert list(at1.index) == ["A", "B", "Avg."]
    assert at1.loc["A", "grids avg_delta"] == pytest.approx(-3.0)
    assert at1.loc["A", "grids rel_delta_pct"] == pytest.approx(-30.0)
    assert at1.loc["A", "random avg_delta"] == pytest.approx(-1.0)
    assert at1.loc["Avg.", "grids avg_delta"] == pytest.approx(-4.5)
    assert at1.loc["Avg.", "grids rel_delta_pct"] == pytest.approx(-45.0)
    assert at1.loc["Avg.", "random rel_delta_pct"] == pytest.approx(-15.0)
    at2 = table[table["L"] == 2].set_index("cell_type")
    assert list(at2.index) == ["A", "Avg."]
    assert at2.loc["Avg.", "random avg_delta"] == pytest.approx(-3.0)
    sets = wide_table(drops, "set")
    assert sets.set_index("cell_type").loc["Avg.", "grids avg_delta"] == pytest.approx(-99.0)
    assert sets["random avg_delta"].isna().all()


def test_wide_table_kind_without_rows_is_empty():
    """A target kind with no rows that ran gives an empty frame."""
    drops = _drops_frame([("grids", 1, "A", "t1", "gene", -1.0, -1.0, "ok"),
                          ("grids", 1, "A", "top5", "set", np.nan, np.nan, "not run: x")])
    assert wide_table(drops, "set").empty
    assert wide_table(drops, "nonsense").empty


# -- drop.paired_tests ------------------------------------------------------------------------------

def test_paired_tests_match_scipy_and_pool_kinds():
    """paired_tests equals scipy's one-sided ttest_rel per kind, and 'all' pools the kinds."""
    ref_gene, base_gene = [-30.0, -50.0, -20.0], [-10.0, -45.0, -25.0]
    ref_set, base_set = [-40.0, -35.0], [-12.0, -30.0]
    rows = []
    for i, (r, b) in enumerate(zip(ref_gene, base_gene)):
        rows += [("grids", 5, "A", f"g{i}", "gene", 0.0, r, "ok"), ("random", 5, "A", f"g{i}", "gene", 0.0, b, "ok")]
    for i, (r, b) in enumerate(zip(ref_set, base_set)):
        ct = "AB"[i]
        rows += [("grids", 5, ct, "top9", "set", 0.0, r, "ok"), ("random", 5, ct, "top9", "set", 0.0, b, "ok")]
    # A target the baseline did not run on is left out of the pairs.
    rows += [("grids", 5, "B", "g9", "gene", 0.0, -99.0, "ok"), ("random", 5, "B", "g9", "gene", np.nan, np.nan,
                                                                    "not run: x")]
    tests = paired_tests(_drops_frame(rows)).set_index("kind")
    assert list(tests.index) == ["all", "gene", "set"]
    for kind, ref, base in [("gene", ref_gene, base_gene), ("set", ref_set, base_set),
                            ("all", ref_gene + ref_set, base_gene + base_set)]:
        expected = stats.ttest_rel(ref, base, alternative="less")
        row = tests.loc[kind]
        assert row["n_targets"] == len(ref)
        assert (row["reference"], row["baseline"]) == ("grids", "random")
        assert row["t"] == pytest.approx(expected.statistic)
        assert row["p_value"] == pytest.approx(expected.pvalue)
        assert row["reference_rel_delta_pct"] == pytest.approx(np.mean(ref))
        assert row["mean_difference_pct"] == pytest.approx(np.mean(np.subtract(ref, base)))


def test_paired_tests_identical_drops_nan_and_clear_winner_small_p():
    """Identical drops give a NaN p-value; a reference with much larger drops gives a small p."""
    same = [("grids", 1, "A", f"g{i}", "gene", 0.0, v, "ok") for i, v in enumerate([-1.0, -2.0, -3.0])]
    same += [("random", 1, "A", f"g{i}", "gene", 0.0, v, "ok") for i, v in enumerate([-1.0, -2.0, -3.0])]
    rng = np.random.default_rng(0)
    better = rng.normal(-60, 3, size=8)
    worse = rng.normal(-5, 3, size=8)
    clear = [("grids", 2, "A", f"g{i}", "gene", 0.0, v, "ok") for i, v in enumerate(better)]
    clear += [("random", 2, "A", f"g{i}", "gene", 0.0, v, "ok") for i, v in enumerate(worse)]
    tests = paired_tests(_drops_frame(same + clear))
    tied = tests[(tests["L"] == 1) & (tests["kind"] == "gene")].iloc[0]
    assert np.isnan(tied["p_value"]) and np.isnan(tied["t"])
    won = tests[(tests["L"] == 2) & (tests["kind"] == "gene")].iloc[0]
    assert won["p_value"] < 1e-6 and won["t"] < 0
    # The other direction (reference worse) gives p near 1.
    reverse = paired_tests(_drops_frame(clear), reference="random")
    assert reverse[reverse["kind"] == "gene"]["p_value"].iloc[0] > 0.99


# -- overlap ----------------------------------------------------------------------------------------

REF = pd.DataFrame({"chrom": ["chr1", "chr1"], "start": [100, 500], "end": [200, 600]})
QUERY = pd.DataFrame({"chrom": ["chr1", "chr1", "chr1", "chr2", "chr1", "chr1"],
                      "start": [0, 199, 200, 100, 550, 50], "end": [100, 250, 300, 200, 560, 700]})
# touches start, overlaps 1 bp, touches end, other chromosome, inside, spans both
EXPECTED_ANY = [False, True, False, False, True, True]


def test_overlaps_any_half_open_and_chromosome_aware():
    """overlaps_any: half-open intervals (touching ends do not overlap), never across chromosomes."""
    np.testing.assert_array_equal(overlaps_any(QUERY, REF), EXPECTED_ANY)
    assert overlaps_any(QUERY.iloc[:0], REF).shape == (0,)
    np.testing.assert_array_equal(overlaps_any(QUERY, REF.iloc[:0]), np.zeros(len(QUERY), bool))


def test_overlap_matrix_pairwise():
    """overlap_matrix gives the pairwise half-open overlaps, agreeing with overlaps_any."""
    m = overlap_matrix(QUERY, REF)
    assert m.shape == (len(QUERY), len(REF))
    expected = np.array([[0, 0], [1, 0], [0, 0], [0, 0], [0, 1], [1, 1]], dtype=bool)
    np.testing.assert_array_equal(m, expected)
    np.testing.assert_array_equal(m.any(1), overlaps_any(QUERY, REF))


def test_interval_distance_inside_gap_and_other_chromosome():
    """interval_distance: 0 when overlapping, the gap in bp otherwise, inf on another chromosome."""
    d = interval_distance(np.array(["chr1", "chr1", "chr1", "chr2"]), np.array([100, 0, 300, 150]),
                          np.array([200, 50, 400, 160]), chrom="chr1", start=150, end=160)
    np.testing.assert_array_equal(d, [0.0, 100.0, 140.0, np.inf])


# -- hits -------------------------------------------------------------------------------------------

GENE_MODELS = pd.DataFrame({
    "chrom": ["chr1", "chr1", "chr1", "chr2", "chr9"],
    "start": [1000, 1000, 5000, 1000, 0],
    "end": [2000, 1500, 6000, 2000, 10],
    "strand": ["+", "+", "-", "+", "+"],
    "feature": ["gene", "transcript", "gene", "gene", "gene"],
    "gene": ["G1", "G1", "G2", "G3", "G1"],  # the second G1 gene record is ignored
})


def _located(rows: list[tuple]) -> pd.DataFrame:
    """Gene selections with explicit peaks: (method, L, target, [(chrom, start, end)], status)."""
    out = []
    for method, L, target, peaks, status in rows:
        common = dict(method=method, L=L, cell_type="A", target=target, kind="gene", n_genes=1, train_loss=0.0,
                      seconds=0.0, score=1.0, status=status)
        if status != "ok":
            out.append(common | dict(rank=0, peak_index=-1, chrom="", start=-1, end=-1))
        for rank, (chrom, start, end) in enumerate(peaks):
            out.append(common | dict(rank=rank, peak_index=rank, chrom=chrom, start=start, end=end))
    return pd.DataFrame(out, columns=SHARD_COLUMNS)


def test_gene_bodies_first_gene_record():
    """gene_bodies keeps each gene's first 'gene' record (transcripts and repeats ignored)."""
    bodies = gene_bodies(GENE_MODELS)
    assert list(bodies.index) == ["G1", "G2", "G3"]
    assert tuple(bodies.loc["G1"]) == ("chr1", 1000, 2000)


def test_target_hits_and_hit_ratios():
    """Hits overlap the body, soft hits lie within soft_distance on the same chromosome; unplaced targets drop out."""
    sel = _located([
        ("grids", 1, "G1", [("chr1", 1500, 1600)], "ok"),                        # inside: hit
        ("grids", 1, "G2", [("chr1", 9000, 9100), ("chr1", 6500, 6600)], "ok"),  # 500 bp away: soft hit
        ("grids", 1, "G3", [("chr1", 1000, 2000)], "ok"),                        # other chromosome: none
        ("grids", 1, "GX", [("chr1", 1000, 2000)], "ok"),                        # no gene record: left out
        ("random", 1, "G1", [("chr1", 3000, 3100)], "ok"),                       # exactly 1000 bp: soft hit
        ("random", 1, "G2", [], "not run: x"),
    ])
    set_row = _shard([("grids", 1, "A", "top5", "set", [10], "ok")])  # not a per-gene target
    per = target_hits(pd.concat([sel, set_row], ignore_index=True), gene_bodies(GENE_MODELS), soft_distance=1000)
    per = per.set_index(["method", "target"])
    assert len(per) == 4
    assert ("grids", "GX") not in per.index
    assert per.loc[("grids", "G1"), ["hit", "soft_hit", "nearest_bp"]].tolist() == [True, True, 0.0]
    assert per.loc[("grids", "G2"), ["hit", "soft_hit", "nearest_bp"]].tolist() == [False, True, 500.0]
    assert per.loc[("grids", "G3"), ["hit", "soft_hit", "nearest_bp"]].tolist() == [False, False, np.inf]
    assert per.loc[("random", "G1"), ["hit", "soft_hit", "nearest_bp"]].tolist() == [False, True, 1000.0]

    ratios = hit_ratios(per.reset_index(), ["grids", "random"], [1, 2])
    assert list(ratios.columns) == HIT_COLUMNS
    ratios = ratios.set_index(["method", "L"])
    assert ratios.loc[("grids", 1), "n_targets"] == 3
    assert ratios.loc[("grids", 1), "hr_pct"] == pytest.approx(100 / 3)
    assert ratios.loc[("grids", 1), "shr_pct"] == pytest.approx(200 / 3)
    assert ratios.loc[("random", 1), "n_targets"] == 1
    assert ratios.loc[("random", 1), ["hr_pct", "shr_pct"]].tolist() == [0.0, 100.0]
    assert ratios.loc[("grids", 2), "n_targets"] == 0 and np.isnan(ratios.loc[("grids", 2), "hr_pct"])


def test_target_hits_touching_peak_is_not_a_hit():
    """A peak ending exactly where the half-open gene body starts does not overlap it, so it is not a hit."""
    sel = _located([("grids", 1, "G1", [("chr1", 900, 1000)], "ok")])
    assert not overlap_matrix(sel[["chrom", "start", "end"]], gene_bodies(GENE_MODELS).loc[["G1"]]).any()
    per = target_hits(sel, gene_bodies(GENE_MODELS), soft_distance=1000)
    assert not per["hit"].iloc[0]


# -- truth ------------------------------------------------------------------------------------------

TRUTH_ROWS = [
    # gene, chrom, start, end, kind, group, cell_types
    ("G1", "chr1", 150, 160, "promoter", "", "A,B"),
    ("G1", "chr1", 350, 360, "enhancer", "", "A"),
    ("G1", "chr1", 550, 560, "redundant", "r1", "A"),
    ("G1", "chr1", 750, 760, "redundant", "r1", "A"),
    ("G1", "chr1", 950, 960, "indirect", "", "A"),
    ("G1", "chr1", 5000, 5010, "enhancer", "", "A"),      # no consensus peak covers it: not callable
    ("G1", "chr1", 1150, 1160, "enhancer", "", "B"),      # inactive in A
    ("G2", "chr1", 1150, 1160, "promoter", "", "A"),
]
TRUTH_PEAKS = pd.DataFrame({"chrom": "chr1", "start": [100, 300, 500, 700, 900, 1100],
                            "end": [200, 400, 600, 800, 1000, 1200]})


def _write_truth(tmp_path, rows, columns=("gene", "chrom", "start", "end", "kind", "group", "cell_types")):
    path = tmp_path / "links.tsv"
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, sep="\t", index=False)
    return str(path)


def test_read_truth_parses_active_and_validates(tmp_path):
    """read_truth splits cell_types into 'active' sets; missing columns or unknown kinds are ValueErrors."""
    truth = read_truth(_write_truth(tmp_path, TRUTH_ROWS + [("G3", "chr2", 0, 10, "indirect", "", "")]))
    assert truth["active"].iloc[0] == frozenset({"A", "B"})
    assert truth["active"].iloc[1] == frozenset({"A"})
    assert truth["active"].iloc[-1] == frozenset()
    assert truth["group"].iloc[0] == "" and truth["group"].iloc[2] == "r1"

    path = _write_truth(tmp_path, [r[:6] for r in TRUTH_ROWS],
                        columns=("gene", "chrom", "start", "end", "kind", "group"))
    with pytest.raises(ValueError, match=r"links\.tsv.*cell_types"):
        read_truth(path)
    path = _write_truth(tmp_path, [("G1", "chr1", 0, 10, "silencer", "", "A")])
    with pytest.raises(ValueError, match="silencer"):
        read_truth(path)


def test_ground_truth_precision_recall_per_link_kind(tmp_path):
    """ground_truth: precision/recall per link kind, inactive links ignored, uncallable CREs out of recall."""
    truth = read_truth(_write_truth(tmp_path, TRUTH_ROWS))
    idx = {(100 * i): i for i in range(12)}

    def located(method, cell_type, target, kind, starts, status="ok"):
        frame = _shard([(method, 1, cell_type, target, kind, [idx[s] for s in starts], status)])
        if status == "ok":
            frame["start"] = starts
            frame["end"] = [s + 100 for s in starts]
        return frame

    sel = pd.concat([
        located("grids", "A", "G1", "gene", [100, 500, 1100]),  # promoter, redundant, (G1 enhancer inactive in A)
        located("grids", "A", "top2", "set", [1100]),           # G2's promoter
        located("grids", "B", "G1", "gene", [1100]),            # the B-only enhancer
        located("random", "A", "G1", "gene", [], status="not run: x"),
    ], ignore_index=True)
    members = {file_stem("A", "top2"): ["G1", "G2"]}
    table = ground_truth(sel, members, truth, peaks=TRUTH_PEAKS, stem=file_stem)
    assert list(table.columns) == GROUND_TRUTH_COLUMNS
    assert len(table) == 3 * 4 and "random" not in set(table["method"])
    g = table[(table["cell_type"] == "A") & (table["target"] == "G1")].set_index("link_kind")
    assert list(g.index) == ["all", "direct", "redundant", "indirect"]
    expected = {  # n_planted, n_callable, n_hit_peaks, n_recovered, precision, recall
        "all": (6, 5, 2, 2, 2 / 3, 2 / 5),
        "direct": (3, 2, 1, 1, 1 / 3, 1 / 2),
        "redundant": (2, 2, 1, 1, 1 / 3, 1 / 2),
        "indirect": (1, 1, 0, 0, 0.0, 0.0),
    }
    for kind, (planted, callable_, hit_peaks, recovered, precision, recall) in expected.items():
        row = g.loc[kind]
        assert (row["n_selected"], row["n_planted"], row["n_callable"], row["n_hit_peaks"], row["n_recovered"]) == \
            (3, planted, callable_, hit_peaks, recovered), kind
        assert row["precision"] == pytest.approx(precision) and row["recall"] == pytest.approx(recall), kind
    s = table[table["target"] == "top2"].set_index("link_kind")
    assert s.loc["all", ["n_planted", "n_callable", "n_recovered"]].tolist() == [7, 6, 1]
    assert s.loc["all", "precision"] == pytest.approx(1.0) and s.loc["all", "recall"] == pytest.approx(1 / 6)
    assert s.loc["indirect", "precision"] == 0.0
    b = table[table["cell_type"] == "B"].set_index("link_kind")
    assert b.loc["all", ["n_planted", "n_recovered"]].tolist() == [2, 1]
    assert b.loc["direct", "recall"] == pytest.approx(1 / 2)
    assert np.isnan(b.loc["redundant", "recall"])  # nothing redundant planted in B


# redundancy: peaks 0-2 hold the members of G1's redundant group r1, peak 3 drives another gene.
RED_PEAKS = pd.DataFrame({"chrom": "chr1", "start": [0, 200, 400, 600], "end": [100, 300, 500, 700]})
RED_TRUTH_ROWS = [
    ("R", "chr1", 10, 20, "redundant", "r1", "A,C"),
    ("R", "chr1", 210, 220, "redundant", "r1", "A,C"),
    ("R", "chr1", 410, 420, "redundant", "r1", "A,C"),
    ("R", "chr1", 610, 620, "redundant", "r2", "A"),
    ("R", "chr1", 9000, 9010, "redundant", "r2", "A"),   # no peak: only one member is called
    ("Missing", "chr1", 10, 20, "redundant", "r3", "A"),
    ("Missing", "chr1", 210, 220, "redundant", "r3", "A"),
    ("R", "chr1", 10, 20, "promoter", "", "A"),          # not a redundant group
]
RED_X = sp.csr_matrix(np.array([[1.0, 0.9, 0.9, 0.0], [0.9, 1.0, 0.9, 0.0], [0.9, 0.9, 1.0, 0.0],
                                [0.0, 0.0, 0.0, 3.0]]))
RED_CELLS = np.array(["A", "A", "A", "B"], dtype=object)


def _or_predict(X):
    """R = log1p(5 * max(x0, x1, x2)) (any open member keeps R on), other = log1p(x3)."""
    dense = X.toarray()
    return np.log1p(np.column_stack([5 * dense[:, :3].max(1), dense[:, 3]]))


def test_redundancy_check_or_logic_ratio_and_statuses(tmp_path):
    """OR-logic surrogate: closing the group drops far more than the summed single closures; statuses explain skips."""
    truth = read_truth(_write_truth(tmp_path, RED_TRUTH_ROWS))
    table = redundancy_check(_or_predict, RED_X, RED_CELLS, genes=["R", "other"], truth=truth, peaks=RED_PEAKS)
    ok = table[(table["group"] == "r1") & (table["cell_type"] == "A")].iloc[0]
    assert ok["status"] == "ok"
    assert (ok["n_members"], ok["n_called"], ok["n_cells"]) == (3, 3, 3)
    # Before: R = 5 in every cell. Closing a cell's top member leaves 4.5 there: each single drop is
    # -0.5 / 3, summed -0.5; closing all three gives 0 everywhere: -5.
    assert ok["drop_group"] == pytest.approx(-5.0)
    assert ok["sum_single_drops"] == pytest.approx(-0.5)
    assert ok["ratio"] == pytest.approx(10.0)
    status = table.set_index(["group", "cell_type"])["status"]
    assert status[("r1", "C")] == "cell type has no cells here"
    assert status[("r2", "A")] == "fewer than 2 members overlap a peak"
    assert status[("r3", "A")] == "gene not in the surrogate"
    assert table.loc[table["status"] != "ok", "ratio"].isna().all()
    assert len(table) == 4


def test_redundancy_check_additive_ratio_is_one(tmp_path):
    """Additive surrogate log1p(x0 + 2 x1 + 3 x2): the group drop equals the summed single drops (ratio 1)."""
    truth = read_truth(_write_truth(tmp_path, RED_TRUTH_ROWS[:3]))

    def additive(X):
        dense = X.toarray()
        return np.log1p(np.column_stack([dense[:, :3] @ np.array([1.0, 2.0, 3.0]), dense[:, 3]]))

    table = redundancy_check(additive, RED_X, RED_CELLS, genes=["R", "other"], truth=truth, peaks=RED_PEAKS)
    row = table[table["cell_type"] == "A"].iloc[0]
    # Every A cell: 1*x0 + 2*x1 + 3*x2 -> [1+1.8+2.7, 0.9+2+2.7, 0.9+1.8+3] = [5.5, 5.6, 5.7], mean 5.6.
    assert row["drop_group"] == pytest.approx(-5.6)
    assert row["sum_single_drops"] == pytest.approx(-5.6)
    assert row["ratio"] == pytest.approx(1.0)


# -- cross ------------------------------------------------------------------------------------------

def _cross_predict(X):
    """gA = 2 x0; gB = 2 x1 + 2 - x2 (peak 2 represses gB, so closing it raises gB)."""
    d = X.toarray()
    return np.log1p(np.column_stack([2 * d[:, 0], 2 * d[:, 1] + 2 - d[:, 2]]))


CROSS_X = sp.csr_matrix(np.array([[1, 0, 1], [2, 0, 1], [0, 1, 1], [0, 2, 1]], dtype=np.float64))
CROSS_CELLS = np.array(["A", "A", "B", "B"], dtype=object)


def test_cross_celltype_diagonal_and_negative_normalised():
    """Each set hits its own markers most (normalised 1 on the diagonal); a set that raises expression goes negative."""
    sel = _shard([
        ("grids", 1, "A", "top2", "set", [0, 2], "ok"),
        ("grids", 1, "B", "top2", "set", [1], "ok"),
        ("grids", 1, "A", "gA", "gene", [1], "ok"),         # per-gene: not a source
        ("random", 1, "A", "top2", "set", [1], "ok"),       # another method
        ("grids", 1, "C", "top2", "set", [], "not run: x"),  # did not run: not a source
    ])
    markers = {"A": ["gA"], "B": ["gB"], "C": ["gA"]}  # C has no cells: not a target
    table = cross_celltype(_cross_predict, CROSS_X, CROSS_CELLS, genes=["gA", "gB"], selections=sel, markers=markers,
                           method="grids")
    assert list(table.columns) == CROSS_COLUMNS
    assert len(table) == 4
    t = table.set_index(["source_cell_type", "target_cell_type"])
    # Source A closes p0, p2: gA [2, 4] -> 0 (-100 %); gB [3, 5] -> [4, 6] (+25 %).
    assert t.loc[("A", "A"), "rel_delta_pct"] == pytest.approx(-100.0)
    assert t.loc[("A", "B"), "rel_delta_pct"] == pytest.approx(25.0)
    # Source B closes p1: gA unchanged; gB [3, 5] -> [1, 1] (-75 %).
    assert t.loc[("B", "A"), "rel_delta_pct"] == pytest.approx(0.0)
    assert t.loc[("B", "B"), "rel_delta_pct"] == pytest.approx(-75.0)
    assert t.loc[("A", "A"), "normalised"] == pytest.approx(1.0)
    assert t.loc[("B", "B"), "normalised"] == pytest.approx(1.0)
    assert t.loc[("A", "B"), "normalised"] == pytest.approx(-0.25)
    assert t.loc[("B", "A"), "normalised"] == pytest.approx(0.0)
    assert (t.loc[("A", "A"), "n_cells"], t.loc[("A", "B"), "n_genes"]) == (2, 1)


def test_cross_celltype_without_set_selections_raises():
    """No per-cell-type selections by the method is a ValueError pointing at explain.per_cell_type."""
    sel = _shard([("grids", 1, "A", "gA", "gene", [0], "ok"), ("random", 1, "A", "top2", "set", [0], "ok")])
    with pytest.raises(ValueError, match=r"explain\.per_cell_type"):
        cross_celltype(_cross_predict, CROSS_X, CROSS_CELLS, genes=["gA", "gB"], selections=sel,
                       markers={"A": ["gA"]}, method="grids")


# -- stage.marker_genes -----------------------------------------------------------------------------

def test_marker_genes_targets_then_set_members():
    """marker_genes uses per-gene targets, else the set members (file-stem keyed); types with neither drop out."""
    targets = pd.DataFrame({"cell_type": ["A", "A", "X"], "gene": ["g1", "g2", "g9"]})
    members = {file_stem("CD4 T", "top50"): ["g3", "g4"], file_stem("A", "top50"): ["g7"]}
    markers = marker_genes(targets, members, ["A", "CD4 T", "C"], set_target="top50")
    assert markers == {"A": ["g1", "g2"], "CD4 T": ["g3", "g4"]}


# -- selections.read_selections ---------------------------------------------------------------------

def test_read_selections_concatenates_and_merges_members(tmp_path):
    """read_selections concatenates the shards (chrom kept as text, blank for 'not run') and merges the metas' genes."""
    t1, t2 = tmp_path / "s1.tsv", tmp_path / "s2.tsv"
    first = _shard([("grids", 1, "A", "g0", "gene", [1, 2], "ok")]).assign(chrom="1")
    first.to_csv(t1, sep="\t", index=False)
    _shard([("grids", 1, "B", "top2", "set", [], "not run: x")]).to_csv(t2, sep="\t", index=False)
    m1, m2 = tmp_path / "m1.json", tmp_path / "m2.json"
    m1.write_text(json.dumps({"genes": {"A__top2": ["g0", "g1"]}, "curves": {"A__top2": [1.0, 0.5]}}))
    m2.write_text(json.dumps({"genes": {"B__top2": ["g2"]}, "curves": {}}))
    selections, members = read_selections([str(t1), str(t2)], [str(m1), str(m2)])
    assert len(selections) == 3
    assert selections["chrom"].tolist() == ["1", "1", ""]
    assert members == {"A__top2": ["g0", "g1"], "B__top2": ["g2"]}
    with pytest.raises(ValueError, match="no selection tables"):
        read_selections([], [])


def test_read_selections_missing_column_names_first_table(tmp_path):
    """A shard lacking a required column is a ValueError naming the first table and the column."""
    t1 = tmp_path / "first.tsv"
    _shard([("grids", 1, "A", "g0", "gene", [1], "ok")]).drop(columns=["status"]).to_csv(t1, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"first\.tsv.*status"):
        read_selections([str(t1)], [])


def test_read_selections_missing_column_in_later_table(tmp_path):
    """A later shard lacking a required column is also rejected."""
    t1, t2 = tmp_path / "good.tsv", tmp_path / "bad.tsv"
    _shard([("grids", 1, "A", "g0", "gene", [1], "ok")]).to_csv(t1, sep="\t", index=False)
    _shard([("grids", 1, "B", "g0", "gene", [1], "ok")]).drop(columns=["status"]).to_csv(t2, sep="\t", index=False)
    with pytest.raises(ValueError, match="status"):
        read_selections([str(t1), str(t2)], [])
