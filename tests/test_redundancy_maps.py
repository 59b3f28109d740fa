"""Redundancy maps (docs/architecture.md §5b) on hand-made models whose OR, additive and AND pairs are known."""

from __future__ import annotations

import json
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from grids.evaluate.drop import remove_peaks
from grids.redundancy import (
    MAP_COLUMNS,
    SUMMARY_COLUMNS,
    MapSettings,
    TargetEvaluator,
    bootstrap_interval,
    redundancy_groups,
    redundancy_map,
    stacked_removals,
)

N_PEAKS = 60
OR_PAIR, ADDITIVE, AND_PAIR, OR_TRIPLE = (0, 1), (2, 3), (4, 5), (6, 7, 8)
G1_PAIR = (40, 41)  # gene 1: an OR pair of peaks that are open in most cells
SELECTED = list(range(9))
WINDOW_G0 = np.arange(9)


def toy_predict(X) -> np.ndarray:
    """cells x 2 genes, log1p of a natural-scale expression with planted logic.

    gene 0 = 1 + 5 max(x0, x1) + 2 x2 + 3 x3 + 4 x4 x5 + 3 max(x6, x7, x8)
    gene 1 = 1 + 5 max(x40, x41)
    """
    D = sp.csr_matrix(X)[:, :42].toarray().astype(np.float64)
    g0 = (1 + 5 * D[:, OR_PAIR].max(1) + 2 * D[:, 2] + 3 * D[:, 3] + 4 * D[:, 4] * D[:, 5]
          + 3 * D[:, OR_TRIPLE].max(1))
    g1 = 1 + 5 * D[:, G1_PAIR].max(1)
    return np.log1p(np.stack([g0, g1], axis=1)).astype(np.float32)


def toy_cells(n: int = 200, n_peaks: int = N_PEAKS, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, n_peaks)) < 0.1).astype(np.float32)
    X[:, :9] = rng.random((n, 9)) < 0.5  # the planted blocks vary independently
    X[:, list(G1_PAIR)] = rng.random((n, 2)) < 0.95
    return sp.csr_matrix(X)


@pytest.fixture(scope="module")
def X():
    X = toy_cells()
    D = X.toarray()
    for a, b in (OR_PAIR, ADDITIVE, AND_PAIR, OR_TRIPLE[:2], OR_TRIPLE[1:]):  # every combination occurs
        assert len({(int(u), int(v)) for u, v in zip(D[:, a], D[:, b])}) == 4
    return X


@pytest.fixture(scope="module")
def gene0_map(X):
    evaluator = TargetEvaluator(toy_predict, X, [0])
    labels = [f"chr1:{1000 * p}-{1000 * p + 500}" for p in SELECTED]
    return redundancy_map(evaluator, SELECTED, WINDOW_G0, labels=labels, settings=MapSettings(bootstrap=500))


def _pair(result, a, b):
    rows = result.pairs[(result.pairs["peak_index_a"] == a) & (result.pairs["peak_index_b"] == b)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_or_pair_is_redundant_additive_and_and_pairs_are_not(X, gene0_map):
    D = X.toarray().astype(np.float64)
    orp = _pair(gene0_map, *OR_PAIR)
    assert orp["interaction"] == pytest.approx(5 * (D[:, 0] * D[:, 1]).mean(), rel=1e-5)
    assert orp["drop_ab"] == pytest.approx(5 * D[:, [0, 1]].max(1).mean(), rel=1e-5)
    assert orp["ci_low"] > 0 and orp["ci_low"] <= orp["interaction"] <= orp["ci_high"]
    assert orp["redundant"] == "true" and orp["group"] == "G1"
    additive = _pair(gene0_map, *ADDITIVE)
    assert abs(additive["interaction"]) < 1e-4 * additive["drop_ab"]
    assert additive["drop_ab"] == pytest.approx(additive["drop_a"] + additive["drop_b"], rel=1e-5)
    assert additive["redundant"] == "false" and additive["group"] == ""
    both = _pair(gene0_map, *AND_PAIR)
    assert both["interaction"] == pytest.approx(-4 * (D[:, 4] * D[:, 5]).mean(), rel=1e-5)
    assert both["ci_high"] < 0 and both["redundant"] == "false"
    # The multiplicative null on the cell means.
    before = np.expm1(toy_predict(X)[:, 0].astype(np.float64)).mean()
    kept = [np.expm1(toy_predict(remove_peaks(X, [p]))[:, 0].astype(np.float64)).mean() / before for p in OR_PAIR]
    assert orp["drop_multiplicative"] == pytest.approx(before * (1 - kept[0] * kept[1]), rel=1e-5)
    # Peaks of different blocks add: no cross-block pair is redundant.
    cross = gene0_map.pairs[gene0_map.pairs["group"] == ""]
    assert (cross["redundant"] == "false").all()


def test_groups_are_connected_redundant_pairs_named_by_protected_expression(X, gene0_map):
    D = X.toarray().astype(np.float64)
    groups = {g.name: g for g in gene0_map.groups}
    assert sorted(groups) == ["G1", "G2"]
    assert groups["G1"].members == OR_PAIR and groups["G2"].members == OR_TRIPLE
    assert groups["G1"].protected == pytest.approx(5 * D[:, [0, 1]].max(1).mean(), rel=1e-5)
    assert groups["G2"].protected == pytest.approx(3 * D[:, list(OR_TRIPLE)].max(1).mean(), rel=1e-5)
    assert groups["G1"].fraction == pytest.approx(groups["G1"].protected / gene0_map.mean_before)
    triple = gene0_map.pairs[gene0_map.pairs["group"] == "G2"]
    assert len(triple) == 3 and set(triple["peak_index_a"]) | set(triple["peak_index_b"]) == set(OR_TRIPLE)
    assert redundancy_groups(6, [(0, 1), (2, 1), (4, 5)]) == [[0, 1, 2], [4, 5]]
    assert redundancy_groups(3, []) == []


def test_an_or_member_is_sufficient_but_hardly_necessary(X):
    D = X.toarray().astype(np.float64)
    window = np.r_[36:46]  # gene 1's window: the pair and peaks that do not drive it
    result = redundancy_map(TargetEvaluator(toy_predict, X, [1]), [40, 41, 10], window,
                            settings=MapSettings(bootstrap=200))
    either = D[:, [40, 41]].max(1).mean()
    assert result.sufficiency[0] == pytest.approx(D[:, 40].mean() / either, rel=1e-5)
    assert result.sufficiency[0] > 0.9 and np.isnan(result.sufficiency[2])  # peak 10 lies outside the window
    pair = _pair(result, *G1_PAIR)
    assert result.necessity[0] == pytest.approx(5 * (D[:, 40] * (1 - D[:, 41])).mean(), rel=1e-5)
    assert result.necessity[0] < 0.1 * pair["drop_ab"] and pair["redundant"] == "true"
    assert pair["necessity_a"] == result.necessity[0] and pair["sufficiency_b"] == result.sufficiency[1]
    assert result.in_window.tolist() == [True, True, False]


def test_a_pair_open_together_in_one_cell_is_not_called():
    """One co-open cell out of 40 carries the whole interaction: a resample without it has
    exactly 0 (float noise of the other cells is zeroed), so the interval does not exclude 0."""
    D = np.zeros((40, 45), np.float32)
    D[:20, 0], D[20:, 1], D[0, 1] = 1, 1, 1  # cell 0 has both
    rng = np.random.default_rng(0)

    def rounding(X):  # a real model's output differs in the last bits with the batch it is in
        out = toy_predict(X)
        return out * (1 + rng.uniform(-2e-7, 2e-7, out.shape)).astype(np.float32)

    result = redundancy_map(TargetEvaluator(rounding, sp.csr_matrix(D), [0]), [0, 1], np.arange(12))
    pair = _pair(result, 0, 1)
    assert pair["interaction"] == pytest.approx(5 / 40, rel=1e-5)
    assert pair["ci_low"] == 0 and pair["redundant"] == "false" and result.groups == []


def test_columns_top_m_and_empty_selections(X, gene0_map):
    assert list(gene0_map.pairs.columns) == MAP_COLUMNS
    assert len(gene0_map.pairs) == 9 * 8 // 2
    assert gene0_map.pairs["peak_a"].iloc[0] == "chr1:0-500"
    assert set(gene0_map.pairs["redundant"]) == {"true", "false"}
    few = redundancy_map(TargetEvaluator(toy_predict, X, [0]), SELECTED, WINDOW_G0, settings=MapSettings(top_m=3))
    assert few.peaks.tolist() == [0, 1, 2] and len(few.pairs) == 3
    empty = redundancy_map(TargetEvaluator(toy_predict, X, [0]), [], WINDOW_G0)
    assert list(empty.pairs.columns) == MAP_COLUMNS and empty.pairs.empty and empty.groups == []


def test_bootstrap_is_seeded_and_vectorised():
    rng = np.random.default_rng(1)
    values = rng.normal(1.0, 1.0, size=(5, 300))
    low, high = bootstrap_interval(values, draws=400, confidence=0.9, seed=3)
    again = bootstrap_interval(values, draws=400, confidence=0.9, seed=3)
    other = bootstrap_interval(values, draws=400, confidence=0.9, seed=4)
    assert np.array_equal(low, again[0]) and np.array_equal(high, again[1])
    assert not np.array_equal(low, other[0])
    # Matches the textbook loop over draws with the same resampled cells.
    picks = np.random.default_rng(3).integers(0, 300, size=(400, 300))
    means = values[:, picks].mean(2)
    assert np.allclose(low, np.quantile(means, 0.05, axis=1)) and np.allclose(high, np.quantile(means, 0.95, axis=1))
    assert (low < values.mean(1)).all() and (values.mean(1) < high).all()


def test_stacked_removals_equal_separate_removals_without_stored_zeros(X):
    closed = [np.zeros(0, np.int64), np.array([0]), np.array([0, 5, 59]), np.arange(9)]
    stacked = stacked_removals(X, closed)
    expected = sp.vstack([remove_peaks(X, c) for c in closed]).tocsr()
    assert stacked.shape == expected.shape and (stacked != expected).nnz == 0
    assert stacked.nnz == expected.nnz and (stacked.data != 0).all()


def test_a_16_peak_map_of_demo_size_is_a_few_batched_predict_calls():
    """120 cells x 2500 peaks, 16 peaks (120 pairs, 16 singles, the window runs): the predictions
    go in stacks, so the number of predict calls stays small; prints the timing."""
    X = toy_cells(n=120, n_peaks=2500, seed=2)
    weights = np.random.default_rng(0).random((2500, 50)).astype(np.float32) / 250  # a dense model part
    calls = []

    def predict(M):
        calls.append(M.shape[0])
        return np.c_[toy_predict(M), np.log1p(np.asarray(M @ weights))]

    selected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 40, 41, 100, 200, 300, 400, 500]
    started = time.perf_counter()
    evaluator = TargetEvaluator(predict, X, [0, 1])
    result = redundancy_map(evaluator, selected, np.r_[0:9, 36:46, 100:140], settings=MapSettings())
    seconds = time.perf_counter() - started
    n_removals = 1 + 16 + 120 + 1 + 12  # before, singles, pairs, window closed, 12 peaks in the window
    print(f"\nredundancy map, 120 cells x 2500 peaks, m = 16: {seconds:.2f} s, {len(calls)} predict calls "
          f"for {sum(calls)} stacked cells ({n_removals} removals + {len(result.groups)} group(s))")
    # A two-peak group's joint removal is one of the pairs', predicted already.
    new_groups = sum(len(g.members) > 2 for g in result.groups)
    assert len(result.pairs) == 120 and sum(calls) == 120 * (n_removals + new_groups)
    assert len(calls) <= 5
    assert {g.members for g in result.groups} >= {OR_PAIR, OR_TRIPLE, G1_PAIR}
    assert seconds < 10


def test_settings_are_checked():
    assert MapSettings.from_config({"methods": ["grids"], "top_m": 4}).top_m == 4
    for bad in ({"confidence": 1.0}, {"top_m": 0}, {"min_interaction_fraction": -1}):
        with pytest.raises(ValueError):
            MapSettings(**bad)


# ---- The rule end to end on a tiny paired data set and fake shards ------------------------------
GENES = ["G0", "G1"]


def _paired(tmp_path):
    """paired.h5mu (types a and b, half the cells test), the peaks table and a GTF: G0's TSS sits by
    peaks 0-8 on chr1, G1's by peaks 36-45 on chr2 (window 5 kb)."""
    from grids.multiome import write_paired

    X = toy_cells(n=400, seed=5)  # 100 test cells per type
    n = X.shape[0]
    chrom = np.where(np.arange(N_PEAKS) < 30, "chr1", "chr2")
    start = (np.arange(N_PEAKS) % 30) * 1000
    peaks = pd.DataFrame({"chrom": chrom, "start": start, "end": start + 500},
                         index=[f"{c}:{s}-{s + 500}" for c, s in zip(chrom, start)])
    cells = [f"s#c{i}" for i in range(n)]
    types = pd.Series(np.where(np.arange(n) % 2 == 0, "a", "b"), index=cells)
    split = pd.Series(np.where(np.arange(n) % 4 < 2, "test", "train"), index=cells)
    rna = ad.AnnData(sp.csr_matrix(toy_predict(X)), obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=GENES))
    atac = ad.AnnData(X, obs=pd.DataFrame(index=cells), var=peaks[["chrom", "start", "end"]])
    write_paired(rna, atac, types, split=split, path=str(tmp_path / "paired.h5mu"))
    gtf = tmp_path / "genes.gtf"
    gtf.write_text('chr1\tx\tgene\t4001\t6000\t.\t+\t.\tgene_id "G0"; gene_name "G0";\n'
                   'chr2\tx\tgene\t10751\t12000\t.\t+\t.\tgene_id "G1"; gene_name "G1";\n')
    return X, peaks, gtf


class FakeSurrogate:
    """What the stage uses of a saved surrogate: predict and the index check."""

    def __init__(self, peaks: pd.DataFrame) -> None:
        self.peaks, self.genes = peaks, GENES

    def predict(self, X) -> np.ndarray:
        return toy_predict(X)

    def check_compatible(self, peaks, genes, *, source: str = "data") -> None:
        assert list(peaks) == list(self.peaks.index) and list(genes) == self.genes, source


def _shards(tmp_path, peaks):
    """Two shard tables + metas of method grids at L 3 and 9, one selection 'not run'."""
    from grids.explain.shards import SHARD_COLUMNS

    def rows(cell_type, target, kind, L, selected, status="ok"):
        common = {"method": "grids", "L": L, "cell_type": cell_type, "target": target, "kind": kind,
                  "n_genes": 2 if kind == "set" else 1, "train_loss": 0.0, "seconds": 0.1}
        if status != "ok":
            return [{**common, "rank": 0, "peak_index": -1, "chrom": "", "start": -1, "end": -1, "score": np.nan,
                     "status": status}]
        return [{**common, "rank": r, "peak_index": p, "chrom": peaks["chrom"].iloc[p],
                 "start": int(peaks["start"].iloc[p]), "end": int(peaks["end"].iloc[p]), "score": 1.0 / r,
                 "status": "ok"} for r, p in enumerate(selected, start=1)]

    shard0 = (rows("a", "G0", "gene", 3, [0, 1, 2]) + rows("a", "G0", "gene", 9, SELECTED)
              + rows("a", "G1", "gene", 3, [40, 41, 5]) + rows("a", "G1", "gene", 9, [], "not run: no peaks"))
    shard1 = (rows("b", "G0", "gene", 3, [6, 7, 8]) + rows("b", "G0", "gene", 9, SELECTED)
              + rows("a", "top2", "set", 3, [0, 40, 1]) + rows("a", "top2", "set", 9, [0, 1, 40, 41, 2, 3, 4, 6, 7]))
    tables, metas = [], []
    for i, (shard, genes) in enumerate([(shard0, {"a__G0": ["G0"], "a__G1": ["G1"]}),
                                        (shard1, {"b__G0": ["G0"], "a__top2": ["G0", "G1"]})]):
        tables.append(tmp_path / f"shard{i}.tsv")
        pd.DataFrame(shard, columns=SHARD_COLUMNS).to_csv(tables[-1], sep="\t", index=False)
        metas.append(tmp_path / f"shard{i}.json")
        metas[-1].write_text(json.dumps({"genes": genes, "curves": {}}))
    return [str(p) for p in tables], [str(p) for p in metas]


def test_the_rule_writes_every_map_and_the_summary(tmp_path, monkeypatch):
    import grids.surrogate
    from grids.workflow.stages.redundancy import read_summary, run_redundancy_maps, run_redundancy_summary

    X, peaks, gtf = _paired(tmp_path)
    monkeypatch.setattr(grids.surrogate, "load_surrogate", lambda path, **kw: FakeSurrogate(peaks))
    tables, metas = _shards(tmp_path, peaks)
    stems = ["a__G0", "a__G1", "b__G0", "a__top2"]
    expected = [f"L{L}/{stem}" for L in (3, 9) for stem in stems]
    out = tmp_path / "results" / "redundancy" / "grids"
    started = time.perf_counter()
    summary = run_redundancy_maps(model="model.pt", paired=str(tmp_path / "paired.h5mu"), gtf=str(gtf),
                                  tables=tables, metas=metas, method="grids", split="test", window=5000,
                                  settings={"methods": ["grids"], "top_m": 16, "bootstrap": 300, "seed": 0},
                                  out_dir=str(out), expected=expected, out_summary=str(out / "summary.tsv"))
    print(f"\nstage: {len(expected)} maps in {time.perf_counter() - started:.2f} s")
    for key in expected:
        for suffix in (".tsv", ".bedpe", ".png"):
            assert (out / f"{key}{suffix}").stat().st_size > 0, key + suffix
    assert not [p for p in out.rglob(".*")], "temporaries left behind"
    not_run = pd.read_csv(out / "L9" / "a__G1.tsv", sep="\t")
    assert list(not_run.columns) == MAP_COLUMNS and not_run.empty
    full = pd.read_csv(out / "L9" / "a__G0.tsv", sep="\t", dtype={"redundant": str, "group": str},
                       keep_default_na=False)
    assert list(full.columns) == MAP_COLUMNS and len(full) == 36
    assert set(full["redundant"]) == {"true", "false"}  # read back as text, lower case
    assert full.loc[(full["peak_index_a"] == 0) & (full["peak_index_b"] == 1), "group"].item() == "G1"
    # G0's window is peaks 0-8: every mapped peak has a sufficiency; G1's pair lies outside it.
    assert full["sufficiency_a"].astype(float).notna().all()
    bedpe = pd.read_csv(out / "L9" / "a__G0.bedpe", sep="\t", comment="#", header=None)
    assert len(bedpe) == (full["redundant"] == "true").sum() == 4
    assert set(bedpe[6]) == {"G0|G1", "G0|G2"} and bedpe[7].between(0, 1000).all()
    assert bedpe.iloc[0, :6].tolist() == ["chr1", 0, 500, "chr1", 1000, 1500]
    triple = (out / "L3" / "b__G0.bedpe").read_text().splitlines()  # the OR triple at L3: 3 arcs
    assert triple[1] == "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tname\tscore" and len(triple) == 5
    empty = (out / "L9" / "a__G1.bedpe").read_text().splitlines()
    assert len(empty) == 2 and all(line.startswith("#") for line in empty)
    rows = summary.set_index(["L", "cell_type", "target"])
    assert list(summary.columns) == SUMMARY_COLUMNS and len(summary) == len(expected)
    assert rows.loc[(9, "a", "G0"), "group_sizes"] == "2,3" and rows.loc[(9, "a", "G0"), "n_groups"] == 2
    assert rows.loc[(9, "a", "G1"), "status"].startswith("not run") and rows.loc[(9, "a", "G1"), "n_pairs"] == 0
    # The gene set sums its members and maps over the union of their windows: both OR pairs.
    top = rows.loc[(9, "a", "top2")]
    assert top["n_groups"] == 3 and top["group_sizes"].split(",") == ["2", "2", "2"]
    fractions = [float(v) for v in top["protected_fraction"].split(",")]
    assert fractions == sorted(fractions, reverse=True) and all(0 < f < 1 for f in fractions)
    # The summary rule.
    combined = run_redundancy_summary(tables=[str(out / "summary.tsv")], out_table=str(tmp_path / "summary.tsv"),
                                      out_figure=str(tmp_path / "summary.png"))
    back = read_summary(tmp_path / "summary.tsv")
    assert list(back.columns) == SUMMARY_COLUMNS and len(back) == len(combined) == len(expected)
    assert back.loc[(back["L"] == 3) & (back["target"] == "G1"), "group_sizes"].item() == "2"
    assert (tmp_path / "summary.png").stat().st_size > 0


def test_the_rule_stops_before_mapping_when_a_selection_is_missing(tmp_path, monkeypatch):
    from grids.workflow.stages.redundancy import run_redundancy_maps

    peaks = pd.DataFrame({"chrom": ["chr1"] * N_PEAKS, "start": np.arange(N_PEAKS) * 1000,
                          "end": np.arange(N_PEAKS) * 1000 + 500})
    tables, metas = _shards(tmp_path, peaks)
    with pytest.raises(ValueError, match="lack selections for L3/a__G9"):
        run_redundancy_maps(model="none", paired="none", gtf="none", tables=tables, metas=metas, method="grids",
                            split="test", window=5000, settings={}, out_dir=str(tmp_path / "out"),
                            expected=["L3/a__G0", "L3/a__G9"], out_summary=str(tmp_path / "s.tsv"))
