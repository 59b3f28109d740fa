"""Benchmark: GRIDS explain time per (cell type, gene) at the paper's shapes, and its split.

    python benchmarks/explain_speed.py [--steps 500] [--L 10 128] [--device cpu|cuda]

A surrogate with the paper's shapes (127,219 peaks over 22 chromosomes, 3,000 genes, a cis path
of ~40 peaks per gene) and random weights; 700 training and 100 validation cells of one type
with ~4% of peaks open. The search cost does not depend on what the weights learned, only on
these shapes. Prints seconds per target for each L, and the share spent computing the gains
(gradient step) vs evaluating the k candidate swaps exactly (and the validation objective).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch

HG38_FRACTIONS = np.array([248.96, 242.19, 198.30, 190.21, 181.54, 170.81, 159.35, 145.14, 138.39, 133.80,
                           135.09, 133.28, 114.36, 107.04, 101.99, 90.34, 83.26, 80.37, 58.62, 64.44, 46.71,
                           50.82])


class Timer:
    """Accumulates wall time per label around wrapped methods."""

    def __init__(self, device: torch.device) -> None:
        self.totals: dict[str, float] = {}
        self.device = device

    def wrap(self, obj, name: str, label: str) -> None:
        original = getattr(obj, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            out = original(*args, **kwargs)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.totals[label] = self.totals.get(label, 0.0) + time.perf_counter() - started
            return out

        setattr(obj, name, timed)


def main() -> None:
    from grids.explain.core import SubsetObjective
    from grids.explain.search import GridsSettings, grids_search
    from grids.surrogate.model import Surrogate, SurrogateConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--L", type=int, nargs="+", default=[10, 128])
    parser.add_argument("--peaks", type=int, default=127219)
    parser.add_argument("--genes", type=int, default=3000)
    parser.add_argument("--train-cells", type=int, default=700)
    parser.add_argument("--val-cells", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--patience", type=int, default=0, help="GRIDS early stop (0: time every step)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    sizes = np.floor(HG38_FRACTIONS / HG38_FRACTIONS.sum() * args.peaks).astype(int)
    sizes[0] += args.peaks - sizes.sum()
    links_per_gene = 40
    peak = rng.integers(0, args.peaks, args.genes * links_per_gene)
    gene = np.repeat(np.arange(args.genes), links_per_gene)
    peak, keep = np.unique(peak * args.genes + gene, return_index=True)
    peak, gene = peak // args.genes, gene[keep]
    config = SurrogateConfig(n_peaks=args.peaks, n_genes=args.genes, chrom_sizes=sizes.tolist(), n_cell_types=8,
                             n_cis_links=len(peak))
    model = Surrogate(config)
    model.set_cis_links(peak, gene, weight=rng.normal(0, 0.1, len(peak)))
    with torch.no_grad():
        model.gene_mean.fill_(1.0)
    model = model.to(device).eval()

    def cells(n: int) -> sp.csr_matrix:
        X = sp.random(n, args.peaks, density=0.04, random_state=int(rng.integers(1 << 30)), format="csr",
                      dtype=np.float32)
        X.data[:] = 1
        return X

    objective = SubsetObjective(model, np.array([7]))
    train, validation = objective.cells(cells(args.train_cells)), objective.cells(cells(args.val_cells))
    print(f"shapes: peaks={args.peaks} genes={args.genes} cis links={len(peak)} train cells={args.train_cells} "
          f"val cells={args.val_cells} steps={args.steps} k=32 batch=64 device={device} threads={args.threads}")
    for L in args.L:
        timer = Timer(device)
        timer.wrap(objective, "gains", "gradient (gains)")
        timer.wrap(objective, "swap_losses", "candidate evaluation")
        timer.wrap(objective, "loss", "objective on all training / validation cells (swap check, curve, ranking)")
        started = time.perf_counter()
        result = grids_search(objective, train, GridsSettings(L=L, steps=args.steps, patience=args.patience),
                              validation=validation)
        steps = len(result.curve["step"])
        total = time.perf_counter() - started
        for name in ("gains", "swap_losses", "loss"):
            delattr(objective, name)  # drop the instance wrappers
        shares = ", ".join(f"{label} {seconds / total:.0%}" for label, seconds in timer.totals.items())
        print(f"L={L}: {total:.1f} s per target over {steps} steps ({total / steps * 1000:.1f} ms/step; "
              f"{total / steps * 500:.0f} s at 500 steps); {shares}", flush=True)


if __name__ == "__main__":
    main()
