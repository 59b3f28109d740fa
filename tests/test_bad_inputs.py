"""Bad inputs of every kind (issue 16): the stage stops with an error that names the file and
the cause, and leaves no output or temporary file where it would write.

Each case is a real-shaped broken file (written by the tool that makes such files: gzip, pysam,
h5py, anndata, cooler) run through the stage function its rule calls, with outputs in
``tmp_path / "out"``. Kinds: fragments, BAM, RNA matrices, peak matrices, sample sheets,
targets and Hi-C files.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

from conftest import REPO
from grids.io import write_10x_h5, write_chrom_sizes

SIZES = {"chr1": 1_000_000, "chr2": 500_000}
BARCODES = [f"AAACGAAC{i:04d}-1" for i in range(6)]


def _rejected(err: pytest.ExceptionInfo, path, *causes: str) -> str:
    """The error names ``path`` (its full path) and each cause."""
    message = str(err.value)
    assert str(path) in message, message
    for cause in causes:
        assert cause in message, message
    return message


def _nothing_in(out: Path) -> None:
    """No output and no temporary (``.name.*.tmp*``) where the stage writes (folders may stay:
    Snakemake makes them for every job anyway)."""
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()) if out.exists() else []
    assert left == [], left


@pytest.fixture
def genome(tmp_path):
    """chrom.sizes and a GTF with genes on chr1, as a real-data config names them."""
    write_chrom_sizes(SIZES, tmp_path / "chrom.sizes")
    gtf = "".join(f'chr1\tsrc\tgene\t{10_000 * i + 1}\t{10_000 * i + 500}\t.\t+\t.\tgene_id "g{i}"; gene_name "G{i}";\n'
                  for i in range(1, 40))
    (tmp_path / "genes.gtf").write_text(gtf)
    return tmp_path / "chrom.sizes", tmp_path / "genes.gtf"


# ----------------------------------------------------------------------------------- fragments

GOOD_FRAGMENTS = [f"chr1\t{10_000 * i + 7 * j}\t{10_000 * i + 7 * j + 120}\t{BARCODES[j % 6]}\t1"
                  for i in range(1, 40) for j in range(30)]


def _fragments(path, lines):
    with gzip.open(path, "wt") as handle:
        handle.write("# id=sample1\n# reference_path=/refdata/GRCh38\n" + "".join(f"{line}\n" for line in lines))
    return path


def _barcode_qc(fragments, genome, out, *, gtf=None, skip_unknown=False):
    from grids.workflow.stages.atac import run_barcode_qc

    chrom_sizes, default_gtf = genome
    run_barcode_qc(fragments=str(fragments), gtf=str(gtf or default_gtf), chrom_sizes=str(chrom_sizes), rna=None,
                   cells="threshold", min_fragments=10, min_tss_enrichment=0.0, chunk_size=100,
                   skip_unknown_chroms=skip_unknown, out_table=str(out / "sample1.barcodes.tsv"),
                   out_profiles=str(out / "sample1.profiles.npz"))


@pytest.mark.parametrize(("edit", "cause"), [
    (lambda lines: lines[:500] + ["chr1\t50O1\t5120\tAAACGAAC0001-1\t1"] + lines[500:],
     "line 503: start and end must be non-negative integers"),
    (lambda lines: lines[:500] + ["chr1\t170141\t170141\tAAACGAAC0001-1\t1"] + lines[500:], "line 503: end <= start"),
    (lambda lines: lines + ["chr2\t499900\t500100\tAAACGAAC0001-1\t1"], "fragment extends past the chromosome end"),
    (lambda lines: [line.rsplit("\t", 2)[0] for line in lines], "expected 5 columns"),
], ids=["non-integer-start", "empty-fragment", "past-chromosome-end", "three-columns"])
def test_fragments_malformed_line(tmp_path, genome, edit, cause):
    path = _fragments(tmp_path / "fragments.tsv.gz", edit(GOOD_FRAGMENTS))
    from grids.fragments import FragmentsError

    with pytest.raises(FragmentsError) as err:
        _barcode_qc(path, genome, tmp_path / "out")
    _rejected(err, path, cause)
    _nothing_in(tmp_path / "out")


@pytest.mark.parametrize("skip_unknown", [False, True], ids=["strict", "skip-unknown-contigs"])
def test_fragments_without_chr_prefix_against_chr_chrom_sizes(tmp_path, genome, skip_unknown):
    """Ensembl-named fragments (1, 2) with UCSC chrom sizes (chr1, chr2). Skipping unknown contigs
    used to drop every fragment and end in "no barcode has >= 10 fragments"."""
    from grids.fragments import FragmentsError

    path = _fragments(tmp_path / "fragments.tsv.gz", [line.removeprefix("chr") for line in GOOD_FRAGMENTS])
    with pytest.raises(FragmentsError) as err:
        _barcode_qc(path, genome, tmp_path / "out", skip_unknown=skip_unknown)
    _rejected(err, path, str(genome[0]), "differ in their 'chr' prefix", "'1'", "'chr1'")
    _nothing_in(tmp_path / "out")


def test_gtf_without_chr_prefix_against_chr_chrom_sizes(tmp_path, genome):
    """An Ensembl GTF (1, 2) with UCSC chrom sizes used to give a warning, TSS enrichment 0 for
    every barcode and then "no barcode has ... TSS enrichment >= ..."."""
    gtf = tmp_path / "Homo_sapiens.GRCh38.gtf"
    gtf.write_text(genome[1].read_text().replace("chr1\t", "1\t"))
    path = _fragments(tmp_path / "fragments.tsv.gz", GOOD_FRAGMENTS)
    with pytest.raises(ValueError) as err:
        _barcode_qc(path, genome, tmp_path / "out", gtf=gtf)
    _rejected(err, gtf, str(genome[0]), "differ in their 'chr' prefix")
    _nothing_in(tmp_path / "out")


# ----------------------------------------------------------------------------------- BAM

def _bam(path, **kwargs):
    from test_atac_bam import _known_fragments, _pairs_for, _write_bam

    return _write_bam(path, _pairs_for(_known_fragments(seed=2, n=400), np.random.default_rng(0)), **kwargs)


def _bam_to_fragments(bam, out, **kwargs):
    from grids.atac.bam import bam_to_fragments

    return bam_to_fragments(bam, out / "sample1" / "fragments.tsv.gz", progress=False, **kwargs)


def test_bam_cut_at_a_block_boundary(tmp_path):
    """A copy stopped between BGZF blocks is valid BGZF up to there: only the missing end-of-file
    block shows the cut. pysam's own message called it "not a BAM/SAM file"."""
    from grids.atac.bam import BamInputError

    whole = _bam(tmp_path / "whole.bam", index=False).read_bytes()
    blocks, offset = [], 0
    while offset < len(whole):
        blocks.append(offset)
        offset += int.from_bytes(whole[offset + 16:offset + 18], "little") + 1
    cut = tmp_path / "possorted_bam.bam"
    cut.write_bytes(whole[:blocks[len(blocks) // 2]])
    with pytest.raises(BamInputError) as err:
        _bam_to_fragments(cut, tmp_path / "out")
    _rejected(err, cut, "truncated")
    _nothing_in(tmp_path / "out")


def test_bam_without_chr_prefix_against_chr_chrom_sizes(tmp_path):
    from grids.atac.bam import BamInputError
    from grids.io import read_chrom_sizes

    bam = _bam(tmp_path / "possorted_bam.bam")
    write_chrom_sizes({"1": 100_000, "2": 80_000}, tmp_path / "GRCh38.chrom.sizes")
    with pytest.raises(BamInputError) as err:
        _bam_to_fragments(bam, tmp_path / "out", chrom_sizes=read_chrom_sizes(tmp_path / "GRCh38.chrom.sizes"))
    _rejected(err, bam, str(tmp_path / "GRCh38.chrom.sizes"), "differ in their 'chr' prefix", "'chr1'")
    _nothing_in(tmp_path / "out")


def test_bam_of_unmapped_reads_only(tmp_path):
    """An unaligned (uBAM-like) file: reads present, none usable."""
    from test_atac_bam import UNMAPPED, _pair, _write_bam

    from grids.atac.bam import BamInputError

    records = [r for i in range(20) for r in _pair(f"r{i}", "chr1", 1000 + 300 * i, 1200 + 300 * i, BARCODES[0],
                                                   flags_add=UNMAPPED)]
    bam = _write_bam(tmp_path / "unaligned.bam", records)
    with pytest.raises(BamInputError) as err:
        _bam_to_fragments(bam, tmp_path / "out")
    _rejected(err, bam, "no fragments", "0 mapped primary")
    _nothing_in(tmp_path / "out")


# ----------------------------------------------------------------------------------- RNA matrices

def _rna_stage(rna_files, tmp_path, *, targets=None, labels=None):
    from grids.workflow.stages.rna import run_rna_stage

    if targets is None:
        targets = tmp_path / "targets.tsv"
        targets.write_text("cell_type\tgene\nT cell\tGENE1\n")
    out = tmp_path / "out"
    run_rna_stage(rna_files=rna_files, label_tables=labels or {}, targets=str(targets),
                  settings={"labels": "given" if labels else "infer"}, mito_prefix="MT-",
                  out_h5ad=str(out / "rna.h5ad"), out_qc=str(out / "qc.tsv"), out_figure=str(out / "qc.png"),
                  out_labels=str(out / "labels.tsv"))


def _counts(n_cells=30, n_genes=8):
    return sp.csr_matrix(np.random.default_rng(0).poisson(3, (n_cells, n_genes)))


def _h5(path, barcodes=None, counts=None):
    counts = _counts() if counts is None else counts
    barcodes = barcodes or [f"AC{i:06d}-1" for i in range(counts.shape[0])]
    genes = [f"GENE{i}" for i in range(counts.shape[1])]
    write_10x_h5(counts, barcodes, [f"ENSG{i:011d}" for i in range(len(genes))], feature_names=genes, path=path,
                 genome="GRCh38")
    return path


def _h5_without_matrix(path):
    import h5py

    with h5py.File(path, "w") as h5:  # e.g. a molecule_info.h5 or an h5 written by another tool
        h5.create_group("metrics")
        h5.create_dataset("barcodes", data=np.array([b"AC000001-1"]))
    return path


def _text_as_h5(path):
    path.write_text("barcode,GENE1\nAC000001-1,3\n")  # a CSV export renamed .h5
    return path


def _duplicate_barcodes(path):
    return _h5(path, barcodes=["AC000001-1"] * 30)


def _normalised_h5ad(path):
    import anndata as ad

    X = _counts().astype(np.float32)
    X.data = np.log1p(X.data)
    ad.AnnData(X=X, obs=pd.DataFrame(index=[f"AC{i:06d}-1" for i in range(30)]),
               var=pd.DataFrame(index=[f"GENE{i}" for i in range(8)])).write_h5ad(path)
    return path


@pytest.mark.parametrize(("make", "name", "cause"), [
    (_h5_without_matrix, "filtered_feature_bc_matrix.h5", "no 'matrix' group"),
    (_text_as_h5, "filtered_feature_bc_matrix.h5", "cannot read the HDF5 file"),
    (_duplicate_barcodes, "filtered_feature_bc_matrix.h5", "duplicated barcodes"),
    (_normalised_h5ad, "rna.h5ad", "no raw integer counts"),
], ids=["h5-without-matrix-group", "not-hdf5", "duplicate-barcodes", "normalised-values"])
def test_rna_matrix(tmp_path, make, name, cause):
    """A 10x .h5 without its matrix group used to raise a bare ``Exception: File is missing one or
    more required datasets.`` (scanpy), naming neither the file nor the group."""
    path = make(tmp_path / name)
    with pytest.raises(ValueError) as err:
        _rna_stage({"s1": str(path)}, tmp_path)
    _rejected(err, path, cause)
    _nothing_in(tmp_path / "out")


# ----------------------------------------------------------------------------------- peak matrices

def _peak_h5ad(path, names, var=None):
    import anndata as ad

    X = sp.csr_matrix(np.ones((len(BARCODES), len(names)), dtype=np.float32))
    var = pd.DataFrame(index=names) if var is None else var.set_axis(names)
    ad.AnnData(X=X, obs=pd.DataFrame(index=BARCODES), var=var).write_h5ad(path)
    return path


def _import_matrix(matrix, genome, out):
    from grids.workflow.stages.atac import run_import_matrix

    run_import_matrix(sample="s1", matrix=str(matrix), chrom_sizes=str(genome[0]), rna=None,
                      exclude_chromosomes=["chrM"], out_h5ad=str(out / "s1" / "s1.h5ad"))


@pytest.mark.parametrize(("names", "cause"), [
    (["peak1", "peak2", "peak3"], "cannot read peak coordinates from names"),
    (["chr1:100-600", "chr2:40-900", "chr1:100-600"], "peak chr1:100-600 is listed twice"),
    (["chr1:100-600", "chr1:900-800"], "peak chr1:900-800 has end <= start"),
    (["chr1:100-600", "chr2:499000-501000"], "ends past the 500000 bp of chr2"),
    (["1:100-600", "2:40-900"], "differ in their 'chr' prefix"),
], ids=["names-without-coordinates", "duplicate-peaks", "end-before-start", "past-chromosome-end", "no-chr-prefix"])
def test_peak_matrix_h5ad(tmp_path, genome, names, cause):
    """Duplicate, empty and out-of-genome peaks used to be written out as they came."""
    path = _peak_h5ad(tmp_path / "atac_peaks.h5ad", names)
    with pytest.raises(ValueError) as err:
        _import_matrix(path, genome, tmp_path / "out")
    message = _rejected(err, path, cause)
    if "prefix" in cause:
        assert str(genome[0]) in message
    _nothing_in(tmp_path / "out")


@pytest.mark.parametrize("make, name, cause", [
    (_h5, "filtered_feature_bc_matrix.h5", "no 'Peaks' features"),  # gene expression only, given as atac_matrix
    (_h5_without_matrix, "filtered_peak_bc_matrix.h5", "no 'matrix' group"),
], ids=["without-peaks", "without-matrix-group"])
def test_peak_matrix_10x_h5(tmp_path, genome, make, name, cause):
    path = make(tmp_path / name)
    with pytest.raises(ValueError) as err:
        _import_matrix(path, genome, tmp_path / "out")
    _rejected(err, path, cause)
    _nothing_in(tmp_path / "out")


# ----------------------------------------------------------------------------------- sample sheets

@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _real_data_config():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["simulate"]["samples"] = []
    return config


def _check_sheet(sheet: Path):
    from grids.workflow.config import check_samples, read_samples

    return check_samples(read_samples(sheet), _real_data_config(), sheet)


@pytest.mark.parametrize(("text", "cause"), [
    ("name\tfragments\trna\ns1\tf.tsv.gz\tr.h5\n", "no 'sample' column"),
    ("sample\tfragments\trna\ns1\tf.tsv.gz\tmissing.h5\n", "sample 's1', column 'rna': file not found: missing.h5"),
    ("sample\trna\ns1\tr.h5\n", "sample 's1' needs one of the columns fragments, bam, atac_matrix"),
    ("sample\tfragments\trna\ns1\tf.tsv.gz\tr.h5\ns1\tf.tsv.gz\tr.h5\n", "sample name(s) listed twice: s1"),
    ("sample\tfragment\trna\ns1\tf.tsv.gz\tr.h5\n", "unknown column(s) ['fragment']"),
], ids=["no-sample-column", "missing-file", "no-atac-input", "sample-twice", "misspelt-column"])
def test_sample_sheet(in_tmp, text, cause):
    """Checked when Snakemake parses the workflow: nothing is written anywhere."""
    from grids.workflow.config import ConfigError

    for name in ("f.tsv.gz", "r.h5"):
        (in_tmp / name).write_bytes(b"")
    sheet = in_tmp / "samples.tsv"
    sheet.write_text(text)
    before = sorted(in_tmp.iterdir())
    with pytest.raises(ConfigError) as err:
        _check_sheet(sheet)
    _rejected(err, sheet, cause)
    assert sorted(in_tmp.iterdir()) == before


# ----------------------------------------------------------------------------------- targets

def test_target_gene_not_in_the_rna(tmp_path):
    targets = tmp_path / "targets.tsv"
    targets.write_text("cell_type\tgene\nT cell\tGENE1\nT cell\tGENE01\n")
    with pytest.raises(ValueError) as err:
        _rna_stage({"s1": str(_h5(tmp_path / "rna.h5"))}, tmp_path, targets=targets)
    _rejected(err, targets, f"1 target gene(s) not in the RNA matrices {tmp_path / 'rna.h5'}", "GENE01 (did you mean")
    _nothing_in(tmp_path / "out")


def test_target_cell_type_not_among_the_given_labels(tmp_path):
    """Used to pass the RNA stage, pairing and surrogate training and fail only in explain."""
    labels = tmp_path / "cell_types.tsv"
    labels.write_text("barcode\tcell_type\n" + "".join(f"AC{i:06d}-1\t{'T cell' if i % 2 else 'B cell'}\n"
                                                       for i in range(30)))
    targets = tmp_path / "targets.tsv"
    targets.write_text("cell_type\tgene\nT cell\tGENE1\nT-cell\tGENE2\n")
    with pytest.raises(ValueError) as err:
        _rna_stage({"s1": str(_h5(tmp_path / "rna.h5"))}, tmp_path, targets=targets, labels={"s1": str(labels)})
    _rejected(err, targets, "cell type(s) 'T-cell' not among the cell-type labels", str(labels), "B cell, T cell")
    _nothing_in(tmp_path / "out")


@pytest.mark.parametrize(("rows", "cause"), [
    ("L2/3\tGENE1\nL2_3\tGENE2\n", "cell-type labels 'L2/3' and 'L2_3' map to the same file name 'L2_3'"),
    ("B cell\tGENE1\nB_cell\tGENE1\n", "cell-type labels 'B cell' and 'B_cell' map to the same file name 'B_cell'"),
    ("T\tHLA-A\nT\tHLA/A\nT\tHLA_A\n",
     "targets ('T', 'HLA/A') and ('T', 'HLA_A') map to the same file name 'T__HLA_A'"),
    ("T\tGENE1\nT\tGENE1\n", "target(s) listed twice: T/GENE1"),
], ids=["slash", "space", "gene-names", "listed-twice"])
def test_targets_file(in_tmp, rows, cause):
    """Labels that file names cannot hold used to be merged silently: both wrote L2_3__GENE1.tsv."""
    from grids.workflow.config import ConfigError, read_targets

    targets = in_tmp / "targets.tsv"
    targets.write_text("cell_type\tgene\n" + rows)
    with pytest.raises(ConfigError) as err:
        read_targets(targets)
    _rejected(err, targets, cause)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["targets.tsv"]


def test_explain_tasks_refuse_labels_sharing_a_file_name():
    """The top-N gene-set tasks come from explain.cell_types, not only from targets.tsv."""
    from grids.explain.tasks import explain_tasks

    targets = pd.DataFrame({"cell_type": ["L2/3"], "gene": ["GENE1"]})
    with pytest.raises(ValueError, match=r"'L2/3' and 'L2_3' map to the same file name 'L2_3'"):
        explain_tasks(targets, ["L2/3", "L2_3"], top_n=10)
    assert [t.stem for t in explain_tasks(targets, ["L2/3", "L4"], top_n=10)] == \
        ["L2_3__GENE1", "L2_3__top10", "L4__top10"]


def test_atac_pseudobulks_refuse_labels_sharing_a_file_name(tmp_path):
    from grids.workflow.stages.atac import cell_groups

    table = tmp_path / "s1.barcodes.tsv"
    table.write_text("barcode\tis_cell\nAAA-1\tTrue\nCCC-1\tTrue\n")
    labels = tmp_path / "cell_types.tsv"
    labels.write_text("barcode\tcell_type\nAAA-1\tB cell\nCCC-1\tB_cell\n")
    with pytest.raises(ValueError) as err:
        cell_groups(str(table), str(labels), per_cell_type=True)
    _rejected(err, labels, "'B cell' and 'B_cell' would share the pseudobulk file name 'B_cell'")


# ----------------------------------------------------------------------------------- Hi-C

HIC_BIN = 10_000


class _Surrogate:
    def __init__(self, peaks):
        self.peaks = peaks


@pytest.fixture
def hic_stage(tmp_path, monkeypatch):
    """run_hic_validation on one selection (3 peaks near G1's TSS on chr1), the surrogate faked."""
    import grids.surrogate
    from grids.explain.shards import SHARD_COLUMNS
    from grids.workflow.stages.evaluate import run_hic_validation

    starts = np.arange(0, 400_000, 5_000)
    peaks = pd.DataFrame({"chrom": "chr1", "start": starts, "end": starts + 500},
                         index=[f"chr1:{s}-{s + 500}" for s in starts])
    monkeypatch.setattr(grids.surrogate, "load_surrogate", lambda path, **kw: _Surrogate(peaks))
    rows = [{"method": "grids", "L": 3, "cell_type": "T cell", "target": "G1", "kind": "gene", "n_genes": 1,
             "train_loss": 0.0, "seconds": 0.1, "rank": r, "peak_index": p, "chrom": "chr1",
             "start": int(starts[p]), "end": int(starts[p]) + 500, "score": 1.0, "status": "ok"}
            for r, p in enumerate([1, 4, 30], start=1)]
    pd.DataFrame(rows, columns=SHARD_COLUMNS).to_csv(tmp_path / "shard0.tsv", sep="\t", index=False)
    (tmp_path / "shard0.json").write_text(json.dumps({"genes": {"T_cell__G1": ["G1"]}, "curves": {}}))
    (tmp_path / "genes.gtf").write_text('chr1\tsrc\tgene\t10001\t10500\t.\t+\t.\tgene_id "g1"; gene_name "G1";\n')

    def run(cool, resolution=None):
        out = tmp_path / "out"
        return run_hic_validation(model="model.pt", tables=[str(tmp_path / "shard0.tsv")],
                                  metas=[str(tmp_path / "shard0.json")], gtf=str(tmp_path / "genes.gtf"),
                                  hic_files={"T cell": str(cool)}, resolution=resolution, n_draws=50, seed=0,
                                  out_table=str(out / "hic_validation.tsv"), out_figure=str(out / "hic.png"))

    return run


def _cool(path, chroms=(("chr1", 400_000),), balance=True):
    import cooler

    bins = cooler.binnify(pd.Series(dict(chroms)), HIC_BIN)
    i, j = np.triu_indices(len(bins))
    pixels = pd.DataFrame({"bin1_id": i, "bin2_id": j, "count": 1 + 1000 // (j - i + 1)})
    cooler.create_cooler(str(path), bins, pixels, ordered=True)
    if balance:
        cooler.balance_cooler(cooler.Cooler(str(path)), store=True, cis_only=True)
    return path


def _text_cool(path):
    path.write_text("chr1\t0\t10000\tchr1\t0\t10000\t5\n")  # a pairs/bedpe text named .cool
    return path


def _unbalanced_cool(path):
    return _cool(path, balance=False)


def _hdf5_not_cooler(path):
    import h5py

    with h5py.File(path, "w") as h5:
        h5.create_group("matrix")
    return path


@pytest.mark.parametrize(("make", "resolution", "cause"), [
    (_text_cool, None, "is not a cooler file"),
    (_hdf5_not_cooler, None, "is not a cooler file"),
    (_unbalanced_cool, None, "has no balancing weights; run `cooler balance"),
    (_cool, 5_000, "has bin size 10000, not the requested resolution 5000"),
], ids=["text-file", "hdf5-not-cooler", "unbalanced", "wrong-resolution"])
def test_hic_file(tmp_path, hic_stage, make, resolution, cause):
    path = make(tmp_path / "T_cell.cool")
    with pytest.raises(ValueError) as err:
        hic_stage(path, resolution)
    _rejected(err, path, cause)
    _nothing_in(tmp_path / "out")


def test_hic_file_without_the_target_chromosome_is_a_not_covered_row(tmp_path, hic_stage):
    """Not an error, by design (run_hic_validation writes "explicit rows where no Hi-C covers it"):
    a file of other chromosomes gives a "not covered" row naming the chromosome and the file."""
    path = _cool(tmp_path / "T_cell.cool", chroms=(("chr2", 300_000),))
    table = hic_stage(path)
    assert table["status"].tolist() == [f"not covered: chr1 is not in {path}"]
    assert (tmp_path / "out" / "hic_validation.tsv").exists()


def test_hic_file_truncated(tmp_path, hic_stage):
    path = _cool(tmp_path / "T_cell.cool")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError) as err:
        hic_stage(path)
    _rejected(err, path, "truncated")
    _nothing_in(tmp_path / "out")
