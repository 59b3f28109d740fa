"""Hi-C validation of selections on tiny synthetic coolers (power-law decay + one planted loop)."""

from __future__ import annotations

import cooler
import numpy as np
import pandas as pd
import pytest

from grids.evaluate.hic import NO_PEAK, NO_USABLE, open_cooler, tss_contacts, validate_pairs

BIN = 10_000
N_BINS = 200
CHROMS = {"chr1": N_BINS * BIN, "chr2": N_BINS * BIN}
LOOP = (50, 120)  # chr1 bins of the planted loop anchors
TSS_POS = LOOP[0] * BIN + 5_000


def _pixels(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(len(CHROMS)):
        i, j = np.triu_indices(N_BINS)
        counts = rng.poisson(2000.0 * (j - i + 1.0) ** -1.0)
        loop = (i == LOOP[0]) & (j == LOOP[1]) & (k == 0)
        counts[loop] = 1000  # ~35x the expected count at that distance
        keep = counts > 0
        parts.append(pd.DataFrame({"bin1_id": i[keep] + k * N_BINS, "bin2_id": j[keep] + k * N_BINS,
                                   "count": counts[keep]}))
    return pd.concat(parts, ignore_index=True)


def _write(uri: str, *, balance: bool = True) -> None:
    bins = cooler.binnify(pd.Series(CHROMS), BIN)
    cooler.create_cooler(uri, bins, _pixels(), ordered=True)
    if balance:
        cooler.balance_cooler(cooler.Cooler(uri), store=True, cis_only=True, max_iters=1000)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hic")
    cool, raw, mcool = d / "a.cool", d / "raw.cool", d / "a.mcool"
    _write(str(cool))
    _write(str(raw), balance=False)
    cooler.zoomify_cooler(str(cool), str(mcool), resolutions=[BIN, 2 * BIN], chunksize=10**6)
    for res in (BIN, 2 * BIN):
        cooler.balance_cooler(cooler.Cooler(f"{mcool}::/resolutions/{res}"), store=True, cis_only=True,
                              max_iters=1000)
    single = d / "single.mcool"
    cooler.zoomify_cooler(str(cool), str(single), resolutions=[BIN], chunksize=10**6)
    cooler.balance_cooler(cooler.Cooler(f"{single}::/resolutions/{BIN}"), store=True, cis_only=True)
    text = d / "notes.cool"
    text.write_text("not a cooler\n")
    return dict(cool=cool, raw=raw, mcool=mcool, single=single, text=text)


@pytest.fixture(scope="module")
def clr(files):
    return open_cooler(str(files["cool"]))


@pytest.fixture(scope="module")
def background():
    """Consensus peaks: ~3 per bin at random positions on both chromosomes, plus the loop anchor."""
    rng = np.random.default_rng(1)
    parts = []
    for chrom, size in CHROMS.items():
        grid = np.arange(1_000, size - 1_000, 500)
        if chrom == "chr1":  # the anchor's bin holds only the anchor peak, so the loop is not in its background
            grid = grid[grid // BIN != LOOP[1]]
        mids = np.sort(rng.choice(grid, 3 * N_BINS, replace=False))
        parts.append(pd.DataFrame({"chrom": chrom, "start": mids - 250, "end": mids + 250}))
    anchor = pd.DataFrame({"chrom": ["chr1"], "start": [LOOP[1] * BIN + 4_750], "end": [LOOP[1] * BIN + 5_250]})
    return pd.concat(parts + [anchor], ignore_index=True)


def _pairs(key, peaks: pd.DataFrame, tss_chrom="chr1", tss_pos=TSS_POS) -> pd.DataFrame:
    return pd.DataFrame({"key": key, "peak_chrom": peaks["chrom"].to_numpy(), "peak_start": peaks["start"].to_numpy(),
                         "peak_end": peaks["end"].to_numpy(), "tss_chrom": tss_chrom, "tss_pos": tss_pos})


def test_loop_anchor_enriched_random_peaks_not(clr, background):
    anchor = background.iloc[[-1]]
    chr1 = background[(background["chrom"] == "chr1") & (background.index < len(background) - 1)]
    random_peaks = chr1.sample(30, random_state=3)
    pairs = pd.concat([_pairs("loop", anchor), _pairs("random", random_peaks)], ignore_index=True)
    res = validate_pairs(pairs, background, clr, n_draws=500, seed=0).set_index("key")
    assert list(res.index) == ["loop", "random"]
    assert (res["status"] == "ok").all()
    # Peaks in bins masked by balancing (low-coverage chromosome ends here) are dropped.
    row = tss_contacts(clr, "chr1", TSS_POS)["contact"].to_numpy()
    usable = int(np.isfinite(row[(random_peaks["start"] + random_peaks["end"]) // 2 // BIN]).sum())
    assert 0 < usable < 30
    assert res.loc["loop", "n_peaks"] == 1 and res.loc["random", "n_peaks"] == usable
    assert res.loc["loop", "obs_exp"] > 2 and res.loc["loop", "p_value"] < 0.05
    assert 0.5 < res.loc["random", "obs_exp"] < 2 and res.loc["random", "p_value"] > 0.05
    assert res.loc["loop", "observed"] == pytest.approx(res.loc["loop", "obs_exp"] * res.loc["loop", "expected"])


def test_statuses(clr, background):
    peaks = background[background["chrom"] == "chr1"].iloc[300:305]  # mid-chromosome: bins not masked
    other = background[background["chrom"] == "chr2"].iloc[300:305]
    pairs = pd.concat([
        _pairs("missing", peaks.assign(chrom="chr3"), tss_chrom="chr3"),
        _pairs("missing, peaks elsewhere", peaks, tss_chrom="chr3"),  # the target's chromosome decides
        _pairs("beyond", peaks, tss_pos=10_000_000),  # a subset file that stops short of the TSS
        _pairs("unmapped", peaks.assign(chrom="1"), tss_chrom="1"),  # exact names: "1" is not "chr1"
        _pairs("elsewhere", other),
        _pairs("partly", pd.concat([peaks, other])),
        _pairs("masked", background.head(3)),  # chromosome start: bins masked by balancing
    ], ignore_index=True)
    res = validate_pairs(pairs, background, clr, n_draws=50, source="sample.mcool").set_index("key")
    assert res.loc["missing", "status"] == "not covered: chr3 is not in sample.mcool"
    assert res.loc["missing, peaks elsewhere", "status"] == "not covered: chr3 is not in sample.mcool"
    assert res.loc["unmapped", "status"] == "not covered: 1 is not in sample.mcool"
    size = int(clr.chromsizes["chr1"])
    assert res.loc["beyond", "status"] == ("not covered: chr1:10000000 lies beyond the "
                                           f"{size} bp of chr1 in sample.mcool")
    assert res.loc["elsewhere", "status"] == NO_PEAK
    failed = ["missing", "unmapped", "elsewhere", "masked"]
    assert res.loc[failed, "n_peaks"].eq(0).all()
    assert res.loc[failed, ["observed", "expected", "obs_exp", "p_value"]].isna().all().all()
    assert res.loc["partly", "status"] == "ok" and res.loc["partly", "n_peaks"] == 5
    assert res.loc["masked", "status"] == NO_USABLE and res.loc["masked", "n_peaks"] == 0
    default = validate_pairs(pairs.head(5), background, clr, n_draws=10)
    assert default["status"].iloc[0] == f"not covered: chr3 is not in {clr.filename}"


def test_gene_set_pairs_use_their_own_tss(clr, background):
    anchor = background.iloc[[-1]]
    chr2 = background[background["chrom"] == "chr2"].iloc[[250]]
    pairs = pd.concat([_pairs("set", anchor), _pairs("set", chr2, tss_chrom="chr2", tss_pos=1_000_000)])
    res = validate_pairs(pairs, background, clr, n_draws=200)
    assert res["status"].tolist() == ["ok"] and res["n_peaks"].tolist() == [2]


@pytest.mark.parametrize("chrom,position", [("chr1", TSS_POS), ("chr2", 1_234_567), ("chr2", 0)])
def test_tss_contacts_is_dense_row(clr, chrom, position):
    row = tss_contacts(clr, chrom, position)
    assert list(row.columns) == ["start", "end", "contact"] and len(row) == N_BINS
    lo = clr.offset(chrom)
    dense = clr.matrix(balance=True)[:]
    expected = dense[lo + position // BIN, lo : lo + N_BINS]
    np.testing.assert_allclose(row["contact"].to_numpy(), expected, equal_nan=True)
    assert row["start"].iloc[3] == 3 * BIN and row["end"].iloc[-1] == CHROMS[chrom]


def test_open_cooler(files):
    assert open_cooler(str(files["mcool"]), resolution=2 * BIN).binsize == 2 * BIN
    assert open_cooler(str(files["mcool"]), BIN).binsize == BIN
    assert open_cooler(f"{files['mcool']}::/resolutions/{2 * BIN}").binsize == 2 * BIN
    assert open_cooler(str(files["single"])).binsize == BIN
    assert open_cooler(str(files["cool"]), resolution=BIN).binsize == BIN
    with pytest.raises(ValueError, match=rf"{BIN}.*{2 * BIN}"):
        open_cooler(str(files["mcool"]))
    with pytest.raises(ValueError, match=r"resolution 5000 is not in .*a\.mcool.*10000, 20000"):
        open_cooler(str(files["mcool"]), resolution=5000)
    with pytest.raises(ValueError, match="is not a cooler"):
        open_cooler(f"{files['mcool']}::/resolutions/5000")
    with pytest.raises(ValueError, match=r"a\.cool has bin size 10000.*5000"):
        open_cooler(str(files["cool"]), resolution=5000)
    with pytest.raises(ValueError, match=r"raw\.cool.*cooler balance"):
        open_cooler(str(files["raw"]))
    with pytest.raises(ValueError, match=r"notes\.cool is not a cooler file"):
        open_cooler(str(files["text"]))
    with pytest.raises(FileNotFoundError, match="nowhere.mcool"):
        open_cooler(str(files["cool"].parent / "nowhere.mcool"))


def test_deterministic(clr, background):
    peaks = background[background["chrom"] == "chr1"].sample(20, random_state=5)
    pairs = pd.concat([_pairs("a", peaks), _pairs("b", background.iloc[[-1]])], ignore_index=True)
    first = validate_pairs(pairs, background, clr, n_draws=300, seed=7)
    pd.testing.assert_frame_equal(first, validate_pairs(pairs, background, clr, n_draws=300, seed=7))
    other = validate_pairs(pairs, background, clr, n_draws=300, seed=8)
    np.testing.assert_allclose(other["obs_exp"], first["obs_exp"], rtol=0.1)
    pd.testing.assert_series_equal(other["observed"], first["observed"])


def test_selection_of_every_nearby_peak_is_not_inflated(clr, background):
    """A selection holding every peak near the TSS is its own distance-matched background, so its
    obs/exp stays near 1 instead of being compared with farther, weaker classes."""
    chr1 = background[background["chrom"] == "chr1"]
    middle = (chr1["start"] + chr1["end"]) // 2
    near = chr1[(middle - TSS_POS).abs() < 30 * BIN]
    res = validate_pairs(_pairs("all near", near), background, clr, n_draws=300, seed=0).iloc[0]
    assert res["status"] == "ok" and res["n_peaks"] > 10
    assert 0.8 < res["obs_exp"] < 1.25, res.to_dict()
