"""The GTF reader (grids.genome): one parser and one gene naming for every reader."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from grids.genome import first_tss, gene_names, read_gene_models, read_gtf, read_tss, tss_map


def _line(chrom, feature, start, end, strand, attrs):
    text = " ".join(f'{key} "{value}";' for key, value in attrs.items())
    return f"{chrom}\ttest\t{feature}\t{start}\t{end}\t.\t{strand}\t.\t{text}\n"


@pytest.fixture
def gtf(tmp_path):
    """Two named genes (one on the minus strand, one repeated), one gene without gene_name."""
    lines = [
        _line("chr2", "gene", 501, 900, "+", {"gene_id": "G1", "gene_name": "A"}),
        _line("chr2", "exon", 501, 600, "+", {"gene_id": "G1", "gene_name": "A", "transcript_id": "T1"}),
        _line("chr1", "gene", 101, 300, "-", {"gene_id": "G2", "gene_name": "B"}),
        _line("chr1", "CDS", 101, 150, "-", {"gene_id": "G2", "gene_name": "B", "transcript_id": "T2"}),
        _line("chr1", "gene", 1001, 1200, "+", {"gene_id": "G3"}),
        _line("chr1", "gene", 2001, 2100, "+", {"gene_id": "G4", "gene_name": "A"}),
    ]
    path = tmp_path / "genes.gtf"
    path.write_text("".join(lines))
    return path


def test_read_gtf_reads_plain_and_gzip(gtf, tmp_path):
    zipped = tmp_path / "genes.gtf.gz"
    zipped.write_bytes(gzip.compress(gtf.read_bytes()))
    plain = read_gtf(gtf)
    pd.testing.assert_frame_equal(plain, read_gtf(zipped))
    assert list(plain["Feature"].astype(str)) == ["gene", "exon", "gene", "CDS", "gene", "gene"]
    assert {"gene_id", "gene_name", "transcript_id"} <= set(plain.columns)


def test_read_gtf_names_a_truncated_gzip(gtf, tmp_path):
    cut = tmp_path / "cut.gtf.gz"
    cut.write_bytes(gzip.compress(gtf.read_bytes())[:-12])
    with pytest.raises(ValueError, match="cut.gtf.gz"):
        read_gtf(cut)


def test_a_gene_without_gene_name_keeps_its_id_in_every_reader(gtf):
    """Ensembl GTFs leave gene_name off many genes: such a gene is named by its gene_id (G3), in
    the TSS readers as in the gene models, not lumped with the others into one gene "nan"."""
    records = read_gtf(gtf)
    assert list(gene_names(records)) == ["A", "A", "B", "B", "G3", "A"]
    assert list(gene_names(records.drop(columns="gene_name"))) == ["G1", "G1", "G2", "G2", "G3", "G4"]
    assert "G3" in set(read_tss(gtf)["gene"]) and "G3" in set(read_gene_models(gtf)["gene"])


def test_tss_readers(gtf):
    tss = read_tss(gtf)
    assert list(tss.columns) == ["chrom", "position", "strand", "gene"]
    assert tss.values.tolist() == [["chr1", 299, "-", "B"], ["chr1", 1000, "+", "G3"],
                                   ["chr1", 2000, "+", "A"], ["chr2", 500, "+", "A"]]
    assert read_tss(gtf, {"chr2": 1})["gene"].tolist() == ["A"]
    assert first_tss(gtf)["gene"].tolist() == ["B", "G3", "A"]  # the first "A" in chrom, position order
    assert tss_map(gtf) == {"B": ("chr1", 299), "G3": ("chr1", 1000), "A": ("chr1", 2000)}
    assert tss_map(gtf, ["chr2"]) == {"A": ("chr2", 500)}


def test_read_gene_models_keeps_gene_transcript_exon_records(gtf):
    models = read_gene_models(gtf)
    assert list(models.columns) == ["chrom", "start", "end", "strand", "feature", "gene"]
    assert models["feature"].tolist() == ["gene", "exon", "gene", "gene", "gene"]  # no CDS
    assert models["gene"].tolist() == ["A", "A", "B", "G3", "A"]


def test_readers_need_gene_records(tmp_path):
    path = tmp_path / "exons_only.gtf"
    path.write_text(_line("chr1", "exon", 1, 100, "+", {"gene_id": "G1", "transcript_id": "T1"}))
    with pytest.raises(ValueError, match="exons_only.gtf: no 'gene' records"):
        read_tss(path)
    with pytest.raises(ValueError, match="exons_only.gtf: no gene records"):
        read_gene_models(path)
