"""Simulated Hi-C per cell type: distance decay plus loops at direct CRE-promoter links."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from ..io import atomic_output
from .model import RegulatoryModel
from .params import model_seed_sequence

__all__ = ["loop_pixels", "write_hic_cool"]

log = logging.getLogger(__name__)

# cooler stamps files with the wall-clock time; a fixed stamp keeps reruns byte-identical.
# SOURCE_DATE_EPOCH is the reproducible-builds convention for overriding it.
def _creation_date() -> str:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    return pd.Timestamp(epoch, unit="s").strftime("%Y-%m-%dT%H:%M:%S.%f")


def _restamp(path) -> None:
    """Replace cooler's wall-clock creation date, copying into a fresh file so no stale bytes remain."""
    import h5py

    fresh = f"{path}.restamp"
    with h5py.File(path, "r") as src, h5py.File(fresh, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = _creation_date() if key == "creation-date" else value
        for name in src:
            src.copy(src[name], dst, name=name)
    os.replace(fresh, path)


def loop_pixels(model: RegulatoryModel, cell_type: str) -> pd.DataFrame:
    """Planted loops: one per direct enhancer / redundant CRE, anchored at its gene's TSS.

    Columns: chrom, bin1, bin2 (chromosome-local bins, bin1 <= bin2), active (CRE open in
    ``cell_type``), gene, cre_id. Promoters sit in their TSS bin, so they make no loop.

    Parameters
    ----------
    model
        The simulated genome and regulation; bins are ``model.params.hic_bin_size`` wide.
    cell_type
        One of ``model.cell_types``.

    Returns
    -------
    pandas.DataFrame
        The columns above, one row per enhancer or redundant CRE (in ``model.cres`` order) whose
        centre lies outside its gene's TSS bin, index 0..n-1. ``active``: the CRE's open probability
        in ``cell_type`` is at least 0.3.

    Raises
    ------
    ValueError
        When ``cell_type`` is not one of ``model.cell_types``.
    """
    bin_size = model.params.hic_bin_size
    k = model.cell_types.index(cell_type)
    cres = model.cres
    direct = cres[cres["kind"].isin(["enhancer", "redundant"])]
    tss = model.genes.set_index("gene")["tss"]
    cre_bin = ((direct["start"] + direct["end"]) // 2 // bin_size).to_numpy()
    tss_bin = (tss.loc[direct["gene"]].to_numpy() // bin_size)
    frame = pd.DataFrame(
        {
            "chrom": direct["chrom"].to_numpy(),
            "bin1": np.minimum(cre_bin, tss_bin),
            "bin2": np.maximum(cre_bin, tss_bin),
            "active": model.access[direct.index, k] >= 0.3,
            "gene": direct["gene"].to_numpy(),
            "cre_id": direct["cre_id"].to_numpy(),
        }
    )
    return frame[frame["bin1"] != frame["bin2"]].reset_index(drop=True)


def _chrom_pixels(
    rng: np.random.Generator, n_bins: int, params, bias: np.ndarray, loops: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson contacts for one chromosome: power-law decay x bin biases x loop boosts.

    Pixels within ``hic_max_distance`` are drawn one by one; the sparse long-range tail
    beyond it is drawn contact by contact. The tail matters: without it the matrix is a
    band, and iterative correction mixes (converges) very slowly along the chromosome.
    """
    c0, decay = params.hic_contacts_per_bin, params.hic_decay
    max_diag = min(n_bins - 1, params.hic_max_distance // params.hic_bin_size)
    diag_len = n_bins - np.arange(max_diag + 1)
    offsets = np.concatenate([[0], np.cumsum(diag_len)])
    bin1 = np.concatenate([np.arange(n) for n in diag_len])
    bin2 = bin1 + np.repeat(np.arange(max_diag + 1), diag_len)
    expected = c0 * (bin2 - bin1 + 1.0) ** (-decay) * bias[bin1] * bias[bin2]
    # Loops: strong where the CRE is open in this cell type, faint elsewhere.
    boost = np.where(loops["active"].to_numpy(), params.hic_loop_strength, 0.25 * params.hic_loop_strength)
    l1, l2 = loops["bin1"].to_numpy(), loops["bin2"].to_numpy()
    near = (l2 - l1) <= max_diag
    factor = np.ones_like(expected)
    np.maximum.at(factor, offsets[l2[near] - l1[near]] + l1[near], 1.0 + boost[near])
    counts = rng.poisson(expected * factor)

    # Long-range tail: distances drawn from the decay law, positions uniform, thinned by bias.
    far_d = np.arange(max_diag + 1, n_bins)
    weight = (n_bins - far_d) * (far_d + 1.0) ** (-decay)
    n_far = rng.poisson(c0 * weight.sum()) if len(far_d) else 0
    d = rng.choice(far_d, size=n_far, p=weight / weight.sum()) if n_far else np.zeros(0, np.int64)
    f1 = (rng.random(n_far) * (n_bins - d)).astype(np.int64)
    f2 = f1 + d
    accept = rng.random(n_far) < bias[f1] * bias[f2] / bias.max() ** 2
    # Loops beyond the band add their boost on top of the tail.
    far_loops = pd.DataFrame({"b1": l1[~near], "b2": l2[~near], "boost": boost[~near]}).groupby(["b1", "b2"]).max()
    lb1 = far_loops.index.get_level_values("b1").to_numpy(dtype=np.int64)
    lb2 = far_loops.index.get_level_values("b2").to_numpy(dtype=np.int64)
    loop_counts = rng.poisson(c0 * (lb2 - lb1 + 1.0) ** (-decay) * bias[lb1] * bias[lb2]
                              * far_loops["boost"].to_numpy())

    key = np.concatenate([bin1 * n_bins + bin2, f1[accept] * n_bins + f2[accept], lb1 * n_bins + lb2])
    value = np.concatenate([counts, np.ones(int(accept.sum()), np.int64), loop_counts])
    keep = value > 0
    pixel, inverse = np.unique(key[keep], return_inverse=True)  # sorted by (bin1, bin2)
    total = np.bincount(inverse, weights=value[keep]).astype(np.int64)
    return pixel // n_bins, pixel % n_bins, total


def write_hic_cool(model: RegulatoryModel, cell_type: str, path: str | os.PathLike) -> None:
    """Write a balanced ``.cool`` for one cell type (autosomes only; chrM has no Hi-C).

    Parameters
    ----------
    model
        The simulated genome and regulation (bin size, contact and loop settings from
        ``model.params``).
    cell_type
        One of ``model.cell_types``; its loops are strong where their CRE is open in it
        (:func:`loop_pixels`), faint elsewhere.
    path
        The ``.cool`` file, written atomically: cis contacts only, with ICE weights balanced per
        chromosome (the ``weight`` column). Its contents are seeded by ``model.params.seed`` and the
        cell type; the creation date is ``SOURCE_DATE_EPOCH`` (0 when unset), so reruns are
        byte-identical.

    Raises
    ------
    ValueError
        When ``cell_type`` is not one of ``model.cell_types``.
    """
    import cooler

    params = model.params
    k = model.cell_types.index(cell_type)
    rng = np.random.default_rng(model_seed_sequence(params.seed, 100 + k))
    bin_size = params.hic_bin_size
    chrom_sizes = {c: n for c, n in model.chrom_sizes.items() if c != "chrM"}
    bins = cooler.binnify(pd.Series(chrom_sizes), bin_size)
    loops = loop_pixels(model, cell_type)
    chrom_offset = np.concatenate([[0], np.cumsum([int(np.ceil(n / bin_size)) for n in chrom_sizes.values()])])
    # Bin biases (mappability, GC) are shared across cell types, as in real data.
    bias_rng = np.random.default_rng(model_seed_sequence(params.seed, 99))
    all_bias = np.exp(bias_rng.normal(0.0, 0.2, len(bins)))
    parts = []
    for i, chrom in enumerate(chrom_sizes):
        n_bins = chrom_offset[i + 1] - chrom_offset[i]
        b1, b2, n = _chrom_pixels(
            rng, n_bins, params, all_bias[chrom_offset[i] : chrom_offset[i + 1]], loops[loops["chrom"] == chrom]
        )
        parts.append(pd.DataFrame({"bin1_id": b1 + chrom_offset[i], "bin2_id": b2 + chrom_offset[i], "count": n}))
    pixels = pd.concat(parts, ignore_index=True)
    with atomic_output(path) as tmp:
        tmp.unlink()  # cooler refuses to write over an existing non-cooler file
        cooler.create_cooler(
            str(tmp), bins, pixels, ordered=True, assembly="grids-sim",
            metadata={"cell_type": cell_type, "generated-by": "grids.simulate"},
        )
        # Only cis contacts are simulated, so balance per chromosome; strong loop anchors
        # slow ICE down, hence the higher iteration cap.
        cooler.balance_cooler(cooler.Cooler(str(tmp)), store=True, cis_only=True, max_iters=1000)
        _restamp(tmp)
    log.info("hic %s: %d bins, %d pixels, %d loops", cell_type, len(bins), len(pixels), len(loops))
