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
import contextlib
import time

import numpy as np
import torch

LABELS = {"gains": "gradient (gains)", "swap_losses": "candidate evaluation",
          "loss": "objective on all training / validation cells (swap check, curve, ranking)",
          "subset_losses": "pair moves", "put_back_losses": "leave-one-out scores (pair moves, ranking)"}


class Timer:
    """Accumulates wall time per kind of question the search asks (SubsetObjective.answer_many)."""

    def __init__(self, device: torch.device) -> None:
        self.totals: dict[str, float] = {}
        self.device = device

    @contextlib.contextmanager
    def timing(self, objective_class):
        original = objective_class.answer_many

        def timed(name, requests):
            started = time.perf_counter()
            out = original(name, requests)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.totals[LABELS[name]] = self.totals.get(LABELS[name], 0.0) + time.perf_counter() - started
            return out

        objective_class.answer_many = staticmethod(timed)
        try:
            yield self
        finally:
            objective_class.answer_many = staticmethod(original)


def main() -> None:
    from paper_shapes import add_shape_arguments, paper_surrogate, random_cells

    from grids.explain.core import SubsetObjective
    from grids.explain.search import GridsSettings, grids_search

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--L", type=int, nargs="+", default=[10, 128])
    add_shape_arguments(parser)
    parser.add_argument("--patience", type=int, default=0, help="GRIDS early stop (0: time every step)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, _ = paper_surrogate(args.peaks, args.genes, args.device)
    rng = np.random.default_rng(0)
    objective = SubsetObjective(model, np.array([7]))
    train = objective.cells(random_cells(args.train_cells, args.peaks, int(rng.integers(1 << 30))))
    validation = objective.cells(random_cells(args.val_cells, args.peaks, int(rng.integers(1 << 30))))
    peak = model.cis_links()[0]
    print(f"shapes: peaks={args.peaks} genes={args.genes} cis links={len(peak)} train cells={args.train_cells} "
          f"val cells={args.val_cells} steps={args.steps} k=32 batch=64 device={device} threads={args.threads}")
    for L in args.L:
        timer = Timer(device)
        started = time.perf_counter()
        with timer.timing(SubsetObjective):
            result = grids_search(objective, train, GridsSettings(L=L, steps=args.steps, patience=args.patience),
                                  validation=validation)
        steps = len(result.curve["step"])
        total = time.perf_counter() - started
        shares = ", ".join(f"{label} {seconds / total:.0%}" for label, seconds in timer.totals.items())
        print(f"L={L}: {total:.1f} s per target over {steps} steps ({total / steps * 1000:.1f} ms/step; "
              f"{total / steps * 500:.0f} s at 500 steps); {shares}", flush=True)


if __name__ == "__main__":
    main()
