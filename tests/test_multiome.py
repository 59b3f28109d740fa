"""Pairing RNA with ATAC cells and the stratified split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grids.multiome import PairingError, atac_qc_pass, pair_cells, stratified_split

FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


def _obs(cells: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"sample": [c.split("#")[0] for c in cells]}, index=cells)


def test_pairing_keeps_cells_passing_both_and_explains_the_rest():
    rna = _obs(["s1#A", "s1#B", "s1#C", "s2#A", "s2#D"])
    atac = _obs(["s1#A", "s1#B", "s1#E", "s2#A", "s2#D"])
    rna_ok = pd.Series([True, True, True, False, True], index=rna.index)
    atac_ok = pd.Series([True, False, True, True, True], index=atac.index)
    paired, report = pair_cells(rna, atac, rna_ok, atac_passed=atac_ok)
    assert paired == ["s1#A", "s2#D"]  # RNA order
    s1 = report.set_index("sample").loc["s1"]
    assert s1["dropped_rna_failed_atac_qc"] == 1  # B
    assert s1["dropped_rna_no_atac"] == 1  # C
    assert s1["dropped_atac_no_rna"] == 1  # E
    assert report.set_index("sample").loc["s2", "dropped_atac_failed_rna_qc"] == 1  # s2#A


def test_no_overlap_shows_barcodes_from_both_sides():
    rna, atac = _obs(["s1#AAAC-1"]), _obs(["s1#GGGT-1"])
    ok = pd.Series(True, index=rna.index)
    with pytest.raises(PairingError, match=r"RNA: s1#AAAC-1; ATAC: s1#GGGT-1"):
        pair_cells(rna, atac, ok, atac_passed=pd.Series(True, index=atac.index))


def test_atac_qc_uses_fragments_or_open_peaks():
    obs = pd.DataFrame({"n_fragments": [2000, 500, 3000], "tss_enrichment": [6, 9, 2], "n_peaks": [10, 5, 8]})
    assert atac_qc_pass(obs, min_fragments=1000, min_tss_enrichment=4).tolist() == [True, False, False]
    matrix_only = obs.assign(n_fragments=np.nan, tss_enrichment=np.nan, n_peaks=[3, 0, 1])
    assert atac_qc_pass(matrix_only, min_fragments=1000, min_tss_enrichment=4).tolist() == [True, False, True]


def test_split_is_stratified_seeded_and_complete():
    labels = pd.Series(["a"] * 200 + ["b"] * 50 + ["c"] * 3, index=[f"c{i}" for i in range(253)])
    split = stratified_split(labels, FRACTIONS, seed=0)
    table = pd.crosstab(labels, split)
    assert table.loc["a"].tolist() == [140, 20, 40]
    assert table.loc["b"].tolist() == [35, 5, 10]
    assert table.loc["c"].tolist() == [1, 1, 1]  # every split sees every type
    assert split.equals(stratified_split(labels, FRACTIONS, seed=0))
    assert not split.equals(stratified_split(labels, FRACTIONS, seed=1))


@pytest.mark.parametrize("sample", ["01", "1"])
def test_pairing_stage_keeps_numeric_looking_sample_names(tmp_path, sample):
    """The RNA QC table used to be read with inferred types: sample "01" became the number 1, so the
    report split it into two samples (RNA cells under 1, ATAC cells under "01") and kept none."""
    import anndata as ad
    import scipy.sparse as sp

    from grids.io import write_tsv
    from grids.multiome import run_pairing

    n = 60
    barcodes = [f"AC{i:06d}-1" for i in range(n)]
    cells = [f"{sample}#{b}" for b in barcodes]
    types = np.where(np.arange(n) % 2 == 0, "T cell", "B cell")
    rna = ad.AnnData(sp.csr_matrix(np.ones((n, 3), np.float32)),
                     obs=pd.DataFrame({"sample": sample, "cell_type": pd.Categorical(types)}, index=cells),
                     var=pd.DataFrame(index=["G1", "G2", "G3"]))
    rna.obsm["X_umap"] = np.random.default_rng(0).normal(size=(n, 2))
    rna.write_h5ad(tmp_path / "rna.h5ad")
    write_tsv(pd.DataFrame({"cell": cells, "sample": sample, "barcode": barcodes, "n_genes": 3, "n_counts": 3,
                            "percent_mito": 0.0, "passed_qc": True}), tmp_path / "qc.tsv")
    atac = ad.AnnData(sp.csr_matrix(np.ones((n, 4), np.uint8)),
                      obs=pd.DataFrame({"sample": sample, "barcode": barcodes, "n_fragments": 5000,
                                        "tss_enrichment": 8.0, "n_peaks": 4}, index=cells),
                      var=pd.DataFrame(index=[f"chr1:{i * 1000}-{i * 1000 + 500}" for i in range(4)]))
    atac.write_h5ad(tmp_path / "atac.h5ad")
    out = tmp_path / "out"
    run_pairing(rna_h5ad=str(tmp_path / "rna.h5ad"), rna_qc=str(tmp_path / "qc.tsv"),
                atac_h5ad=str(tmp_path / "atac.h5ad"), min_fragments=1000, min_tss_enrichment=4,
                min_cells_per_type=5, split_settings={**FRACTIONS, "seed": 0}, out_h5mu=str(out / "paired.h5mu"),
                out_report=str(out / "report.tsv"), out_umap=str(out / "umap.png"))
    report = pd.read_csv(out / "report.tsv", sep="\t", dtype={"sample": str})
    assert report["sample"].tolist() == [sample]
    assert report[["rna_cells", "atac_cells", "paired", "kept_after_labels"]].iloc[0].tolist() == [n, n, n, n]
