"""Benchmark: the workflow's surrogate training (``train_surrogate``) at the paper's shapes.

    python benchmarks/train_paper_shapes.py [--cells 10266] [--peaks 127219] [--genes 3000] [--epochs 3]
                                            [--cis-units 2] [--threads 2] [--device cpu|cuda]

Random data at the paper's shapes: binary ATAC with ~4% of peaks open per cell, 8 cell types whose
mean expression differs, a 70/15/15 split, and a cis path of ~40 random peaks per gene (119,980
links). The whole training loop runs as the ``train_surrogate`` rule runs it (batches, the
adversarial term, validation each epoch, checkpoints), for a fixed number of epochs, then the cis
path is fitted (ridge, then group-unit tests). Prints seconds per epoch, the cis fit's seconds,
the projected time for 300 epochs (``surrogate.max_epochs``; early stopping usually ends sooner),
peak resident memory and, on CUDA, the peak GPU allocation. The weights learn nothing real:
the time of an epoch depends on these shapes, not on what is learned; the cis fit's unit tests
find few units on random data, so its time here is a lower bound.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def paper_data(n_cells: int, n_peaks: int, n_genes: int, seed: int = 0):
    """(PairedData, cis links) at the given shapes."""
    from paper_shapes import OPEN_FRACTION, chromosome_sizes, open_peaks, random_cis_links

    from grids.surrogate.data import PairedData

    rng = np.random.default_rng(seed)
    sizes = chromosome_sizes(n_peaks)
    chrom = np.repeat([f"chr{i + 1}" for i in range(len(sizes))], sizes)
    start = np.concatenate([np.arange(n) * 20_000 for n in sizes])
    peaks = pd.DataFrame({"chrom": chrom, "start": start, "end": start + 500},
                         index=[f"{c}:{s}-{s + 500}" for c, s in zip(chrom, start)])
    cell_type = rng.integers(0, 8, n_cells)
    type_means = rng.gamma(1.0, 1.0, (8, n_genes)).astype(np.float32)
    rna = np.log1p(type_means[cell_type] * rng.gamma(2.0, 0.5, (n_cells, n_genes)).astype(np.float32))
    split = rng.choice(np.array(["train", "val", "test"]), n_cells, p=[0.7, 0.15, 0.15])
    data = PairedData(open_peaks(n_cells, n_peaks, OPEN_FRACTION, rng), rna.astype(np.float32), cell_type,
                      [f"type{i}" for i in range(8)], split, peaks, [f"g{i}" for i in range(n_genes)],
                      [f"c{i}" for i in range(n_cells)], None)
    return data, random_cis_links(n_peaks, n_genes, rng)


def main() -> None:
    import torch

    from grids.surrogate import TrainSettings, train_surrogate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10266)
    parser.add_argument("--peaks", type=int, default=127219)
    parser.add_argument("--genes", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cis-units", type=int, default=2,
                        help="group units per gene in the cis path (surrogate.cis_units)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    started = time.perf_counter()
    data, links = paper_data(args.cells, args.peaks, args.genes)
    built = time.perf_counter() - started
    print(f"shapes: cells={args.cells} peaks={args.peaks} genes={args.genes} open entries={data.atac.nnz} "
          f"cis links={len(links[0])} epochs={args.epochs} device={args.device} threads={args.threads} "
          f"(data built in {built:.1f} s)", flush=True)
    settings = TrainSettings(max_epochs=args.epochs, patience=args.epochs + 1, device=args.device,
                             threads=args.threads)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model, info = train_surrogate(data, settings, checkpoint=Path(tmp) / "checkpoint.pt", cis=links,
                                      model_kwargs={"cis_units": args.cis_units})
    cis_seconds = info["cis_seconds"]
    per_epoch = (info["train_seconds"] - cis_seconds) / info["epochs"]
    units = info["cis"].get("group_units", {})
    step_ms = per_epoch / max(1, info["steps"] // info["epochs"]) * 1000
    print(f"training: {info['epochs']} epochs, {info['steps']} steps, {per_epoch:.1f} s/epoch "
          f"({step_ms:.0f} ms/step); cis path fit {cis_seconds:.1f} s "
          f"(units kept: {units.get('or_units', 0)} OR, {units.get('and_units', 0)} AND)")
    print(f"projected_hours_300_epochs={(per_epoch * 300 + cis_seconds) / 3600:.2f} "
          f"peak_rss_GiB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}"
          + (f" peak_gpu_GiB={torch.cuda.max_memory_allocated() / 2**30:.2f}" if info["device"].startswith("cuda")
             else ""))


if __name__ == "__main__":
    main()
