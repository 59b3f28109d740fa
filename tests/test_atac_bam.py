"""BAM -> 10x fragments conversion (grids.atac.bam) on small synthetic BAMs."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pysam
import pytest

from grids.atac.bam import BamInputError, bam_to_fragments

READ_LEN = 50
CONTIGS = {"chr1": 100_000, "chr2": 80_000}
BARCODES = ["AAACGGAT-1", "CCGTAAGC-1", "GGTACCTA-1", "TTGCAACG-1"]
FRAG_COLUMNS = ["chrom", "start", "end", "barcode", "count"]

PAIRED, PROPER, UNMAPPED, MATE_UNMAPPED, REVERSE, MATE_REVERSE = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
READ1, READ2, SECONDARY, QCFAIL, SUPPLEMENTARY = 0x40, 0x80, 0x100, 0x200, 0x800


def _header(contigs=CONTIGS, sort_order="coordinate"):
    return {"HD": {"VN": "1.6", "SO": sort_order}, "SQ": [{"SN": c, "LN": n} for c, n in contigs.items()]}


def _pair(name, chrom, start, end, barcode, *, forward_is_read1=True, mapq=60, flags_add=0, flags_drop=0,
          mate_chrom=None, mate_mq=None, tag="CB"):
    """Two read records (dicts) whose Tn5-shifted fragment is [start, end)."""
    left = start - 4  # leftmost mate (forward) starts here
    right_end = end + 5  # the reverse mate ends here
    tlen = right_end - left
    right = right_end - READ_LEN
    assert right >= left, "fragment too short for the read length"
    fwd_flag = PAIRED | PROPER | MATE_REVERSE | (READ1 if forward_is_read1 else READ2)
    rev_flag = PAIRED | PROPER | REVERSE | (READ2 if forward_is_read1 else READ1)
    fwd_flag, rev_flag = (fwd_flag | flags_add) & ~flags_drop, (rev_flag | flags_add) & ~flags_drop
    mate_chrom = mate_chrom or chrom
    tags = {} if barcode is None else {tag: barcode}
    fwd = dict(name=name, flag=fwd_flag, chrom=chrom, pos=left, mapq=mapq, mchrom=mate_chrom, mpos=right,
               tlen=tlen, tags=dict(tags))
    rev = dict(name=name, flag=rev_flag, chrom=mate_chrom, pos=right, mapq=mapq, mchrom=chrom, mpos=left,
               tlen=-tlen, tags=dict(tags))
    if mate_mq is not None:
        fwd["tags"]["MQ"] = mate_mq
    return [fwd, rev]


def _write_bam(path, records, *, contigs=CONTIGS, sort=True, sort_order="coordinate", index=True, mode="wb"):
    order = list(contigs)
    if sort:
        records = sorted(records, key=lambda r: (order.index(r["chrom"]), r["pos"]))
    with pysam.AlignmentFile(str(path), mode, header=_header(contigs, sort_order)) as out:
        for r in records:
            seg = pysam.AlignedSegment(out.header)
            seg.query_name = r["name"]
            seg.query_sequence = "A" * READ_LEN
            seg.query_qualities = pysam.qualitystring_to_array("F" * READ_LEN)
            seg.flag = r["flag"]
            seg.reference_name = r["chrom"]
            seg.reference_start = r["pos"]
            seg.mapping_quality = r["mapq"]
            seg.cigarstring = f"{READ_LEN}M"
            if r["mchrom"] is not None:
                seg.next_reference_name = r["mchrom"]
                seg.next_reference_start = r["mpos"]
            seg.template_length = r["tlen"]
            for key, value in r["tags"].items():
                seg.set_tag(key, value)
            out.write(seg)
    if index and mode == "wb":
        pysam.index(str(path))
    return path


def _known_fragments(seed=0, n=300):
    """Unique fragments (with some sharing coordinates across barcodes) and their read-pair counts."""
    rng = np.random.default_rng(seed)
    rows = set()
    while len(rows) < n:
        chrom = str(rng.choice(list(CONTIGS)))
        start = int(rng.integers(10, CONTIGS[chrom] - 1000))
        length = int(rng.choice([41, 41, 60, 150, 200, 380, 600]) + rng.integers(0, 3))
        barcode = str(rng.choice(BARCODES))
        rows.add((chrom, start, start + length, barcode))
        if rng.random() < 0.1:  # same coordinates, another cell
            rows.add((chrom, start, start + length, BARCODES[(BARCODES.index(barcode) + 1) % 4]))
    frame = pd.DataFrame(sorted(rows), columns=FRAG_COLUMNS[:4])
    frame["count"] = rng.choice([1, 1, 1, 2, 3], size=len(frame))
    return frame


def _pairs_for(fragments, rng):
    records = []
    for i, row in enumerate(fragments.itertuples(index=False)):
        for dup in range(row.count):
            records += _pair(f"frag{i}_dup{dup}", row.chrom, row.start, row.end, row.barcode,
                             forward_is_read1=bool(rng.random() < 0.5))
    return records


def _expected(fragments, contig_order=CONTIGS):
    rank = {c: i for i, c in enumerate(contig_order)}
    frame = fragments[fragments["chrom"].isin(rank)].copy()
    frame["_rank"] = frame["chrom"].map(rank)
    frame = frame.sort_values(["_rank", "start", "end", "barcode"]).drop(columns="_rank")
    return frame.reset_index(drop=True)


def _read_fragments(path):
    """Read back through tabix (checks the index) and as plain text (checks header + order)."""
    with pysam.TabixFile(str(path)) as tbx:
        via_index = [line.split("\t") for chrom in tbx.contigs for line in tbx.fetch(chrom)]
    text = pd.read_csv(path, sep="\t", comment="#", header=None, names=FRAG_COLUMNS)
    indexed = pd.DataFrame(via_index, columns=FRAG_COLUMNS).astype(text.dtypes.to_dict())
    key = FRAG_COLUMNS
    pd.testing.assert_frame_equal(indexed.sort_values(key, ignore_index=True), text.sort_values(key, ignore_index=True))
    return text


def _header_lines(path):
    with pysam.BGZFile(str(path), "rb") as handle:
        return [line for line in handle.read().decode().splitlines() if line.startswith("#")]


# ------------------------------------------------------------------------------------------------
def test_round_trip_recovers_fragments_and_duplicate_counts(tmp_path):
    fragments = _known_fragments()
    records = _pairs_for(fragments, np.random.default_rng(1))
    bam = _write_bam(tmp_path / "possorted_bam.bam", records)
    out = tmp_path / "out" / "fragments.tsv.gz"

    counts = bam_to_fragments(bam, out, progress=False)

    assert (out.parent / "fragments.tsv.gz.tbi").exists()
    pd.testing.assert_frame_equal(_read_fragments(out), _expected(fragments))
    header = _header_lines(out)
    assert "# id=possorted_bam" in header
    assert f"# description=converted from {bam} by grids" in header
    expected_counts = fragments.groupby("barcode").size()
    assert list(counts.columns) == ["barcode", "n_fragments"]
    assert counts.set_index("barcode")["n_fragments"].sort_index().to_dict() == expected_counts.to_dict()
    assert counts["n_fragments"].is_monotonic_decreasing
    # Some fragments share coordinates across barcodes, and equal-start mates occur (41 bp fragments).
    assert fragments.duplicated(["chrom", "start", "end"]).any()
    assert (fragments["end"] - fragments["start"] == 41).any()


def test_sam_input_without_index_gives_the_same_file(tmp_path):
    fragments = _known_fragments(seed=3, n=60)
    records = _pairs_for(fragments, np.random.default_rng(4))
    bam = _write_bam(tmp_path / "a.bam", records, index=False)
    sam = _write_bam(tmp_path / "a.sam", records, mode="w")
    bam_to_fragments(bam, tmp_path / "from_bam.tsv.gz", progress=False)
    bam_to_fragments(sam, tmp_path / "from_sam.tsv.gz", progress=False, sample_id="a")
    pd.testing.assert_frame_equal(_read_fragments(tmp_path / "from_bam.tsv.gz"), _expected(fragments))
    pd.testing.assert_frame_equal(_read_fragments(tmp_path / "from_sam.tsv.gz"), _expected(fragments))


def test_filters_drop_unusable_reads(tmp_path):
    good = pd.DataFrame(
        [("chr1", 1000, 1200, BARCODES[0], 1), ("chr1", 5000, 5300, BARCODES[1], 2),
         ("chr2", 2000, 2100, BARCODES[2], 1)], columns=FRAG_COLUMNS)
    records = _pairs_for(good, np.random.default_rng(0))
    junk = [
        _pair("lowq", "chr1", 1500, 1700, BARCODES[0], mapq=10),
        _pair("lowq_mate", "chr1", 1600, 1800, BARCODES[0], mate_mq=3),  # mate MAPQ from the MQ tag
        _pair("improper", "chr1", 2000, 2200, BARCODES[0], flags_drop=PROPER),
        _pair("unpaired", "chr1", 2500, 2700, BARCODES[0], flags_drop=PAIRED | PROPER),
        _pair("secondary", "chr1", 1000, 1200, BARCODES[0], flags_add=SECONDARY),
        _pair("supplementary", "chr1", 5000, 5300, BARCODES[1], flags_add=SUPPLEMENTARY),
        _pair("qcfail", "chr1", 3000, 3200, BARCODES[1], flags_add=QCFAIL),
        _pair("unmapped", "chr1", 3500, 3700, BARCODES[1], flags_add=UNMAPPED | MATE_UNMAPPED),
        _pair("nobarcode", "chr2", 3000, 3300, None),
        _pair("othertag", "chr2", 3500, 3800, BARCODES[3], tag="CR"),
        _pair("interchrom", "chr1", 4000, 4200, BARCODES[2], mate_chrom="chr2"),
        _pair("lone", "chr2", 6000, 6041, BARCODES[3])[:1],  # mate absent from the file
    ]
    # A pair whose shifted fragment would be empty (tlen 9 -> end == start) is dropped too.
    empty = _pair("empty", "chr2", 7000, 7041, BARCODES[3])
    for rec in empty:
        rec["tlen"] = 9 if rec["tlen"] > 0 else -9
    bam = _write_bam(tmp_path / "mixed.bam", records + [r for pair in junk for r in pair] + empty)
    out = tmp_path / "fragments.tsv.gz"

    counts = bam_to_fragments(bam, out, progress=False)

    result = _read_fragments(out)
    expected = _expected(good)
    # The lone read with no mate in the file still yields its fragment (mates are not held).
    lone = pd.DataFrame([("chr2", 6000, 6041, BARCODES[3], 1)], columns=FRAG_COLUMNS)
    pd.testing.assert_frame_equal(result, _expected(pd.concat([expected, lone])))
    assert set(counts["barcode"]) == {BARCODES[0], BARCODES[1], BARCODES[2], BARCODES[3]}


def test_min_mapq_and_barcode_tag_options(tmp_path):
    good = pd.DataFrame([("chr1", 1000, 1200, BARCODES[0], 1)], columns=FRAG_COLUMNS)
    records = _pairs_for(good, np.random.default_rng(0)) + _pair("q10", "chr1", 2000, 2200, BARCODES[1], mapq=10)
    bam = _write_bam(tmp_path / "a.bam", records)
    bam_to_fragments(bam, tmp_path / "f.tsv.gz", min_mapq=5, progress=False)
    assert len(_read_fragments(tmp_path / "f.tsv.gz")) == 2

    cr = _write_bam(tmp_path / "cr.bam", _pair("p", "chr1", 1000, 1200, BARCODES[0], tag="CR"))
    counts = bam_to_fragments(cr, tmp_path / "cr.tsv.gz", barcode_tag="CR", progress=False)
    assert counts.to_dict("list") == {"barcode": [BARCODES[0]], "n_fragments": [1]}


def _assert_no_output(directory, name="fragments.tsv.gz"):
    leftovers = [p.name for p in directory.iterdir() if name in p.name]
    assert leftovers == []


def test_missing_barcode_tag_raises_and_leaves_nothing(tmp_path):
    fragments = _known_fragments(seed=5, n=50)
    records = _pairs_for(fragments, np.random.default_rng(0))
    for rec in records:
        rec["tags"] = {"CR": rec["tags"]["CB"]}
    bam = _write_bam(tmp_path / "cr.bam", records)
    with pytest.raises(BamInputError, match="CB") as info:
        bam_to_fragments(bam, tmp_path / "fragments.tsv.gz", progress=False)
    assert str(bam) in str(info.value) and "barcode_tag" in str(info.value)
    _assert_no_output(tmp_path)


def test_missing_barcode_tag_detected_after_first_usable_reads(tmp_path, monkeypatch):
    import grids.atac.bam as module

    monkeypatch.setattr(module, "CHECK_READS", 20)
    # 60 untagged pairs on chr1 first, then tagged ones: the check fires early, mid-file.
    untagged = pd.DataFrame([("chr1", 1000 + 100 * i, 1200 + 100 * i, None, 1) for i in range(60)],
                            columns=FRAG_COLUMNS)
    tagged = pd.DataFrame([("chr2", 1000, 1200, BARCODES[0], 1)], columns=FRAG_COLUMNS)
    bam = _write_bam(tmp_path / "a.bam", _pairs_for(pd.concat([untagged, tagged]), np.random.default_rng(0)))
    with pytest.raises(BamInputError, match="first 20 usable reads"):
        bam_to_fragments(bam, tmp_path / "fragments.tsv.gz", progress=False)
    _assert_no_output(tmp_path)


def test_unsorted_bam_raises(tmp_path):
    fragments = _known_fragments(seed=6, n=40)
    records = _pairs_for(fragments, np.random.default_rng(0))
    shuffled = [records[i] for i in np.random.default_rng(1).permutation(len(records))]
    bam = _write_bam(tmp_path / "unsorted.bam", shuffled, sort=False, index=False)
    with pytest.raises(BamInputError, match=r"not coordinate-sorted: read frag\d+_dup\d+"):
        bam_to_fragments(bam, tmp_path / "fragments.tsv.gz", progress=False)
    _assert_no_output(tmp_path)

    by_name = _write_bam(tmp_path / "byname.bam", records, sort_order="queryname", index=False)
    with pytest.raises(BamInputError, match="SO:queryname"):
        bam_to_fragments(by_name, tmp_path / "fragments.tsv.gz", progress=False)
    _assert_no_output(tmp_path)


def test_not_a_bam_raises_naming_the_path(tmp_path):
    text = tmp_path / "notes.bam"
    text.write_text("this is not an alignment file\n")
    with pytest.raises(BamInputError, match="not a BAM/SAM") as info:
        bam_to_fragments(text, tmp_path / "fragments.tsv.gz", progress=False)
    assert str(text) in str(info.value)
    binary = tmp_path / "random.bam"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(BamInputError, match="random.bam"):
        bam_to_fragments(binary, tmp_path / "fragments.tsv.gz", progress=False)
    with pytest.raises(FileNotFoundError, match="missing.bam"):
        bam_to_fragments(tmp_path / "missing.bam", tmp_path / "fragments.tsv.gz", progress=False)
    _assert_no_output(tmp_path)


def test_single_end_bam_raises(tmp_path):
    records = []
    for i in range(30):
        records.append(dict(name=f"r{i}", flag=REVERSE if i % 2 else 0, chrom="chr1", pos=1000 + 37 * i, mapq=60,
                            mchrom=None, mpos=-1, tlen=0, tags={"CB": BARCODES[i % 4]}))
    bam = _write_bam(tmp_path / "se.bam", records)
    with pytest.raises(BamInputError, match="paired"):
        bam_to_fragments(bam, tmp_path / "fragments.tsv.gz", progress=False)
    _assert_no_output(tmp_path)


def test_chrom_sizes_restricts_contigs(tmp_path, caplog):
    contigs = {"chr1": 100_000, "chrUn_KI270302v1": 5_000, "chr2": 80_000, "chrEBV": 171_823}
    fragments = pd.DataFrame(
        [("chr1", 1000, 1200, BARCODES[0], 1), ("chrUn_KI270302v1", 100, 400, BARCODES[1], 1),
         ("chr2", 500, 700, BARCODES[2], 2), ("chrEBV", 900, 1100, BARCODES[3], 1)], columns=FRAG_COLUMNS)
    bam = _write_bam(tmp_path / "a.bam", _pairs_for(fragments, np.random.default_rng(0)), contigs=contigs)
    out = tmp_path / "fragments.tsv.gz"
    with caplog.at_level(logging.INFO, logger="grids.atac.bam"):
        counts = bam_to_fragments(bam, out, chrom_sizes={"chr2": 80_000, "chr1": 100_000}, progress=False)
    # Header order (chr1 before chr2), only the chrom_sizes contigs.
    pd.testing.assert_frame_equal(_read_fragments(out), _expected(fragments, ["chr1", "chr2"]))
    skipped = [r.getMessage() for r in caplog.records if "absent from chrom_sizes" in r.getMessage()]
    assert len(skipped) == 1 and "chrUn_KI270302v1" in skipped[0] and "chrEBV" in skipped[0]
    assert set(counts["barcode"]) == {BARCODES[0], BARCODES[2]}

    with pytest.raises(BamInputError, match="different genome build"):
        bam_to_fragments(bam, tmp_path / "f2.tsv.gz", chrom_sizes={"chr1": 99_999}, progress=False)
    with pytest.raises(BamInputError, match="chromosome naming"):
        bam_to_fragments(bam, tmp_path / "f2.tsv.gz", chrom_sizes={"1": 100_000}, progress=False)
    _assert_no_output(tmp_path, "f2.tsv.gz")
