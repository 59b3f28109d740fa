"""RNA stage library (grids.rna): readers, Pegasus QC, labels, checks, figures."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import require_shared_data
from grids import rna


@pytest.fixture(scope="module")
def demo_h5(demo_sample):
    return demo_sample / "filtered_feature_bc_matrix.h5"


@pytest.fixture(scope="module")
def demo_rna(demo_h5):
    return rna.read_rna(demo_h5, "demo1")


@pytest.fixture(scope="module")
def demo_qc(demo_rna):
    # The demo panel has ~170 genes, so the human-sized min_genes=500 would remove every cell.
    return rna.rna_qc(demo_rna, min_genes=50)


def _h5_counts(path) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """Counts straight from the Cell Ranger h5 with h5py (cells x features), no reader library."""
    import h5py

    with h5py.File(path, "r") as h5:
        m = h5["matrix"]
        n_features, n_cells = m["shape"][:]
        X = sp.csc_matrix((m["data"][:], m["indices"][:], m["indptr"][:]), shape=(n_features, n_cells)).T.tocsr()
        return X, [b.decode() for b in m["barcodes"][:]], [g.decode() for g in m["features/name"][:]]


def _same_counts(a, b) -> bool:
    return a.shape == b.shape and (sp.csr_matrix(a, dtype=np.int64) != sp.csr_matrix(b, dtype=np.int64)).nnz == 0


# ------------------------------------------------------------------------------- reading

def test_read_10x_h5_prefixes_and_keeps_counts(demo_h5, demo_rna):
    X, barcodes, genes = _h5_counts(demo_h5)
    assert _same_counts(demo_rna.X, X)
    assert np.issubdtype(demo_rna.X.dtype, np.integer)
    assert demo_rna.obs_names.tolist() == [f"demo1#{b}" for b in barcodes]
    assert demo_rna.obs["barcode"].tolist() == barcodes  # GEM suffix "-1" kept, as on the ATAC side
    assert (demo_rna.obs["sample"] == "demo1").all()
    assert demo_rna.var_names.tolist() == genes and demo_rna.var_names.is_unique


def test_read_h5ad_mtx_and_h5mu_match_h5(tmp_path, demo_rna):
    import anndata as ad
    import mudata as md
    from scipy.io import mmwrite

    barcodes = demo_rna.obs["barcode"].tolist()
    counts = demo_rna.X
    # h5ad holding normalised X and counts in a layer, plus a non-gene feature to drop.
    var = pd.DataFrame({"feature_types": ["Gene Expression"] * demo_rna.n_vars + ["Peaks"]},
                       index=[*demo_rna.var_names, "chr1:1-100"])
    with_peak = sp.hstack([counts, sp.csr_matrix(np.ones((len(barcodes), 1)))]).tocsr().astype(np.float32)
    full = ad.AnnData(X=with_peak, obs=pd.DataFrame(index=barcodes), var=var)
    full.layers["counts"] = full.X.copy()
    full.X = sp.csr_matrix(np.log1p(full.X.toarray()))
    full.write_h5ad(tmp_path / "rna.h5ad")
    # 10x v3 mtx folder (features x barcodes, gzipped).
    mtx = tmp_path / "mtx"
    mtx.mkdir()
    with gzip.open(mtx / "matrix.mtx.gz", "wb") as handle:
        mmwrite(handle, sp.coo_matrix(counts.T))
    pd.DataFrame({"id": demo_rna.var["gene_ids"], "name": demo_rna.var_names, "type": "Gene Expression"}).to_csv(
        mtx / "features.tsv.gz", sep="\t", header=False, index=False)
    pd.Series(barcodes).to_csv(mtx / "barcodes.tsv.gz", header=False, index=False)
    # h5mu with an 'rna' modality (float counts, as the PBMC file has).
    rna_mod = ad.AnnData(X=counts.astype(np.float32), obs=pd.DataFrame(index=barcodes),
                         var=pd.DataFrame(index=demo_rna.var_names))
    md.MuData({"rna": rna_mod, "atac": ad.AnnData(X=sp.csr_matrix((len(barcodes), 2)),
                                                   obs=pd.DataFrame(index=barcodes))}).write(tmp_path / "x.h5mu")
    for path in (tmp_path / "rna.h5ad", mtx, tmp_path / "x.h5mu"):
        got = rna.read_rna(path, "demo1")
        assert _same_counts(got.X, counts), path
        assert got.obs_names.equals(demo_rna.obs_names), path
        assert got.var_names.equals(demo_rna.var_names), path


def test_read_rejects_bad_input(tmp_path):
    import anndata as ad

    normalised = ad.AnnData(X=np.array([[0.5, 1.2], [2.0, 0.0]], dtype=np.float32))
    normalised.write_h5ad(tmp_path / "norm.h5ad")
    with pytest.raises(ValueError, match=r"norm\.h5ad: no raw integer counts"):
        rna.read_rna(tmp_path / "norm.h5ad", "s")
    (tmp_path / "counts.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"counts\.csv: unsupported"):
        rna.read_rna(tmp_path / "counts.csv", "s")


# ------------------------------------------------------------------------------- QC

def test_qc_removes_planted_low_quality_cells(demo_sample, demo_rna, demo_qc):
    adata, qc = demo_qc
    truth = pd.read_csv(demo_sample / "truth" / "cells.tsv", sep="\t").set_index("barcode")
    low = truth["low_quality"].reindex(qc["barcode"]).to_numpy(bool)
    passed = qc["passed_qc"].to_numpy()
    assert low.sum() >= 10
    assert (~passed[low]).mean() >= 0.90
    assert passed[~low].mean() >= 0.95
    # The table covers every input cell; the matrix only those passing.
    assert qc["cell"].tolist() == demo_rna.obs_names.tolist()
    assert adata.obs_names.tolist() == qc.loc[passed, "cell"].tolist()
    assert qc.loc[low, "percent_mito"].median() > 20 > qc.loc[~low, "percent_mito"].median()


def test_qc_keeps_raw_counts_and_log_normalises(demo_rna, demo_qc):
    adata, _ = demo_qc
    raw = demo_rna[adata.obs_names, adata.var_names].X
    assert _same_counts(adata.layers["counts"], raw)
    # Every nuclear gene is modelled; MT- genes are not (no nuclear CRE regulates them).
    nuclear = ~demo_rna.var_names.str.startswith("MT-")
    assert adata.var["robust"].all() and list(adata.var_names) == list(demo_rna.var_names[nuclear])
    # Pegasus log_norm: log1p(count / cell total * 1e5), totals over all robust genes (MT- included).
    totals = demo_rna[adata.obs_names].X.sum(axis=1).A
    expected = np.log1p(raw.toarray() / totals * 1e5)
    np.testing.assert_allclose(adata.X.toarray(), expected, rtol=1e-4, atol=1e-4)
    assert {"n_genes", "n_counts", "percent_mito", "sample", "barcode"} <= set(adata.obs)


def test_targets_kept_when_not_highly_variable(demo_rna):
    split = np.arange(demo_rna.n_obs) % 2 == 0  # two pseudo-samples: batch-aware HVG path
    halves = [demo_rna[split].copy(), demo_rna[~split].copy()]
    halves[1].obs["sample"] = "demo1b"
    halves[1].obs_names = [f"demo1b#{b}" for b in halves[1].obs["barcode"]]
    plain, _ = rna.rna_qc(halves, min_genes=50, n_top_hvg=20)
    assert plain.n_vars == 20 and plain.uns["rna_qc"]["hvg_batch"] == "Channel"
    target = next(g for g in demo_rna.var_names if g not in plain.var_names and not g.startswith("MT-"))
    kept, _ = rna.rna_qc(halves, min_genes=50, n_top_hvg=20, keep_genes=[target])
    assert target in kept.var_names and kept.n_vars == 21
    assert kept.var.loc[target, "target"] and not kept.var.loc[target, "highly_variable_features"]
    assert set(kept.obs["sample"]) == {"demo1", "demo1b"}


def test_missing_target_names_close_matches(demo_rna):
    targets = pd.DataFrame({"cell_type": ["CT1", "CT2", "CT3"], "gene": ["SG0016", "SG00161", "sg0065"]})
    with pytest.raises(ValueError, match="2 target gene") as err:
        rna.check_targets(demo_rna.var_names, targets, source="demo1 RNA")
    message = str(err.value)
    lines = dict(line.strip().split(" ", 1) for line in message.splitlines()[1:])
    assert "SG0016" in lines["SG00161"] and lines["sg0065"] == "(did you mean SG0065?)"
    assert "demo1 RNA" in message
    with pytest.raises(ValueError, match="NOTAGENE"):
        rna.rna_qc(demo_rna, min_genes=50, keep_genes=["NOTAGENE"])


def test_no_mito_genes_warns_and_carries_on(demo_rna, caplog):
    no_mt = demo_rna[:, ~demo_rna.var_names.str.startswith("MT-")].copy()
    with caplog.at_level(logging.WARNING, logger="grids.rna"):
        adata, qc = rna.rna_qc(no_mt, min_genes=50)
    assert "mitochondrial prefix 'MT-'" in caplog.text
    assert (qc["percent_mito"] == 0).all() and adata.n_obs > 0.9 * no_mt.n_obs
    mouse = demo_rna.copy()
    mouse.var_names = [g.replace("MT-", "mt-") for g in mouse.var_names]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="grids.rna"):
        rna.rna_qc(mouse, min_genes=50)
    assert "13 genes start with 'mt-'" in caplog.text


# ------------------------------------------------------------------------------- labels

def test_inferred_labels_match_truth(demo_sample, demo_qc):
    from sklearn.metrics import adjusted_rand_score

    adata, _ = demo_qc
    markers = demo_sample / "truth" / "markers.json"
    labels = rna.infer_labels(adata, markers=markers)
    truth = pd.read_csv(demo_sample / "cell_types.tsv", sep="\t")
    truth = pd.Series(truth["cell_type"].to_numpy(), index=[f"demo1#{b}" for b in truth["barcode"]])
    assert labels.index.equals(adata.obs_names)
    assert adjusted_rand_score(truth.reindex(labels.index), labels) >= 0.9
    # Names come from the marker set, and most cells carry their true type's name.
    assert (labels == truth.reindex(labels.index)).mean() >= 0.9
    assert labels.equals(rna.infer_labels(adata, markers=markers))  # deterministic


def test_read_labels_and_small_types(tmp_path, caplog):
    (tmp_path / "a.tsv").write_text("barcode\tcell_type\nAAA-1\tT\nCCC-1\tB\nGGG-1\tT\nTTT-1\tNK\n")
    (tmp_path / "b.tsv").write_text("barcode\tcell_type\nb#AAA-1\tT\n")
    labels = rna.read_labels({"a": tmp_path / "a.tsv", "b": tmp_path / "b.tsv"})
    assert labels.to_dict() == {"a#AAA-1": "T", "a#CCC-1": "B", "a#GGG-1": "T", "a#TTT-1": "NK", "b#AAA-1": "T"}
    with caplog.at_level(logging.WARNING, logger="grids.rna"):
        keep = rna.drop_small_cell_types(labels, min_cells=2)
    assert keep.to_dict() == {"a#AAA-1": True, "a#CCC-1": False, "a#GGG-1": True, "a#TTT-1": False, "b#AAA-1": True}
    assert "B (1 cells)" in caplog.text and "NK (1 cells)" in caplog.text
    with pytest.raises(ValueError, match="fewer than min_cells=10"):
        rna.drop_small_cell_types(labels, min_cells=10)
    (tmp_path / "bad.tsv").write_text("cell\ttype\nAAA\tT\n")
    with pytest.raises(ValueError, match=r"bad\.tsv: cell-type table needs columns"):
        rna.read_labels({"a": tmp_path / "bad.tsv"})


def test_figures(tmp_path, demo_qc, demo_sample):
    adata, qc = demo_qc
    rna.qc_violin_figure(qc, tmp_path / "qc.png", min_genes=50, max_genes=6000, min_umis=100, percent_mito=20)
    coords = rna.umap(adata)
    assert coords.index.equals(adata.obs_names) and np.isfinite(coords.to_numpy()).all()
    labels = pd.Series("x", index=adata.obs_names[:100])  # the rest drawn as unlabelled
    rna.umap_figure(coords, labels, tmp_path / "umap.png")
    for name in ("qc.png", "umap.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------- real data

@pytest.mark.realdata
def test_pbmc_human_immune_labels():
    h5mu = require_shared_data("pbmc_multiome", "pbmc_multiome.h5mu")
    data = rna.read_rna(h5mu, "pbmc")
    assert data.shape == (1000, 45)
    # 45 marker genes per cell: genes/UMIs per cell are tens, so the thresholds are tiny.
    adata, qc = rna.rna_qc(data, min_genes=1, max_genes=None, min_umis=1, keep_genes=["CD14"])
    assert qc["passed_qc"].mean() > 0.95 and adata.n_vars == 45
    labels = rna.infer_labels(adata, markers="human_immune")
    names = set(labels)
    assert any("Monocyte" in n for n in names), names
    assert any(n.endswith("B cell") for n in names), names
    assert any("T cell" in n or "NK" in n or "Natural killer" in n for n in names), names
    # Plasma cells keep only a negative marker (MS4A1-) on this panel: never a cluster name.
    assert "Plasma cell" not in names
