"""Benchmark: GRIDS over every gene of one cell type at the paper's shapes, many targets per
pass against one at a time (issue 17).

    python benchmarks/explain_genomewide.py [--targets 3000] [--L 10] [--batch 64] [--compare 8]
                                            [--threads 2] [--device cpu|cuda]

The surrogate of ``paper_shapes.py`` (127,219 peaks, 3,000 genes, ~40 cis peaks per gene,
random weights); 700 training and 100 validation cells of one type. Each target is one gene
with the workflow's default search (L, k = 32, batch 64, patience 2, pair moves with the gene's
cis peaks as its window). The first ``--compare`` targets also run one at a time; the script
prints seconds per target both ways, their ratio, the projected hours for all genes, and how the
batched objectives compare with the one-at-a-time ones (they must match within 1% or be lower).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from tqdm.auto import tqdm


def main() -> None:
    from paper_shapes import add_shape_arguments, paper_surrogate, random_cells

    from grids.explain.core import SubsetObjective
    from grids.explain.search import GridsSettings, drive, grids_search, grids_steps, sufficient_order

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=3000, help="genes explained (the first N)")
    parser.add_argument("--L", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64, help="targets per lockstep pass")
    parser.add_argument("--compare", type=int, default=8, help="targets also run one at a time")
    add_shape_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, windows = paper_surrogate(args.peaks, args.genes, args.device)
    train_X = random_cells(args.train_cells, args.peaks, seed=1)
    val_X = random_cells(args.val_cells, args.peaks, seed=2)
    settings = GridsSettings(L=args.L)
    print(f"shapes: peaks={args.peaks} genes={args.genes} train cells={args.train_cells} val cells={args.val_cells} "
          f"targets={args.targets} L={args.L} k={settings.k} steps<={settings.steps} patience={settings.patience} "
          f"moves={settings.moves} batch={args.batch} device={args.device} threads={args.threads}", flush=True)
    shared: dict[str, object] = {}

    def prepare(gene: int):
        """The target's objective, cells (encoded once, shared) and pair proposals, as the stage builds them."""
        objective = SubsetObjective(model, np.array([gene]))
        train = objective.cells(train_X, shared=shared.get("train"))
        validation = objective.cells(val_X, shared=shared.get("val"))
        shared.update(train=train, val=validation)
        sufficient = sufficient_order(objective, train, windows[gene], seed=0)
        return objective, train, validation, sufficient

    def steps_of(gene: int):
        objective, train, validation, sufficient = prepare(gene)
        return grids_steps(objective, train, settings, validation=validation, window=windows[gene],
                           sufficient=sufficient)

    genes = np.arange(args.targets) % args.genes
    started = time.perf_counter()
    batched = []
    for lo in tqdm(range(0, len(genes), args.batch), desc="batches", unit="batch"):
        batched += drive([steps_of(int(g)) for g in genes[lo : lo + args.batch]])
    batched_s = time.perf_counter() - started
    n_steps = np.array([len(s.curve["step"]) for s in batched])

    started = time.perf_counter()
    single = []
    for gene in genes[: args.compare]:
        objective, train, validation, sufficient = prepare(int(gene))
        single.append(grids_search(objective, train, settings, validation=validation, window=windows[gene],
                                   sufficient=sufficient))
    single_s = time.perf_counter() - started

    per_target_batched = batched_s / len(genes)
    per_target_single = single_s / max(1, args.compare)
    relative = np.array([(b.train_loss - s.train_loss) / max(abs(s.train_loss), 1e-12)
                         for b, s in zip(batched, single)])
    same = sum(set(b.peaks.tolist()) == set(s.peaks.tolist()) for b, s in zip(batched, single))
    print(f"batched: {batched_s:.1f} s for {len(genes)} targets = {per_target_batched:.3f} s/target "
          f"(steps per target: median {np.median(n_steps):.0f}, max {n_steps.max()})")
    print(f"one at a time: {single_s:.1f} s for {args.compare} targets = {per_target_single:.3f} s/target")
    print(f"ratio_one_at_a_time_to_batched={per_target_single / per_target_batched:.1f}x "
          f"projected_hours_for_{args.genes}_genes={per_target_batched * args.genes / 3600:.2f}")
    if len(relative):
        print(f"objective batched vs one at a time over {len(relative)} targets: max relative excess "
              f"{relative.max():+.2e} (must be <= 1e-2), identical selections {same}/{len(relative)}")
    print(f"peak_rss_GiB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}")


if __name__ == "__main__":
    main()
