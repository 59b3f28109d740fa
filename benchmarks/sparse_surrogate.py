"""Benchmark: the surrogate on sparse multiome against ridge, kNN in LSI and the cell-type mean.

    python benchmarks/sparse_surrogate.py RUN_DIR [--targets TSV] [--gtf GTF] [--threads 2] [--device cpu|cuda]

RUN_DIR is a workflow directory that has run at least to ``results/multiome/paired.h5mu``, for
example the SNARE-seq-depth simulation (issue 16):

    snakemake --cores 2 --configfile config/sparse/config.yaml --until train_surrogate

On the same split, it trains the surrogate twice, with the default settings and with the
sparse-data settings of config/sparse/config.yaml (its ``surrogate`` block), and prints
each one's held-out median per-gene Pearson r, marker-mean R² and best epoch next to ridge, the
kNN-in-LSI predictor (TF-IDF + SVD, 30 neighbours) and the cell-type-mean predictor (which reads
the labels, so it is the reference for how much of the expression is cell identity).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from grids.surrogate.data import load_paired
from grids.surrogate.metrics import cell_type_mean_baseline, evaluate_predictions, knn_lsi_baseline, ridge_baseline
from grids.surrogate.saved import load_surrogate, save_surrogate
from grids.surrogate.train import TrainSettings, train_surrogate
from grids.workflow.config import read_targets
from grids.workflow.stages.surrogate import gene_links

SPARSE_CONFIG = Path(__file__).resolve().parents[1] / "config" / "sparse" / "config.yaml"


def sparse_settings() -> dict:
    """The training settings config/sparse/config.yaml sets (so this script and it never differ)."""
    surrogate = yaml.safe_load(SPARSE_CONFIG.read_text()).get("surrogate", {})
    return {key: value for key, value in surrogate.items() if key in TrainSettings.__dataclass_fields__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--targets", type=Path,
                        help="marker genes per cell type (default: RUN_DIR/config/sparse/targets.tsv)")
    parser.add_argument("--gtf", type=Path, help="default: the run's first simulated genes.gtf")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (the training device)")
    args = parser.parse_args()
    run = args.run_dir
    targets = args.targets or run / "config" / "sparse" / "targets.tsv"
    gtf = args.gtf or sorted((run / "results" / "simulated").glob("*/genes.gtf"))[0]
    data = load_paired(str(run / "results" / "multiome" / "paired.h5mu"))
    markers = list(dict.fromkeys(read_targets(str(targets))["gene"]))
    depth = data.atac.getnnz(axis=1)
    print(f"{len(data.cells)} cells ({len(data.rows('train'))} train, {len(data.rows('test'))} test), "
          f"{data.atac.shape[1]} peaks, median {int(pd.Series(depth).median())} open peaks per cell, "
          f"{len(data.genes)} genes, {len(data.cell_types)} cell types")
    links = gene_links(data, str(gtf), 500_000)
    sparse = sparse_settings()
    variants = {"surrogate (defaults)": {},
                "surrogate (" + ", ".join(f"{k} {v}" for k, v in sparse.items()) + ")": sparse}
    rows = []
    for name, extra in variants.items():
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            model, info = train_surrogate(data, TrainSettings(threads=args.threads, device=args.device, **extra),
                                          checkpoint=Path(tmp) / "checkpoint.pt", cis=links,
                                          model_kwargs={"cis_units": 2}, progress=False)
            info.get("cis", {}).pop("linear_cis_state", None)
            save_surrogate(model, data, info, path=Path(tmp) / "model.pt")
            predicted = load_surrogate(Path(tmp) / "model.pt").predict(data.atac[data.rows("test")])
        rows.append({"predictor": name, **_scores(predicted, data, markers),
                     "best_epoch": info["best_epoch"], "seconds": round(time.perf_counter() - started, 1)})
    for name, predicted in (("ridge", ridge_baseline(data)[0]), ("kNN in LSI (30 neighbours)", knn_lsi_baseline(data)),
                            ("cell-type mean (reads the label)", cell_type_mean_baseline(data))):
        rows.append({"predictor": name, **_scores(predicted, data, markers)})
    print(pd.DataFrame(rows).to_string(index=False))


def _scores(predicted, data, markers) -> dict:
    scores = evaluate_predictions(predicted, data, markers)
    r2 = scores["marker_mean_r2"]
    return {"median_r": round(scores["median_pearson_r"], 4), "marker_mean_r2": None if r2 is None else round(r2, 3)}


if __name__ == "__main__":
    main()
