"""The fragments reader: real files of either sort order, and clear errors on bad ones."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pysam
import pytest

from conftest import REPO, require_shared_data
from grids.fragments import FragmentsError, iter_fragments, merge_duplicate_fragments
from grids.io import read_chrom_sizes

SIZES = {"chr1": 100_000, "chr2": 50_000}


def _write(path, lines, header=("# id=test",)):
    with gzip.open(path, "wt") as handle:
        handle.write("".join(f"{h}\n" for h in header))
        handle.write("".join(f"{line}\n" for line in lines))
    return path


def _read_all(path, sizes=SIZES, **kwargs):
    return sum(len(chunk) for chunk in iter_fragments(path, sizes, **kwargs))


def test_reads_the_simulated_file_completely(demo_sample, demo_model):
    expected = sum(1 for line in gzip.open(demo_sample / "fragments.tsv.gz", "rt") if not line.startswith("#"))
    assert _read_all(demo_sample / "fragments.tsv.gz", demo_model.chrom_sizes, chunk_size=100_000) == expected


def test_real_barcode_sorted_file_without_index_parses():
    path = require_shared_data("scatac_chr22", "fragments.tsv.gz")
    sizes = read_chrom_sizes(REPO / "resources" / "hg38.chrom.sizes")
    chunks = list(iter_fragments(path, sizes, chunk_size=10_000))
    assert sum(len(c) for c in chunks) == 57_115
    barcodes = set()
    for chunk in chunks:
        barcodes.update(chunk.barcodes[np.unique(chunk.barcode_code)])
    assert len(barcodes) == 100
    assert all((c.chrom_rank == list(sizes).index("chr22")).all() for c in chunks)


def test_coordinate_and_barcode_sorted_small_files(tmp_path):
    coordinate = ["chr1\t10\t60\tA\t1", "chr1\t10\t90\tB\t2", "chr1\t50\t99\tA\t1", "chr2\t5\t80\tA\t1"]
    assert _read_all(_write(tmp_path / "c.tsv.gz", coordinate), chunk_size=2) == 4
    grouped = ["chr1\t50\t99\tA\t1", "chr2\t5\t80\tA\t1", "chr1\t10\t90\tB\t2", "chr2\t1\t40\tB\t1"]
    assert _read_all(_write(tmp_path / "b.tsv.gz", grouped), chunk_size=3) == 4
    four_columns = ["chr1\t10\t60\tA", "chr1\t20\t70\tB"]
    chunk = next(iter_fragments(_write(tmp_path / "f.tsv.gz", four_columns), SIZES))
    assert chunk.count.tolist() == [1, 1]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["chr1\t10\t60\tA\t1", "chr1\t20\t70\tB"], "line 3"),
        (["chr1\t10\t60\tA\t1", "chr1\tx\t70\tB\t1"], "line 3: start and end must be non-negative integers"),
        (["chr1\t10\t60\tA\t1", "chr1\t80\t70\tB\t1"], "line 3: end <= start"),
        (["chr1\t10\t60\tA\t1", "chrUn\t20\t70\tB\t1"], "line 3: chromosome 'chrUn' is not in the chrom sizes"),
        (["chr2\t10\t60000\tA\t1"], "line 2: fragment extends past the chromosome end"),
        (["chr1\t10\t60\tA\t0"], "line 2: count < 1"),
        (["chr1\t10\t60"], "expected 5 columns"),
        # Neither coordinate-sorted nor grouped by barcode.
        (["chr1\t50\t99\tA\t1", "chr1\t10\t90\tB\t1", "chr1\t60\t90\tA\t1"], "line 4: fragments are neither sorted"),
        ([], "no fragments"),
    ],
)
def test_bad_fragments_name_file_and_line(tmp_path, lines, message):
    path = _write(tmp_path / "bad.tsv.gz", lines)
    with pytest.raises(FragmentsError, match=message) as err:
        _read_all(path, chunk_size=2)
    assert str(path) in str(err.value)


def test_unknown_contigs_can_be_skipped(tmp_path):
    path = _write(tmp_path / "u.tsv.gz", ["chr1\t10\t60\tA\t1", "chrUn\t20\t70\tB\t1", "chr2\t5\t9\tA\t1"])
    assert _read_all(path, skip_unknown_chroms=True) == 2


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FragmentsError, match="not found"):
        _read_all(tmp_path / "nope.tsv.gz")


def test_merge_duplicate_fragments_sums_reads():
    bc = np.array([1, 0, 1, 1])
    start = np.array([10, 10, 10, 5])
    end = np.array([50, 50, 50, 40])
    reads = np.array([1, 2, 3, 1])
    out = merge_duplicate_fragments(bc, start, end, reads=reads)
    assert [a.tolist() for a in out] == [[1, 0, 1], [5, 10, 10], [40, 50, 50], [1, 2, 4]]


# ---------------------------------------------------------------- real-shaped inputs (issue 16)

# chrom-sizes order chr1, chr2, chr10; `sort -k1,1 -k2,2n` puts chr10 before chr2.
NUMERIC_SIZES = {"chr1": 200_000, "chr2": 150_000, "chr10": 120_000}


def _random_fragments(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    """Unique fragments of 40 barcodes on NUMERIC_SIZES, in chrom-sizes order."""
    rng = np.random.default_rng(seed)
    chrom = rng.choice(list(NUMERIC_SIZES), n)
    start = np.array([rng.integers(0, NUMERIC_SIZES[c] - 1000) for c in chrom])
    frame = pd.DataFrame({"chrom": chrom, "start": start, "end": start + rng.integers(40, 600, n),
                          "barcode": [f"AAAC{b:04d}-1" for b in rng.integers(0, 40, n)],
                          "count": rng.integers(1, 4, n)}).drop_duplicates(["chrom", "start", "end", "barcode"])
    rank = frame["chrom"].map({c: i for i, c in enumerate(NUMERIC_SIZES)})
    return frame.iloc[np.lexsort((frame["end"], frame["start"], rank))].reset_index(drop=True)


def _bgzip_and_index(plain, out):
    """bgzip + `tabix -p bed`, as htslib's command-line tools do (pysam wraps the same code)."""
    pysam.tabix_compress(str(plain), str(out), force=True)
    pysam.tabix_index(str(out), preset="bed", force=True)
    return out


def test_lexically_sorted_tabix_file_gives_the_same_matrix(tmp_path):
    from grids.atac import barcode_qc, build_peak_matrix

    frame = _random_fragments()
    plain = tmp_path / "sizes_order.tsv"
    frame.to_csv(plain, sep="\t", header=False, index=False)
    lexical = tmp_path / "lexical.tsv"
    with open(lexical, "w") as handle:  # what users run before bgzip and tabix
        subprocess.run(["sort", "-k1,1", "-k2,2n", str(plain)], stdout=handle, check=True,
                       env={**os.environ, "LC_ALL": "C"})
    ordered = _bgzip_and_index(plain, tmp_path / "sizes_order.tsv.gz")
    lex = _bgzip_and_index(lexical, tmp_path / "lexical.tsv.gz")
    with pysam.TabixFile(str(lex)) as tbx:
        assert list(tbx.contigs) == ["chr1", "chr10", "chr2"]
    peaks = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2", "chr10"], "start": [1000, 90_000, 5000, 60_000],
                          "end": [40_000, 150_000, 80_000, 110_000]})
    cells = sorted(frame["barcode"].unique())[:30]
    a = build_peak_matrix(ordered, NUMERIC_SIZES, peaks, barcodes=cells, chunk_size=500)
    b = build_peak_matrix(lex, NUMERIC_SIZES, peaks, barcodes=cells, chunk_size=500)
    assert a.X.nnz > 0 and (a.X != b.X).nnz == 0
    assert a.n_fragments.tolist() == b.n_fragments.tolist() and a.n_in_peaks.tolist() == b.n_in_peaks.tolist()
    tss = pd.DataFrame({"chrom": ["chr2", "chr10"], "position": [30_000, 70_000], "strand": ["+", "-"],
                        "gene": ["G1", "G2"]})
    qc_a = barcode_qc(ordered, NUMERIC_SIZES, tss, chunk_size=500).table.sort_values("barcode", ignore_index=True)
    qc_b = barcode_qc(lex, NUMERIC_SIZES, tss, chunk_size=500).table.sort_values("barcode", ignore_index=True)
    pd.testing.assert_frame_equal(qc_a, qc_b)


def test_barcode_grouped_file_with_lexical_chromosomes_parses(tmp_path):
    frame = _random_fragments(seed=1, n=400)
    grouped = frame.sort_values(["barcode", "chrom", "start"], kind="stable")  # chr1, chr10, chr2 per barcode
    lines = grouped.astype(str).agg("\t".join, axis=1).tolist()
    assert _read_all(_write(tmp_path / "g.tsv.gz", lines), NUMERIC_SIZES, chunk_size=7) == len(frame)


def test_chromosome_in_two_blocks_names_file_line_and_chromosome(tmp_path):
    lines = ["chr1\t10\t60\tA\t1", "chr1\t20\t70\tB\t1", "chr2\t5\t80\tA\t1", "chr1\t30\t90\tB\t1"]
    path = _write(tmp_path / "split.tsv.gz", lines)
    with pytest.raises(FragmentsError, match=r"line 5: chromosome 'chr1' appears again after 'chr2'") as err:
        _read_all(path, chunk_size=2)
    assert str(path) in str(err.value) and "two separate blocks" in str(err.value)


def test_bgzip_named_bgz_and_plain_text_read_alike(tmp_path):
    frame = _random_fragments(seed=2, n=200)
    plain = tmp_path / "fragments.tsv"
    frame.to_csv(plain, sep="\t", header=False, index=False)
    bgz = tmp_path / "fragments.tsv.bgz"  # pandas would take this name for uncompressed text
    pysam.tabix_compress(str(plain), str(bgz))
    assert _read_all(bgz, NUMERIC_SIZES) == _read_all(plain, NUMERIC_SIZES) == len(frame)


@pytest.mark.parametrize("compressor", ["gzip", "bgzip", "bgzip-at-block"])
def test_truncated_gzip_names_the_file(tmp_path, compressor):
    frame = _random_fragments(seed=3, n=20_000)
    plain = tmp_path / "fragments.tsv"
    frame.to_csv(plain, sep="\t", header=False, index=False)
    whole = tmp_path / "whole.tsv.gz"
    if compressor == "gzip":
        with open(plain, "rb") as src, gzip.open(whole, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        pysam.tabix_compress(str(plain), str(whole))
    data = whole.read_bytes()
    # An interrupted download or copy; "at-block" drops the bgzip end-of-file block only,
    # which leaves valid gzip that Python reads without complaint.
    cut = 28 if compressor == "bgzip-at-block" else 200
    path = tmp_path / "fragments.tsv.gz"
    path.write_bytes(data[:-cut])
    with pytest.raises(FragmentsError, match="truncated") as err:
        _read_all(path, NUMERIC_SIZES, chunk_size=2000)
    assert str(path) in str(err.value)
