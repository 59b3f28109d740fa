"""ATAC stage pieces against independent references (bedtools) and their error paths."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, require_shared_data
from grids.atac import (
    PeakCallingError,
    barcode_qc,
    build_peak_matrix,
    call_cells,
    call_peaks,
    consensus_peaks,
    write_insertions,
)
from grids.fragments import FragmentsError
from grids.genome import read_tss
from grids.io import read_chrom_sizes


@pytest.fixture(scope="module")
def demo_cells(demo_sample) -> list[str]:
    return pd.read_csv(demo_sample / "cell_types.tsv", sep="\t")["barcode"].tolist()


@pytest.fixture(scope="module")
def planted_peaks(demo_sample) -> pd.DataFrame:
    cres = pd.read_csv(demo_sample / "truth" / "cres.tsv", sep="\t")
    return cres[["chrom", "start", "end"]].assign(name=cres["cre_id"])


def test_matrix_equals_bedtools_reference(demo_sample, demo_model, demo_cells, planted_peaks):
    """Every (cell, peak) pair where either Tn5 insertion of a fragment hits the peak, as bedtools sees it."""
    import pybedtools

    cells = demo_cells[:60]
    matrix = build_peak_matrix(demo_sample / "fragments.tsv.gz", demo_model.chrom_sizes, planted_peaks, barcodes=cells,
                               chunk_size=250_000)
    assert matrix.X.dtype == np.uint8 and matrix.X.max() == 1 and matrix.X.has_sorted_indices

    fragments = pd.read_csv(demo_sample / "fragments.tsv.gz", sep="\t", comment="#", header=None,
                            names=["chrom", "start", "end", "barcode", "count"])
    fragments = fragments[fragments["barcode"].isin(cells)]
    insertions = pd.concat([
        pd.DataFrame({"chrom": fragments.chrom, "s": fragments.start, "e": fragments.start + 1,
                      "b": fragments.barcode}),
        pd.DataFrame({"chrom": fragments.chrom, "s": fragments.end - 1, "e": fragments.end, "b": fragments.barcode}),
    ])
    peaks = pybedtools.BedTool.from_dataframe(planted_peaks.reset_index()[["chrom", "start", "end", "index"]])
    hits = pybedtools.BedTool.from_dataframe(insertions).intersect(peaks, wa=True, wb=True).to_dataframe(
        header=None, names=["c", "s", "e", "barcode", "pc", "ps", "pe", "peak"])
    cell_index = {b: i for i, b in enumerate(cells)}
    expected = set(zip(hits["barcode"].map(cell_index), hits["peak"]))
    got = set(zip(*matrix.X.nonzero()))
    assert got == expected and len(got) > 1000
    assert (matrix.n_fragments == fragments.groupby("barcode").size().loc[cells].to_numpy()).all()


def test_barcode_qc_separates_cells_from_empty_droplets(demo_sample, demo_model, demo_cells):
    tss = read_tss(demo_sample / "genes.gtf", demo_model.chrom_sizes)
    assert len(tss) == len(demo_model.genes) + 13  # the 13 MT- genes sit on chrM, which is in chrom.sizes
    qc = barcode_qc(demo_sample / "fragments.tsv.gz", demo_model.chrom_sizes, tss)
    table = qc.table.set_index("barcode")
    is_cell = table.index.isin(demo_cells)
    assert table.loc[is_cell, "tss_enrichment"].median() > 8
    assert table.loc[is_cell, "n_fragments"].min() > 10 * table.loc[~is_cell, "n_fragments"].median()
    # Nucleosome signal by hand for one cell.
    fragments = pd.read_csv(demo_sample / "fragments.tsv.gz", sep="\t", comment="#", header=None,
                            names=["chrom", "start", "end", "barcode", "count"])
    one = fragments[fragments.barcode == demo_cells[0]]
    length = one.end - one.start
    expected = (((length >= 147) & (length < 294)).sum() + 1) / ((length < 147).sum() + 1)
    assert table.loc[demo_cells[0], "nucleosome_signal"] == pytest.approx(expected)
    assert qc.fragment_lengths.sum() == len(fragments)
    centre = qc.tss_profile[1950:2051].mean()
    assert centre > 5 * qc.tss_profile[:100].mean()  # insertions pile up on TSSs
    # Threshold cell calling recovers the simulated cells. Seed 0's sparsest cell has ~900
    # fragments and its busiest empty droplet ~400, so 500 separates them.
    called = call_cells(qc.table, rna_barcodes=None, min_fragments=500, min_tss_enrichment=4, source="demo")
    assert set(qc.table.loc[called, "barcode"]) == set(demo_cells)


def test_no_rna_barcode_in_fragments_shows_both_sides():
    table = pd.DataFrame({"barcode": ["AAAC-1", "GGGT-1"], "n_fragments": [5000, 10], "tss_enrichment": [9.0, 1.0]})
    with pytest.raises(ValueError, match=r"no fragment barcode matches an RNA cell barcode.*AAAC-1.*TTTT-1"):
        call_cells(table, rna_barcodes=["TTTT-1"], min_fragments=1, min_tss_enrichment=0, source="x.tsv.gz vs y.h5")


def test_zero_peaks_is_an_error(tmp_path):
    bed = tmp_path / "few.bed"
    bed.write_text("".join(f"chr1\t{p}\t{p + 1}\n" for p in range(1000, 900_000, 90_000)))
    with pytest.raises(PeakCallingError, match="zero peaks"):
        call_peaks(bed, tmp_path / "macs", "few", genome_size=1_000_000)


def test_macs_failure_is_reported(tmp_path):
    bed = tmp_path / "broken.bed"
    bed.write_text("not a bed file\n")
    with pytest.raises(PeakCallingError, match="macs2"):
        call_peaks(bed, tmp_path / "macs", "broken", genome_size=1_000_000)


def test_insertions_leave_nothing_behind_on_a_bad_file(tmp_path):
    bad = tmp_path / "bad.tsv.gz"
    with gzip.open(bad, "wt") as handle:
        handle.write("chr1\t10\t60\tA\t1\nchr1\t20\t10\tA\t1\n")
    out = tmp_path / "out"
    with pytest.raises(FragmentsError):
        write_insertions(bad, {"chr1": 1000}, {"A": ["all"]}, outputs={"all": out / "all.bed"})
    assert not out.exists() or not any(out.iterdir())


def test_insertions_leave_nothing_behind_on_a_truncated_gzip(tmp_path):
    """Chunks before the cut were already written; the error must remove them, temporaries included."""
    whole = tmp_path / "whole.tsv.gz"
    with gzip.open(whole, "wt") as handle:
        handle.write("".join(f"chr1\t{s}\t{s + 100}\tA\t1\n" for s in range(0, 500_000, 25)))
    cut = tmp_path / "cut.tsv.gz"
    cut.write_bytes(whole.read_bytes()[:-300])
    out = tmp_path / "out"
    with pytest.raises(FragmentsError, match="truncated") as err:
        write_insertions(cut, {"chr1": 1_000_000}, {"A": ["all"]}, outputs={"all": out / "all.bed"}, chunk_size=1000)
    assert str(cut) in str(err.value)
    assert not out.exists() or not any(out.iterdir())


def test_consensus_merges_filters_and_sorts(tmp_path):
    a = tmp_path / "a.narrowPeak"
    b = tmp_path / "b.narrowPeak"
    a.write_text("chr2\t100\t300\tp1\nchr1\t500\t700\tp2\nchrM\t10\t200\tp3\nchrUn\t1\t50\tp4\n")
    b.write_text("chr1\t650\t900\tq1\nchr1\t5000\t5200\tq2\n")
    blacklist = tmp_path / "black.bed"
    blacklist.write_text("chr1\t5100\t5150\n")
    sizes = {"chr1": 10_000, "chr2": 10_000, "chrM": 16_569}
    peaks = consensus_peaks([a, b], sizes, blacklist=blacklist, exclude_chromosomes=["chrM"])
    assert peaks[["chrom", "start", "end"]].values.tolist() == [["chr1", 500, 900], ["chr2", 100, 300]]
    assert peaks["name"].tolist() == ["chr1:500-900", "chr2:100-300"]


def test_peaks_from_real_chr22_fragments(tmp_path):
    """MACS on the real, barcode-sorted chr22 fragments through the stage's own functions."""
    path = require_shared_data("scatac_chr22", "fragments.tsv.gz")
    sizes = read_chrom_sizes(REPO / "resources" / "hg38.chrom.sizes")
    qc = barcode_qc(path, sizes, pd.DataFrame(columns=["chrom", "position", "strand", "gene"]))
    cells = call_cells(qc.table, rna_barcodes=None, min_fragments=100, min_tss_enrichment=0, source=str(path))
    groups = {b: ["all"] for b in qc.table.loc[cells, "barcode"]}
    written = write_insertions(path, sizes, groups, outputs={"all": tmp_path / "all.bed"})
    assert written["all"] == 2 * qc.table.loc[cells, "n_fragments"].sum()
    narrow = call_peaks(tmp_path / "all.bed", tmp_path, "chr22", genome_size=sizes["chr22"])
    peaks = pd.read_csv(narrow, sep="\t", header=None)
    assert len(peaks) > 20 and set(peaks[0]) == {"chr22"}


def test_insertions_of_overlapping_pseudobulks_in_one_pass(tmp_path):
    fragments = tmp_path / "f.tsv.gz"
    with gzip.open(fragments, "wt") as handle:
        handle.write("chr1\t10\t60\tA\t1\nchr1\t20\t90\tB\t1\nchr1\t30\t80\tC\t1\n")
    written = write_insertions(fragments, {"chr1": 1000}, {"A": ["all", "x"], "B": ["all"]},
                               outputs={"all": tmp_path / "all.bed", "x": tmp_path / "x.bed"})
    assert written == {"all": 4, "x": 2}
    assert sorted((tmp_path / "x.bed").read_text().split("\n")) == ["", "chr1\t10\t11", "chr1\t59\t60"]


def test_blacklist_removing_every_peak_names_the_blacklist(tmp_path):
    """Used to fail with ``KeyError: 'chrom'`` (an empty frame from bedtools) before its own check."""
    peaks = tmp_path / "s1.all_peaks.narrowPeak"
    peaks.write_text("chr1\t500\t700\tp1\nchr1\t5000\t5200\tp2\n")
    blacklist = tmp_path / "hg19-blacklist.v2.bed"
    blacklist.write_text("chr1\t0\t10000\tHigh Signal Region\n")
    with pytest.raises(PeakCallingError, match="removed every one of the 2 merged peaks") as err:
        consensus_peaks([peaks], {"chr1": 10_000}, blacklist=blacklist)
    assert str(blacklist) in str(err.value)


def test_blacklist_without_chr_prefix_names_both_files(tmp_path):
    """An Ensembl-named blacklist used to remove nothing, silently."""
    from grids.io import write_chrom_sizes

    peaks = tmp_path / "s1.all_peaks.narrowPeak"
    peaks.write_text("chr1\t500\t700\tp1\n")
    blacklist = tmp_path / "GRCh38-blacklist.bed"
    blacklist.write_text("1\t0\t600\n")
    write_chrom_sizes({"chr1": 10_000}, tmp_path / "chrom.sizes")
    with pytest.raises(PeakCallingError, match="differ in their 'chr' prefix") as err:
        consensus_peaks([peaks], read_chrom_sizes(tmp_path / "chrom.sizes"), blacklist=blacklist)
    assert str(blacklist) in str(err.value) and str(tmp_path / "chrom.sizes") in str(err.value)
