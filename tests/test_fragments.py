"""The fragments reader: real files of either sort order, and clear errors on bad ones."""

from __future__ import annotations

import gzip

import numpy as np
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
    out = merge_duplicate_fragments(bc, start, end, reads)
    assert [a.tolist() for a in out] == [[1, 0, 1], [5, 10, 10], [40, 50, 50], [1, 2, 4]]
