"""Benchmark: RNA stage runtime (Pegasus QC, HVGs, label inference, UMAP) at the paper's scale.

    python benchmarks/rna_stage_paper.py [--sample-dir DIR] [--copies 2]

DIR is a simulated ``paper`` sample (default benchmarks/out/paper1; see atac_matrix.py). With
``--copies 2`` the sample is read twice under two sample names, giving the paper's 10,266
cells over two batches (batch-aware HVG on), without simulating a second sample.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from grids.workflow.stages.rna import run_rna_stage

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-dir", type=Path, default=HERE / "out" / "paper1")
    parser.add_argument("--copies", type=int, default=2)
    args = parser.parse_args()
    h5 = str(args.sample_dir / "filtered_feature_bc_matrix.h5")
    markers = pd.read_csv(args.sample_dir / "truth" / "markers.tsv", sep="\t")
    settings = {
        "min_genes": 500, "max_genes": 6000, "min_umis": 100, "max_umis": None, "percent_mito": 20.0,
        "robust_percent_cells": 0.05, "n_top_genes": 3000, "batch_aware_hvg": True, "labels": "infer",
        "markers": str(args.sample_dir / "truth" / "markers.json"), "leiden_resolution": 1.0, "seed": 0,
    }
    with tempfile.TemporaryDirectory() as tmp:
        targets = Path(tmp) / "targets.tsv"
        markers.groupby("cell_type").head(2).to_csv(targets, sep="\t", index=False)
        t0 = time.perf_counter()
        run_rna_stage(
            rna_files={f"paper{i + 1}": h5 for i in range(args.copies)}, label_tables={}, targets=str(targets),
            settings=settings, mito_prefix="MT-", out_h5ad=f"{tmp}/rna.h5ad", out_qc=f"{tmp}/qc.tsv",
            out_figure=f"{tmp}/qc.png", out_labels=f"{tmp}/labels.tsv",
        )
        elapsed = time.perf_counter() - t0
        labels = pd.read_csv(f"{tmp}/labels.tsv", sep="\t")
        truth = pd.read_csv(args.sample_dir / "cell_types.tsv", sep="\t").set_index("barcode")["cell_type"]
        from sklearn.metrics import adjusted_rand_score

        barcode = labels["cell"].str.split("#").str[1]
        ari = adjusted_rand_score(truth.loc[barcode], labels["cell_type"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"cells_in={args.copies * len(truth)} cells_after_qc={len(labels)} rna_stage_s={elapsed:.1f} "
          f"peak_rss_GiB={rss:.2f} label_ARI_vs_truth={ari:.3f}")


if __name__ == "__main__":
    main()
