"""The simulator's files read back with the field's own readers, and its claims hold."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from grids.io import read_chrom_sizes
from grids.simulate import MITO_GENES

LINK_COLUMNS = ["gene", "chrom", "start", "end", "kind", "group", "cell_types"]


@pytest.fixture(scope="module")
def fragments(demo_sample) -> pd.DataFrame:
    return pd.read_csv(
        demo_sample / "fragments.tsv.gz", sep="\t", comment="#", header=None,
        names=["chrom", "start", "end", "barcode", "count"],
    )


@pytest.fixture(scope="module")
def truth_cells(demo_sample) -> pd.DataFrame:
    return pd.read_csv(demo_sample / "truth" / "cells.tsv", sep="\t")


@pytest.fixture(scope="module")
def rna(demo_sample):
    import scanpy as sc

    adata = sc.read_10x_h5(demo_sample / "filtered_feature_bc_matrix.h5")
    adata.var_names_make_unique()
    return adata


def test_fragments_are_bgzipped_sorted_and_tabix_indexed(demo_sample, fragments, demo_model):
    import pysam

    path = demo_sample / "fragments.tsv.gz"
    with open(path, "rb") as handle:
        assert handle.read(4) == b"\x1f\x8b\x08\x04"  # gzip with the BGZF extra field
    tabix = pysam.TabixFile(str(path))
    autosomes = [c for c in demo_model.chrom_sizes if c != "chrM"]
    assert list(tabix.contigs) == autosomes
    # A region query through the index returns exactly the fragments overlapping it.
    chrom, lo, hi = autosomes[0], 1_000_000, 1_200_000
    hits = [line.split("\t") for line in tabix.fetch(chrom, lo, hi)]
    expected = fragments[(fragments.chrom == chrom) & (fragments.start < hi) & (fragments.end > lo)]
    assert len(hits) == len(expected) > 0
    # Sorted: chromosome blocks in chrom.sizes order, starts non-decreasing within each.
    order = fragments["chrom"].map({c: i for i, c in enumerate(autosomes)}).to_numpy()
    assert np.all(np.diff(order) >= 0)
    for _, block in fragments.groupby("chrom"):
        assert block["start"].is_monotonic_increasing
    assert (fragments["end"] > fragments["start"]).all()
    # 10x-style header lines precede the records.
    with gzip.open(path, "rt") as handle:
        assert handle.readline().startswith("# id=demo1")


def test_fragment_lengths_follow_a_tn5_mix_with_duplicates(fragments):
    length = fragments["end"] - fragments["start"]
    nucleosome_free = (length < 147).mean()
    mono = ((length >= 147) & (length < 300)).mean()
    di = ((length >= 300) & (length < 600)).mean()
    assert 0.3 < nucleosome_free < 0.7 and 0.2 < mono < 0.55 and 0.03 < di < 0.25
    assert (fragments["count"] >= 1).all() and (fragments["count"] > 1).mean() > 0.2
    # Identical fragments were merged into one line per barcode.
    assert not fragments.duplicated(["chrom", "start", "end", "barcode"]).any()


def test_empty_droplets_have_few_fragments(fragments, truth_cells, rna):
    per_barcode = fragments.groupby("barcode").size()
    cells = set(rna.obs_names)
    empties = per_barcode[~per_barcode.index.isin(cells)]
    assert len(empties) >= 0.9 * (~truth_cells["is_cell"]).sum()
    assert empties.median() < 100 and per_barcode[per_barcode.index.isin(cells)].min() > 500


def test_frip_in_range_and_recomputed_with_pyranges(demo_sample, fragments, truth_cells):
    import pyranges as pr

    cells = truth_cells[truth_cells["is_cell"]]
    assert cells["frip"].between(0.3, 0.6).all(), cells["frip"].describe()
    cres = pd.read_csv(demo_sample / "truth" / "cres.tsv", sep="\t")
    cre_ranges = pr.PyRanges(cres.rename(columns={"chrom": "Chromosome", "start": "Start", "end": "End"})[
        ["Chromosome", "Start", "End"]])
    frag = fragments.reset_index(names="fragment")
    # Tn5 insertions at start and end-1, as 1-bp intervals; a fragment is in a CRE if either is.
    insertions = pd.concat([
        pd.DataFrame({"Chromosome": frag.chrom, "Start": frag.start, "End": frag.start + 1, "fragment": frag.fragment}),
        pd.DataFrame({"Chromosome": frag.chrom, "Start": frag.end - 1, "End": frag.end, "fragment": frag.fragment}),
    ])
    hit = pr.PyRanges(insertions).overlap(cre_ranges).df["fragment"].unique()
    in_cre = np.zeros(len(frag), bool)
    in_cre[hit] = True
    frip = pd.Series(in_cre).groupby(frag["barcode"]).mean()
    merged = cells.set_index("barcode")["frip"]
    assert np.allclose(frip.loc[merged.index].to_numpy(), merged.to_numpy(), atol=1e-6)


def test_10x_h5_reads_with_scanpy_and_pegasusio(demo_sample, rna, demo_model, truth_cells):
    import pegasusio

    assert rna.n_vars == len(demo_model.genes) + len(MITO_GENES)
    assert rna.var["feature_types"].eq("Gene Expression").all()
    assert set(rna.obs_names) == set(truth_cells.loc[truth_cells["is_cell"], "barcode"])
    data = pegasusio.read_input(str(demo_sample / "filtered_feature_bc_matrix.h5"))
    unimodal = data.get_data(modality="rna")
    assert unimodal.shape == rna.shape
    # pegasusio drops the 10x GEM-group suffix "-1" from barcodes, as it documents.
    assert list(unimodal.obs_names) == [b.removesuffix("-1") for b in rna.obs_names]
    assert (abs(unimodal.X - rna.X).sum()) == 0


def test_rna_has_mito_genes_low_quality_cells_and_overdispersion(rna, truth_cells):
    truth = truth_cells.set_index("barcode").loc[rna.obs_names]
    counts = np.asarray(rna.X.todense())
    mito = rna.var_names.str.startswith("MT-")
    assert mito.sum() == len(MITO_GENES)
    pct_mito = 100 * counts[:, mito].sum(1) / counts.sum(1)
    low = truth["low_quality"].to_numpy()
    assert low.sum() >= 10
    assert (pct_mito[low] > 20).mean() >= 0.9 and (pct_mito[~low] < 20).mean() >= 0.99
    # Negative binomial: within one cell type, variance exceeds the mean for expressed genes.
    one_type = (truth["cell_type"] == truth["cell_type"].iloc[0]).to_numpy() & ~low
    sub = counts[one_type][:, ~mito]
    sub = sub / sub.sum(1, keepdims=True) * np.median(sub.sum(1))
    mean, var = sub.mean(0), sub.var(0)
    expressed = mean > 5
    assert expressed.sum() > 20 and np.median(var[expressed] / mean[expressed]) > 1.5


def test_gtf_reads_with_pyranges(demo_sample, demo_model):
    import pyranges as pr

    gtf = pr.read_gtf(demo_sample / "genes.gtf").df
    genes = gtf[gtf["Feature"] == "gene"]
    assert len(genes) == len(demo_model.genes) + len(MITO_GENES)
    assert set(genes["gene_name"]) >= set(demo_model.genes["gene"])
    assert {"transcript", "exon"} <= set(gtf["Feature"])
    model = demo_model.genes.set_index("gene")
    g = genes.set_index("gene_name").loc[model.index]
    # pyranges converts GTF to 0-based half-open: the TSS is Start on + and End-1 on -.
    tss = np.where(g["Strand"] == "+", g["Start"], g["End"] - 1)
    assert np.array_equal(tss, model["tss"].to_numpy())


def test_chrom_sizes_and_cell_types(demo_sample, demo_model, rna):
    sizes = read_chrom_sizes(demo_sample / "chrom.sizes")
    assert sizes == demo_model.chrom_sizes and "chrM" in sizes
    labels = pd.read_csv(demo_sample / "cell_types.tsv", sep="\t")
    assert list(labels.columns) == ["barcode", "cell_type"]
    assert list(labels["barcode"]) == list(rna.obs_names)
    assert set(labels["cell_type"]) == set(demo_model.cell_types)


def test_links_table_layout_and_distances(demo_sample, demo_model):
    links = pd.read_csv(demo_sample / "truth" / "links.tsv", sep="\t", keep_default_na=False)
    assert list(links.columns[: len(LINK_COLUMNS)]) == LINK_COLUMNS
    assert set(links["kind"]) == {"promoter", "enhancer", "redundant", "indirect"}
    assert (links.loc[links.kind == "redundant", "group"] != "").all()
    # Grouped links: OR groups are kind "redundant"; AND and additive control pairs are enhancers.
    grouped = links["group"] != ""
    assert set(links.loc[grouped, "logic"]) == {"or", "and", "additive"}
    assert (links.loc[grouped & (links.kind != "redundant"), "kind"] == "enhancer").all()
    assert (links.loc[~grouped, "logic"] == "").all()
    tss = demo_model.genes.set_index("gene")["tss"]
    distal = links[links.kind.isin(["enhancer", "redundant"])]
    distance = ((distal.start + distal.end) // 2 - tss.loc[distal.gene].to_numpy()).abs()
    assert (distance < 100_000).mean() > 0.5
    assert distance.max() < 1_200_000 and (distance > 300_000).sum() > 0
    # Indirect links sit on the TF's CREs, wherever the TF is.
    indirect = links[links.kind == "indirect"]
    assert len(indirect) > 0 and indirect["via_tf"].str.startswith("STF").all()
    types = set(demo_model.cell_types)
    assert all(set(filter(None, v.split(","))) <= types for v in links["cell_types"])


def test_accessibility_is_cell_type_specific(fragments, truth_cells, demo_model):
    """Marker promoters are open mostly in their own cell type, in the fragments themselves."""
    from grids.intervals import interval_index

    cres = demo_model.cres
    cell_type = truth_cells.set_index("barcode")["cell_type"]
    promoters = cres[(cres.kind == "promoter") & cres.gene.isin(sum(demo_model.markers.values(), []))]
    owner = demo_model.genes.set_index("gene").loc[promoters.gene, "marker_of"].to_numpy()
    hits = []
    for chrom, block in fragments.groupby("chrom"):
        sub = promoters[promoters.chrom == chrom]
        idx = interval_index(block["start"].to_numpy(), sub["start"].to_numpy(), sub["end"].to_numpy())
        keep = idx >= 0
        hits.append(pd.DataFrame({"cre": sub.index.to_numpy()[idx[keep]],
                                  "barcode": block["barcode"].to_numpy()[keep]}))
    hits = pd.concat(hits)
    hits = hits[hits.barcode.isin(cell_type.index[cell_type != "empty"])]
    hits["cell_type"] = cell_type.loc[hits.barcode].to_numpy()
    n_cells = cell_type[cell_type != "empty"].value_counts()
    per_type = hits.groupby(["cre", "cell_type"]).barcode.nunique().unstack(fill_value=0) / n_cells
    own = per_type.to_numpy()[np.arange(len(per_type)), [per_type.columns.get_loc(o) for o in
                                                          pd.Series(owner, index=promoters.index).loc[per_type.index]]]
    others = (per_type.sum(1).to_numpy() - own) / (len(n_cells) - 1)
    assert np.median(own / np.maximum(others, 1e-3)) > 4
