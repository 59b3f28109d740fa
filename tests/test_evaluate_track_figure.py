"""Genome-track figure: GTF gene models, region helper and the PNG itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grids.evaluate.track_figure import genome_track_figure, track_region
from grids.genome import read_gene_models

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _gtf_line(chrom, feature, start, end, strand, attrs):
    text = " ".join(f'{key} "{value}";' for key, value in attrs.items())
    return f"{chrom}\ttest\t{feature}\t{start}\t{end}\t.\t{strand}\t.\t{text}\n"


def _gene(chrom, gene_id, name, strand, exons):
    """GTF lines (1-based closed) for a one-transcript gene; name None omits gene_name."""
    attrs = {"gene_id": gene_id} | ({"gene_name": name} if name else {})
    lo, hi = exons[0][0], exons[-1][1]
    lines = [_gtf_line(chrom, "gene", lo, hi, strand, attrs),
             _gtf_line(chrom, "transcript", lo, hi, strand, attrs | {"transcript_id": f"{gene_id}.1"})]
    lines += [_gtf_line(chrom, "exon", s, e, strand, attrs | {"transcript_id": f"{gene_id}.1"}) for s, e in exons]
    return lines


@pytest.fixture
def gtf(tmp_path):
    lines = (_gene("chr1", "G1", "GeneA", "+", [(10_001, 12_000), (20_001, 21_000), (28_001, 30_000)])
             + _gene("chr1", "G2", "GeneB", "-", [(25_001, 26_000), (40_001, 41_000), (59_001, 60_000)])
             + _gene("chr1", "G3", None, "+", [(80_001, 82_000), (88_001, 90_000)])
             + _gene("chr2", "G4", "GeneD", "+", [(5_001, 6_000), (9_001, 10_000)])
             + [_gtf_line("chr1", "gene", 120_001, 125_000, "-", {"gene_id": "G5", "gene_name": "NoExons"})])
    path = tmp_path / "genes.gtf"
    path.write_text("".join(lines))
    return path


@pytest.fixture
def tracks():
    rng = np.random.default_rng(0)
    starts = np.sort(rng.integers(0, 200_000, size=300))
    peaks = pd.DataFrame({"chrom": ["chr1"] * 290 + ["chr2"] * 10, "start": starts, "end": starts + 500})
    picked = peaks.iloc[[5, 40, 41, 120, 200, 250, 280, 295]].copy()  # 295 is on chr2
    selected = picked.assign(rank=np.arange(1, len(picked) + 1)).reset_index(drop=True)
    bins = np.arange(0, 200_000, 5_000)
    contact = 10.0 ** -(np.abs(bins - 10_000) / 40_000)
    contact[[3, 7]] = np.nan
    contact[12] = 0.0
    contacts = pd.DataFrame({"start": bins, "end": bins + 5_000, "contact": contact})
    planted = pd.DataFrame({"chrom": "chr1", "start": [10_000, 50_000, 90_000, 150_000],
                            "end": [10_400, 50_400, 90_400, 150_400],
                            "kind": ["promoter", "enhancer", "redundant", "indirect"]})
    return peaks, selected, contacts, planted


def _draw(path, gtf, tracks, **overrides):
    peaks, selected, contacts, planted = tracks
    kwargs = dict(region=("chr1", 0, 200_000), gene_models=read_gene_models(str(gtf)), peaks=peaks,
                  selected=selected, target="GeneA", tss=("chr1", 10_000), contacts=contacts, planted=planted,
                  title="GeneA: selected CREs")
    kwargs.update(overrides)
    genome_track_figure(path, **kwargs)
    assert path.read_bytes()[:8] == PNG_MAGIC
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[1] > 800 and 200 < image.shape[0] < image.shape[1]
    assert image[..., :3].std() > 0.05  # not blank
    return image


def test_read_gene_models(gtf):
    models = read_gene_models(str(gtf))
    assert list(models.columns) == ["chrom", "start", "end", "strand", "feature", "gene"]
    assert set(models["feature"]) == {"gene", "transcript", "exon"}
    gene_a = models[(models["gene"] == "GeneA") & (models["feature"] == "gene")].iloc[0]
    assert (gene_a["chrom"], gene_a["start"], gene_a["end"], gene_a["strand"]) == ("chr1", 10_000, 30_000, "+")
    exons_b = models[(models["gene"] == "GeneB") & (models["feature"] == "exon")]
    assert sorted(exons_b["start"]) == [25_000, 40_000, 59_000] and set(exons_b["strand"]) == {"-"}
    assert "G3" in set(models["gene"])  # no gene_name: falls back to gene_id
    assert set(models.loc[models["gene"] == "GeneD", "chrom"]) == {"chr2"}


def test_read_gene_models_requires_gene_records(tmp_path):
    path = tmp_path / "exons_only.gtf"
    path.write_text(_gtf_line("chr1", "exon", 1, 100, "+", {"gene_id": "G1", "transcript_id": "T1"}))
    with pytest.raises(ValueError, match="exons_only.gtf"):
        read_gene_models(str(path))


def test_figure_with_all_panels(tmp_path, gtf, tracks):
    full = _draw(tmp_path / "full.png", gtf, tracks)
    bare = _draw(tmp_path / "bare.png", gtf, tracks, contacts=None, planted=None)
    assert full.shape[0] > bare.shape[0]  # Hi-C and planted panels add height


def test_optional_panels_omitted_when_empty(tmp_path, gtf, tracks):
    _, _, contacts, planted = tracks
    bare = _draw(tmp_path / "bare.png", gtf, tracks, contacts=None, planted=None)
    empty = _draw(tmp_path / "empty.png", gtf, tracks, contacts=contacts.assign(contact=np.nan),
                  planted=planted.iloc[:0])
    assert empty.shape == bare.shape


def test_empty_selection_and_other_chromosome(tmp_path, gtf, tracks):
    _, selected, _, _ = tracks
    _draw(tmp_path / "none.png", gtf, tracks, selected=selected.iloc[:0])
    _draw(tmp_path / "chr2.png", gtf, tracks, selected=selected[selected["chrom"] == "chr2"])
    _draw(tmp_path / "far.png", gtf, tracks, region=("chr1", 150_000, 200_000))  # TSS outside the region


def test_bad_region_raises(tmp_path, gtf, tracks):
    with pytest.raises(ValueError, match="region"):
        _draw(tmp_path / "bad.png", gtf, tracks, region=("chr1", 5_000, 5_000))
    assert not (tmp_path / "bad.png").exists()


def test_track_region_pads_and_keeps_min_width():
    start, end = track_region(500_000, [(300_000, 300_500), (650_000, 651_000)], min_width=50_000)
    assert start == 300_000 - 35_100 and end == 651_000 + 35_100  # 10 % of the 351 kb span each side
    start, end = track_region(500_000, [(501_000, 501_500)], min_width=50_000)
    assert end - start == 50_000 and start <= 500_000 and end >= 501_500
    assert track_region(500_000, [], min_width=20_000) == (490_000, 510_000)


def test_track_region_clips_to_chromosome():
    assert track_region(10_000, [], min_width=50_000) == (0, 50_000)
    assert track_region(990_000, [], min_width=50_000, chrom_size=1_000_000) == (950_000, 1_000_000)
    assert track_region(10_000, [(5_000, 30_000)], min_width=100_000, chrom_size=60_000) == (0, 60_000)
