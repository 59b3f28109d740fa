"""GRIDS's pair moves against the paper's single swaps, on a finished demo run (issue 15).

    python benchmarks/grids_moves.py [RESULTS_DIR] [--L 4 10] [--device cuda] [--threads 2]

For every per-gene target of config/targets.tsv, runs GRIDS twice on the run's surrogate and
paired data with the workflow's settings, once with ``moves=single`` (the paper's search) and
once with ``moves=pairs``, and prints per L: the mean training objective, the mean test-cell
Rel Δ (natural scale, the evaluation's definition), how many targets improved, the number of
pair moves kept, the seconds per target, and the share of targets with a planted OR group whose
every callable member was selected. Both runs share the seed, start and cells, so every
difference is the moves'.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", default="results", type=Path)
    parser.add_argument("--L", nargs="+", type=int, default=[4, 10])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (CUDA when torch sees a GPU)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    args = parser.parse_args()

    import torch

    from grids.evaluate.drop import drop_summary, remove_peaks
    from grids.evaluate.overlap import overlap_matrix, overlaps_any
    from grids.evaluate.truth import read_truth
    from grids.explain.baselines import window_peaks
    from grids.explain.core import SubsetObjective
    from grids.explain.search import GridsSettings, grids_search
    from grids.genome import first_tss
    from grids.surrogate import load_paired, load_surrogate, resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device, "--device")
    config = yaml.safe_load(Path(args.config).read_text())
    explain = config["explain"]
    saved = load_surrogate(args.results / "surrogate" / "model.pt", device=str(device))
    print(f"device {device}")
    data = load_paired(str(args.results / "multiome" / "paired.h5mu"))
    tss = first_tss(config["genome"]["gtf"], data.peaks["chrom"].astype(str).unique())
    truth = read_truth(config["evaluate"]["truth"])
    peaks = data.peaks.reset_index(drop=True)
    targets = pd.read_csv(config["targets"], sep="\t")
    rows = []
    for target in targets.itertuples():
        code = data.cell_types.index(target.cell_type)
        in_type = data.cell_type == code
        objective = SubsetObjective(saved.model, np.array([data.genes.index(target.gene)]))
        train = objective.cells(data.atac[np.flatnonzero(in_type & (data.split == "train"))])
        validation = objective.cells(data.atac[np.flatnonzero(in_type & (data.split == "val"))])
        X_test = data.atac[np.flatnonzero(in_type & (data.split == "test"))]
        before = saved.predict(X_test)[:, data.genes.index(target.gene)][:, None]
        window = window_peaks(data.peaks, tss, [target.gene], window=int(explain.get("window", 500_000)))
        groups = truth[(truth["gene"] == target.gene) & (truth["logic"] == "or")
                       & truth["active"].map(lambda active: target.cell_type in active)]
        callable_ = groups[overlaps_any(groups, peaks)] if len(groups) else groups
        for L in args.L:
            for moves in ("single", "pairs"):
                settings = GridsSettings(L=L, k=int(explain["k"]), steps=int(explain["steps"]),
                                         batch_size=int(explain["batch_size"]), seed=int(explain["seed"]), moves=moves)
                started = time.perf_counter()
                selection = grids_search(objective, train, settings, validation=validation, window=window)
                seconds = time.perf_counter() - started
                after = saved.predict(remove_peaks(X_test, selection.peaks))[:, data.genes.index(target.gene)][:, None]
                chosen = peaks.iloc[selection.peaks][["chrom", "start", "end"]].reset_index(drop=True)
                recovered = (bool(overlap_matrix(chosen, callable_).any(0).all()) if len(callable_) >= 2 else np.nan)
                rows.append({"L": L, "moves": moves, "target": f"{target.cell_type}/{target.gene}",
                             "train_objective": selection.train_loss,
                             "test_rel_delta_pct": drop_summary(before, after)[1],
                             "pair_moves": selection.curve["move"].count("pair"), "seconds": seconds,
                             "or_group_recovered": recovered})
    table = pd.DataFrame(rows)
    for L, part in table.groupby("L"):
        wide = part.pivot(index="target", columns="moves", values="train_objective")
        print(f"L = {L}: targets where pair moves lowered the training objective: "
              f"{int((wide['pairs'] < wide['single'] - 1e-9).sum())} of {len(wide)}")
        summary = part.groupby("moves").agg(train_objective=("train_objective", "mean"),
                                            test_rel_delta_pct=("test_rel_delta_pct", "mean"),
                                            pair_moves=("pair_moves", "sum"), seconds=("seconds", "mean"),
                                            or_group_recovered=("or_group_recovered", "mean"))
        print(summary.round(4).to_string())
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
