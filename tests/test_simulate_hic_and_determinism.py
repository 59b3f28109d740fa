"""Hi-C loops at planted links, and byte-identical reruns."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import TINY
from grids.simulate import loop_pixels, make_params, simulate_sample


def _obs_over_expected(clr, chrom: str, pairs: np.ndarray) -> np.ndarray:
    """Balanced contact at (bin1, bin2) over the mean balanced contact at the same distance."""
    matrix = clr.matrix(balance=True).fetch(chrom)
    ratios = []
    for b1, b2 in pairs:
        diagonal = np.diagonal(matrix, offset=b2 - b1)
        expected = np.nanmean(diagonal)
        if np.isfinite(matrix[b1, b2]) and expected > 0:
            ratios.append(matrix[b1, b2] / expected)
    return np.array(ratios)


def test_cool_files_are_balanced_and_loops_stand_above_distance_matched_background(demo_sample, demo_model):
    import cooler

    for cell_type in demo_model.cell_types[:2]:
        clr = cooler.Cooler(str(demo_sample / "hic" / f"{cell_type}.cool"))
        assert clr.binsize == demo_model.params.hic_bin_size
        assert "weight" in clr.bins().columns
        assert clr.chromnames == [c for c in demo_model.chrom_sizes if c != "chrM"]
        loops = loop_pixels(demo_model, cell_type)
        active = loops[loops.active & ((loops.bin2 - loops.bin1) > 2)]
        ratios = np.concatenate([
            _obs_over_expected(clr, chrom, block[["bin1", "bin2"]].drop_duplicates().to_numpy())
            for chrom, block in active.groupby("chrom")
        ])
        assert len(ratios) > 50
        assert np.median(ratios) > 2.0, np.median(ratios)
        # Distance decay: contacts fall with distance.
        matrix = clr.matrix(balance=True).fetch(clr.chromnames[0])
        near, far = np.nanmean(np.diagonal(matrix, 3)), np.nanmean(np.diagonal(matrix, 100))
        assert near > 5 * far


def test_loops_only_at_direct_links(demo_model):
    loops = loop_pixels(demo_model, demo_model.cell_types[0])
    direct = demo_model.cres[demo_model.cres.kind.isin(["enhancer", "redundant"])]
    assert set(loops["cre_id"]) <= set(direct["cre_id"])
    assert not set(loops["cre_id"]) & set(demo_model.cres.loc[demo_model.cres.kind == "orphan", "cre_id"])


def _run(tmp: Path, seed: int) -> Path:
    out = tmp / f"seed{seed}-{len(list(tmp.iterdir()))}" / "s1"
    simulate_sample(make_params("demo", seed=seed, **TINY), "s1", out, progress=False)
    return out


def test_same_seed_gives_byte_identical_files(tmp_path):
    first, second = _run(tmp_path, 0), _run(tmp_path, 0)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) >= 15 and Path("hic/CT1.cool") in files
    for rel in files:
        assert filecmp.cmp(first / rel, second / rel, shallow=False), f"{rel} differs between runs"
    other = _run(tmp_path, 1)
    assert not filecmp.cmp(first / "fragments.tsv.gz", other / "fragments.tsv.gz", shallow=False)


def test_samples_differ_but_share_the_genome(tmp_path):
    params = make_params("demo", **TINY)
    a = tmp_path / "a"
    b = tmp_path / "b"
    simulate_sample(params, "a", a, hic=False, progress=False)
    simulate_sample(params, "b", b, hic=False, progress=False)
    for shared in ["genes.gtf", "chrom.sizes", "truth/links.tsv", "truth/cres.tsv"]:
        assert filecmp.cmp(a / shared, b / shared, shallow=False)
    assert not filecmp.cmp(a / "fragments.tsv.gz", b / "fragments.tsv.gz", shallow=False)


def test_sparse_preset_has_snare_seq_depth(tmp_path):
    """The sparse preset: ~300 UMIs and ~200 fragments (~100 in peaks) per cell, 13 cell types."""
    import scanpy as sc

    params = make_params("sparse", seed=0, cells_per_sample=400, empty_droplets_per_sample=200)
    simulate_sample(params, "s1", tmp_path, hic=False, progress=False)
    rna = sc.read_10x_h5(tmp_path / "filtered_feature_bc_matrix.h5")
    assert 200 <= np.median(np.asarray(rna.X.sum(1)).ravel()) <= 400
    fragments = pd.read_csv(tmp_path / "fragments.tsv.gz", sep="\t", header=None, comment="#")
    per_cell = fragments[3].value_counts().reindex(rna.obs_names).fillna(0)
    assert 100 <= per_cell.median() <= 350, per_cell.median()
    types = pd.read_csv(tmp_path / "cell_types.tsv", sep="\t")
    assert types["cell_type"].nunique() == 13
