"""A surrogate with the paper's shapes and random weights, and cells of one type, for the explain
benchmarks (``explain_speed.py``, ``explain_genomewide.py``). The search's cost depends on these
shapes, not on what the weights learned."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# hg38 chromosome lengths (Mb), chr1..chr22: peaks are spread over chromosomes in proportion.
HG38_FRACTIONS = np.array([248.96, 242.19, 198.30, 190.21, 181.54, 170.81, 159.35, 145.14, 138.39, 133.80,
                           135.09, 133.28, 114.36, 107.04, 101.99, 90.34, 83.26, 80.37, 58.62, 64.44, 46.71,
                           50.82])
LINKS_PER_GENE = 40  # cis-window peaks per gene (about the paper data's density within 500 kb)
OPEN_FRACTION = 0.04  # peaks open per cell


def add_shape_arguments(parser) -> None:
    """The options both explain benchmarks share: the shapes, threads and device."""
    parser.add_argument("--peaks", type=int, default=127219)
    parser.add_argument("--genes", type=int, default=3000)
    parser.add_argument("--train-cells", type=int, default=700)
    parser.add_argument("--val-cells", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")


def chromosome_sizes(n_peaks: int) -> np.ndarray:
    """Peaks per chromosome, chr1..chr22 in proportion to hg38's lengths, summing to ``n_peaks``."""
    sizes = np.floor(HG38_FRACTIONS / HG38_FRACTIONS.sum() * n_peaks).astype(int)
    sizes[0] += n_peaks - sizes.sum()
    return sizes


def random_cis_links(n_peaks: int, n_genes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(peak, gene) of ~LINKS_PER_GENE random peaks per gene, distinct pairs, sorted by peak then gene."""
    peak = rng.integers(0, n_peaks, n_genes * LINKS_PER_GENE).astype(np.int64)
    pair = np.unique(peak * n_genes + np.repeat(np.arange(n_genes), LINKS_PER_GENE))
    return pair // n_genes, pair % n_genes


def paper_surrogate(n_peaks: int, n_genes: int, device: str = "cpu", seed: int = 0):
    """(model, cis peaks per gene): random weights, peaks over 22 chromosomes, a cis path of
    ~40 random peaks per gene with random weights."""
    import torch

    from grids.surrogate.model import Surrogate, SurrogateConfig

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sizes = chromosome_sizes(n_peaks)
    peak, gene = random_cis_links(n_peaks, n_genes, rng)
    config = SurrogateConfig(n_peaks=n_peaks, n_genes=n_genes, chrom_sizes=sizes.tolist(), n_cell_types=8,
                             n_cis_links=len(peak))
    model = Surrogate(config)
    model.set_cis_links(peak, gene, weight=rng.normal(0, 0.1, len(peak)))
    with torch.no_grad():
        model.gene_mean.fill_(1.0)
    window = [np.sort(peak[gene == g]) for g in range(n_genes)]
    return model.to(torch.device(device)).eval(), window


def open_peaks(n_cells: int, n_peaks: int, fraction: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Binary cells x peaks, each entry open with probability ~``fraction``, built in seconds at
    the paper's full 10,266 cells: :func:`random_cells` (scipy.sparse.random) samples without
    replacement over all cells x peaks entries, which there takes minutes and over 10 GiB. The
    explain benchmarks keep :func:`random_cells` for their 800 cells, so their figures stand."""
    n_open = rng.binomial(n_peaks, fraction, n_cells)
    row = np.repeat(np.arange(n_cells, dtype=np.int64), n_open)
    flat = np.sort(row * n_peaks + rng.integers(0, n_peaks, len(row)))  # np.unique is ~50x slower here
    flat = flat[np.concatenate([[True], np.diff(flat) != 0])]  # rare repeats dropped
    indptr = np.searchsorted(flat, np.arange(n_cells + 1, dtype=np.int64) * n_peaks)
    indices = (flat % n_peaks).astype(np.int32)
    return sp.csr_matrix((np.ones(len(flat), np.float32), indices, indptr), shape=(n_cells, n_peaks))


def random_cells(n_cells: int, n_peaks: int, seed: int) -> sp.csr_matrix:
    """Binary cells x peaks with OPEN_FRACTION of peaks open."""
    X = sp.random(n_cells, n_peaks, density=OPEN_FRACTION, random_state=seed, format="csr", dtype=np.float32)
    X.data[:] = 1
    return X
