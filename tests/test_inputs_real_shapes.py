"""Inputs as users bring them (issue 16): files written by anndata/mudata, bgzip, cut-off gzip.

Each file here is written by the tool that makes it in practice (anndata, mudata, gzip,
bgzip via pysam) and read back through the workflow's own readers.
"""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pysam
import pytest
import scipy.sparse as sp

from grids import rna
from grids.atac.inputs import read_peak_matrix
from grids.atac.peaks import consensus_peaks, read_peaks_bed
from grids.genome import read_tss
from grids.io import read_cell_barcodes, write_chrom_sizes

SIZES = {"chr1": 10_000_000, "chr2": 5_000_000, "chrX": 3_000_000}
BARCODES = [f"AAACGAAC{i:04d}-1" for i in range(6)]


def _truncate(path, n_bytes: int = 200):
    """Cut the last bytes off, as an interrupted download or copy does."""
    data = path.read_bytes()
    path.write_bytes(data[:-n_bytes])
    return path


def _gzip(path, text: str):
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    return path


def _peak_adata(var: pd.DataFrame, var_names: list[str]):
    import anndata as ad

    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.poisson(0.8, (len(BARCODES), len(var_names))).astype(np.float32))
    return ad.AnnData(X=X, obs=pd.DataFrame(index=BARCODES), var=var.set_axis(var_names))


# ----------------------------------------------------------------------- peak matrices

# Unsorted, on two known chromosomes, one excluded (chrX) and one unknown contig.
PEAKS = pd.DataFrame({"chrom": ["chr2", "chr1", "chrUn_KI270742v1", "chr1", "chrX"],
                      "start": [500, 4_914_570, 100, 1_000, 50], "end": [900, 4_914_685, 300, 1_400, 90]})
EXPECTED = [["chr1", 1_000, 1_400], ["chr1", 4_914_570, 4_914_685], ["chr2", 500, 900]]


@pytest.mark.parametrize("rows", [[0, 1, 2, 3, 4], [0, 1, 3]], ids=["with-other-contigs", "all-known"])
def test_h5ad_with_categorical_var_columns(tmp_path, rows):
    """anndata writes string var columns as categoricals; the reader used to fail on them
    ("Cannot setitem on a Categorical with a new category (-1)" when every peak is known)."""
    import anndata as ad

    from grids.workflow.stages.atac import run_import_matrix

    var = PEAKS.iloc[rows].reset_index(drop=True)
    adata = _peak_adata(var, [f"peak{i}" for i in range(len(var))])
    adata.write_h5ad(tmp_path / "peaks.h5ad")
    assert isinstance(ad.read_h5ad(tmp_path / "peaks.h5ad").var["chrom"].dtype, pd.CategoricalDtype)
    X, barcodes, peaks = read_peak_matrix(tmp_path / "peaks.h5ad", SIZES, exclude_chromosomes=["chrX"])
    assert peaks[["chrom", "start", "end"]].values.tolist() == EXPECTED
    assert peaks["name"].tolist() == ["chr1:1000-1400", "chr1:4914570-4914685", "chr2:500-900"]
    assert barcodes == BARCODES
    column = {(c, s, e): i for i, (c, s, e) in enumerate(var.itertuples(index=False))}
    expected = (adata.X.toarray()[:, [column[tuple(p)] for p in EXPECTED]] > 0).astype(np.uint8)
    assert np.array_equal(X.toarray(), expected)
    # The workflow's import step writes the sample matrix from the same reader.
    write_chrom_sizes(SIZES, tmp_path / "chrom.sizes")
    run_import_matrix(sample="s1", matrix=str(tmp_path / "peaks.h5ad"), chrom_sizes=str(tmp_path / "chrom.sizes"),
                      rna=None, exclude_chromosomes=["chrX"], out_h5ad=str(tmp_path / "s1.h5ad"))
    written = ad.read_h5ad(tmp_path / "s1.h5ad")
    assert written.var_names.tolist() == peaks["name"].tolist()
    assert np.array_equal(written.X.toarray(), expected)


@pytest.mark.parametrize("suffix", [".h5ad", ".h5mu"])
def test_underscore_peak_names(tmp_path, suffix):
    """SnapATAC2/ArchR exports name peaks chr1_4914570_4914685 and carry no coordinate columns."""
    import mudata as md

    names = [f"{c}_{s}_{e}" for c, s, e in PEAKS.itertuples(index=False)]
    adata = _peak_adata(pd.DataFrame({"feature_types": "Peaks"}, index=names), names)
    path = tmp_path / f"peaks{suffix}"
    if suffix == ".h5ad":
        adata.write_h5ad(path)
    else:
        md.MuData({"atac": adata}).write(path)
    _, _, peaks = read_peak_matrix(path, SIZES, exclude_chromosomes=["chrX"])
    assert peaks[["chrom", "start", "end"]].values.tolist() == EXPECTED


def test_truncated_h5ad_peak_matrix_names_the_file(tmp_path):
    path = tmp_path / "peaks.h5ad"
    _peak_adata(PEAKS, [f"p{i}" for i in range(len(PEAKS))]).write_h5ad(path)
    _truncate(path, path.stat().st_size // 2)
    with pytest.raises(ValueError, match="truncated") as err:
        read_peak_matrix(path, SIZES)
    assert str(path) in str(err.value)


# ----------------------------------------------------------------------- RNA 10x mtx folders

def _mtx_folder(folder, compress) -> sp.csr_matrix:
    """A Cell Ranger v3 filtered_feature_bc_matrix folder; ``compress(plain, gz)`` makes each .gz."""
    from scipy.io import mmwrite

    folder.mkdir()
    rng = np.random.default_rng(1)
    counts = sp.csr_matrix(rng.poisson(2, (len(BARCODES) * 50, 40)).astype(np.int64))
    genes = [f"GENE{i}" for i in range(counts.shape[1])]
    with open(folder / "matrix.mtx", "wb") as handle:
        mmwrite(handle, sp.coo_matrix(counts.T))
    pd.DataFrame({"id": [f"ENSG{i:011d}" for i in range(len(genes))], "name": genes,
                  "type": "Gene Expression"}).to_csv(folder / "features.tsv", sep="\t", header=False, index=False)
    pd.Series([f"AC{i:06d}-1" for i in range(counts.shape[0])]).to_csv(folder / "barcodes.tsv", header=False,
                                                                       index=False)
    for name in ("matrix.mtx", "features.tsv", "barcodes.tsv"):
        compress(folder / name, folder / f"{name}.gz")
        (folder / name).unlink()
    return counts


def _gzip_file(plain, out):
    with open(plain, "rb") as src, gzip.open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _bgzip_file(plain, out):
    pysam.tabix_compress(str(plain), str(out))


def test_mtx_folder_gzip_and_bgzip_read_alike(tmp_path):
    counts = _mtx_folder(tmp_path / "gz", _gzip_file)
    _mtx_folder(tmp_path / "bgz", _bgzip_file)
    a, b = rna.read_rna(tmp_path / "gz", "s"), rna.read_rna(tmp_path / "bgz", "s")
    assert (a.X != counts).nnz == 0 and (b.X != counts).nnz == 0 and a.obs_names.equals(b.obs_names)
    assert read_cell_barcodes(tmp_path / "bgz") == a.obs["barcode"].tolist()


@pytest.mark.parametrize("member", ["matrix.mtx.gz", "barcodes.tsv.gz"])
def test_truncated_mtx_folder_names_the_file(tmp_path, member):
    _mtx_folder(tmp_path / "mtx", _gzip_file)
    bad = _truncate(tmp_path / "mtx" / member, 20)
    with pytest.raises(ValueError, match="truncated") as err:
        rna.read_rna(tmp_path / "mtx", "s")
    assert str(bad) in str(err.value)
    if member == "barcodes.tsv.gz":  # the ATAC stage reads the RNA cell barcodes on its own
        with pytest.raises(ValueError, match="truncated") as err:
            read_cell_barcodes(tmp_path / "mtx")
        assert str(bad) in str(err.value)


# ----------------------------------------------------------------------- other gzip inputs

def _labels(path):
    return rna.read_labels({"s": path})


def _tss(path):
    return read_tss(path)


def _bed(path):
    return read_peaks_bed(path)


def _blacklist(path):
    peaks = path.with_name("peaks.bed")
    peaks.write_text("chr2\t100\t500\tp1\n")
    return consensus_peaks([peaks], SIZES, blacklist=path)


GTF = "".join(f'chr1\tsrc\tgene\t{1000 * i + 1}\t{1000 * i + 500}\t.\t+\t.\tgene_id "g{i}"; gene_name "G{i}";\n'
              for i in range(2000))
BED = "".join(f"chr1\t{1000 * i}\t{1000 * i + 300}\tp{i}\n" for i in range(5000))
LABELS = "barcode\tcell_type\n" + "".join(f"AC{i:06d}-1\tT cell\n" for i in range(5000))


@pytest.mark.parametrize(("reader", "name", "text"), [
    (_labels, "cell_types.tsv.gz", LABELS),
    (_tss, "genes.gtf.gz", GTF),
    (_bed, "peaks.bed.gz", BED),
    (_blacklist, "blacklist.bed.gz", BED),
], ids=["labels", "gtf", "peaks", "blacklist"])
def test_truncated_gzip_inputs_name_the_file(tmp_path, reader, name, text):
    path = _gzip(tmp_path / name, text)
    assert len(reader(path)) > 0  # the whole file reads
    _truncate(path)
    with pytest.raises(ValueError, match="truncated") as err:
        reader(path)
    assert str(path) in str(err.value)


def test_cell_ranger_arc_h5_feeds_both_modalities(tmp_path):
    """A Cell Ranger ARC filtered_feature_bc_matrix.h5 holds genes and peaks in one matrix: the
    RNA reader keeps the Gene Expression features, the peak reader the Peaks, with coordinates
    from their intervals and the same cells in the same order."""
    from grids.io import write_10x_h5

    rng = np.random.default_rng(4)
    genes = ["GENE0", "GENE1", "GENE2"]
    intervals = ["chr1:1000-1400", "chr2:500-900", "chr1:4914570-4914685"]
    counts = sp.csr_matrix(rng.poisson(2, (len(BARCODES), len(genes) + len(intervals))))
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    write_10x_h5(counts, BARCODES, [f"ENSG{i:011d}" for i in range(3)] + intervals, feature_names=genes + intervals,
                 path=path, genome="GRCh38", intervals=["chr1:10-20", "chr1:30-40", "chr2:50-60"] + intervals,
                 feature_type=["Gene Expression"] * 3 + ["Peaks"] * 3)
    expression = rna.read_rna(path, "s1")
    assert list(expression.var_names) == genes
    assert np.array_equal(expression.X.toarray(), counts[:, :3].toarray())
    X, cells, peaks = read_peak_matrix(path, SIZES)
    assert peaks[["chrom", "start", "end"]].values.tolist() == EXPECTED
    assert [c.split("#")[-1] for c in cells] == BARCODES
    order = [intervals.index(f"{c}:{s}-{e}") for c, s, e in peaks[["chrom", "start", "end"]].itertuples(index=False)]
    assert np.array_equal(X.toarray(), (counts[:, 3:].toarray()[:, order] > 0).astype(X.dtype))  # binary
